#!/usr/bin/python3
"""Python benchmarks for `make bench` (not a test): the BPF program's cost per sample
with a 100-frame Python stack, and the slowdown of a CPU-bound Python workload under
`dynoprof record -p` at 99 and 999 Hz versus unprofiled (alternating runs, ratio of
medians).

Usage: bench_python.py [--runs N] [--python PATH]   (root; ./dynoprof built)
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

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

WORK = r'''
import time
def leaf(n):
    x = 0
    for i in range(n):
        x += i * i
    return x
def mid(n):
    return leaf(n)
t = time.perf_counter()
for _ in range(400):
    mid(200000)
print(time.perf_counter() - t)
'''


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


def timed_run(python, script):
    out = subprocess.run([python, script], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def profiled_run(python, script, freq, workdir):
    target = subprocess.Popen([python, "-c", "import time; time.sleep(0.6); exec(open(%r).read())"
                               % script], stdout=subprocess.PIPE, text=True)
    rec = subprocess.Popen([DYNOPROF, "record", "-p", str(target.pid), "-F", str(freq), "-q",
                            "-o", os.path.join(workdir, "p.folded")],
                           stderr=subprocess.DEVNULL)
    out, _ = target.communicate()
    rec.send_signal(signal.SIGINT)
    rec.wait()
    return float(out.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--python", default="/usr/bin/python3.11")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_python: run as root")

    print("== BPF cost per sample (kernel.bpf_stats_enabled), -F 999, %s" % args.python)
    for frames in (10, 100):
        us, depth = bpf_cost(args.python, frames)
        print("   %3d-frame Python stack: %s us per run (deepest stack seen: %d rec frames)"
              % (frames, "%.2f" % us if us is not None else "n/a", depth))

    print("== CPU-bound Python workload under record -p (ratio of medians, %d runs)" % args.runs)
    with tempfile.TemporaryDirectory() as d:
        script = os.path.join(d, "work.py")
        open(script, "w").write(WORK)
        modes = [("off", None), ("F99", 99), ("F999", 999)]
        res = {m: [] for m, _ in modes}
        for i in range(args.runs):
            for m, f in modes[i % 3:] + modes[:i % 3]:
                res[m].append(timed_run(args.python, script) if f is None else
                              profiled_run(args.python, script, f, d))
        base = statistics.median(res["off"])
        for m, _ in modes:
            med = statistics.median(res[m])
            print("   %-5s median %.3f s  slowdown %+.2f%%" % (m, med, (med / base - 1) * 100))


if __name__ == "__main__":
    main()
