"""Helpers of the fleet-host test (test_fleet.py): a Django app under gunicorn in
a cgroup v2 of its own, whose kernel-counted CPU (cpu.stat usage_usec, which
includes exited processes) is the truth the agent's windows must add up to.

  Cgroup(name)              a fresh cgroup v2 (under the cgroup2 mount);
                            .usage_ns(), .procs(), .kill_all(), .remove()
  UsagePoller(cgroup)       a thread reading usage_usec every few ms with
                            CLOCK_REALTIME timestamps; .at(unix_ns) interpolates,
                            .between(t0, t1) is the CPU of that span
  FleetApp(tmpdir, cgroup, port, service, commit, ...)
                            gunicorn (sync workers, --reuse-port on a shared
                            port, --max-requests) whose master enters the
                            cgroup before it forks; .hup(), .kill9_worker(),
                            .terminate()
  Load(urls, ...)           wrk against the app in back-to-back runs until
                            .stop(); errors of a rolling restart tolerated
  StatsRecorder(apps)       snapshots of the workers' own truth over time;
                            .truth(commit, endpoint, t0, t1)
  burst(cgroup, n, env)     n short-lived Python processes inside the cgroup
  agent_windows(db, service)  the agent's closed windows from its SQLite
                            history: [(start_ns, end_ns, cpu_ns of service,
                            cpu_ns without service)]
  AgentMonitor(pid)         the agent's own CPU (schedstat) and RSS over time

Everything started here is killed by the owning fixture, also on failure.
"""
import bisect
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time

import pytest

from apputil import (APP_PYTHON, APPS_DIR, GUNICORN, GunicornApp, Wrk, app_env, http_get,
                     parse_wrk)

CGROUP_PREFIX = "dynoprof-fleet-"


def cgroup2_root():
    """The cgroup v2 mount: /sys/fs/cgroup on a unified host, the `unified`
    mount of a hybrid one (systemd's cgroup v1 + v2 layout)."""
    mounts = []
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if len(fields) >= 3 and fields[2] == "cgroup2":
                mounts.append(fields[1])
    if "/sys/fs/cgroup" in mounts:
        return "/sys/fs/cgroup"
    if not mounts:
        pytest.fail("no cgroup v2 mounted (the test needs cpu.stat of a cgroup of its own)")
    return mounts[0]


class Cgroup:
    """A cgroup v2 made for one test; remove() kills what is left in it."""

    def __init__(self, name):
        self.path = os.path.join(cgroup2_root(), CGROUP_PREFIX + name)
        os.mkdir(self.path)
        self.procs_file = os.path.join(self.path, "cgroup.procs")
        if not os.path.exists(os.path.join(self.path, "cpu.stat")):
            self.remove()
            pytest.fail("%s has no cpu.stat (kernel too old for cgroup v2 cpu.stat)" % self.path)

    def usage_ns(self):
        """usage_usec of cpu.stat, in ns (it counts exited processes too)."""
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
        raise AssertionError("no usage_usec in %s/cpu.stat" % self.path)

    def procs(self):
        try:
            with open(self.procs_file) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def wait_empty(self, timeout):
        deadline = time.monotonic() + timeout
        while self.procs() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.procs()

    def kill_all(self):
        """SIGKILLs every process in the cgroup (all of them the test's own)."""
        kill_file = os.path.join(self.path, "cgroup.kill")
        if os.path.exists(kill_file):
            with open(kill_file, "w") as f:
                f.write("1")
        for _ in range(100):
            pids = self.procs()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def remove(self):
        if not os.path.isdir(self.path):
            return
        self.kill_all()
        for _ in range(100):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)  # exiting tasks still leaving it
        os.rmdir(self.path)


def remove_stale_cgroups(min_age_s=600):
    """Cgroups of earlier runs that died without cleaning up (empty ones only,
    made over min_age_s ago: a test running beside this one in another
    checkout makes its cgroups empty, then fills them)."""
    root = cgroup2_root()
    for name in os.listdir(root):
        if name.startswith(CGROUP_PREFIX):
            path = os.path.join(root, name)
            try:
                if time.time() - os.stat(path).st_mtime < min_age_s:
                    continue
                os.rmdir(path)
            except OSError:
                pass


class UsagePoller:
    """Reads the cgroup's usage every `interval` s with CLOCK_REALTIME stamps
    (the middle of each read), so the usage at any instant is interpolated
    between two reads a few ms apart."""

    def __init__(self, cgroup, interval=0.01):
        self.cgroup = cgroup
        self.interval = interval
        self.times = []   # unix ns, increasing
        self.values = []  # usage ns
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.poll()
        self._thread.start()
        return self

    def poll(self):
        t0 = time.time_ns()
        try:
            value = self.cgroup.usage_ns()
        except OSError:
            return
        t1 = time.time_ns()
        with self._lock:
            if not self.times or (t0 + t1) // 2 > self.times[-1]:
                self.times.append((t0 + t1) // 2)
                self.values.append(value)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.poll()

    def stop(self):
        self._stop.set()
        self._thread.join(5)
        self.poll()

    def at(self, unix_ns):
        """The cgroup's usage (ns) at unix_ns, linearly interpolated."""
        with self._lock:
            times, values = self.times, self.values
            i = bisect.bisect_left(times, unix_ns)
            if i == 0:
                return values[0] if unix_ns >= times[0] - 1 else 0
            if i == len(times):
                return values[-1]
            t0, t1, v0, v1 = times[i - 1], times[i], values[i - 1], values[i]
        return v0 + (v1 - v0) * (unix_ns - t0) / (t1 - t0)

    def between(self, start_ns, end_ns):
        return self.at(end_ns) - self.at(start_ns)


class FleetApp(GunicornApp):
    """The Django test app under gunicorn with sync workers, its master moved
    into `cgroup` before it execs (so every worker it forks is in it), bound
    with SO_REUSEPORT to a port it may share with the app it replaces (a
    rolling deploy), recycling workers after max_requests (+ jitter)."""

    def __init__(self, tmpdir, cgroup, port, service, commit, extra=None, workers=2,
                 max_requests=300, max_requests_jitter=100):
        env = {"DYNOPROF_SERVICE": service, "DYNOPROF_COMMIT": commit}
        if extra:
            env["DJANGOAPP_EXTRA"] = ",".join("%s=%s" % kv for kv in extra.items())
        super().__init__(tmpdir, workers=workers, middleware=True, env=env, name=commit)
        self.cgroup = cgroup
        self.port = port
        self.commit = commit
        self.max_requests = max_requests
        self.max_requests_jitter = max_requests_jitter

    def start(self):
        cmd = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', self.cgroup.procs_file,
               GUNICORN, "--bind", "127.0.0.1:%d" % self.port, "--reuse-port",
               "--chdir", APPS_DIR, "--workers", str(self.workers), "--worker-class", "sync",
               "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning"]
        if self.max_requests:
            cmd += ["--max-requests", str(self.max_requests),
                    "--max-requests-jitter", str(self.max_requests_jitter)]
        cmd.append("djangoapp.wsgi:application")
        self._log = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT)
        if not self._wait_own_workers():
            self.stop()
            pytest.fail("gunicorn %s did not become ready:\n%s" % (self.commit, self.log()))
        return self

    def _wait_own_workers(self, timeout=60):
        """Ready once one of this master's own workers answered (another app may
        share the port): workers import the app when they boot."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            workers = self.worker_pids()
            if len(workers) == self.workers:
                status, body = http_get(self.url("stats"), timeout=5)
                if status == 200 and json.loads(body)["pid"] in workers:
                    return True
            time.sleep(0.05)
        return False

    def hup(self):
        """A gunicorn reload: new workers, the old ones stopped gracefully."""
        self.proc.send_signal(signal.SIGHUP)

    def kill9_worker(self):
        """SIGKILLs one worker (the master forks a replacement); its pid."""
        workers = self.worker_pids()
        assert workers, "gunicorn %s has no worker to kill" % self.commit
        os.kill(workers[0], signal.SIGKILL)
        return workers[0]

    def terminate(self, timeout=30):
        """Graceful stop (SIGTERM: workers finish their request); waits."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("gunicorn %s ignored SIGTERM for %ds" % (self.commit, timeout))
        if self._log:
            self._log.close()
            self._log = None


class Load:
    """wrk against each URL (connections each: a number, or a dict URL ->
    number) in back-to-back runs of `chunk` seconds until stop(): bounded
    runs, stoppable at any time. Socket errors are expected around a rolling
    restart; HTTP errors are not."""

    def __init__(self, urls, connections=2, chunk=4):
        self.urls = urls
        self.connections = connections
        self.chunk = chunk
        self.requests = 0
        self.errors = 0
        self.non2xx = 0
        self.failures = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(u,), daemon=True)
                         for u in urls]
        self._runs = []

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def _run(self, url):
        while not self._stop.is_set():
            conns = (self.connections[url] if isinstance(self.connections, dict)
                     else self.connections)
            run = Wrk(url, self.chunk, threads=1, connections=conns)
            self._runs.append(run)
            out, _ = run.proc.communicate(timeout=self.chunk + 60)
            if run.proc.returncode != 0:
                self.failures.append(out[-500:])
                time.sleep(0.5)
                continue
            r = parse_wrk(out)
            self.requests += r.requests
            self.errors += r.errors
            self.non2xx += r.non2xx

    def stop(self):
        self._stop.set()
        for run in self._runs:
            if run.proc.poll() is None:
                run.proc.send_signal(signal.SIGINT)
        for t in self._threads:
            t.join(30)
        for run in self._runs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()


class StatsRecorder:
    """Snapshots (every `interval` s, CLOCK_REALTIME) of each app's workers'
    own truth: per endpoint, requests and thread CPU (time.thread_time), summed
    over every worker the app ever had (their files outlive them)."""

    def __init__(self, interval=0.5):
        self.interval = interval
        self.apps = []
        self.snaps = {}  # commit -> [(unix_ns, {endpoint: {"requests", "cpu_s"}})]
        self._last = {}  # (commit, pid) -> that worker's figures last read
        self._workers = {}  # commit -> worker pids last seen
        self.events = []  # (unix ns, "worker PID of COMMIT gone") for the tables
        self._gone = {}  # commit -> [figures of earlier workers whose pid was reused]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, app):
        self.apps.append(app)
        self.snaps.setdefault(app.commit, [])

    def start(self):
        self._thread.start()
        return self

    def snap(self):
        for app in list(self.apps):
            workers = set(app.worker_pids())
            for pid in sorted(self._workers.get(app.commit, set()) - workers):
                self.events.append((time.time_ns(), "worker %d gone" % pid))
            self._workers[app.commit] = workers
            total = {}
            for pid, endpoints in app.stats_per_pid().items():
                # A pid reused by a later worker starts its file over: what
                # the earlier one counted is kept aside.
                key = (app.commit, pid)
                last = self._last.get(key)
                if last and any(endpoints.get(n, {}).get("requests", 0) < v["requests"]
                                for n, v in last.items()):
                    self._gone.setdefault(app.commit, []).append(last)
                self._last[key] = endpoints
            for endpoints in list(self._gone.get(app.commit, [])) + [
                    v for (c, _), v in self._last.items() if c == app.commit]:
                for name, entry in endpoints.items():
                    acc = total.setdefault(name, {"requests": 0, "cpu_s": 0.0})
                    acc["requests"] += entry["requests"]
                    acc["cpu_s"] += entry["cpu_s"]
            self.snaps[app.commit].append((time.time_ns(), total))

    def _run(self):
        while not self._stop.wait(self.interval):
            self.snap()

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self.snap()

    def _at(self, commit, unix_ns, endpoint):
        entry = {"requests": 0, "cpu_s": 0.0}
        for t, total in self.snaps.get(commit, []):
            if t > unix_ns:
                break
            entry = total.get(endpoint, entry)
        return entry

    def truth(self, commit, endpoint, start_ns, end_ns):
        """(requests, cpu_s) of commit's endpoint between two instants."""
        a, b = self._at(commit, start_ns, endpoint), self._at(commit, end_ns, endpoint)
        return b["requests"] - a["requests"], b["cpu_s"] - a["cpu_s"]


BURST_DRIVER = r"""
import subprocess, sys
n, parallel = int(sys.argv[1]), int(sys.argv[2])
code = "acc = 0\nfor i in range(50000):\n    acc = (acc * 31 + i) & 0xFFFFFFFF\n"
running, ok = [], 0
for _ in range(n):
    while len(running) >= parallel:
        ok += running.pop(0).wait() == 0
    running.append(subprocess.Popen([sys.executable, "-c", code]))
for p in running:
    ok += p.wait() == 0
print(ok, flush=True)
"""


def burst(cgroup, n, env, parallel=2, timeout=120):
    """n short-lived Python processes (start-up plus ~3 ms of loop each), at
    most `parallel` at once, all inside the cgroup (their driver enters it
    before it execs). Returns how many exited 0."""
    cmd = ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup.procs_file,
           APP_PYTHON, "-c", BURST_DRIVER, str(n), str(parallel)]
    proc = subprocess.Popen(cmd, env=app_env(env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the burst of %d processes took over %ds" % (n, timeout))
    assert proc.returncode == 0, "burst driver failed: %s" % err[-2000:]
    return int(out.split()[0])


def agent_windows(database, service):
    """The agent's closed windows, oldest first: [(start_ns, end_ns, cpu_ns of
    the service, cpu_ns without a service)] read from its SQLite history (the
    HTTP API does not say where a window starts and ends to the ns)."""
    db = sqlite3.connect("file:%s?mode=ro" % database, uri=True, timeout=30)
    try:
        rows = db.execute(
            "SELECT w.start_ns, w.end_ns,"
            " COALESCE(SUM(CASE WHEN t.service = ?1 THEN g.cpu_ns END), 0),"
            " COALESCE(SUM(CASE WHEN t.service IN ('', '-') THEN g.cpu_ns END), 0)"
            " FROM windows w LEFT JOIN groups g ON g.window_id = w.id"
            " LEFT JOIN tags t ON t.id = g.tag_id"
            " GROUP BY w.id ORDER BY w.start_ns", (service,)).fetchall()
    finally:
        db.close()
    return rows


class AgentMonitor:
    """The agent's own CPU (the kernel's utime + stime of the whole process,
    threads that ended included; /proc/PID/schedstat would be the main
    thread's only) and RSS, sampled every `interval` s: [(monotonic s, cpu
    ns, rss bytes)]."""

    def __init__(self, pid, interval=2.0):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def read(self):
        try:
            with open("/proc/%d/stat" % self.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu_ns = (int(fields[11]) + int(fields[12])) * 10 ** 9 // os.sysconf("SC_CLK_TCK")
            rss = None
            with open("/proc/%d/status" % self.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
        except OSError:
            return
        self.samples.append((time.monotonic(), cpu_ns, rss))

    def start(self):
        self.read()
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.read()

    def stop(self):
        self._stop.set()
        self._thread.join(10)
        self.read()

    def phase(self, t0, t1):
        """(share of one core, RSS at the end) between monotonic t0 and t1."""
        inside = [s for s in self.samples if t0 <= s[0] <= t1]
        if len(inside) < 2:
            return None, None
        first, last = inside[0], inside[-1]
        return (last[1] - first[1]) / 1e9 / (last[0] - first[0]), last[2]


def regressions_list(doc):
    """/api/v1/regressions as a list (a bare list, or {"checks": [...]})."""
    return doc if isinstance(doc, list) else doc.get("checks", [])

