// SPDX-License-Identifier: GPL-2.0
/* counts.bpf.h - the counters concern: exact per-thread CPU time (the
 * scheduler's per-task sums) and counting-event sums, in task-local storage.
 * Programs (loaded only when counting, see user/capture/sampler.c): on_switch
 * (only with counting events open), on_free, and the task iterators
 * snapshot_task_counts, dump_task_counts and flush_unsampled; the sampling
 * programs call sample_counts(), on_exit calls flush_task_counts(). ABI:
 * bpf/counts_abi.h. */
#ifndef DYNOPROF_COUNTS_BPF_H
#define DYNOPROF_COUNTS_BPF_H

#include "common.bpf.h"
#include "counts_abi.h"
#include "sampling_abi.h" /* struct profile_sample_event */

/* Set by the loader before load. */
const volatile bool counting = false;      /* exact per-thread CPU time and counters */
const volatile bool counter_open[COUNTER_SLOTS] = {}; /* slots with a counting event */

/* Set by the loader once the programs are attached (CLOCK_MONOTONIC ns): the
 * start of exact counting. 0 until then: nothing is counted. */
volatile __u64 counting_since_ns = 0;

/* Counting events, one per CPU and slot (filled by userspace). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1); /* resized to the CPU count by the loader */
} counter_primary SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 1);
} counter_cycles SEC(".maps");

/* Per-thread exact accounting, in task-local storage: reached from the task
 * pointer without a hash lookup, freed with the task. Holds each thread's CPU
 * time baseline and, while counting events are open, its counter sums.
 * Exited threads are flushed to userspace at exit; live ones are read at the
 * end through the dump_task_counts iterator. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_counts);
} task_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_checkpoint);
} checkpoints SEC(".maps");

/* Reads the counters of this CPU into c[] (0 for slots not open). */
static __always_inline void read_counters(__u64 c[COUNTER_SLOTS])
{
	struct bpf_perf_event_value v;
	c[COUNTER_PRIMARY] = 0;
	c[COUNTER_CYCLES] = 0;
	if (counter_open[COUNTER_PRIMARY] &&
	    !bpf_perf_event_read_value(&counter_primary, BPF_F_CURRENT_CPU, &v, sizeof(v)))
		c[COUNTER_PRIMARY] = v.counter;
	if (counter_open[COUNTER_CYCLES] &&
	    !bpf_perf_event_read_value(&counter_cycles, BPF_F_CURRENT_CPU, &v, sizeof(v)))
		c[COUNTER_CYCLES] = v.counter;
}

static __always_inline bool counters_on(void)
{
	return counter_open[COUNTER_PRIMARY] || counter_open[COUNTER_CYCLES];
}

/* task: the thread (current: it is the running one, e.g. at its exit). */
static __always_inline bool is_counted(__u32 pid, struct task_struct *task, bool current)
{
	return (!filter_pids || bpf_map_lookup_elem(&targets, &pid)) &&
	       task_in_cgroup(task, current);
}

/* A thread born during the capture: all of its CPU time belongs to it. */
static __always_inline bool born_during_capture(struct task_struct *task)
{
	return task->start_time >= counting_since_ns;
}

/* task_struct.flags: the task is exiting (set before sched_process_exit). */
#define PF_EXITING 0x00000004

/* Creates the thread's accounting entry (or returns the one a racing caller
 * made). A thread alive when counting began gets its CPU time so far as its
 * baseline; one born since starts from zero. NULL when out of memory. */
static __always_inline struct task_counts *create_entry(struct task_struct *task, __u32 pid)
{
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0,
						      BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tc || tc->pid)
		return tc;
	tc->pid = pid;
	if (!born_during_capture(task)) {
		tc->base_ns = task->se.sum_exec_runtime;
		tc->sampled_ns = tc->base_ns;
	}
	return tc;
}

/* The thread's accounting entry, created on first use. A thread alive when
 * counting began got its entry (and baseline) from snapshot_task_counts; one
 * born since starts from zero; one the snapshot missed (a target added later)
 * is accounted from now on. An exiting thread gets none here: its exit flush
 * makes it (and hands over all its time), and one made after that flush
 * would start from zero and hand over the thread's whole life again. NULL
 * before counting began, for an exiting thread without one, or when out of
 * memory. */
static __always_inline struct task_counts *task_entry(struct task_struct *task, __u32 pid)
{
	if (!counting_since_ns)
		return NULL;
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0, 0);
	if (tc || (task->flags & PF_EXITING))
		return tc;
	return create_entry(task, pid);
}

/* Hands over the thread's CPU time up to runtime that nobody took yet, and
 * returns it (ns). Samples (on the thread's CPU), window flushes (an
 * iterator on any CPU) and the exit and free hooks all take their share
 * here: sampled_ns only rises, by compare-and-swap, so each ns goes to
 * exactly one taker. A taker that read an older runtime than the last one
 * gets 0 and leaves the rest to the next. Bounded retries: a taker that
 * keeps losing leaves its share to the next taker, never twice. */
static __always_inline __u64 claim_runtime(struct task_counts *tc, __u64 runtime)
{
	__u64 seen = tc->sampled_ns;
	for (int i = 0; i < 4; i++) {
		if (runtime <= seen)
			return 0;
		__u64 prev = __sync_val_compare_and_swap(&tc->sampled_ns, seen, runtime);
		if (prev == seen)
			return runtime - seen;
		seen = prev;
	}
	return 0;
}

/* Fills r with what identifies task's process (the CPU time is the caller's). */
static __always_inline void fill_unsampled(struct unsampled_record *r, struct task_struct *task,
					   __u64 ns)
{
	r->tid = task->pid;
	r->pid = task->tgid;
	r->ppid = BPF_CORE_READ(task, real_parent, tgid);
	r->pad = 0;
	r->unsampled_ns = ns;
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	if (!leader || bpf_probe_read_kernel_str(r->group_comm, sizeof(r->group_comm),
						  leader->comm) < 0)
		bpf_probe_read_kernel_str(r->group_comm, sizeof(r->group_comm), task->comm);
}

/* Adds the counter deltas since this CPU's checkpoint to tc. */
static __always_inline void account_counters(const struct cpu_checkpoint *cp,
					     struct task_counts *tc, const __u64 c[COUNTER_SLOTS])
{
	for (int i = 0; i < COUNTER_SLOTS; i++) {
		__u64 d = c[i] - cp->counters[i];
		/* A sample (NMI) nested in on_switch/on_exit moved the checkpoint
		 * past the values read before it: nothing to add, not ~2^64. */
		if (c[i] < cp->counters[i]) {
			count_drop(DROP_COUNTER_BACKWARDS);
			d = 0;
		}
		tc->counters[i] += d;
		tc->pending[i] += d;
	}
}

/* Restarts this CPU's checkpoint: tid runs from the counter values c[]. */
static __always_inline void move_checkpoint(struct cpu_checkpoint *cp, __u32 tid,
					    const __u64 c[COUNTER_SLOTS])
{
	cp->tid = tid;
	cp->counters[0] = c[0];
	cp->counters[1] = c[1];
}

/* Attached only while counting events are open (hardware instructions and
 * cycles, or the software stand-in): they count per CPU, so each switch
 * charges the outgoing thread what the CPU counted since the last one. CPU
 * time needs no hook: the scheduler keeps it per task (sum_exec_runtime). */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 zero = 0;
	if (!counting || !counters_on())
		return 0;
	struct cpu_checkpoint *cp = bpf_map_lookup_elem(&checkpoints, &zero);
	if (!cp)
		return 0;
	__u64 c[COUNTER_SLOTS];
	read_counters(c);
	__u32 prev_tid = prev->pid, prev_pid = prev->tgid;
	if (prev_tid && cp->tid == prev_tid && is_counted(prev_pid, prev, true)) {
		struct task_counts *tc = task_entry(prev, prev_pid);
		if (tc)
			account_counters(cp, tc, c);
	}
	move_checkpoint(cp, next->pid, c);
	return 0;
}

/* Charges the counters of the running thread's current slice (if this CPU's
 * checkpoint is its own) and restarts the checkpoint from now. */
static __always_inline void charge_current_slice(__u32 tid, struct task_counts *tc)
{
	__u32 zero = 0;
	struct cpu_checkpoint *cp = bpf_map_lookup_elem(&checkpoints, &zero);
	if (!cp)
		return;
	__u64 c[COUNTER_SLOTS];
	read_counters(c);
	if (cp->tid == tid)
		account_counters(cp, tc, c);
	/* Otherwise the thread has run since before the first switch we saw on
	 * this CPU (we attached mid-slice): count from now on, or a thread that
	 * is never switched out would never be counted. */
	move_checkpoint(cp, tid, c);
}

/* At a sample: hand the thread's CPU time and counts since its previous
 * sample to this sample. */
static __always_inline void sample_counts(__u32 pid, __u32 tid, struct profile_sample_event *e)
{
	e->delta_ns = 0;
	e->delta[0] = 0;
	e->delta[1] = 0;
	if (!counting || !is_counted(pid, NULL, true))
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_counts *tc = task_entry(task, pid);
	if (!tc)
		return;
	/* The scheduler brings sum_exec_runtime up to date at every tick and
	 * switch: what ran since the last tick goes to the next sample. */
	e->delta_ns = claim_runtime(tc, task->se.sum_exec_runtime);
	if (!counters_on())
		return;
	charge_current_slice(tid, tc);
	e->delta[0] = tc->pending[0];
	e->delta[1] = tc->pending[1];
	tc->pending[0] = 0;
	tc->pending[1] = 0;
}

/* Fills out (a record for userspace) with what task used since counting
 * began. False when the task is not accounted: it was alive when counting
 * began and the snapshot did not see it. */
static __always_inline bool task_totals(struct task_struct *task, struct task_counts *tc,
					struct task_counts *out)
{
	__u64 runtime = task->se.sum_exec_runtime;
	if (tc) {
		__builtin_memcpy(out, tc, sizeof(*out));
	} else {
		if (!born_during_capture(task))
			return false;
		__builtin_memset(out, 0, sizeof(*out));
		out->pid = task->tgid;
	}
	out->cpu_ns = runtime > out->base_ns ? runtime - out->base_ns : 0;
	bpf_probe_read_kernel_str(out->comm, sizeof(out->comm), task->comm);
	return true;
}

/* Sends an exiting thread's final counts to userspace, with its CPU time no
 * sample took (since its last sample, or all of it). Its entry stays, marked
 * exited and fully handed over: the thread still runs after this tracepoint
 * (exit_files, exit_notify, its last switch), and a sample then must hand
 * over only that, which on_free sends the rest of. The entry is freed with
 * the task. */
static __always_inline void flush_task_counts(__u32 pid, __u32 tid)
{
	if (!counting_since_ns || !is_counted(pid, NULL, true))
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0, 0);
	/* Without an entry, a thread born during the capture is accounted from
	 * zero; one alive before that the snapshot missed is not (as before). */
	bool accounted = tc || born_during_capture(task);
	if (tc && counters_on()) {
		charge_current_slice(tid, tc);
		__u32 zero = 0;
		struct cpu_checkpoint *cp = bpf_map_lookup_elem(&checkpoints, &zero);
		if (cp)
			cp->tid = 0; /* its last switch-out must not count it again */
	}
	if (!tc)
		tc = create_entry(task, pid);
	if (!tc) /* out of memory: later samples may hand over its whole life */
		return;
	__u64 ns = claim_runtime(tc, task->se.sum_exec_runtime);
	tc->flags |= TASK_COUNTS_EXITED;
	if (!accounted)
		return;
	struct profile_task_counts_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_EVENT_RINGBUF_FULL);
		return;
	}
	task_totals(task, tc, &e->counts);
	fill_unsampled(&e->unsampled, task, ns);
	fill_header(&e->hdr, PROFILE_EVENT_TASK_COUNTS, pid, tid);
	bpf_ringbuf_submit(e, wakeup_flags(false));
}

/* A dead thread is freed after its last switch (the scheduler's reference
 * is the last but one): its CPU time is final. Sends what it ran since its
 * exit record that no sample took; for a thread group leader always (even
 * 0 ns): from then on its pid may belong to a new process. */
SEC("tp_btf/sched_process_free")
int BPF_PROG(on_free, struct task_struct *p)
{
	if (!counting || !counting_since_ns || !p)
		return 0;
	struct task_counts *tc = bpf_task_storage_get(&task_counts, p, 0, 0);
	if (!tc || !(tc->flags & TASK_COUNTS_EXITED))
		return 0;
	__u64 ns = claim_runtime(tc, p->se.sum_exec_runtime);
	if (!ns && p->pid != p->tgid)
		return 0;
	struct profile_unsampled_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_EVENT_RINGBUF_FULL);
		return 0;
	}
	fill_unsampled(&e->unsampled, p, ns);
	e->hdr.type = PROFILE_EVENT_UNSAMPLED;
	e->hdr.pid = p->tgid;
	e->hdr.tid = p->pid;
	e->hdr.cpu = bpf_get_smp_processor_id();
	e->hdr.time_ns = bpf_ktime_get_ns();
	bpf_probe_read_kernel_str(e->hdr.comm, sizeof(e->hdr.comm), p->comm);
	bpf_ringbuf_submit(e, wakeup_flags(false));
	return 0;
}

/* Run once when counting begins: records every accounted thread's CPU time
 * so far as its baseline (task_counts.base_ns). */
SEC("iter/task")
int snapshot_task_counts(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !counting_since_ns || !is_counted(task->tgid, task, false))
		return 0;
	task_entry(task, task->tgid);
	return 0;
}

/* Writes every live accounted thread's totals (struct task_counts_record) to
 * the iterator's file: userspace reads them at the end of a capture. */
SEC("iter/task")
int dump_task_counts(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !counting_since_ns || !is_counted(task->tgid, task, false))
		return 0;
	struct task_counts *tc = bpf_task_storage_get(&task_counts, task, 0, 0);
	struct task_counts_record rec = { .tid = task->pid };
	if (task_totals(task, tc, &rec.counts))
		bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

/* Hands every live accounted thread's CPU time not yet taken by a sample to
 * the reader (struct unsampled_record each): the agent runs it when it closes
 * a window, so the window gets the CPU time used in it, not at some later
 * sample. */
SEC("iter/task")
int flush_unsampled(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	if (!task || !counting_since_ns || !is_counted(task->tgid, task, false))
		return 0;
	struct task_counts *tc = task_entry(task, task->tgid);
	if (!tc)
		return 0;
	__u64 ns = claim_runtime(tc, task->se.sum_exec_runtime);
	if (!ns)
		return 0;
	struct unsampled_record rec = {};
	fill_unsampled(&rec, task, ns);
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

#endif
