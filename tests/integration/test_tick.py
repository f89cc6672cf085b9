"""`-e tick` under contention: each tick sample weighs what its thread ran since
its previous sample (the scheduler's sum), so threads that run in short bursts
between ticks get their CPU time, checked against each thread's own CPU clock
(CLOCK_THREAD_CPUTIME_ID, Python's time.thread_time()).

A tick samples whoever runs at the tick. Weighing each sample by one sampling
period gave the bursty threads of this workload 18-23% less than they used
(and the thread that never sleeps as much more); weighing by runtime gives
them what they used within a few percent.
"""
import json
import os
import subprocess

from conftest import DEFAULT_TIMEOUT, workload_path
from pyutil import decode_pprof

BURSTY_THREADS = 4


def run_under_contention(run_dynoprof, tmp_path, seconds):
    """Two CPU hogs per CPU, and `record -e tick -- bursty` for `seconds`.
    Returns (truth threads, {tid: (samples, cpu ns)}, stderr)."""
    hogs = [subprocess.Popen([workload_path("cpu_split"), "-d", "300"],
                             stdout=subprocess.DEVNULL)
            for _ in range(2 * os.cpu_count())]
    truth_path = str(tmp_path / "truth.json")
    out = str(tmp_path / "tick.pb.gz")
    try:
        rc, _, err = run_dynoprof(
            "record", "-e", "tick", "-F", "250", "-o", out, "--",
            workload_path("bursty"), "-d", str(seconds), "-t", str(BURSTY_THREADS),
            "-b", "300", "-s", "1700", "-o", truth_path, timeout=DEFAULT_TIMEOUT + seconds)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    assert rc == 0, err
    with open(truth_path) as f:
        truth = json.load(f)["threads"]
    per_tid = {}
    for s in decode_pprof(out):
        n, ns = per_tid.get(s.labels.get("tid"), (0, 0))
        per_tid[s.labels.get("tid")] = (n + s.values[0], ns + s.values[1])
    return truth, per_tid, err


def test_tick_samples_weigh_their_threads_runtime(run_dynoprof, tmp_path):
    # Enough samples per bursty thread for its tail (the time after its last
    # sample) to be small: gather longer on a busy machine (bounded).
    for seconds in (8, 16):
        truth, per_tid, err = run_under_contention(run_dynoprof, tmp_path, seconds)
        if min(per_tid.get(t["tid"], (0, 0))[0] for t in truth) >= 15:
            break
    bursty = [t for t in truth if t["bursty"]]
    spinner = [t for t in truth if not t["bursty"]][0]
    total_samples = sum(n for n, _ in per_tid.values())
    total_ns = sum(ns for _, ns in per_tid.values())
    lines = []
    for t in truth:
        n, ns = per_tid.get(t["tid"], (0, 0))
        period_weighted = n / total_samples * total_ns  # the old weighting, for the log
        lines.append("tid %d %s: used %.3f s, profile %.3f s (%+.1f%%), %d samples; one "
                     "period per sample would give %+.1f%%" % (
                         t["tid"], "bursty" if t["bursty"] else "spins", t["cpu_ns"] / 1e9,
                         ns / 1e9, 100 * (ns / t["cpu_ns"] - 1), n,
                         100 * (period_weighted / t["cpu_ns"] - 1)))
    report = "\n".join(lines) + "\n" + err
    print(report)
    # The bursty threads together, and the spinner: within 8% of their own clocks.
    used = sum(t["cpu_ns"] for t in bursty)
    got = sum(per_tid.get(t["tid"], (0, 0))[1] for t in bursty)
    assert abs(got / used - 1) <= 0.08, report
    got = per_tid.get(spinner["tid"], (0, 0))[1]
    assert abs(got / spinner["cpu_ns"] - 1) <= 0.08, report
    # Each bursty thread within 30% (its tail since its last sample is its error).
    for t in bursty:
        got = per_tid.get(t["tid"], (0, 0))[1]
        assert abs(got / t["cpu_ns"] - 1) <= 0.30, report


def test_tick_needs_counting(run_dynoprof, tmp_path):
    rc, _, err = run_dynoprof("record", "-e", "tick", "--no-counts", "-d", "1", "-o",
                              str(tmp_path / "x.folded"))
    assert rc == 2 and err.startswith("dynoprof: -e tick weighs each sample"), err
