// SPDX-License-Identifier: GPL-2.0
/* sampling.bpf.h - the sampling concern: takes a sample of the current
 * thread (kernel and user stacks, plus what the Python walk, the tag reader
 * and the counters add) and sends it on the ring buffer. Programs, one per
 * mode (user/capture/sampler.c loads only the one in use): sample_stack on a
 * perf event, sample_on_tick on the scheduler tick (record -e tick). ABI:
 * bpf/sampling_abi.h. */
#ifndef DYNOPROF_SAMPLING_BPF_H
#define DYNOPROF_SAMPLING_BPF_H

#include "common.bpf.h"
#include "counts.bpf.h"
#include "python_walk.bpf.h"
#include "sampling_abi.h"
#include "tags.bpf.h"

/* Set by the loader before load. */
const volatile bool skip_idle = true;      /* ignore the idle task (pid 0) */

const volatile bool kernel_stacks = true;  /* collect kernel stacks */

/* Sampling on the scheduler tick: the tick's hrtimer function (0: not
 * sampling on the tick) and the sampling period in ns. */
const volatile __u64 tick_function = 0;
const volatile __u64 tick_sample_ns = 10000000;

/* Per-CPU scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profile_sample_event);
} scratch SEC(".maps");

#define STACK_BYTES (PROFILE_MAX_FRAMES * 8)

#include "unwind.bpf.h" /* writes into scratch */

/* Takes a sample of the current thread, weighing period; ctx is the calling
 * program's context (bpf_get_stack walks from it). */
static __always_inline int take_sample(void *ctx, __u64 period)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	__u32 zero = 0;

	if (skip_idle && tid == 0)
		return 0;
	if (!is_target(pid, tid))
		return 0;

	struct profile_sample_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	fill_header(&e->hdr, PROFILE_EVENT_SAMPLE, pid, tid);
	e->period = period;

	long klen = kernel_stacks ? bpf_get_stack(ctx, e->stack, STACK_BYTES, 0) : 0;
	if (klen < 0) {
		count_drop(DROP_KSTACK_ERROR);
		e->kstack_len = (__s32)klen;
		klen = 0;
	} else {
		e->kstack_len = (__s32)(klen / 8);
	}
	/* Bound the offset so the verifier sees the user stack stays in stack[]. */
	__u64 koff = (__u64)klen & 1023;
	if (koff > STACK_BYTES)
		koff = STACK_BYTES;

	long ulen = 0;
	struct task_struct *task = bpf_get_current_task_btf();
	/* CPython is built without frame pointers: past the first few frames its
	 * native stack is noise the Python walk replaces, so don't pay for it. */
	__u32 ubytes = walk_python && bpf_map_lookup_elem(&py_procs, &pid) ?
		       PY_NATIVE_FRAMES * 8 : STACK_BYTES;
	__u32 ucfi = ubytes == STACK_BYTES ? PROFILE_MAX_UFRAMES : ubytes / 8;
	int unwound = task->mm ? unwind_user_stack(pid, task, koff / 8, ucfi) : -1;
	if (unwound >= 0) { /* through CFI (bpf/unwind.bpf.h) */
		ulen = (long)unwound * 8;
		e->ustack_len = unwound;
	} else if (task->mm) { /* kernel threads have no user stack */
		ulen = bpf_get_stack(ctx, (char *)e->stack + koff, ubytes, BPF_F_USER_STACK);
		if (ulen < 0) {
			count_drop(DROP_USTACK_ERROR);
			e->ustack_len = (__s32)ulen;
			ulen = 0;
		} else {
			e->ustack_len = (__s32)(ulen / 8);
		}
	} else {
		e->ustack_len = 0;
	}
	__u64 uoff = (__u64)ulen & 2047;
	if (uoff > PROFILE_MAX_UFRAMES * 8)
		uoff = PROFILE_MAX_UFRAMES * 8;

	read_thread_tags(pid, e);
	sample_counts(pid, tid, e);
	{
		/* The process's name and parent: the agent labels by process. */
		struct task_struct *leader = task->group_leader;
		if (!leader || bpf_probe_read_kernel_str(e->group_comm, sizeof(e->group_comm),
							  leader->comm) < 0)
			__builtin_memcpy(e->group_comm, e->hdr.comm, sizeof(e->group_comm));
		e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	}
	e->py_len = 0;
	e->py_status = PY_WALK_NONE;
	if (walk_python) {
		__u32 status = PY_WALK_NONE;
		__u32 npy = walk_python_stack(pid, &status);
		struct py_frames_buf *buf = bpf_map_lookup_elem(&py_scratch, &zero);
		__u64 off = (koff + uoff) & 2047;
		__u64 bytes = (__u64)npy * sizeof(struct py_frame);
		if (bytes > sizeof(buf->frames))
			bytes = sizeof(buf->frames);
		if (buf && off <= PROFILE_NATIVE_BYTES && bytes &&
		    !bpf_probe_read_kernel((char *)e->stack + off, bytes & 4095, buf->frames)) {
			e->py_len = bytes / sizeof(struct py_frame);
			uoff += bytes;
		}
		e->py_status = status;
	}

	__u64 size = offsetof(struct profile_sample_event, stack) + koff + uoff;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, wakeup_flags(first_sight(pid))))
		count_drop(DROP_RINGBUF_FULL);
	return 0;
}

SEC("perf_event")
int sample_stack(struct bpf_perf_event_data *ctx)
{
	return take_sample(ctx, ctx->sample_period);
}

/* Sampling on the scheduler tick (record -e tick): a busy CPU is interrupted
 * HZ times a second anyway; sampling from inside that interrupt adds none.
 * Each CPU adds up the time between its ticks and samples once a period's
 * worth has passed, so samples come at the requested rate on average (at tick
 * granularity). The kernel stack starts in the interrupt path: userspace cuts
 * it at the interrupt entry. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tick_clock);
} tick_clocks SEC(".maps");

SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(sample_on_tick, struct hrtimer *timer, ktime_t *now)
{
	__u32 zero = 0;
	if (!tick_function || (__u64)timer->function != tick_function)
		return 0;
	struct tick_clock *tc = bpf_map_lookup_elem(&tick_clocks, &zero);
	if (!tc)
		return 0;
	/* Every tick stands for one tick period, wherever it falls: a longer step
	 * is a tick that stopped while the CPU idled, and idle time is not
	 * sampled (cpu-clock's idle samples are dropped too). */
	__u64 expiry = timer->node.expires;
	__u64 step = tc->last_expiry ? expiry - tc->last_expiry : 0;
	tc->last_expiry = expiry;
	if (step && (!tc->tick_ns || step < tc->tick_ns))
		tc->tick_ns = step;
	tc->owed_ns += tc->tick_ns;
	if (tc->owed_ns < tick_sample_ns)
		return 0;
	tc->owed_ns -= tick_sample_ns;
	if (tc->owed_ns >= tick_sample_ns)
		tc->owed_ns = 0; /* never a burst of catch-up samples */
	/* Asked for more samples than ticks: each one stands for a whole tick. */
	return take_sample(ctx, tc->tick_ns > tick_sample_ns ? tc->tick_ns : tick_sample_ns);
}

#endif
