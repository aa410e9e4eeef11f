#!/usr/bin/env python3
"""A real street hub under attack while the district cold-syncs from it
(RELIABILITY.md). `gongjian demo hubs` writes the district's street hubs;
all start; the `hostile` client attacks the first hub for SECONDS: fresh
uncertified identities opening too many streams with stalled, oversized
and garbage hellos, plus a stolen certified key (the second hub's) that
floods requests without reading and sends malformed messages, a third
(the third hub's) replaying held changes unasked, a fourth (the fourth
hub's) answering the target's `Want`s with changes whose dependencies never
come, and --hold fresh identities holding idle connections (more than
the target's 256 connection slots). A few
seconds in, the district starts and syncs the whole district from the
hubs. Reported: the target's RSS before and its peak during the attack,
its misbehaviour count, the district's sync time; it fails if the district
does not finish, the target stops answering, or its RSS grows past
--bound-mb.

usage: hostile.py GONGJIAN_BIN HOSTILE_BIN WORK_DIR [--seconds 60] [--identities 300] [--hold 300] [--bound-mb 256]
"""
import json, os, re, subprocess, sys, threading, time

from daemons import Daemons, get, metric, vm_mb

gj, hostile, work = sys.argv[1], sys.argv[2], sys.argv[3]
arg = lambda name, default: sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default
seconds, identities, bound = int(arg("--seconds", "60")), int(arg("--identities", "300")), float(arg("--bound-mb", "256"))
hold = int(arg("--hold", "300"))
port = int(os.environ.get("GONGJIAN_BENCH_PORT", "47700"))
setup = json.loads(subprocess.check_output(
    [gj, "demo", "hubs", "--out", os.path.join(work, "hubs"), "--port", str(port)]))
daemons = Daemons(gj)
# The peer log is checked against its text format, whatever the caller's
# environment sets.
os.environ["GONGJIAN_LOG_FORMAT"] = "text"

def unit_of(d):
    for line in open(os.path.join(d, "config.toml")):
        if line.startswith("unit"):
            return line.split("=", 1)[1].strip().strip('"')

result = {}
try:
    # The target's stderr (its peer log) is kept; the other hubs' is not.
    hubs = [daemons.start(h["dir"], stderr=subprocess.PIPE if i == 0 else subprocess.DEVNULL)
            for i, h in enumerate(setup["hubs"])]
    target_p, target = hubs[0]
    target_dir = setup["hubs"][0]["dir"]
    target_token = open(os.path.join(target_dir, "api.token")).read().strip()
    # The target's stderr (its peer log) is read so it never blocks.
    peer_lines = []
    def drain():
        for line in target_p.stderr:
            if "gongjian::peer" in line:
                peer_lines.append(line)
    threading.Thread(target=drain, daemon=True).start()
    time.sleep(2)
    before = vm_mb(target_p.pid, "VmRSS:")
    stolen = setup["hubs"][1]["dir"]
    replayer = setup["hubs"][2]["dir"]
    flooder = setup["hubs"][3]["dir"]
    _, body = get(target["api"], target_token, "/v1/status")
    quarantined_before = json.loads(body)["quarantined"]
    changes_before = json.loads(body)["changes"]
    attack = subprocess.Popen(
        [hostile, "--target", f"{setup['hubs'][0]['listen']}/p2p/{target['peer_id']}", "--seconds", str(seconds),
         "--identities", str(identities), "--key", os.path.join(stolen, "node.key"), "--unit", unit_of(stolen),
         "--replay-key", os.path.join(replayer, "node.key"), "--replay-unit", unit_of(replayer),
         "--flood-key", os.path.join(flooder, "node.key"), "--flood-unit", unit_of(flooder), "--hold", str(hold)],
        stdout=subprocess.PIPE, text=True)
    peak, answered, unanswered = before, 0, 0
    t_attack = time.monotonic()
    district_p = district = None
    synced_at = None
    want_docs, want_changes = setup["documents"], setup["changes"]
    d_token = open(os.path.join(setup["district"], "api.token")).read().strip()
    while attack.poll() is None:
        now = time.monotonic() - t_attack
        peak = max(peak, vm_mb(target_p.pid, "VmRSS:"))
        try:
            st, _ = get(target["api"], target_token, "/ready", timeout=5)
            answered += st == 200
        except OSError:
            unanswered += 1
        if district_p is None and now > 5:
            t_district = time.monotonic()
            district_p, district = daemons.start(setup["district"])
        if district_p is not None and synced_at is None:
            try:
                _, body = get(district["api"], d_token, "/v1/status", timeout=5)
                s = json.loads(body)
                if s["documents"] >= want_docs and s["changes"] >= want_changes:
                    synced_at = time.monotonic() - t_district
            except (OSError, ValueError):
                pass
        time.sleep(0.5)
    did = json.loads(attack.stdout.read())
    if os.environ.get("HOSTILE_DEBUG"):
        with open(os.environ.get("HOSTILE_PEER_LOG", "/tmp/hostile-peer.log"), "w") as f:
            f.writelines(peer_lines)
    # If the district has not caught up, say where it stands (its peers).
    district_state = None
    if synced_at is None and district is not None:
        try:
            _, body = get(district["api"], d_token, "/v1/status", timeout=5)
            st = json.loads(body)
            _, body = get(district["api"], d_token, "/v1/node", timeout=5)
            district_state = {"documents": st.get("documents"), "changes": st.get("changes"),
                              "want": [want_docs, want_changes], "peers": json.loads(body).get("peers")}
        except (OSError, ValueError) as e:
            district_state = {"error": str(e)}
    _, body = get(target["api"], target_token, "/v1/status")
    target_status = json.loads(body)
    _, metrics = get(target["api"], target_token, "/metrics")
    misbehaviour = metric(metrics.decode(), "gongjian_peer_misbehaviour")
    reasons = {}
    # Every line about a peer names it and says why, in the one format
    # (`<what> peer=<PeerId> unit=<id or -> reason=<text>`); the evictions
    # of not yet admitted connections are logged in sums instead.
    fixed = re.compile(r"(peer misbehaved|stream dropped|connection closed|peer refused)\b.*\bpeer=\S+.*\breason=")
    off_format = []
    for line in peer_lines:
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if "evicted by newer ones" not in line and not fixed.search(line):
            off_format.append(line.strip())
        if "evicted by newer ones" in line:  # logged in sums, every 10 s at most
            m = re.search(r"evicted=(\d+)", line)
            key = "connections not yet admitted evicted (summed)"
            reasons[key] = reasons.get(key, 0) + int(m.group(1) if m else 0)
            continue
        what = ("stream dropped" if "stream dropped" in line
                else "connection closed" if "connection closed" in line else "misbehaved")
        r = line.split("reason=", 1)[-1].strip().strip('"')
        r = re.sub(r"(changes of )\S+", r"\1…", r)        # document ids
        r = re.sub(r"\b\d+(-byte)?\b", "N\\1", r)       # sizes and counts
        r = r.split(": ", 2)
        r = ": ".join(r[:2]) if r[0] in ("refused", "does not read") else r[0]
        key = f"{what}: {r}"
        reasons[key] = reasons.get(key, 0) + 1
    result = {
        "seconds": seconds, "attack": did, "target_rss_before_mb": round(before, 1),
        "target_rss_peak_mb": round(peak, 1), "target_rss_growth_mb": round(peak - before, 1),
        "target_ready_answered": answered, "target_ready_unanswered": unanswered,
        "target_misbehaviour_counted": misbehaviour, "peer_log_lines": len(peer_lines),
        "target_quarantined_before": quarantined_before, "target_quarantined_after": target_status["quarantined"],
        "target_changes_before": changes_before, "target_changes_after": target_status["changes"],
        "peer_log_lines_off_format": off_format[:5], "peer_log_lines_off_format_count": len(off_format),
        "target_unadmitted_closed": target_status["network"]["unadmitted_closed"],
        "target_handshakes_refused": target_status["network"].get("handshakes_refused", 0),
        "peer_log_reasons": reasons, "district_synced_seconds": synced_at,
    }
    if district_state is not None:
        result["district_state"] = district_state
finally:
    daemons.stop()
print(json.dumps(result, ensure_ascii=False))
ok = result and result["district_synced_seconds"] is not None and result["target_ready_unanswered"] == 0 \
    and result["target_rss_growth_mb"] <= bound \
    and result["target_changes_after"] == result["target_changes_before"] \
    and result["peer_log_lines_off_format_count"] == 0 and result["peer_log_lines"] > 0 \
    and result["target_misbehaviour_counted"] > 0 \
    and result["target_quarantined_after"] - result["target_quarantined_before"] \
        <= 100 * result["attack"]["dangling_distinct_docs"]  # one author key: 100 a document
print(f"target hub under attack for {seconds} s ({result['attack']['connections']} connections, "
      f"{result['attack']['streams']} streams, {result['attack']['flood_requests']} unread requests): "
      f"RSS {result['target_rss_before_mb']} → peak {result['target_rss_peak_mb']} MB (+{result['target_rss_growth_mb']}, bound {bound:g}); "
      f"{result['target_misbehaviour_counted']:.0f} penalties counted; "
      f"changes stored {result['target_changes_before']} → {result['target_changes_after']}; "
      f"{result['peer_log_lines']} peer log lines, {result['peer_log_lines_off_format_count']} off the fixed format; "
      f"{result['attack']['dangling_changes']} changes with missing dependencies sent, quarantine "
      f"{result['target_quarantined_before']} → {result['target_quarantined_after']}; "
      f"{result['attack']['held_connections']} idle connections held, {result['target_unadmitted_closed']} closed unadmitted, {result['target_handshakes_refused']} refused in the handshake (one address's share); /ready answered {result['target_ready_answered']}×, "
      f"missed {result['target_ready_unanswered']}×; district cold sync meanwhile: {result['district_synced_seconds']} s"
      + ("" if ok else "  FAILED"))
sys.exit(0 if ok else 1)
