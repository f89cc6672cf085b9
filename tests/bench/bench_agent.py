#!/usr/bin/python3
"""Long-running cost of `dynoprof agent` (run by `make bench`; not a test).

Starts the agent at its defaults (19 Hz, 10-s windows, Python frames, tags,
counting) — only the port (127.0.0.1:<free>) and the database (a temporary
directory) differ — and N busy tagged Python processes
(tests/workloads/py/tagged_app.py: endpoints /light and /heavy through dynotag,
each process with its own commit). Every --interval seconds it samples the
agent's CPU time (utime+stime from /proc/PID/stat) and RSS (VmRSS), and at the
end prints a line per sample, then start/middle/end RSS and the agent's CPU in
% of one core over each third of the run and over all of it, the database size
and the windows stored. The agent must still answer /healthz and exit 0 on
SIGTERM. The time its BPF programs run (charged by the kernel to the processes
they interrupt, so not in /proc/PID/stat) comes from the agent's own metric
dynoprof_agent_bpf_run_seconds_total.

Usage: bench_agent.py [--minutes M] [--processes N] [--interval S] [--json PATH]
Must run as root; ./dynoprof and .output/libdynotag must be built.
"""
import argparse
import json
import os
import sys
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "integration"))

from agentutil import (Agent, HelperError, TaggedApps, proc_cpu_ticks,  # noqa: E402
                       proc_rss_bytes)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=10, help="how long to run (default 10)")
    p.add_argument("--processes", type=int, default=20,
                   help="busy tagged Python processes (default 20)")
    p.add_argument("--interval", type=float, default=30,
                   help="seconds between samples of the agent (default 30)")
    p.add_argument("--json", help="also write the figures as JSON to this path")
    args = p.parse_args()
    if args.minutes <= 0 or args.processes < 0 or args.interval <= 0:
        p.error("--minutes and --interval must be > 0, --processes >= 0")
    return args


def sample(pid, t0, ticks0):
    """(elapsed s, cpu s of the agent since start, rss bytes) now."""
    ticks = proc_cpu_ticks(pid)
    rss = proc_rss_bytes(pid)
    if ticks is None or rss is None:
        raise HelperError("the agent (pid %d) is gone" % pid)
    return (time.monotonic() - t0, (ticks - ticks0) / os.sysconf("SC_CLK_TCK"), rss)


def bpf_seconds(metrics):
    """The agent's own count of time spent in its BPF programs (all CPUs)."""
    return sum(v for (name, _), v in metrics.items()
               if name == "dynoprof_agent_bpf_run_seconds_total")


def cpu_percent(a, b):
    """CPU of one core, in %, between samples a and b."""
    return 100.0 * (b[1] - a[1]) / (b[0] - a[0]) if b[0] > a[0] else 0.0


def main():
    args = parse_args()
    if os.geteuid() != 0:
        sys.exit("bench_agent.py: run as root (the agent loads BPF programs)")
    duration = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="dynoprof-bench-agent-") as tmpdir:
        # Defaults: drop the tests' 1-s window.
        agent = Agent(tmpdir, config={"window": 10})
        apps = TaggedApps(tmpdir)
        try:
            agent.start()
            for i in range(args.processes):
                apps.start(0, service="bench", commit="c%02d" % i)
            pid = agent.proc.pid
            print("agent pid %d, %d busy Python processes, %.1f min, a sample every %gs"
                  % (pid, args.processes, args.minutes, args.interval), flush=True)
            bpf0 = bpf_seconds(agent.metrics())
            t0 = time.monotonic()
            ticks0 = proc_cpu_ticks(pid)
            samples = [sample(pid, t0, ticks0)]
            while samples[-1][0] < duration:
                time.sleep(min(args.interval, max(0.0, duration - samples[-1][0])))
                samples.append(sample(pid, t0, ticks0))
                s = samples[-1]
                print("  %7.1f s  cpu %7.2f s (%5.2f%% since last)  rss %7.1f MiB"
                      % (s[0], s[1], cpu_percent(samples[-2], s), s[2] / 2**20), flush=True)
            health = agent.healthz()
            metrics = agent.metrics()
            bpf_s = bpf_seconds(metrics) - bpf0
            elapsed = time.monotonic() - t0
            stderr = agent.stop()
        except AssertionError as e:  # HelperError, or the agent's exit status
            sys.exit("bench_agent.py: %s\n%s" % (e, agent.stderr[-3000:]))
        finally:
            apps.close()
            agent.close()

    start, middle, end = samples[0], samples[len(samples) // 2], samples[-1]
    thirds = [samples[0], samples[len(samples) // 3], samples[2 * len(samples) // 3],
              samples[-1]]
    dropped = sum(v for (name, _), v in metrics.items()
                  if name == "dynoprof_agent_samples_dropped_total")
    result = {
        "minutes": args.minutes, "processes": args.processes,
        "rss_mib": {"start": start[2] / 2**20, "middle": middle[2] / 2**20,
                    "end": end[2] / 2**20, "max": max(s[2] for s in samples) / 2**20},
        "cpu_percent_of_one_core": {
            "first_third": cpu_percent(thirds[0], thirds[1]),
            "second_third": cpu_percent(thirds[1], thirds[2]),
            "last_third": cpu_percent(thirds[2], thirds[3]),
            "overall": cpu_percent(start, end),
            "bpf_programs": 100.0 * bpf_s / elapsed},
        "windows_stored": health.get("windows"),
        "database_bytes": health.get("database_bytes"),
        "samples_dropped": dropped,
        "samples": [{"t": s[0], "cpu_s": s[1], "rss": s[2]} for s in samples],
    }
    print("dynoprof agent, defaults, %d busy Python processes, %.1f min:"
          % (args.processes, args.minutes))
    print("  RSS     start %.1f MiB, middle %.1f MiB, end %.1f MiB (max %.1f)"
          % tuple(result["rss_mib"][k] for k in ("start", "middle", "end", "max")))
    c = result["cpu_percent_of_one_core"]
    print("  CPU     %.2f%% of one core overall (thirds: %.2f%%, %.2f%%, %.2f%%)"
          % (c["overall"], c["first_third"], c["second_third"], c["last_third"]))
    print("  BPF     %.3f%% of one core in the sampling programs (charged to the "
          "interrupted processes, not to the agent)" % c["bpf_programs"])
    print("  history %s windows, %.1f MiB; %d samples dropped"
          % (result["windows_stored"], (result["database_bytes"] or 0) / 2**20, dropped))
    if "flushed" not in stderr:
        print("  warning: no 'flushed' in the agent's stderr at exit")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
