#!/usr/bin/env python3
"""Crash durability: writes through the HTTP API against a real `gongjian
run`, SIGKILL at a random moment, many cycles. After every kill the store
must verify clean (`gongjian verify`: checksums, signatures, index, heads
rebuilt from the changes) and, once restarted, every write answered 201
must be there with its title.

usage: crash.py GONGJIAN_BIN WORK_DIR [--cycles N] [--seed S] [--writers W]
Prints one JSON line with the result; exit 1 if anything was lost, a
write was refused, or fewer writes than cycles were acknowledged.
"""
import argparse, http.client, json, os, random, signal, subprocess, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("gj")
ap.add_argument("work")
ap.add_argument("--cycles", type=int, default=50)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--writers", type=int, default=4)
a = ap.parse_args()
rng = random.Random(a.seed)
data = os.path.join(a.work, "node")
subprocess.run(
    [a.gj, "init", "--data-dir", data, "--unit", "320106000000", "--kind", "district",
     "--name", "鼓楼区", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"],
    check=True, stdout=subprocess.DEVNULL)
token = open(os.path.join(data, "api.token")).read().strip()
auth = {"Authorization": f"Bearer {token}"}


def start():
    p = subprocess.Popen([a.gj, "run", "--data-dir", data], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    line = json.loads(p.stdout.readline())
    host, port = line["api"].rsplit(":", 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection(host, int(port), timeout=10)
            c.request("GET", "/ready")
            r = c.getresponse(); r.read()
            if r.status == 200:
                return p, host, int(port)
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit("the daemon did not get ready in 60 s")


def writer(host, port, w, cycle, acked, lock):
    # Its own generator: the kill schedule (`rng`) stays the seed's alone,
    # whatever the threads' interleaving.
    wrng = random.Random(a.seed * 1_000_003 + cycle * 101 + w)
    c = http.client.HTTPConnection(host, port, timeout=10)
    n = 0
    while True:
        title = f"断电测试 第{cycle}轮 写入者{w} 第{n}条"
        body = json.dumps({"list": wrng.choice(["need", "resource", "problem", "wish"]),
                           "title": title, "category": "助老"}, ensure_ascii=False)
        try:
            c.request("POST", "/v1/items", body.encode(), {**auth, "Content-Type": "application/json"})
            r = c.getresponse(); v = r.read()
        except (OSError, http.client.HTTPException):
            return  # killed
        if r.status != 201:
            # Not a kill: the daemon answered, and refused. A failure.
            with lock:
                refused.append((r.status, v[:300].decode("utf-8", "replace")))
            return
        with lock:
            acked.append((json.loads(v)["id"], title))
        n += 1


def check(host, port, items):
    c = http.client.HTTPConnection(host, port, timeout=30)
    lost = []
    for id_, title in items:
        c.request("GET", "/v1/view/items/" + id_, headers=auth)
        r = c.getresponse(); v = r.read()
        if r.status != 200 or json.loads(v).get("title") != title:
            lost.append(id_)
    return lost


t0 = time.monotonic()
acked, lost, kills_mid_write, verify_s = [], [], 0, []
# Writes the live daemon answered with anything but 201.
refused = []
for cycle in range(a.cycles):
    p, host, port = start()
    # Everything acknowledged so far is checked every 10 cycles and at the
    # end; what the last kill put at risk, after every restart.
    recent = acked[-2000:] if cycle % 10 else acked
    lost += check(host, port, recent)
    got, lock = [], threading.Lock()
    ts = [threading.Thread(target=writer, args=(host, port, w, cycle, got, lock))
          for w in range(a.writers)]
    for t in ts:
        t.start()
    time.sleep(rng.uniform(0.05, 1.5))
    inflight = any(t.is_alive() for t in ts)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    for t in ts:
        t.join()
    kills_mid_write += inflight
    acked += got
    v0 = time.monotonic()
    r = subprocess.run([a.gj, "verify", "--data-dir", data], capture_output=True, text=True)
    verify_s.append(time.monotonic() - v0)
    if r.returncode != 0:
        print(json.dumps({"cycle": cycle, "verify": r.returncode, "stderr": r.stderr[-2000:],
                          "report": r.stdout[-4000:]}, ensure_ascii=False))
        sys.exit(1)
p, host, port = start()
lost += check(host, port, acked)
p.send_signal(signal.SIGTERM)
p.wait()
result = {
    "cycles": a.cycles, "seed": a.seed, "writers": a.writers,
    "writes_acknowledged": len(acked), "writes_found": len(acked) - len(set(lost)),
    "lost": sorted(set(lost))[:20], "kills_with_writes_in_flight": kills_mid_write,
    "verify_clean_after_every_kill": True,
    "verify_s_max": round(max(verify_s), 2), "seconds": round(time.monotonic() - t0, 1),
    "writes_refused": len(refused), "refused": refused[:5],
}
print(json.dumps(result, ensure_ascii=False))
# Nothing lost, nothing refused, and writes made (at least one a cycle on
# average: a daemon that acknowledged nothing would lose nothing either).
sys.exit(1 if lost or refused or len(acked) < a.cycles else 0)
