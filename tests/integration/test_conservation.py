"""Conservation of CPU time in `dynoprof agent` through process churn: the CPU
the agent gives a service (per-window history, /api/v1/groups, the Prometheus
counter, live and historical pprof) is the kernel's own figure, however its
processes come and go. Ground truth: a cgroup v2 made for the workload, whose
cpu.stat usage_usec counts exited processes too.

Also: the `comm` label of the agent's metrics is the process's name, not
each thread's.
"""
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import pytest

from agentutil import Agent, metric_values, wait_until
from pyutil import decode_pprof

pytestmark = pytest.mark.slow

# The workload: a driver that burns CPU itself and spawns every kind of churn
# the agent must survive. Every amount is CPU time (time.thread_time), so the
# work is the same on a busy machine, only slower.
CHURN_DRIVER = r'''
import os, signal, subprocess, sys, threading, time

def burn(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) & 0xFFFFFFFF

def fork_burn(seconds, threads=1):
    pid = os.fork()
    if pid == 0:
        extra = [threading.Thread(target=burn, args=(seconds,)) for _ in range(threads - 1)]
        for t in extra:
            t.start()
        burn(seconds)
        for t in extra:
            t.join()
        os._exit(0)
    return pid

def reap(pids):
    for pid in pids:
        os.waitpid(pid, 0)

burn(0.2)
# Short-lived processes, each exiting in the window it started: mostly too
# brief for a sample of their own.
for _ in range(4):
    reap([fork_burn(0.004) for _ in range(15)])
# Exec'd short-lived processes (their environment is gone before the agent
# can read it; their parent's tags stand in).
for _ in range(60):
    subprocess.run(["true"])
reap([subprocess.Popen([sys.executable, "-c", "import time\nend = time.thread_time() + 0.03\n"
                        "while time.thread_time() < end: pass"]).pid for _ in range(8)])
# Longer ones across windows, one with three threads.
longer = [fork_burn(0.5), fork_burn(0.4, threads=3)]
# One killed with SIGKILL in the middle of its work.
victim = fork_burn(100)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    with open("/proc/%d/stat" % victim) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    if int(fields[11]) + int(fields[12]) >= 30:  # 0.3 s at USER_HZ 100
        break
    time.sleep(0.02)
os.kill(victim, signal.SIGKILL)
reap(longer + [victim])
burn(0.1)
'''

NAMED_THREADS = r'''
import ctypes, sys, threading, time
libc = ctypes.CDLL(None)
print(open("/proc/self/comm").read().strip(), flush=True)  # the process's name
def work(name, seconds):
    libc.prctl(15, name.encode(), 0, 0, 0)  # PR_SET_NAME: the thread's comm
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
threads = [threading.Thread(target=work, args=("burner-%d" % i, float(sys.argv[1])))
           for i in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("done", flush=True)
'''


def cgroup2_root():
    """Where the cgroup v2 hierarchy is mounted (unified or hybrid layout)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    pytest.fail("no cgroup2 mount in /proc/self/mounts: the test needs cgroup v2 "
                "(mount -t cgroup2 none /sys/fs/cgroup/unified)")


class Cgroup:
    """A cgroup v2 of its own; remove() rmdirs it once it is empty."""

    def __init__(self):
        self.path = os.path.join(cgroup2_root(), "dynoprof-test-%d-%s" % (
            os.getpid(), uuid.uuid4().hex[:6]))
        os.mkdir(self.path)
        self.premove_path = "/tmp/%s.premove" % os.path.basename(self.path)

    def enter(self):
        """For preexec_fn: moves the calling (forked) process in. What the
        fork ran before the move (the parent's image, which the agent credits
        to the image it execs: its samples and unsampled time carry no tags
        until then) is CPU of the workload the cgroup never saw: the child's
        own clock says how much (premove_s)."""
        before = time.clock_gettime(time.CLOCK_PROCESS_CPUTIME_ID)
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write("0")
        with open(self.premove_path, "w") as f:
            f.write(repr(before))

    def premove_s(self):
        try:
            with open(self.premove_path) as f:
                return float(f.read())
        except FileNotFoundError:
            return 0.0

    def usage_s(self):
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                key, value = line.split()
                if key == "usage_usec":
                    return int(value) / 1e6
        pytest.fail("no usage_usec in %s/cpu.stat" % self.path)

    def populated(self):
        with open(os.path.join(self.path, "cgroup.events")) as f:
            return "populated 1" in f.read()

    def remove(self):
        if wait_until(lambda: not self.populated(), 10, 0.05) is False:
            for pid in open(os.path.join(self.path, "cgroup.procs")).read().split():
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
            wait_until(lambda: not self.populated(), 10, 0.05)
        os.rmdir(self.path)
        try:
            os.unlink(self.premove_path)
        except FileNotFoundError:
            pass


@pytest.fixture
def agent(tmp_path):
    a = Agent(str(tmp_path))
    a.start()
    yield a
    a.close()


def script(tmp_path, name, code):
    path = str(tmp_path / name)
    with open(path, "w") as f:
        f.write(code)
    return path


def workload_env(service):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DYNOPROF_") and k not in ("GIT_COMMIT", "SOURCE_VERSION")}
    env["DYNOPROF_SERVICE"] = service
    return env


def service_cpu_groups(agent, service, t0, t1):
    """CPU seconds /api/v1/groups gives service over [t0, t1] (unix seconds)."""
    rows = agent.groups(by="service", service=service, **{"from": "%d" % t0, "to": "%d" % t1})
    return sum(g["cpu_ns"] for g in rows) / 1e9


def service_cpu_metrics(agent, service):
    """The service's dynoprof_cpu_seconds_total, summed over its series."""
    return sum(v for _, v in metric_values(agent.metrics(), "dynoprof_cpu_seconds_total",
                                           service=service))


def stored_windows(database):
    """[(start_s, end_s, {service: cpu_s})] of every stored window."""
    db = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(database), uri=True,
                         timeout=10)
    try:
        windows = {}
        for wid, start, end in db.execute("SELECT id, start_ns, end_ns FROM windows"):
            windows[wid] = (start / 1e9, end / 1e9, {})
        for wid, service, cpu in db.execute(
                "SELECT g.window_id, t.service, SUM(g.cpu_ns) FROM groups g "
                "JOIN tags t ON t.id = g.tag_id GROUP BY g.window_id, t.service"):
            if wid in windows:
                windows[wid][2][service] = cpu / 1e9
        return sorted(windows.values())
    finally:
        db.close()


def mixed_pids(database, service, tmpdir):
    """{pid: {service label: cpu s}} of the processes of service that have CPU
    under another service label too in the stored windows (diagnostics)."""
    db = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(database), uri=True,
                         timeout=10)
    by_pid = {}
    try:
        for wid, blob in db.execute("SELECT id, pprof FROM windows"):
            path = os.path.join(tmpdir, "window-%d.pb.gz" % wid)
            with open(path, "wb") as f:
                f.write(blob)
            for s in decode_pprof(path):
                pid = by_pid.setdefault(s.labels.get("pid"), {})
                key = s.labels.get("service", "")
                pid[key] = pid.get(key, 0) + s.values[1] / 1e9
    finally:
        db.close()
    return {pid: services for pid, services in by_pid.items()
            if service in services and len(services) > 1}


def pprof_cpu_s(agent, path, dest):
    status, body = agent.get(path, timeout=120)
    assert status == 200, "GET %s -> %s: %r" % (path, status, body[:300])
    with open(dest, "wb") as f:
        f.write(body)
    return sum(s.values[1] for s in decode_pprof(dest)) / 1e9


def test_cpu_is_conserved_through_process_churn(agent, tmp_path):
    """A service in its own cgroup runs short-lived forks, exec'd processes
    (60 `true`, 8 Pythons), longer multi-threaded processes across windows
    and a process killed with SIGKILL, all exiting before the end. Once its
    windows are closed, the agent's CPU for the service — summed over the
    stored windows, from /api/v1/groups, the Prometheus counter, a live
    pprof query spanning the run and the historical pprof — equals the
    cgroup's usage_usec within 1%; and no window carries more CPU than its
    wall time times the CPUs."""
    service = "cons" + uuid.uuid4().hex[:8]
    ncpu = os.cpu_count()
    driver = script(tmp_path, "churn.py", CHURN_DRIVER)
    live_s = 40
    live = {}

    def live_query():
        live["cpu"] = pprof_cpu_s(agent, "/debug/pprof/profile?seconds=%d&service=%s"
                                  % (live_s, service), str(tmp_path / "live.pb.gz"))
    t0 = time.time() - 1
    query = threading.Thread(target=live_query)
    query.start()
    time.sleep(0.5)  # the query is registered: it started before the workload
    cg = Cgroup()
    try:
        started = time.monotonic()
        proc = subprocess.run([sys.executable, driver], env=workload_env(service),
                              preexec_fn=cg.enter, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=live_s - 5)
        ran = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr
        assert wait_until(lambda: not cg.populated(), 10, 0.05), "the cgroup still has tasks"
        premove = cg.premove_s()
        truth = cg.usage_s() + premove
    finally:
        cg.remove()
    query.join(timeout=live_s + 60)
    assert "cpu" in live, "the live query did not answer:\n" + agent.stderr[-2000:]

    # Every window the workload ran in is closed and stored once one that
    # began after its end is.
    t_end = time.time()
    assert wait_until(lambda: any(w[0] > t_end + 0.2 for w in stored_windows(agent.database)),
                      30, 0.2), "no window stored after the workload ended"
    t1 = time.time() + 1
    windows = stored_windows(agent.database)
    per_window = [(w[1] - w[0], w[2].get(service, 0.0), sum(w[2].values()))
                  for w in windows if w[1] >= t0]
    figures = {
        "windows": sum(cpu for _, cpu, _ in per_window),
        "groups": service_cpu_groups(agent, service, t0, t1),
        "prometheus": service_cpu_metrics(agent, service),
        "live pprof": live["cpu"],
        "history pprof": pprof_cpu_s(agent, "/debug/pprof/profile?from=%d&to=%d&service=%s"
                                     % (t0, t1, service), str(tmp_path / "history.pb.gz")),
    }
    errors = {k: (v - truth) / truth for k, v in figures.items()}
    print("\nworkload ran %.1f s; cgroup usage_usec + %.4f s before the move: %.4f s; agent: %s" % (
        ran, premove, truth, ", ".join("%s %.4f s (%+.3f%%)" % (k, figures[k], 100 * errors[k])
                              for k in figures)))
    print("windows (wall s, service cpu s, all cpu s): %s" % [
        ("%.2f" % w, "%.3f" % c, "%.3f" % a) for w, c, a in per_window if c])
    assert truth > 2.0, "the workload used only %.3f s of CPU" % truth
    for where, err in errors.items():
        assert abs(err) <= 0.01, "%s: %.4f s against the cgroup's %.4f s (%+.2f%%); " \
            "processes of the service with CPU under other labels too: %s" % (
                where, figures[where], truth, 100 * err,
                mixed_pids(agent.database, service, str(tmp_path)))
    # No window holds more CPU than it had: its wall time on every CPU (plus
    # a scheduler tick and the agent's own delays at each edge).
    for wall, _, total in per_window:
        assert total <= (wall + 0.1) * ncpu, (
            "a %.2f s window carries %.3f s of CPU on %d CPUs" % (wall, total, ncpu))
    agent.stop()


def test_comm_label_is_the_process_name(agent, tmp_path):
    """A Python process whose three threads name themselves (PR_SET_NAME)
    shows up in /metrics under its process name only."""
    service = "comm" + uuid.uuid4().hex[:8]
    proc = subprocess.Popen([sys.executable, script(tmp_path, "named.py", NAMED_THREADS), "0.6"],
                            env=workload_env(service), stdout=subprocess.PIPE, text=True)
    name = proc.stdout.readline().strip()
    assert proc.stdout.readline().strip() == "done"
    proc.wait(timeout=30)

    def comms():
        series = metric_values(agent.metrics(), "dynoprof_cpu_seconds_total", service=service)
        total = sum(v for _, v in series)
        return {labels["comm"] for labels, _ in series} if total >= 1.5 else None
    found = wait_until(comms, 20, 0.3)
    assert found, "the service's CPU never reached its 1.8 s in /metrics: %s" % (
        metric_values(agent.metrics(), "dynoprof_cpu_seconds_total", service=service))
    assert found == {name}, "comm labels %s, the process is %r" % (sorted(found), name)
    agent.stop()
