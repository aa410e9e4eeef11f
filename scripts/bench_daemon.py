#!/usr/bin/env python3
"""The daemon's figures for BENCHMARKS.md: a generated district on disk,
`gongjian run` timed from start to /ready, its RSS at rest, and the p50/p99
of the common view queries over HTTP (one keep-alive connection, the
token's auth, JSON as the API sends it).

usage: bench_daemon.py GONGJIAN_BIN DATA_DIR [RUNS]
"""
import http.client, json, os, statistics, subprocess, sys, time, urllib.parse

gj, data = sys.argv[1], sys.argv[2]
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 200
token = open(os.path.join(data, "api.token")).read().strip()

def rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0

t0 = time.monotonic()
p = subprocess.Popen([gj, "run", "--data-dir", data], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
line = json.loads(p.stdout.readline())
host, port = line["api"].rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port))
while True:
    try:
        conn.request("GET", "/ready")
        r = conn.getresponse(); r.read()
        if r.status == 200:
            break
    except OSError:
        conn = http.client.HTTPConnection(host, int(port))
    time.sleep(0.02)
ready_s = time.monotonic() - t0
time.sleep(5)
rss_rest = rss_mb(p.pid)

def get(path):
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse(); body = r.read()
    assert r.status == 200, (path, r.status, body[:200])
    return body

street = json.loads(get("/v1/view/units"))["units"]
street = next(u["unit"] for u in street if u["kind"] == "street")
queries = [
    "/v1/view/items?list=project&status=open",
    "/v1/view/items?q=" + urllib.parse.quote("助餐"),
    "/v1/view/items?list=need&street=" + street,
    "/v1/view/stats?by=street",
    "/v1/view/grids",
    "/v1/view/agreements?expiring_within_days=30",
]
out = {"ready_s": ready_s, "rss_at_rest_mb": rss_rest, "queries": []}
for q in queries:
    for _ in range(5):
        get(q)
    times = []
    for _ in range(runs):
        t = time.perf_counter(); body = get(q); times.append((time.perf_counter() - t) * 1000)
    times.sort()
    out["queries"].append({"query": q, "p50_ms": times[len(times) // 2],
                           "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))], "bytes": len(body)})
out["rss_after_queries_mb"] = rss_mb(p.pid)
p.terminate(); p.wait()
if "--json" in sys.argv:
    print(json.dumps(out))
else:
    print(f"daemon: start → ready {ready_s:.2f} s; RSS at rest {rss_rest:.0f} MB, after the queries {out['rss_after_queries_mb']:.0f} MB")
    for q in out["queries"]:
        print(f"  HTTP {urllib.parse.unquote(q['query'])}: p50 {q['p50_ms']:.2f} ms, p99 {q['p99_ms']:.2f} ms ({q['bytes']} bytes)")
