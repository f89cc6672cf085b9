#!/usr/bin/python3
"""Cost of exact counting on a context-switch-heavy workload, for `make bench`
(not a test).

Two processes ping-pong a byte over pipes on one CPU (about 200,000 context
switches a second) while `dynoprof record -a -F 99` is started and stopped
around them (windows.py: alternating windows over one running workload, time
per chunk of 2,000 round trips, median ratio with a bootstrap 95% interval):

  counting      the default: exact CPU time per thread from the scheduler's own
                sums; no program runs at context switches
  no-counts     --no-counts: no exact counting at all
  counter hook  --counter-standin: a counting event read at every context switch,
                the path hardware instructions and cycles take when the PMU is
                exposed (the software cpu-clock stands in for them here)

The cost of counting is `counting` against `no-counts`; the cost of the
context-switch hook with a counter is `counter hook` against `no-counts`.

Usage: bench_counting.py [--rounds N] [--window S]   (root; make bench builds it)
"""
import argparse
import os
import sys
import tempfile

import windows

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DYNOPROF = os.path.join(REPO, "dynoprof")
PINGPONG = os.path.join(REPO, ".output", "workloads", "pingpong")
PINGPONG_CPU = 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=8, help="on/off window pairs per mode (8)")
    ap.add_argument("--window", type=float, default=4.0, help="window length, s (4)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_counting: run as root")
    for path in (DYNOPROF, PINGPONG):
        if not os.access(path, os.X_OK):
            sys.exit("bench_counting: %s not built: run `make bench`" % path)
    print("== pipe ping-pong on CPU %d under record -a -F 99: steady-state overhead, %d "
          "rounds of %g s windows, median [95%% CI]" % (PINGPONG_CPU, args.rounds, args.window))
    with tempfile.TemporaryDirectory() as d:
        modes = [windows.dynoprof_mode("counting", DYNOPROF, d, "-F", "99", system_wide=True),
                 windows.dynoprof_mode("no-counts", DYNOPROF, d, "-F", "99", "--no-counts",
                                       system_wide=True),
                 windows.dynoprof_mode("counter hook", DYNOPROF, d, "-F", "99",
                                       "--counter-standin", system_wide=True)]
        chunks = os.path.join(d, "chunks.txt")
        results = windows.run([PINGPONG, "-d", "3600", "-o", chunks], chunks, modes,
                              args.rounds, window_s=args.window, cpus={PINGPONG_CPU})
        windows.report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
