#!/usr/bin/env python3
"""How many hosts x minutes `dynoprof diff` over many agents needs to find a
+2% or +1% change in CPU per request, at the agent's 19 Hz and at 99 Hz
(README, "Fleet"). Drives .output/bench/fleet_sim (tests/bench/fleet_sim.c:
the simulated fleet of tests/unit/fleet_sim.h through diff's own statistic,
host x 10 s window clusters nested in their hosts (diff's default), bootstrap-t) and prints, per rate, change and
hosts per side, the fewest minutes (of 1, 2, 5, 10, 15, 30, 60) in which the
change is found in at least 90% of trials, with verdicts at
`--confidence 0.99` and a minimum effect of half the change (`--min-effect
0.01` for +2%, 0.005 for +1%: a minimum equal to the change is reached only
half the time), and the false alarms at that point.

Inputs: the endpoint uses 0.25 cores on each host and is half of its
processes' CPU; 5 ms requests with CV 1 (50 requests/s per host); windows vary
by 2% (log sd), hosts by 0.5%.

    fleet_sim.py [--trials N] [--hosts 5,10,20,50]
"""
import argparse
import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(REPO, ".output", "bench", "fleet_sim")
MINUTES = (1, 2, 5, 10, 15, 30, 60)


def rate(hz, hosts, minutes, change, trials, min_effect):
    out = subprocess.run([BIN, str(hz), str(hosts), str(minutes), str(change), str(trials),
                          "0.005", "0.99", str(min_effect)],
                         check=True, capture_output=True, text=True).stdout
    return float(out.split()[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--hosts", default="5,10,20,50")
    args = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit("fleet_sim.py: %s not built: run `make %s`" % (BIN, os.path.relpath(BIN, REPO)))
    hosts_list = [int(h) for h in args.hosts.split(",")]
    print("fleet simulation (%d trials a point): minutes for >= 90%% detection, "
          "false alarms there" % args.trials)
    print("%-6s %-7s %-6s %-8s %-9s %s" % ("Hz", "change", "hosts", "minutes", "found", "false"))
    for hz in (19, 99):
        for change in (0.02, 0.01):
            for hosts in hosts_list:
                found = None
                for minutes in MINUTES:
                    r = rate(hz, hosts, minutes, change, args.trials, change / 2)
                    if r >= 0.9:
                        found = (minutes, r)
                        break
                if not found:
                    print("%-6d %-7s %-6d %-8s" % (hz, "+%g%%" % (change * 100), hosts, "> 60"),
                          flush=True)
                    continue
                null = rate(hz, hosts, found[0], 0, args.trials, change / 2)
                print("%-6d %-7s %-6d %-8d %-9s %s" % (
                    hz, "+%g%%" % (change * 100), hosts, found[0], "%.0f%%" % (found[1] * 100),
                    "%.1f%%" % (null * 100)), flush=True)


if __name__ == "__main__":
    main()
