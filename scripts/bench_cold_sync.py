#!/usr/bin/env python3
"""Cold sync of a district from its street hubs over libp2p on loopback
(BENCHMARKS.md): `gongjian demo hubs` writes one data directory per street
holding what that street may see, and a district node holding nothing but
its own certificate; the hubs start, then the district, which dials them
all. Measured: time from the district's start until it holds every
document and change, bytes it received (its /metrics), its peak RSS
(VmHWM), the CPU the district and the hubs spent meanwhile. The hubs run
with their background scrub off (they stand for machines of their own).

usage: bench_cold_sync.py GONGJIAN_BIN WORK_DIR [--scale F] [--json]

GONGJIAN_PERF_DISTRICT=FILE records the district with `perf record` (call
graphs by DWARF) into FILE, from its start until it holds everything.
"""
import json, os, signal, subprocess, sys, time

from daemons import Daemons, get, metric, vm_mb

gj, work = sys.argv[1], sys.argv[2]
scale = sys.argv[sys.argv.index("--scale") + 1] if "--scale" in sys.argv else "1"
port = int(os.environ.get("GONGJIAN_BENCH_PORT", "47300"))
setup = json.loads(subprocess.check_output(
    [gj, "demo", "hubs", "--out", os.path.join(work, "hubs"), "--scale", scale, "--port", str(port)]))
daemons = Daemons(gj)


HUB_ENV = {"GONGJIAN_SCRUB_DOCS_PER_SECOND": "0"}


def cpu_s(pid):
    # utime + stime of /proc/PID/stat, in seconds.
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


try:
    # The hubs stand for nodes on machines of their own: their background
    # scrub (a few documents a second each, 130 of them at ×10: half a core)
    # is off, so it does not take this machine's cores from the district.
    for h in setup["hubs"]:
        daemons.start(h["dir"], env=HUB_ENV)
    district = setup["district"]
    token = open(os.path.join(district, "api.token")).read().strip()
    # The hubs' CPU from here on is what serving the district cost them.
    hubs_cpu_before = sum(cpu_s(h.pid) for h in daemons.procs)
    t0 = time.monotonic()
    p, line = daemons.start(district)
    api_up = time.monotonic() - t0
    perf = None
    if os.environ.get("GONGJIAN_PERF_DISTRICT"):
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf,16384",
                                 "-p", str(p.pid), "-o", os.environ["GONGJIAN_PERF_DISTRICT"]])
    api = line["api"]
    want_docs, want_changes = setup["documents"], setup["changes"]
    last = None
    while True:
        # A slow answer under heavy ingest is waited for, not an error.
        try:
            s = json.loads(get(api, token, "/v1/status")[1])
        except (TimeoutError, OSError):
            continue
        last = (s["documents"], s["changes"])
        if s["documents"] >= want_docs and s["changes"] >= want_changes:
            break
        if time.monotonic() - t0 > 600:
            raise SystemExit(f"cold sync did not finish in 600 s: {last} of {(want_docs, want_changes)}")
        # Each status walks the district's store: polled every 250 ms, and
        # every 50 ms only once nine tenths of the changes are in (for the
        # end's time, without a walk every 50 ms of the whole sync).
        time.sleep(0.05 if s["changes"] >= 0.9 * want_changes else 0.25)
    took = time.monotonic() - t0
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    district_cpu = cpu_s(p.pid)
    hubs_cpu = sum(cpu_s(h.pid) for h in daemons.procs[:-1]) - hubs_cpu_before
    metrics = get(api, token, "/metrics")[1].decode()
    received = metric(metrics, "gongjian_network_received_bytes")
    sent = metric(metrics, "gongjian_network_sent_bytes")
    # From a frame of changes read off a stream to the view holding them.
    lag = (metric(metrics, "gongjian_view_lag_p50_seconds"), metric(metrics, "gongjian_view_lag_p99_seconds"))
    # Bytes received by kind of frame (`gongjian_network_message_bytes`).
    by_kind = {}
    for l in metrics.splitlines():
        if l.startswith("gongjian_network_message_bytes") and 'direction="received"' in l:
            kind = l.split('kind="', 1)[1].split('"', 1)[0]
            by_kind[kind] = float(l.split()[-1])
    out = {
        "scale": float(scale), "hubs": len(setup["hubs"]), "documents": want_docs, "changes": want_changes,
        "change_bytes": setup["change_bytes"], "seconds": took, "api_up_seconds": api_up, "received_bytes": received, "sent_bytes": sent,
        "received_vs_signed": received / setup["change_bytes"], "peak_rss_mb": vm_mb(p.pid),
        "view_lag_p50_ms": lag[0] * 1000, "view_lag_p99_ms": lag[1] * 1000,
        "district_cpu_s": district_cpu, "hubs_cpu_s": hubs_cpu,
        "received_by_kind": by_kind,
    }
finally:
    daemons.stop()
if "--json" in sys.argv:
    print(json.dumps(out))
else:
    print(f"cold sync of the district ×{out['scale']:g} from {out['hubs']} street hubs over libp2p: {out['seconds']:.1f} s; "
          f"received {out['received_bytes']:.0f} B for {out['change_bytes']} B of signed changes "
          f"({out['received_vs_signed']:.2f}×), sent {out['sent_bytes']:.0f} B; peak RSS {out['peak_rss_mb']:.0f} MB; "
          f"view lag (frame read → view updated) p50 {out['view_lag_p50_ms']:.1f} ms, p99 {out['view_lag_p99_ms']:.1f} ms; "
          f"CPU: district {out['district_cpu_s']:.2f} s, hubs {out['hubs_cpu_s']:.2f} s (from the district's start; "
          f"two cores take at least {(out['district_cpu_s'] + out['hubs_cpu_s']) / 2:.2f} s for both); the district's API up after {out['api_up_seconds']:.2f} s")
    print("received by kind of frame: " + ", ".join(
        f"{k} {v:.0f} B" for k, v in sorted(out["received_by_kind"].items(), key=lambda kv: -kv[1]) if v))
