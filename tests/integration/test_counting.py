"""Exact CPU counting (`record --counts FILE`), end to end with real BPF: the
per-process and per-thread CPU time dynoprof counts against what the kernel says
(/proc/PID/stat, schedstat), a process that lives 50 ms, a process that runs in
short bursts and is almost never sampled, the units of the JSON on this machine,
what runs at context switches, and per-endpoint CPU of a Django app under
gunicorn against what the app measured itself.
"""
import json
import os
import signal
import subprocess
import time

import pytest

from apputil import COST, ENDPOINTS, GunicornApp, Recording, python_script, start_python
from conftest import proc_cpu_seconds, workload_path
from loadutil import record_until_served, wait_drained
from pyutil import decode_pprof

pytestmark = pytest.mark.slow

BUSY_PYTHON = r'''
import sys


def busy_loop():
    acc = 0
    while True:
        for i in range(10000):
            acc = (acc * 31 + i) & 0xFFFFFFFF


print("ready", flush=True)
busy_loop()
'''


def has_pmu():
    """True when `perf stat` can count hardware instructions here."""
    try:
        out = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "true"],
                             capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return False
    for line in out.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions"):
            return fields[0].strip().isdigit()
    return False


def load_counts(path):
    with open(path) as f:
        return json.load(f)


def process_of(counts, pid):
    found = [p for p in counts["processes"] if p["pid"] == pid]
    assert len(found) == 1, "pid %d appears %d times in the counts JSON: %s" % (
        pid, len(found), [(p["pid"], p["comm"]) for p in counts["processes"]][:40])
    return found[0]


def outside_task_ns():
    """Time the CPUs spent, all together, in interrupts and stolen by the
    hypervisor (/proc/stat irq + softirq + steal, in ns): the cpu-clock
    counter runs through it while the scheduler's task time leaves it out."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    assert fields[0] == "cpu", fields
    irq, softirq, steal = (int(x) for x in fields[6:9])
    return (irq + softirq + steal) * 1e9 / os.sysconf("SC_CLK_TCK")


class BusyCapture:
    """What the module's capture of busy processes produced."""

    def __init__(self, counts, used, names, stderr, profile, outside_ns):
        self.counts = counts  # the --counts JSON
        self.profile = profile  # the pprof file
        self.used = used      # {pid: CPU s from /proc over the capture window}
        self.names = names    # {pid: what it is}
        self.stderr = stderr  # record's stderr
        self.outside_ns = outside_ns  # outside_task_ns() over the capture window


# CPU each busy process gathers in the capture: /proc's 10 ms ticks and the
# counter's per-switch reads are then well inside the 5% and 2% compared below.
BUSY_CPU_S = 1.0
BUSY_DEADLINE_S = 60


@pytest.fixture(scope="module")
def busy_capture(tmp_path_factory):
    """Three cpu_split processes and a Python busy loop (four busy processes on
    the machine's CPUs), recorded with --counts for at least 4 s and until each
    has used BUSY_CPU_S (a busy machine gives them less; up to BUSY_DEADLINE_S).
    /proc is read once dynoprof samples and again once every process is stopped
    (SIGSTOP), just before the capture ends, so both see the same window."""
    outdir = str(tmp_path_factory.mktemp("busy"))
    procs, names = [], {}
    for _ in range(3):
        p = subprocess.Popen([workload_path("cpu_split"), "-d", "120"],
                             stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        procs.append(p)
        names[p.pid] = "cpu_split"
    py = start_python(python_script(outdir, "busy.py", BUSY_PYTHON))
    procs.append(py)
    names[py.pid] = "python busy loop"
    rec = None
    try:
        assert py.stdout.readline().strip() == "ready", py.stderr.read()
        time.sleep(0.2)
        counts_path = os.path.join(outdir, "c.json")
        # --counter-standin: on a machine without a PMU, the counter path runs
        # on the software cpu-clock, so the test covers it here too.
        rec = Recording("record", "-p", ",".join(str(p.pid) for p in procs), "-d", 120,
                        "--counts", counts_path, "--counter-standin",
                        "-o", os.path.join(outdir, "x.pb.gz"))
        rec.wait_started()
        before = {p.pid: proc_cpu_seconds(p.pid) for p in procs}
        outside_before = outside_task_ns()
        deadline = time.monotonic() + BUSY_DEADLINE_S
        time.sleep(4)
        while time.monotonic() < deadline and min(
                proc_cpu_seconds(p.pid) - before[p.pid] for p in procs) < BUSY_CPU_S:
            time.sleep(0.25)
        for p in procs:
            p.send_signal(signal.SIGSTOP)
        time.sleep(0.1)
        used = {p.pid: proc_cpu_seconds(p.pid) - before[p.pid] for p in procs}
        outside = outside_task_ns() - outside_before
        rc, err = rec.stop()
        assert rc == 0, "record failed (rc=%d):\n%s" % (rc, err)
        yield BusyCapture(load_counts(counts_path), used, names, err,
                          os.path.join(outdir, "x.pb.gz"), outside)
    finally:
        if rec:
            rec.kill()
        for p in procs:
            p.kill()
            p.send_signal(signal.SIGCONT)
            p.wait()


def test_process_cpu_matches_proc_stat(busy_capture):
    lines = []
    for pid, used in busy_capture.used.items():
        entry = process_of(busy_capture.counts, pid)
        counted = entry["cpu_ns"] / 1e9
        lines.append("%s %d: counted %.3f s, /proc %.3f s" % (
            busy_capture.names[pid], pid, counted, used))
        # /proc counts in clock ticks (10 ms): enough CPU for 5% to be several.
        assert used >= 0.5, "%s got only %.2f CPU s; the machine is too busy to compare" % (
            busy_capture.names[pid], used)
        assert abs(counted - used) <= max(0.05 * used, 0.02), (
            "\n".join(lines) + "\n" + busy_capture.stderr)
        threads = entry["threads"]
        assert threads and sum(t["cpu_ns"] for t in threads) == entry["cpu_ns"], entry
    print("\n".join(lines))


def test_profile_cpu_sums_to_exact_process_totals(busy_capture):
    """Samples split a process's CPU time; the counts say how much: the pprof
    cpu values of each process add up to exactly its counted cpu_ns."""
    samples = decode_pprof(busy_capture.profile)
    assert samples, "the profile has no samples"
    for pid in busy_capture.used:
        mine = [s for s in samples if s.labels.get("pid") == pid]
        assert mine, "no samples of pid %d" % pid
        assert sum(s.values[1] for s in mine) == process_of(busy_capture.counts, pid)["cpu_ns"]


def test_counter_units_on_this_machine(busy_capture):
    units = busy_capture.counts["units"]
    if has_pmu():
        assert units["instructions"] is True, units
        for pid in busy_capture.used:
            entry = process_of(busy_capture.counts, pid)
            assert isinstance(entry["instructions"], int) and entry["instructions"] > 0, entry
        return
    # No PMU (a VM): instructions and cycles are null, the counting path runs on
    # the software cpu-clock counter, whose total is the CPU time itself, plus
    # what interrupts and the hypervisor took while the process was on its CPU
    # (the scheduler's task time leaves that out: on this VM, steal reached
    # 2.4% of a busy process's time while other VMs were busy).
    assert units["counter_event"] == "cpu-clock", units
    assert units["instructions"] is False and units["cycles"] is False, units
    assert units["reason"], units
    for pid in busy_capture.used:
        entry = process_of(busy_capture.counts, pid)
        assert entry["instructions"] is None and entry["cycles"] is None, entry
        assert all(t["instructions"] is None for t in entry["threads"]), entry
        extra = entry["counter_value"] - entry["cpu_ns"]
        assert -0.02 * entry["cpu_ns"] <= extra <= 0.02 * entry["cpu_ns"] + \
            busy_capture.outside_ns, (entry, busy_capture.outside_ns)


def test_fifty_ms_process_is_counted(outdir):
    counts_path = os.path.join(outdir, "c.json")
    rec = Recording("record", "-a", "-d", 60, "--counts", counts_path,
                    "-o", os.path.join(outdir, "x.pb.gz"))
    try:
        rec.wait_started()
        # Starts after the capture began, burns 50 ms of CPU and exits.
        burner = subprocess.Popen([workload_path("short_lived"), "0.05"])
        assert burner.wait(timeout=30) == 0
        time.sleep(0.3)
        rc, err = rec.stop()
    finally:
        rec.kill()
    assert rc == 0, err
    entry = process_of(load_counts(counts_path), burner.pid)
    print("short_lived 0.05: counted %.1f ms" % (entry["cpu_ns"] / 1e6))
    assert entry["comm"] == "short_lived", entry
    assert abs(entry["cpu_ns"] / 1e6 - 50) <= 0.3 * 50, entry
    threads = entry["threads"]
    assert [t["tid"] for t in threads] == [burner.pid], entry
    assert threads[0]["cpu_ns"] == entry["cpu_ns"], entry


BURSTY_PYTHON = r'''
import time
print("ready", flush=True)
while True:
    end = time.thread_time() + 0.01
    while time.thread_time() < end:
        pass
    time.sleep(0.05)
'''


def schedstat_seconds(pid):
    """The scheduler's exact run time of a process's threads, in seconds."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
            total += int(f.read().split()[0])
    return total / 1e9


def test_rarely_sampled_process_is_counted_exactly(outdir):
    """Counts do not come from samples: at 1 Hz a process running 10 ms bursts
    is hardly ever sampled, yet its CPU over the capture is exact. It was running
    before the capture began, so only the capture's share may be counted. The
    capture lasts at least 3 s and until the process has run 0.4 s (a busy
    machine gives it less; up to 30 s)."""
    burst = start_python(python_script(outdir, "bursty.py", BURSTY_PYTHON))
    rec = None
    try:
        assert burst.stdout.readline().strip() == "ready", burst.stderr.read()
        time.sleep(0.5)
        counts_path = os.path.join(outdir, "c.json")
        at_launch = schedstat_seconds(burst.pid)
        rec = Recording("record", "-a", "-F", 1, "-d", 60, "--counts", counts_path,
                        "-o", os.path.join(outdir, "x.folded"))
        rec.wait_started()
        at_start = schedstat_seconds(burst.pid)
        deadline = time.monotonic() + 30
        time.sleep(3)
        while (time.monotonic() < deadline and
               schedstat_seconds(burst.pid) - at_start < 0.4):
            time.sleep(0.1)
        burst.send_signal(signal.SIGSTOP)
        time.sleep(0.1)
        at_end = schedstat_seconds(burst.pid)
        rc, err = rec.stop()
        assert rc == 0, err
    finally:
        if rec:
            rec.kill()
        burst.kill()
        burst.send_signal(signal.SIGCONT)
        burst.wait()
    counted = process_of(load_counts(counts_path), burst.pid)["cpu_ns"] / 1e9
    detail = ("counted %.4f s; the scheduler: %.4f s from record's start to the end, "
              "%.4f s from when it sampled" % (counted, at_end - at_launch, at_end - at_start))
    print(detail)
    assert at_end - at_start >= 0.3, "the bursty process barely ran: " + detail
    # Counting starts between record's launch and its "sampling" line; 2 ms of
    # slack for the scheduler's own update lag.
    assert at_end - at_start - 0.002 <= counted <= at_end - at_launch + 0.002, detail


def switch_programs():
    """Names of BPF programs attached to the sched_switch tracepoint now."""
    out = subprocess.run(["bpftool", "-j", "link", "show"], capture_output=True, text=True,
                         check=True).stdout
    progs = json.loads(out or "[]")
    ids = {link["prog_id"] for link in progs
           if "sched_switch" in json.dumps(link)}
    names = []
    for prog_id in ids:
        info = json.loads(subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                                         capture_output=True, text=True, check=True).stdout)
        names.append(info.get("name"))
    return names


@pytest.mark.parametrize("flags,hooked", [((), False), (("--counter-standin",), True)])
def test_context_switch_program_only_with_counters(outdir, flags, hooked):
    """CPU time is the scheduler's own sum: nothing runs at context switches
    unless a counter must be read there."""
    rec = Recording("record", "-a", "-d", 60, "--counts", os.path.join(outdir, "c.json"),
                    *flags, "-o", os.path.join(outdir, "x.folded"))
    try:
        rec.wait_started()
        attached = [n for n in switch_programs() if n == "on_switch"]
        rc, err = rec.stop()
        assert rc == 0, err
    finally:
        rec.kill()
    assert bool(attached) == hooked, "record %s: on_switch attached: %s" % (
        " ".join(flags) or "(defaults)", attached)


# Requests each endpoint serves in the capture: one request's edge (its CPU
# split by the capture's start or end) is then well inside the 10% below.
MIN_REQUESTS = 40


def test_endpoint_cpu_per_request_matches_app(outdir):
    """CPU per request of each endpoint, counted by dynoprof, against what the
    app measured for the same requests: every request the app served during
    the capture (the load runs until each endpoint had MIN_REQUESTS answered,
    and the capture ends once the app has served what wrk left queued)."""
    app = GunicornApp(outdir, workers=2, middleware=True)
    app.start()
    try:
        app.warm_up()
        wait_drained(app)
        counts_path = os.path.join(outdir, "c.json")
        before = app.stats(settle=0.3)
        results, err = record_until_served(
            app, os.path.join(outdir, "x.pb.gz"),
            [(app.url(e), {"threads": 2, "connections": 4}) for e in ENDPOINTS],
            MIN_REQUESTS, extra=("-F", "999", "--counts", counts_path))
        after = app.stats()
    finally:
        app.stop()
    counts = load_counts(counts_path)
    by_endpoint = counts["tags"]["by"].get("endpoint", {})
    requests = {e: after[e]["requests"] - before[e]["requests"] for e in ENDPOINTS}
    counted_ms, app_ms = {}, {}
    for e in ENDPOINTS:
        assert e in by_endpoint, "no endpoint %r in the counts JSON tags: %s" % (
            e, counts["tags"])
        counted_ms[e] = by_endpoint[e]["cpu_ns"] / 1e6 / requests[e]
        # An endpoint's CPU is its whole requests' (issue 15): the app's
        # outermost WSGI wrapper measures those.
        app_ms[e] = (after[e]["whole_cpu_s"] - before[e]["whole_cpu_s"]) * 1e3 / requests[e]
    detail = "CPU ms/request counted %s, measured by the app %s; requests %s" % (
        {e: round(v, 2) for e, v in counted_ms.items()},
        {e: round(v, 2) for e, v in app_ms.items()}, requests)
    print(detail)
    assert all(results[app.url(e)].requests >= MIN_REQUESTS for e in ENDPOINTS), detail
    # ±20% is the goal; measured +1..+3% (README). ±10% keeps a bias against
    # short requests (a 4-ms-stale CPU reading credited per sample cost 6 ms
    # requests -7..-10%) from creeping back.
    for e in ENDPOINTS:
        assert abs(counted_ms[e] / app_ms[e] - 1) <= 0.1, detail
    for e in ("medium", "heavy"):
        ratio = counted_ms[e] / counted_ms["light"]
        assert abs(ratio / COST[e] - 1) <= 0.2, "%s/light = %.2f\n%s" % (e, ratio, detail)


def test_instructions_event_without_pmu_fails_clearly(run_dynoprof, outdir):
    if has_pmu():
        pytest.skip("this machine exposes a PMU: -e instructions works here")
    rc, out, err = run_dynoprof("record", "-e", "instructions", "-d", "1",
                                "-o", os.path.join(outdir, "x.pb.gz"), timeout=60)
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc != 0, "record -e instructions succeeded without a PMU:\n" + err
    assert len(lines) == 1 and lines[0].startswith("dynoprof: "), err
    assert "cpu-clock" in lines[0], err
    assert not os.path.exists(os.path.join(outdir, "x.pb.gz")), "wrote a profile anyway"
