#!/usr/bin/python3
"""Python benchmarks for `make bench` (not a test): the BPF program's cost per sample
with a 100-frame Python stack, and the slowdown of a CPU-bound Python workload under
`dynoprof record -p` at 99 and 999 Hz and with `-e tick` at 99 Hz, and of
`perf record -g -F 99` for
comparison: alternating on/off windows over one running workload (windows.py),
CPU and wall time per chunk of work, median ratio with a bootstrap 95% interval.

Usage: bench_python.py [--rounds N] [--window S] [--python PATH]   (root; ./dynoprof built)
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import windows

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DYNOPROF = os.path.join(REPO, "dynoprof")

DEEP = r'''
import sys, time
def rec(n, end):
    if n == 0:
        x = 0
        while time.time() < end:
            for i in range(1000):
                x += i
        return x
    return rec(n - 1, end)
rec(int(sys.argv[1]) - 2, time.time() + float(sys.argv[2]))
'''

# Chunks of CPU-bound Python work until SIGINT, logged for windows.py.
WORK = r'''
import sys, time
def leaf(n):
    x = 0
    for i in range(n):
        x += i * i
    return x
def mid(n):
    return leaf(n)
log = []
try:
    while True:
        t, c = time.monotonic(), time.process_time()
        mid(50000)
        log.append((t, time.monotonic() - t, time.process_time() - c))
except KeyboardInterrupt:
    pass
with open(sys.argv[1], "w") as f:
    f.writelines("%.6f %.9f %.9f\n" % row for row in log)
'''
WORK_CPU = 1  # the workload's CPU; profilers are left to the scheduler (the other one)


def bpf_prog_stats(name="sample_stack"):
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
    m = re.search(r"name %s .*?run_time_ns (\d+) run_cnt (\d+)" % name, out)
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def bpf_cost(python, frames, seconds=6, freq=999):
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "deep.py")
        open(script, "w").write(DEEP)
        target = subprocess.Popen([python, script, str(frames), str(seconds + 4)])
        time.sleep(0.5)
        subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=1"], check=True)
        try:
            rec = subprocess.Popen([DYNOPROF, "record", "-p", str(target.pid), "-F", str(freq),
                                    "-d", str(seconds), "-q", "-o", os.path.join(d, "x.folded")])
            time.sleep(1.5)
            t0, c0 = bpf_prog_stats()
            time.sleep(seconds - 2.5)
            t1, c1 = bpf_prog_stats()
            rec.wait()
        finally:
            subprocess.run(["sysctl", "-qw", "kernel.bpf_stats_enabled=0"])
            target.kill()
            target.wait()
        depth = 0
        for line in open(os.path.join(d, "x.folded")):
            depth = max(depth, line.count(":rec ("))
    if None in (t0, t1) or c1 == c0:
        return None, depth
    return (t1 - t0) / (c1 - c0) / 1000.0, depth


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=8,
                    help="on/off window pairs per mode (8)")
    ap.add_argument("--window", type=float, default=4.0, help="window length, s (4)")
    # The distribution's python3 as the executable it links to (its comm, e.g.
    # python3.11), as tests/integration/pyutil.py's distribution_python().
    ap.add_argument("--python", default=os.path.realpath("/usr/bin/python3"),
                    help="interpreter of the workload (the distribution's python3)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_python: run as root")

    print("== BPF cost per sample (kernel.bpf_stats_enabled), -F 999, %s" % args.python)
    for frames in (10, 100):
        us, depth = bpf_cost(args.python, frames)
        print("   %3d-frame Python stack: %s us per run (deepest stack seen: %d rec frames)"
              % (frames, "%.2f" % us if us is not None else "n/a", depth))

    print("== CPU-bound Python workload (pinned to CPU %d) under record -p: steady-state "
          "overhead, %d rounds of %g s windows (windows.py), median [95%% CI]"
          % (WORK_CPU, args.rounds, args.window))
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "work.py")
        with open(script, "w") as f:
            f.write(WORK)
        modes = [windows.dynoprof_mode("dynoprof F99", DYNOPROF, d, "-F", "99"),
                 windows.dynoprof_mode("dynoprof F999", DYNOPROF, d, "-F", "999"),
                 windows.dynoprof_mode("dynoprof tick F99", DYNOPROF, d, "-F", "99",
                                       "-e", "tick"),
                 # All of dynoprof's per-sample work off: what is left is the
                 # sampling interrupt's own cost.
                 windows.dynoprof_mode("bare F999", DYNOPROF, d, "-F", "999", "--no-python",
                                       "--no-tags", "--no-counts", "--no-kernel")]
        if shutil.which("perf"):
            modes.append(windows.perf_mode("perf -g F99", 99, d))
            modes.append(windows.perf_mode("perf -g F999", 999, d))
        chunks = os.path.join(d, "chunks.txt")
        results = windows.run([args.python, script, chunks], chunks, modes, args.rounds,
                              window_s=args.window, cpus={WORK_CPU})
        windows.report(results)

if __name__ == "__main__":
    main()
