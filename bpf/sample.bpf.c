// SPDX-License-Identifier: GPL-2.0
/* sample.bpf.c - samples kernel and user stacks on a perf event on every CPU,
 * streams them to userspace over a ring buffer, and notifies exec/exit so that
 * userspace can read a process's mappings while it lives. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "sample.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile bool filter_pids = false;   /* sample only tgids in `targets` */
const volatile bool filter_tids = false;   /* sample only tids in `target_tids` */
const volatile bool follow_children = false; /* add forked children of targets */
const volatile bool skip_idle = true;      /* ignore the idle task (pid 0) */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by the loader */
} events SEC(".maps");

/* Process ids to sample when filter_pids (value unused). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} targets SEC(".maps");

/* Thread ids to sample when filter_tids. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} target_tids SEC(".maps");

/* Per-CPU loss counters indexed by enum profile_drop_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASON_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Per-CPU scratch record: too large for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct profile_sample_event);
} scratch SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

static __always_inline bool is_target(__u32 pid, __u32 tid)
{
	if (filter_pids && !bpf_map_lookup_elem(&targets, &pid))
		return false;
	if (filter_tids && !bpf_map_lookup_elem(&target_tids, &tid))
		return false;
	return true;
}

static __always_inline void fill_header(struct profile_event_header *h, __u32 type,
					__u32 pid, __u32 tid)
{
	h->type = type;
	h->pid = pid;
	h->tid = tid;
	h->cpu = bpf_get_smp_processor_id();
	h->time_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

#define STACK_BYTES (PROFILE_MAX_FRAMES * 8)

SEC("perf_event")
int sample_stack(struct bpf_perf_event_data *ctx)
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
	e->period = ctx->sample_period;

	long klen = bpf_get_stack(ctx, e->stack, STACK_BYTES, 0);
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
	if (task->mm) { /* kernel threads have no user stack */
		ulen = bpf_get_stack(ctx, (char *)e->stack + koff, STACK_BYTES, BPF_F_USER_STACK);
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
	__u64 uoff = (__u64)ulen & 1023;
	if (uoff > STACK_BYTES)
		uoff = STACK_BYTES;

	__u64 size = offsetof(struct profile_sample_event, stack) + koff + uoff;
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, 0))
		count_drop(DROP_RINGBUF_FULL);
	return 0;
}

static __always_inline void notify(__u32 type, __u32 pid, __u32 tid)
{
	struct profile_task_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_EVENT_RINGBUF_FULL);
		return;
	}
	fill_header(&e->hdr, type, pid, tid);
	bpf_ringbuf_submit(e, 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = p->tgid, tid = p->pid;
	if (filter_pids && !bpf_map_lookup_elem(&targets, &pid))
		return 0;
	notify(PROFILE_EVENT_EXEC, pid, tid);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 pid = p->tgid, tid = p->pid;
	if (pid != tid) /* only the thread group leader ends the process */
		return 0;
	if (!filter_pids || bpf_map_lookup_elem(&targets, &pid))
		notify(PROFILE_EVENT_EXIT, pid, tid);
	if (filter_pids)
		bpf_map_delete_elem(&targets, &pid);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ppid = parent->tgid, cpid = child->tgid;
	__u8 one = 1;
	if (!follow_children || !filter_pids || ppid == cpid)
		return 0;
	if (bpf_map_lookup_elem(&targets, &ppid))
		bpf_map_update_elem(&targets, &cpid, &one, BPF_ANY);
	return 0;
}
