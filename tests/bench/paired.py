"""Paired overhead statistics for the benchmarks (not a test).

An overhead target of half a percent is below the run-to-run noise of a shared
VM (about 1%). Comparing medians of two independent series mixes that noise
into the answer; pairing does not: each round runs every mode once, back to
back in a rotating order, and the overhead of a mode is the median over rounds
of its ratio to the same round's unprofiled run. Slow drift in the machine's
load cancels within a round. A bootstrap over rounds gives a 95% interval, so
a figure is reported with how well it is known.

Two measures per run:
  wall  the workload's own timing of its fixed work (what a user waits for);
  cpu   the CPU time the workload's process used (rusage). The kernel here
        charges interrupt time (the sample interrupt and the BPF program) to the
        interrupted task and keeps hypervisor steal time out, so this measure
        carries the profiler's direct cost without the host's noise.
"""
import random
import statistics


def bootstrap_median_ci(values, level=0.95, resamples=4000, seed=1):
    """The median of values and a percentile-bootstrap interval for it."""
    rng = random.Random(seed)
    n = len(values)
    meds = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(resamples))
    tail = (1 - level) / 2
    return (statistics.median(values), meds[int(tail * resamples)],
            meds[min(resamples - 1, int((1 - tail) * resamples))])


def ratio_overhead(ratios):
    """Ratios of profiled to unprofiled -> (median %, low %, high %) overhead."""
    if not ratios:
        return None
    med, lo, hi = bootstrap_median_ci(ratios)
    return ((med - 1) * 100, (lo - 1) * 100, (hi - 1) * 100)


def paired_overhead(on, off):
    """Per-round ratios on[i]/off[i] -> (median %, low %, high %) overhead."""
    return ratio_overhead([a / b for a, b in zip(on, off) if a is not None and b])


def fmt_overhead(o):
    """'+0.21% [-0.10, +0.48]' or '-'."""
    if o is None:
        return "-"
    return "%+.2f%% [%+.2f, %+.2f]" % o


def rotated(modes, round_index):
    """The modes in this round's order: rotated so no mode always runs first or
    always follows the same one."""
    k = round_index % len(modes)
    return modes[k:] + modes[:k]
