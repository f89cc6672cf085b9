// SPDX-License-Identifier: MIT
#include "capture/counters.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>

int counters__open_real(enum counter_probe kind, int cpu, void *ctx)
{
	(void)ctx;
	struct perf_event_attr attr = { .size = sizeof(attr) };
	switch (kind) {
	case COUNTER_PROBE_INSTRUCTIONS:
		attr.type = PERF_TYPE_HARDWARE;
		attr.config = PERF_COUNT_HW_INSTRUCTIONS;
		break;
	case COUNTER_PROBE_CYCLES:
		attr.type = PERF_TYPE_HARDWARE;
		attr.config = PERF_COUNT_HW_CPU_CYCLES;
		break;
	case COUNTER_PROBE_CPU_CLOCK:
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_CPU_CLOCK;
		break;
	default:
		return -EINVAL;
	}
	int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int probe(counter_open_fn open_fn, void *ctx, enum counter_probe kind, int cpu)
{
	int fd = open_fn(kind, cpu, ctx);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return fd;
}

int counters__choose(counter_open_fn open_fn, void *ctx, int probe_cpu, bool standin,
		     struct counter_choice *out)
{
	int instr = probe(open_fn, ctx, COUNTER_PROBE_INSTRUCTIONS, probe_cpu);
	int cycles = probe(open_fn, ctx, COUNTER_PROBE_CYCLES, probe_cpu);
	out->cycles = cycles == 0;
	if (instr == 0) {
		out->primary = COUNTER_PRIMARY_INSTRUCTIONS;
		snprintf(out->reason, sizeof(out->reason),
			 "counting instructions%s (hardware counters available)",
			 out->cycles ? " and cycles" : "");
		return 0;
	}
	if (!standin) {
		out->primary = COUNTER_PRIMARY_NONE;
		snprintf(out->reason, sizeof(out->reason),
			 "counting CPU time only: the hardware instructions counter is not "
			 "available (%s; a VM hiding its PMU?)", strerror(-instr));
		return 0;
	}
	int clock = probe(open_fn, ctx, COUNTER_PROBE_CPU_CLOCK, probe_cpu);
	if (clock) {
		snprintf(out->reason, sizeof(out->reason),
			 "no counting event opens (instructions: %s; cpu-clock: %s)",
			 strerror(-instr), strerror(-clock));
		return clock;
	}
	out->primary = COUNTER_PRIMARY_CPU_CLOCK;
	snprintf(out->reason, sizeof(out->reason),
		 "counting CPU time only: the hardware instructions counter is not available "
		 "(%s; a VM hiding its PMU?); the software cpu-clock stands in for it",
		 strerror(-instr));
	return 0;
}

const char *counters__primary_name(enum counter_primary p)
{
	return p == COUNTER_PRIMARY_INSTRUCTIONS ? "instructions" :
	       p == COUNTER_PRIMARY_CPU_CLOCK ? "cpu-clock" : "none";
}
