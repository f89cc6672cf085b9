"""Profiler overhead from alternating time windows over one long-running workload
(for the benchmarks; not a test).

Comparing separate runs of a workload measures, besides the profiler, how each new
process happened to land in memory and on the host: about 2% run to run on this
VM, four times the 0.5% target. Here one workload process runs throughout, doing
small fixed chunks of work and logging each chunk ("START WALL CPU" lines, START
on CLOCK_MONOTONIC). Meanwhile the profiler is started and stopped:

    off window | start profiler, settle | on window | stop, settle | off window ...

Each on window is compared with the off windows just before and after it, by the
mean CPU time (and wall time) per chunk, so slow drift cancels; the overhead of
a mode is the median of those ratios, with a bootstrap 95% interval
(paired.py). Chunks from the settle periods (profiler start-up and tear-down)
are left out: this measures the steady-state cost of a profiler left running.
The start-up cost is the profiler's own CPU time, which run_bench.py reports.
"""
import os
import signal
import statistics
import subprocess
import time

import paired


class Mode:
    """A way to profile the workload: name and a function pid -> argv."""

    def __init__(self, name, argv_for_pid, ready_text=None, ready_delay=1.0):
        self.name = name
        self.argv_for_pid = argv_for_pid
        self.ready_text = ready_text    # stderr text that says it samples
        self.ready_delay = ready_delay  # else: seconds to wait after start


def dynoprof_mode(name, binary, workdir, *flags, system_wide=False):
    """dynoprof record with flags, on the workload (-p) or system-wide (-a)."""
    def argv(pid):
        who = ["-a"] if system_wide else ["-p", str(pid)]
        return [binary, "record", *who, *flags, "-o", os.path.join(workdir, "w.folded")]
    return Mode(name, argv, ready_text="dynoprof: sampling")


def perf_mode(name, freq, workdir):
    """perf record -g at freq on the workload, for comparison."""
    return Mode(name, lambda pid: ["perf", "record", "-q", "-g", "-F", str(freq), "-p",
                                   str(pid), "-o", os.path.join(workdir, "perf.data")])


def _start(mode, pid):
    proc = subprocess.Popen(mode.argv_for_pid(pid), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if mode.ready_text:
        for line in proc.stderr:
            if mode.ready_text in line:
                break
        else:
            raise RuntimeError("%s did not start (rc=%s)" % (mode.name, proc.wait()))
    else:
        time.sleep(mode.ready_delay)
        if proc.poll() is not None:
            raise RuntimeError("%s exited at once: %s" % (mode.name, proc.stderr.read()))
    return proc


def _stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def run(workload_argv, chunk_path, modes, rounds, window_s=4.0, settle_s=1.0, cpus=None,
        log=print):
    """Runs the schedule over one workload process. workload_argv must log chunks
    to chunk_path and stop (writing its log) on SIGINT. Returns
    {mode name: [(wall ratio, cpu ratio) per on window]}."""
    def child_setup():
        # SIGINT ends the workload: a shell running this in the background
        # passes SIGINT on ignored, and Python then never raises KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if cpus:
            os.sched_setaffinity(0, cpus)
    work = subprocess.Popen(workload_argv, stdin=subprocess.DEVNULL, preexec_fn=child_setup)
    windows = []  # (mode name or None for off, start, end)
    try:
        time.sleep(settle_s)  # let it warm up
        for r in range(rounds):
            for mode in paired.rotated(modes, r):
                t = time.monotonic()
                time.sleep(window_s)
                windows.append((None, t, time.monotonic()))
                prof = _start(mode, work.pid)
                try:
                    time.sleep(settle_s)
                    t = time.monotonic()
                    time.sleep(window_s)
                    windows.append((mode.name, t, time.monotonic()))
                finally:
                    _stop(prof)
                time.sleep(settle_s)
                if work.poll() is not None:
                    raise RuntimeError("the workload ended early (rc=%s)" % work.returncode)
            log("   round %d/%d done" % (r + 1, rounds))
        t = time.monotonic()
        time.sleep(window_s)
        windows.append((None, t, time.monotonic()))
    finally:
        work.send_signal(signal.SIGINT)
        work.wait()
    with open(chunk_path) as f:
        chunks = [tuple(map(float, line.split())) for line in f if line.strip()]
    return _ratios(chunks, windows)


def _window_means(chunks, start, end):
    inside = [(w, c) for t, w, c in chunks if t >= start and t + w <= end]
    if len(inside) < 10:
        return None
    return (statistics.fmean(w for w, _ in inside), statistics.fmean(c for _, c in inside))


def _ratios(chunks, windows):
    out = {}
    for i, (name, start, end) in enumerate(windows):
        if name is None:
            continue
        on = _window_means(chunks, start, end)
        before = _window_means(chunks, *windows[i - 1][1:])
        after = _window_means(chunks, *windows[i + 1][1:]) if i + 1 < len(windows) else None
        offs = [m for m in (before, after) if m]
        if not on or not offs:
            continue
        off_wall = statistics.fmean(m[0] for m in offs)
        off_cpu = statistics.fmean(m[1] for m in offs)
        out.setdefault(name, []).append((on[0] / off_wall, on[1] / off_cpu))
    return out


def report(results, log=print):
    """Prints one line per mode: overhead of wall and CPU time per chunk."""
    for name, ratios in results.items():
        wall = paired.ratio_overhead([w for w, _ in ratios])
        cpu = paired.ratio_overhead([c for _, c in ratios])
        log("   %-14s %2d windows  CPU/chunk %s   wall/chunk %s"
            % (name, len(ratios), paired.fmt_overhead(cpu), paired.fmt_overhead(wall)))
