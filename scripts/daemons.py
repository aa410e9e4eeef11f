"""Helpers shared by the scripts that drive real `gongjian run` daemons
(bench_cold_sync.py, bench_reconnect.py, hostile.py)."""
import http.client, json, os, subprocess


class Daemons:
    """The daemons a script started; `stop()` ends them all."""

    def __init__(self, gj):
        self.gj, self.procs = gj, []

    def start(self, data_dir, stderr=subprocess.DEVNULL, env=None):
        """Starts `gongjian run` (`env`: variables set for it besides ours);
        its process and the JSON line it prints."""
        p = subprocess.Popen([self.gj, "run", "--data-dir", data_dir], stdout=subprocess.PIPE,
                             stderr=stderr, text=True, env={**os.environ, **(env or {})})
        self.procs.append(p)
        return p, json.loads(p.stdout.readline())

    def stop(self):
        for q in self.procs:
            q.terminate()
        for q in self.procs:
            q.wait()


def get(api, token, path, timeout=120):
    """GET `path` from the API at HOST:PORT: (status, body bytes)."""
    host, port = api.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    c.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse()
    return r.status, r.read()


def vm_mb(pid, key="VmHWM:"):
    """A /proc/PID/status figure (VmHWM: peak RSS, VmRSS: now) in MB."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def metric(text, name):
    """The sum of a Prometheus metric's samples in `text`."""
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name))
