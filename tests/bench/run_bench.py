#!/usr/bin/python3
"""Overhead benchmark for `dynoprof record` (run by `make bench`; not a test).

For each workload, runs a fixed amount of work N times in each mode, alternating
modes so drift in machine load hits them all alike:

  off      the workload alone
  F99      while `dynoprof record -a -F 99` runs
  F999     while `dynoprof record -a -F 999` runs

and prints, per workload and mode: the median wall time of the work, the slowdown
against `off` (median of per-round ratios with a 95% interval, paired.py), dynoprof's CPU time while the workload ran and in
total (including writing the output after SIGINT), its peak RSS (ru_maxrss of the
reaped process) and the median number of samples it reported.

Usage: run_bench.py [--runs N] [--workloads a,b] [--settle S] [--json PATH] [--quick]
Must run as root; ./dynoprof and .output/workloads/* must be built (`make bench`).
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import paired

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKLOAD_DIR = os.path.join(REPO_ROOT, ".output", "workloads")
SAMPLES_RE = re.compile(r"dynoprof: (\d+) samples")

# name -> (argv after the workload directory, description, CPUs to pin to or None).
# Each does a fixed amount of work. pingpong is pinned to one CPU: unpinned, its
# wall time swings by 3x with cross-CPU wake-up latency and idle states (and a
# profiler's timer interrupts keep CPUs out of deep idle, making it *faster*).
WORKLOADS = {
    "cpu_split": (["cpu_split", "-w", "20000"], "1 thread, 20000 x ~100 us units", None),
    "cpu_split_mt": (["cpu_split", "-w", "40000", "-t", "2"],
                     "2 threads, 40000 units (all CPUs of a 2-CPU box busy)", None),
    "pingpong": (["pingpong", "1000000"],
                 "1000000 pipe round trips, both processes on CPU 0", {0}),
}
QUICK_SCALE = 4  # --quick divides the work and the run count by about this

# (name, frequency or None for unprofiled, extra record flags). F99nc turns the
# context-switch accounting off, so F99 vs F99nc on pingpong is its overhead.
MODES = [("off", None, []), ("F99", 99, []), ("F999", 999, []), ("F99nc", 99, ["--no-counts"])]
# Steady-state overheads with tighter intervals: bench_python.py, bench_counting.py.


def proc_cpu_seconds(pid):
    """CPU time of a live process (all its threads), in seconds; None if it is gone.

    Reads the scheduler's nanosecond run time (schedstat) rather than utime+stime,
    whose 10 ms ticks are too coarse for a profiler using a few percent of a CPU.
    """
    total_ns = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total_ns += int(f.read().split()[0])
            except OSError:
                pass  # a thread that just exited
    except OSError:
        return None
    return total_ns / 1e9


def run_workload(argv, cpus=None):
    """Runs the workload to completion (pinned to cpus if given); returns its wall time
    in seconds."""
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    start = time.monotonic()
    res = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=pin)
    elapsed = time.monotonic() - start
    if res.returncode != 0:
        sys.exit(f"run_bench: {' '.join(argv)} failed (rc={res.returncode}): {res.stderr}")
    return elapsed


def run_profiled(binary, argv, cpus, freq, settle, workdir, extra=()):
    """Runs the workload under `dynoprof record -a -F freq`; returns a result dict."""
    out = os.path.join(workdir, "bench.folded")
    err_path = os.path.join(workdir, "bench.stderr")
    with open(err_path, "w") as err_file:
        rec = subprocess.Popen([binary, "record", "-a", "-F", str(freq), "-o", out, *extra],
                               stdout=subprocess.DEVNULL, stderr=err_file,
                               stdin=subprocess.DEVNULL)
    try:
        time.sleep(settle)  # let it load and attach the BPF programs
        if rec.poll() is not None:
            with open(err_path) as f:
                sys.exit(f"run_bench: dynoprof exited before the workload: {f.read()}")
        cpu_before = proc_cpu_seconds(rec.pid)
        wall = run_workload(argv, cpus)
        cpu_after = proc_cpu_seconds(rec.pid)
        stopped = time.monotonic()
        rec.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(rec.pid, 0)
        rec.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        teardown = time.monotonic() - stopped
    finally:
        if rec.returncode is None:
            rec.kill()
            rec.wait()
    with open(err_path) as f:
        stderr = f.read()
    if rec.returncode != 0:
        sys.exit(f"run_bench: dynoprof exited {rec.returncode}: {stderr}")
    m = SAMPLES_RE.search(stderr)
    return {
        "wall": wall,
        "cpu_during": (cpu_after - cpu_before) if None not in (cpu_before, cpu_after) else None,
        "cpu_total": usage.ru_utime + usage.ru_stime,
        "maxrss_mib": usage.ru_maxrss / 1024.0,
        "samples": int(m.group(1)) if m else None,
        "teardown": teardown,
    }


def median_or_none(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec, none="-"):
    return none if value is None else format(value, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="runs per workload and mode (7)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds between starting dynoprof and the workload (2)")
    ap.add_argument("--quick", action="store_true", help="less work and 3 runs (smoke test)")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--dynoprof", default=os.path.join(REPO_ROOT, "dynoprof"))
    args = ap.parse_args()

    if os.geteuid() != 0:
        sys.exit("run_bench: must run as root (dynoprof loads BPF programs)")
    if not os.access(args.dynoprof, os.X_OK):
        sys.exit(f"run_bench: {args.dynoprof} not built: run `make bench`")
    names = [w for w in args.workloads.split(",") if w]
    for name in names:
        if name not in WORKLOADS:
            sys.exit(f"run_bench: unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    runs = 3 if args.quick else args.runs

    results = {}  # (workload, mode) -> list of result dicts
    with tempfile.TemporaryDirectory(prefix="dynoprof-bench-") as workdir:
        for name in names:
            cmd, what, cpus = WORKLOADS[name]
            argv = [os.path.join(WORKLOAD_DIR, cmd[0])] + cmd[1:]
            if args.quick:  # the work amount is the last number in the argv
                idx = max(i for i, a in enumerate(argv) if a.isdigit() and i > 0
                          and argv[i - 1] != "-t")
                argv[idx] = str(max(1, int(argv[idx]) // QUICK_SCALE))
            if not os.access(argv[0], os.X_OK):
                sys.exit(f"run_bench: {argv[0]} not built: run `make bench`")
            print(f"== {name}: {what} ({runs} runs x {len(MODES)} modes)", flush=True)
            run_workload(argv, cpus)  # warm caches and page in the binary
            for i in range(runs):
                # Rotate the mode order so no mode always follows the same one.
                order = MODES[i % len(MODES):] + MODES[:i % len(MODES)]
                for mode, freq, extra in order:
                    if freq is None:
                        res = {"wall": run_workload(argv, cpus)}
                    else:
                        res = run_profiled(args.dynoprof, argv, cpus, freq, args.settle,
                                           workdir, extra)
                    results.setdefault((name, mode), []).append(res)
                    print(f"   run {i + 1} {mode:5s} {res['wall']:.3f} s", flush=True)

    header = (f"{'workload':13s} {'mode':5s} {'wall med':>9s} {'slowdown [95% CI]':>24s} "
              f"{'dp CPU/run':>10s} {'dp CPU%':>8s} {'dp CPU tot':>10s} {'peak RSS':>9s} "
              f"{'samples':>8s} {'stop s':>7s}")
    print()
    print(header)
    print("-" * len(header))
    summary = []
    for name in names:
        off_walls = [r["wall"] for r in results[(name, "off")]]
        for mode, _, _ in MODES:
            rs = results[(name, mode)]
            wall = statistics.median(r["wall"] for r in rs)
            slowdown = paired.paired_overhead([r["wall"] for r in rs], off_walls)
            during = median_or_none(r.get("cpu_during") for r in rs)
            row = {
                "workload": name, "mode": mode, "wall_median": wall,
                "slowdown_pct": slowdown[0] if slowdown else None,
                "slowdown_ci_pct": slowdown[1:] if slowdown else None,
                "dynoprof_cpu_during": during,
                "dynoprof_cpu_pct": during / wall * 100 if during is not None else None,
                "dynoprof_cpu_total": median_or_none(r.get("cpu_total") for r in rs),
                "peak_rss_mib": max((r["maxrss_mib"] for r in rs if "maxrss_mib" in r),
                                    default=None),
                "samples": median_or_none(r.get("samples") for r in rs),
                "teardown_s": median_or_none(r.get("teardown") for r in rs),
                "walls": [r["wall"] for r in rs],
            }
            summary.append(row)
            print(f"{name:13s} {mode:5s} {wall:8.3f}s "
                  f"{paired.fmt_overhead(slowdown) if mode != 'off' else '-':>24s} "
                  f"{fmt(during, '9.3f') + 's' if during is not None else '-':>10s} "
                  f"{fmt(row['dynoprof_cpu_pct'], '7.1f') + '%' if during is not None else '-':>8s} "
                  f"{fmt(row['dynoprof_cpu_total'], '9.3f') + 's' if mode != 'off' else '-':>10s} "
                  f"{fmt(row['peak_rss_mib'], '6.1f') + 'MiB' if mode != 'off' else '-':>9s} "
                  f"{fmt(row['samples'], '8.0f'):>8s} "
                  f"{fmt(row['teardown_s'], '7.2f'):>7s}")
    print("\nwall med: median wall time of the fixed work; slowdown: vs the same round's "
          "'off' run\n(median of per-round ratios, bootstrap 95% interval; see paired.py);\ndp CPU/run: dynoprof CPU while the workload ran; dp CPU tot: its whole "
          "life incl.\nstart-up and writing the output; stop s: SIGINT to exit (output "
          "writing).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
