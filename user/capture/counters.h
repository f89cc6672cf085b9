/* counters.h - which counting events back dynoprof's exact per-thread
 * accounting, and opening them.
 *
 * CPU time needs no counter: the scheduler keeps it per task. Counters do:
 * the BPF program reads two counter slots at every context switch and sample
 * (bpf/counts_abi.h enum counter_slot). Slot PRIMARY holds hardware instructions
 * when the PMU exposes them. On machines that hide it (most VMs) nothing is
 * read by default — and no program runs at context switches at all — unless
 * the software cpu-clock
 * stand-in is asked for (`record --counter-standin`): it exercises the same
 * BPF path as the hardware counter and is reported as what it is, never as
 * instructions. Slot CYCLES holds hardware cycles when available.
 */
#ifndef DYNOPROF_COUNTERS_H
#define DYNOPROF_COUNTERS_H

#include <stdbool.h>
#include <stddef.h>

/* What the primary slot counts. */
enum counter_primary {
	COUNTER_PRIMARY_INSTRUCTIONS = 0, /* PERF_COUNT_HW_INSTRUCTIONS */
	COUNTER_PRIMARY_CPU_CLOCK = 1,    /* PERF_COUNT_SW_CPU_CLOCK (ns), the stand-in */
	COUNTER_PRIMARY_NONE = 2,         /* no counter: CPU time only (from timestamps) */
};

/* The decision and its reason. */
struct counter_choice {
	enum counter_primary primary; /* what slot PRIMARY counts */
	bool cycles;                  /* slot CYCLES holds hardware cycles */
	char reason[200];             /* one line for the user: what and why */
};

/* The event kinds the choice probes. */
enum counter_probe {
	COUNTER_PROBE_INSTRUCTIONS = 0,
	COUNTER_PROBE_CYCLES = 1,
	COUNTER_PROBE_CPU_CLOCK = 2,
};

/* Tries to open a counting event of kind on cpu; returns an fd or -errno.
 * Injectable so the choice can be tested without a PMU. */
typedef int (*counter_open_fn)(enum counter_probe kind, int cpu, void *ctx);

/* The real opener (perf_event_open, counting, all tasks on cpu). */
int counters__open_real(enum counter_probe kind, int cpu, void *ctx);

/* Decides the slots by probing on probe_cpu with open_fn (fds it returns are
 * closed). Hardware instructions win when they open; else the cpu-clock
 * stand-in when standin is set (-errno when it does not open either), else
 * no counter; the reason names the error. Returns 0 or -errno. */
int counters__choose(counter_open_fn open_fn, void *ctx, int probe_cpu, bool standin,
		     struct counter_choice *out);

/* Name of what the primary slot counts: "instructions", "cpu-clock" or "none". */
const char *counters__primary_name(enum counter_primary p);

#endif
