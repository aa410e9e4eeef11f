#!/usr/bin/env python3
"""Partitions across real processes: five `gongjian run` daemons, each in
its own Linux network namespace, joined pairwise by veth links (a full mesh
of ten links); without root (or with --loopback), all on 127.0.0.1 with
each link a TCP relay in this script that a cut stops. For `--minutes`,
links are cut and restored at random (`ip link set ... down/up`, or the
relay paused) while every node writes through its API. Then
every link comes up, and the script measures the time until all nodes hold
identical heads for every document they share, every unit's view digest
is the same on the unit and on each of its ancestors, and every write that
was acknowledged is in the district's view.

With --revoke-restore, instead: all five write; the second community is
cut off from everyone and keeps writing while its street revokes its key
(the street's daemon stopped for `gongjian cert revoke`, then started
again); the first community, backed up live before, is stopped and
restored from that old backup (a new actor epoch) and comes back; then the
revoked community's links heal. Every node must end with the same heads
and view digests; every write of an honest node acknowledged at any time
(including those the restored node lost with its backup) must be in the
district's view; of the revoked community's writes exactly those the
street held when it revoked (the cut) are.

With --equivocate, instead: all five write; the first community is backed
up live, writes on, then is cut off, stopped, and its store replaced by
that copy file for file (what `gongjian restore` refuses to do: the same
actor, not a new epoch), so it signs again sequence numbers it signed
after the copy; it writes on alone, then its links heal. Every node must
end with the same heads and view digests, every other write and its writes
before the copy in the district's view, and each of its writes since the
copy on every node that may see it or on none (PROTOCOL.md §4 rule 4
rejects an actor's changes from a fork on, on both branches).

usage: partition.py GONGJIAN_BIN WORK_DIR [--minutes M] [--seed S] [--revoke-restore | --equivocate] [--loopback]
Prints one JSON line; exit 1 if the nodes do not converge within the bound
or a write is missing.
"""
import argparse, http.client, json, os, random, socket, subprocess, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("gj")
ap.add_argument("work")
ap.add_argument("--minutes", type=float, default=2.0)
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--bound", type=float, default=120.0, help="seconds allowed to converge")
ap.add_argument("--revoke-restore", action="store_true")
ap.add_argument("--equivocate", action="store_true")
ap.add_argument("--loopback", action="store_true",
                help="links as TCP relays on 127.0.0.1 even as root (the default without root)")
a = ap.parse_args()
rng = random.Random(a.seed)
tag = f"gj{os.getpid() % 10000}"

# (name, unit, kind, display name, parent index)
NODES = [
    ("district", "320106000000", "district", "南京市鼓楼区", None),
    ("street", "320106002000", "street", "宁海路街道", 0),
    ("c1", "320106002001", "community", "颐和路社区", 1),
    ("c2", "320106002002", "community", "北京西路社区", 1),
    ("hospital", "91350100M000100Y43", "resident", "江苏省人民医院", 2),
]
N = len(NODES)
PAIRS = [(i, j) for i in range(N) for j in range(i + 1, N)]


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Veth:
    """Each node in its own network namespace, a veth link per pair (cut
    with `ip link set down`: packets are dropped, connections hang until
    their keep-alives give up), and a management link to the host for the
    API that is never cut. Needs root."""
    name = "veth links between network namespaces"

    def ns(self, i):
        return f"{tag}n{i}"

    def dev(self, i, j):
        return f"{tag}v{i}{j}"

    def ip_of(self, i, j):
        """Node i's address on its link with j."""
        lo, hi = min(i, j), max(i, j)
        return f"10.{lo + 1}.{hi + 1}.{1 if i == lo else 2}"

    def api(self, i):
        return (f"10.99.{i + 1}.2", 4711)

    def listen(self, i):
        return "/ip4/0.0.0.0/tcp/4700"

    def bootstrap(self, i, j):
        """The address node i dials to reach node j."""
        return f"/ip4/{self.ip_of(j, i)}/tcp/4700"

    def command(self, i, argv):
        return ["ip", "netns", "exec", self.ns(i), *argv]

    def setup(self):
        for i in range(N):
            ns = self.ns(i)
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "dev", "lo", "up")
            sh("ip", "link", "add", f"{tag}m{i}", "type", "veth", "peer", "name", "mg", "netns", ns)
            sh("ip", "addr", "add", f"10.99.{i + 1}.1/24", "dev", f"{tag}m{i}")
            sh("ip", "link", "set", f"{tag}m{i}", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.api(i)[0]}/24", "dev", "mg")
            sh("ip", "-n", ns, "link", "set", "dev", "mg", "up")
        for i, j in PAIRS:
            sh("ip", "link", "add", self.dev(i, j), "netns", self.ns(i), "type", "veth",
               "peer", "name", self.dev(j, i), "netns", self.ns(j))
            for x, y in ((i, j), (j, i)):
                sh("ip", "-n", self.ns(x), "addr", "add", f"{self.ip_of(x, y)}/30", "dev", self.dev(x, y))
                sh("ip", "-n", self.ns(x), "link", "set", self.dev(x, y), "up")

    def teardown(self):
        for i in range(N):
            sh("ip", "netns", "del", self.ns(i), check=False)
            sh("ip", "link", "del", f"{tag}m{i}", check=False)

    def set_link(self, i, j, up):
        for x, y in ((i, j), (j, i)):
            sh("ip", "-n", self.ns(x), "link", "set", self.dev(x, y), "up" if up else "down")


class Loopback:
    """Without root: every node on 127.0.0.1, and every link a TCP relay
    in this script (node i dials node j only through relay (i, j): the
    daemons dial only the addresses they are configured with). A cut link
    stops forwarding in both directions without closing anything, as a
    link that goes down does: bytes wait, connections hang until the
    daemons' keep-alives give up, a dial waits for the link to come back
    or for its own timeout."""
    name = "TCP relays on loopback"

    def __init__(self):
        # The relays' sockets are bound now and kept: ports chosen by
        # binding and closing could repeat.
        self.servers = {}
        for i in range(N):
            for j in range(N):
                if i != j:
                    srv = socket.socket()
                    srv.bind(("127.0.0.1", 0))
                    srv.listen(64)
                    self.servers[(i, j)] = srv
        self.relay = {k: srv.getsockname()[1] for k, srv in self.servers.items()}
        taken = set(self.relay.values())
        self.ports = {}
        for i in range(N):  # (listen, api), distinct from each other and the relays'
            pair = []
            while len(pair) < 2:
                p = free_port()
                if p not in taken:
                    taken.add(p)
                    pair.append(p)
            self.ports[i] = tuple(pair)
        self.up = {pair: threading.Event() for pair in PAIRS}
        self.closing = threading.Event()

    def api(self, i):
        return ("127.0.0.1", self.ports[i][1])

    def listen(self, i):
        return f"/ip4/127.0.0.1/tcp/{self.ports[i][0]}"

    def bootstrap(self, i, j):
        return f"/ip4/127.0.0.1/tcp/{self.relay[(i, j)]}"

    def command(self, i, argv):
        return argv

    def link(self, i, j):
        return self.up[(min(i, j), max(i, j))]

    def setup(self):
        for ev in self.up.values():
            ev.set()
        for (i, j), srv in self.servers.items():
            threading.Thread(target=self.accept, args=(srv, i, j), daemon=True).start()

    def accept(self, srv, i, j):
        while not self.closing.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=self.connect, args=(c, i, j), daemon=True).start()

    def wait_up(self, link):
        while not link.wait(0.2):
            if self.closing.is_set():
                return False
        return True

    def connect(self, c, i, j):
        link = self.link(i, j)
        if not self.wait_up(link):
            return c.close()
        try:
            u = socket.create_connection(("127.0.0.1", self.ports[j][0]))
        except OSError:
            return c.close()
        for src, dst in ((c, u), (u, c)):
            threading.Thread(target=self.pump, args=(src, dst, link), daemon=True).start()

    def pump(self, src, dst, link):
        try:
            while True:
                data = src.recv(65536)
                if not data or not self.wait_up(link):
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def teardown(self):
        self.closing.set()
        for srv in self.servers.values():
            srv.close()

    def set_link(self, i, j, up):
        (self.link(i, j).set if up else self.link(i, j).clear)()


NET = None


def set_link(i, j, up):
    NET.set_link(i, j, up)


def gj(*args):
    r = subprocess.run([a.gj, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"gongjian {' '.join(args)}: {r.stderr}")
    return r.stdout


def setup_nodes():
    dirs = [os.path.join(a.work, n[0]) for n in NODES]
    root = None
    for i, (name, unit, kind, disp, parent) in enumerate(NODES):
        host, port = NET.api(i)
        args = ["init", "--data-dir", dirs[i], "--unit", unit, "--kind", kind, "--name", disp,
                "--listen", NET.listen(i), "--api", f"{host}:{port}"]
        for j in range(N):
            if j != i:
                args += ["--bootstrap", NET.bootstrap(i, j)]
        if parent is not None:
            args += ["--parent", NODES[parent][1], "--trust-root", root]
        gj(*args)
        if parent is None:
            root = json.loads(gj("id", "--data-dir", dirs[i]))["trust_root"]
            continue
        key = json.loads(gj("id", "--data-dir", dirs[i]))["public_key"]
        cert = dirs[i] + ".cert"
        gj("cert", "issue", "--data-dir", dirs[parent], "--unit", unit, "--kind", kind,
           "--name", disp, "--key", key, "--out", cert)
        gj("cert", "install", "--data-dir", dirs[i], cert)
    return dirs


class Node:
    def __init__(self, i, d):
        self.i, self.dir = i, d
        self.token = open(os.path.join(d, "api.token")).read().strip()
        self.log = open(d + ".log", "a")
        self.unit = NODES[i][1]
        self.paused = threading.Event()
        self.start()

    def start(self):
        self.p = subprocess.Popen(NET.command(self.i, [a.gj, "run", "--data-dir", self.dir]),
                                  stdout=subprocess.PIPE, stderr=self.log)
        json.loads(self.p.stdout.readline())

    def stop(self):
        self.p.terminate()
        self.p.wait(timeout=30)

    def req(self, method, path, body=None):
        c = http.client.HTTPConnection(*NET.api(self.i), timeout=30)
        h = {"Authorization": f"Bearer {self.token}"}
        if body is not None:
            h["Content-Type"] = "application/json"
            body = json.dumps(body, ensure_ascii=False).encode()
        c.request(method, path, body, h)
        r = c.getresponse()
        return r.status, json.loads(r.read() or b"null")


PHASE = ["before"]


def writer(node, stop, acked, lock):
    # Its own generator: the link schedule (`rng`) stays the seed's alone,
    # whatever the threads' interleaving.
    wrng = random.Random(a.seed * 1_000_003 + node.i)
    n = 0
    while not stop.is_set():
        if node.paused.is_set():
            time.sleep(0.1)
            continue
        phase = PHASE[0]
        title = f"{NODES[node.i][3]}分区测试第{n}条"
        try:
            s, v = node.req("POST", "/v1/items", {"list": wrng.choice(["need", "resource", "project"]),
                                                  "title": title, "category": "助老"})
        except OSError:
            s = 0
        if s == 201:
            with lock:
                acked.append((v["id"], title, node.i, phase))
            n += 1
        time.sleep(wrng.uniform(0.05, 0.4))


def ancestors(i):
    out, p = [], NODES[i][4]
    while p is not None:
        out.append(p)
        p = NODES[p][4]
    return out


def may_see(i, unit):
    """Whether node i may hold a document of `unit` (PROTOCOL.md: its own,
    an ancestor's or a descendant's)."""
    j = next((k for k, n in enumerate(NODES) if n[1] == unit), None)
    return j is not None and (j == i or j in ancestors(i) or i in ancestors(j))


def converged(nodes, acked, cut_off=()):
    """`cut_off`: nodes whose key is revoked. Every peer refuses them, so
    they hear nothing new of others' documents; of them only their own
    documents must agree (they learn of their revocation from the hellos
    that refuse them, and drop what its cut leaves out)."""
    listed = [n.req("GET", "/v1/docs")[1]["docs"] for n in nodes]
    held = [{d["id"]: d["heads"] for d in docs} for docs in listed]
    unit_of = {d["id"]: d["unit"] for d in listed[0]}
    for i in cut_off:
        # By the unit it lists itself: a document only it holds counts too.
        own = {d["id"] for d in listed[i] if d["unit"] == NODES[i][1]}
        held[i] = {d: hs for d, hs in held[i].items() if d in own}
        listed[i] = [d for d in listed[i] if d["id"] in own]
    union = set().union(*held)
    if set(held[0]) != union:
        return False, "the district lacks documents"
    # Every node holds every document it may see (not only equal heads on
    # those it happens to hold).
    for i, h in enumerate(held):
        want = {d["id"] for d in listed[0]
                if may_see(i, d["unit"]) or any(may_see(i, p) for p in d.get("parties", []))}
        if i in cut_off:
            want = {d for d in want if unit_of[d] == NODES[i][1]}
        if not want <= set(h):
            return False, f"{NODES[i][0]} lacks {len(want - set(h))} documents it may see"
    for i, h in enumerate(held[1:], 1):
        differ = [d for d, hs in h.items() if held[0][d] != hs]
        if differ:
            return False, f"heads differ: {NODES[i][0]} and {NODES[0][0]} on {len(differ)} documents"
    for i, n in enumerate(nodes):
        mine = n.req("GET", f"/v1/view/digest?scope={n.unit}")[1]
        for anc in ancestors(i):
            theirs = nodes[anc].req("GET", f"/v1/view/digest?scope={n.unit}")[1]
            if theirs != mine:
                return False, f"digest of {NODES[i][0]} differs at {NODES[anc][0]}"
    for id_, title, *_ in acked:
        s, v = nodes[0].req("GET", "/v1/view/items/" + id_)
        if s != 200 or v.get("title") != title:
            return False, f"{id_} not in the district's view"
    return True, "ok"


def rss_kb(pid):
    # The daemon is the child of `ip netns exec` (which execs it: same pid).
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def await_converged(nodes, acked, bound, cut_off=()):
    t0, why = time.monotonic(), ""
    while time.monotonic() - t0 < bound:
        try:
            ok, why = converged(nodes, acked, cut_off)
        except OSError as e:
            ok, why = False, str(e)
        if ok:
            return round(time.monotonic() - t0, 1), why
        time.sleep(0.5)
    return None, why


def isolate(nodes, i, cut):
    """Cuts node i's links to every other node (or restores them)."""
    for j in range(N):
        if j != i:
            set_link(i, j, not cut)


def heal_and_finish(nodes, i, stop, ts):
    """Node i's links heal; everyone writes a little more, then stops."""
    time.sleep(a.minutes * 60 / 8)
    isolate(nodes, i, False)
    time.sleep(a.minutes * 60 / 4)
    stop.set()
    for t in ts:
        t.join()


def revoke_restore(nodes, dirs):
    """The revocation and old-backup scenario (see the module's doc)."""
    DIST, STREET, C1, C2 = 0, 1, 2, 3
    stop, lock, acked = threading.Event(), threading.Lock(), []
    ts = [threading.Thread(target=writer, args=(n, stop, acked, lock)) for n in nodes]
    for t in ts:
        t.start()
    steps = {}
    time.sleep(a.minutes * 60 / 4)
    # A live backup of the first community; it goes on writing after it.
    backup = os.path.join(a.work, "c1-backup")
    s, v = nodes[C1].req("POST", "/v1/backup", {"out": backup})
    assert s == 200 or s == 201, (s, v)
    steps["backup_writes_before"] = sum(1 for x in acked if x[2] == C1)
    time.sleep(a.minutes * 60 / 4)
    # The second community pauses, everything it wrote reaches the others,
    # then it is cut off and writes on alone.
    nodes[C2].paused.set()
    honest = lambda: [x for x in acked if x[2] != C2 or x[3] == "before"]
    waited, why = await_converged(nodes, honest(), a.bound)
    if waited is None:
        return {"converged": False, "why": f"before the partition: {why}"}
    PHASE[0] = "partition"
    isolate(nodes, C2, True)
    nodes[C2].paused.clear()
    time.sleep(a.minutes * 60 / 8)
    # Its street revokes its key (the daemon stopped for the CLI).
    nodes[STREET].stop()
    gj("cert", "revoke", "--data-dir", dirs[STREET], "--unit", NODES[C2][1], "--reason", "密钥泄露")
    nodes[STREET].start()
    # The first community is restored from its old backup and comes back.
    nodes[C1].stop()
    steps["c1_writes_lost_with_the_backup"] = sum(1 for x in acked if x[2] == C1) - steps.pop("backup_writes_before")
    gj("restore", "--data-dir", dirs[C1], "--from", backup)
    nodes[C1].start()
    # The revoked community's links heal.
    heal_and_finish(nodes, C2, stop, ts)
    took, why = await_converged(nodes, honest(), a.bound, cut_off=(C2,))
    ok = took is not None
    cut_out = [x for x in acked if x[2] == C2 and x[3] == "partition"]
    leaked = []
    if ok:
        for id_, title, *_ in cut_out:
            for n in nodes:
                s, v = n.req("GET", "/v1/view/items/" + id_)
                if s == 200:
                    leaked.append((NODES[n.i][0], id_))
        if leaked:
            ok, why = False, f"{len(leaked)} writes of the revoked key past its cut are visible"
    return {
        "scenario": "revoke-restore", "converged": ok, "converge_s": took, "why": why,
        "writes_acknowledged": len(acked), "honest_writes_checked": len(honest()),
        "revoked_writes_before_the_cut": sum(1 for x in acked if x[2] == C2 and x[3] == "before"),
        "revoked_writes_past_the_cut": len(cut_out), "past_the_cut_visible": len(leaked),
        **steps,
    }


def equivocate(nodes, dirs):
    """The equivocation scenario (see the module's doc)."""
    import shutil
    C1 = 2
    stop, lock, acked = threading.Event(), threading.Lock(), []
    ts = [threading.Thread(target=writer, args=(n, stop, acked, lock)) for n in nodes]
    for t in ts:
        t.start()
    time.sleep(a.minutes * 60 / 4)
    backup = os.path.join(a.work, "c1-copy")
    s, v = nodes[C1].req("POST", "/v1/backup", {"out": backup})
    assert s == 200 or s == 201, (s, v)
    PHASE[0] = "after_backup"
    time.sleep(a.minutes * 60 / 4)
    # Cut off, stopped, and its store replaced by the copy, files and all:
    # the same actor, which signs again the sequence numbers it signed
    # after the copy was taken.
    nodes[C1].paused.set()
    isolate(nodes, C1, True)
    nodes[C1].stop()
    db = os.path.join(dirs[C1], "db")
    shutil.rmtree(db)
    shutil.copytree(backup, db)
    PHASE[0] = "forked"
    nodes[C1].start()
    nodes[C1].paused.clear()
    heal_and_finish(nodes, C1, stop, ts)
    # Every other node's writes and the first community's before the copy
    # must be in; of its writes since, each is either in on every node or
    # on none (rule 4 rejects an actor's changes from the fork on, on both
    # branches), and heads and digests agree everywhere.
    honest = [x for x in acked if x[2] != C1 or x[3] == "before"]
    took, why = await_converged(nodes, honest, a.bound)
    ok = took is not None
    forked = [x for x in acked if x[2] == C1 and x[3] != "before"]
    seen_on = {}
    if ok:
        for id_, *_ in forked:
            seen_on[id_] = sum(1 for n in nodes if n.req("GET", "/v1/view/items/" + id_)[0] == 200)
        # The nodes that may see the community's items.
        want = sum(1 for i in range(N) if may_see(i, NODES[C1][1]))
        split = [i for i, k in seen_on.items() if k not in (0, want)]
        rejected = sum(1 for k in seen_on.values() if k == 0)
        if split:
            ok, why = False, f"{len(split)} writes of the forked actor are on some nodes only"
        elif rejected == 0:
            ok, why = False, "no write of the forked actor was rejected: nothing equivocated"
    return {
        "scenario": "equivocate", "converged": ok, "converge_s": took, "why": why,
        "writes_acknowledged": len(acked), "honest_writes_checked": len(honest),
        "forked_actor_writes_after_the_copy": len(forked),
        "of_them_rejected_everywhere": sum(1 for k in seen_on.values() if k == 0),
        "of_them_kept_everywhere": sum(1 for k in seen_on.values() if k > 0),
    }


def main():
    global NET
    if not a.loopback and os.geteuid() == 0 \
            and sh("ip", "netns", "add", f"{tag}probe", check=False).returncode == 0:
        sh("ip", "netns", "del", f"{tag}probe")
        NET = Veth()
    else:
        NET = Loopback()
    print(f"links: {NET.name}", file=sys.stderr)
    NET.setup()
    nodes = []
    try:
        dirs = setup_nodes()
        nodes = [Node(i, d) for i, d in enumerate(dirs)]
        if a.revoke_restore or a.equivocate:
            result = revoke_restore(nodes, dirs) if a.revoke_restore else equivocate(nodes, dirs)
            result.update({"seed": a.seed, "minutes": a.minutes, "links": NET.name,
                           "peak_rss_mb": round(max(rss_kb(n.p.pid) for n in nodes) / 1024, 1)})
            print(json.dumps(result, ensure_ascii=False))
            return 0 if result["converged"] else 1
        stop, lock, acked = threading.Event(), threading.Lock(), []
        ts = [threading.Thread(target=writer, args=(n, stop, acked, lock)) for n in nodes]
        for t in ts:
            t.start()
        down, flips = set(), 0
        t_end = time.monotonic() + a.minutes * 60
        while time.monotonic() < t_end:
            time.sleep(rng.uniform(0.5, 3.0))
            pair = rng.choice(PAIRS)
            up = pair in down
            set_link(*pair, up)
            (down.discard if up else down.add)(pair)
            flips += 1
        stop.set()
        for t in ts:
            t.join()
        for pair in list(down):
            set_link(*pair, True)
        healed = time.monotonic()
        why = ""
        while time.monotonic() - healed < a.bound:
            try:
                ok, why = converged(nodes, acked)
            except OSError as e:
                ok, why = False, str(e)
            if ok:
                break
            time.sleep(0.5)
        else:
            ok = False
        result = {
            "nodes": N, "links": f"{len(PAIRS)} {NET.name}", "seed": a.seed, "minutes": a.minutes,
            "link_flips": flips, "writes_acknowledged": len(acked), "converged": ok,
            "converge_s": round(time.monotonic() - healed, 1) if ok else None, "why": why,
            "peak_rss_mb": round(max(rss_kb(n.p.pid) for n in nodes) / 1024, 1),
        }
        print(json.dumps(result, ensure_ascii=False))
        return 0 if ok else 1
    finally:
        for n in nodes:
            n.p.terminate()
        for n in nodes:
            try:
                n.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                n.p.kill()
        NET.teardown()


sys.exit(main())
