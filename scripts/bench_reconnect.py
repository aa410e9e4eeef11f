#!/usr/bin/env python3
"""Reconnect after an outage (BENCHMARKS.md): `gongjian demo hubs --later
0.01` writes the street hubs and a district that synced with them before
an outage; since then 1% of the documents got one change each (made by
their owners, held by their hubs). The hubs start, then the district,
which dials them all. Measured: time from the district's start until it
holds every change, the bytes it exchanged (received + sent, its
/metrics) beside the bytes of the missing signed changes, and the sync
messages it exchanged.

usage: bench_reconnect.py GONGJIAN_BIN WORK_DIR [--scale F] [--fraction F] [--json]
"""
import json, os, subprocess, sys, time

from daemons import Daemons, get, metric, vm_mb

gj, work = sys.argv[1], sys.argv[2]
arg = lambda name, default: sys.argv[sys.argv.index(name) + 1] if name in sys.argv else default
scale, fraction = arg("--scale", "1"), arg("--fraction", "0.01")
port = int(os.environ.get("GONGJIAN_BENCH_PORT", "47500"))
setup = json.loads(subprocess.check_output(
    [gj, "demo", "hubs", "--out", os.path.join(work, "reconnect"), "--scale", scale,
     "--port", str(port), "--later", fraction]))
daemons = Daemons(gj)
try:
    for h in setup["hubs"]:
        daemons.start(h["dir"])
    district = setup["district"]
    token = open(os.path.join(district, "api.token")).read().strip()
    t0 = time.monotonic()
    p, line = daemons.start(district)
    api = line["api"]
    t_api = time.monotonic() - t0
    later = setup["later"]
    want = setup["changes"] + later["changes"]
    while True:
        try:
            s = json.loads(get(api, token, "/v1/status")[1])
        except (TimeoutError, OSError):
            continue
        if s["changes"] >= want:
            break
        if time.monotonic() - t0 > 600:
            raise SystemExit(f"reconnect did not finish in 600 s: {s['changes']} of {want} changes")
        time.sleep(0.05)
    took = time.monotonic() - t0
    m = get(api, token, "/metrics")[1].decode()
    received = metric(m, "gongjian_network_received_bytes")
    sent = metric(m, "gongjian_network_sent_bytes")
    # From a frame of changes read off a stream to the view holding them.
    lag = (metric(m, "gongjian_view_lag_p50_seconds"), metric(m, "gongjian_view_lag_p99_seconds"))
    messages = metric(m, "gongjian_network_received_frames") + metric(m, "gongjian_network_sent_frames")
    # Both ways, by kind of frame (hello, reconcile, want, changes, ...).
    by_kind = {}
    for l in m.splitlines():
        if l.startswith("gongjian_network_message_bytes_total{"):
            kind = l.split('kind="')[1].split('"')[0]
            by_kind[kind] = by_kind.get(kind, 0) + float(l.split()[-1])
    out = {
        "scale": float(scale), "hubs": len(setup["hubs"]), "documents": setup["documents"],
        "changed_documents": later["documents"], "missing_changes": later["changes"],
        "missing_bytes": later["change_bytes"], "seconds": took, "api_up_seconds": t_api,
        "received_bytes": received, "sent_bytes": sent, "sync_messages": messages,
        "exchanged_vs_missing": (received + sent) / later["change_bytes"],
        "peak_rss_mb": vm_mb(p.pid),
        "view_lag_p50_ms": lag[0] * 1000, "view_lag_p99_ms": lag[1] * 1000,
        "bytes_by_kind": {k: v for k, v in by_kind.items() if v},
    }
finally:
    daemons.stop()
if "--json" in sys.argv:
    print(json.dumps(out))
else:
    print(f"reconnect after an outage, ×{out['scale']:g}, {out['changed_documents']} of {out['documents']} documents changed, "
          f"{out['hubs']} street hubs over libp2p: {out['seconds']:.2f} s from start ({out['api_up_seconds']:.2f} s to the API); "
          f"exchanged {out['received_bytes'] + out['sent_bytes']:.0f} B (received {out['received_bytes']:.0f}, sent {out['sent_bytes']:.0f}) "
          f"for {out['missing_bytes']} B of missing signed changes ({out['exchanged_vs_missing']:.2f}×); "
          f"{out['sync_messages']:.0f} sync messages; peak RSS {out['peak_rss_mb']:.0f} MB; "
          f"view lag (frame read → view updated) p50 {out['view_lag_p50_ms']:.1f} ms, p99 {out['view_lag_p99_ms']:.1f} ms; "
          f"bytes both ways by kind: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(out["bytes_by_kind"].items(), key=lambda kv: -kv[1])))
