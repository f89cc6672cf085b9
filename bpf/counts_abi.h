/* counts_abi.h - kernel/user ABI of the counters concern (bpf/counts.bpf.h):
 * exact per-thread CPU time (the scheduler's own per-task sums) and, while
 * counting events are open, counter sums taken at every context switch.
 * Exited threads come as ring buffer records; live ones are read through the
 * task iterators (dump_task_counts, flush_unsampled) as whole records.
 *
 * Fixed-width types and explicit padding only; the _Static_asserts pin it.
 */
#ifndef DYNOPROF_BPF_COUNTS_ABI_H
#define DYNOPROF_BPF_COUNTS_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "events_abi.h"

/* Counting-event slots, read at every context switch and sample while open. */
enum counter_slot {
	COUNTER_PRIMARY = 0,   /* instructions, or the software stand-in (see user/capture/counters.h) */
	COUNTER_CYCLES = 1,    /* cycles when the PMU exposes them */
	COUNTER_SLOTS = 2,     /* slots in every counter array */
};

/* Exact on-CPU accounting of one thread, the value of task_counts (key: the
 * task). CPU time is the scheduler's own per-task sum (sum_exec_runtime);
 * counters are summed at context switches while counting events are open. */
struct task_counts {
	__u32 pid;             /* thread group id */
	__u32 flags;           /* TASK_COUNTS_* */
	__u64 cpu_ns;          /* on-CPU ns since counting began: filled only in
				* records sent to userspace (sum_exec_runtime - base_ns) */
	__u64 counters[COUNTER_SLOTS]; /* counter deltas while on CPU (0: slot unused) */
	__u64 base_ns;         /* sum_exec_runtime when counting began (0: born since) */
	__u64 sampled_ns;      /* sum_exec_runtime handed over so far (to samples, the
				* exit record, window flushes): only ever raised, by
				* compare-and-swap, so each ns is handed over once */
	__u64 pending[COUNTER_SLOTS]; /* of counters: not yet attributed to a sample */
	char comm[PROFILE_COMM_LEN]; /* thread name (filled in records sent to userspace) */
};
_Static_assert(sizeof(struct task_counts) == 80, "task_counts layout");

/* task_counts.flags */
#define TASK_COUNTS_EXITED 1u /* the exit record was sent: the entry stays (freed with
			       * the task) so a later sample hands over only time
			       * run since, never the whole life again */

/* One record of the flush_unsampled iterator (bpf_seq_write, read whole): a
 * live thread's CPU time not yet handed to any sample, now handed to the
 * reader (the agent credits it to the window being closed). Also the tail
 * of the exit and unsampled ring buffer records. */
struct unsampled_record {
	__u32 tid;                 /* thread id */
	__u32 pid;                 /* thread group id */
	__u32 ppid;                /* the process's parent (its tags are the
				    * fallback when the process is gone) */
	__u32 pad;                 /* zero */
	__u64 unsampled_ns;        /* on-CPU ns handed over by this record */
	char group_comm[PROFILE_COMM_LEN]; /* process name: the thread group leader's comm */
};
_Static_assert(sizeof(struct unsampled_record) == 40, "unsampled_record layout");

/* One record of the dump_task_counts iterator (bpf_seq_write, read whole). */
struct task_counts_record {
	__u32 tid;                 /* thread id */
	__u32 pad;                 /* zero */
	struct task_counts counts; /* totals since counting began */
};
_Static_assert(sizeof(struct task_counts_record) == 88, "task_counts_record layout");

/* What a CPU last accounted counters up to, the value of the per-CPU
 * checkpoints map (BPF only). */
struct cpu_checkpoint {
	__u32 tid;             /* thread on the CPU since the checkpoint; 0 none/idle */
	__u32 pad;             /* zero */
	__u64 counters[COUNTER_SLOTS]; /* counter values then */
};
_Static_assert(sizeof(struct cpu_checkpoint) == 24, "cpu_checkpoint layout");

/* Final counts of an exited thread. */
struct profile_task_counts_event {
	struct profile_event_header hdr; /* type == PROFILE_EVENT_TASK_COUNTS */
	struct task_counts counts;       /* totals over the capture */
	struct unsampled_record unsampled; /* its CPU time since its last sample (or
					    * window flush), up to the exit */
};
_Static_assert(sizeof(struct profile_task_counts_event) == 160, "task counts event layout");

/* CPU time a dead thread ran after its exit record (exit_files, exit_notify,
 * its last switch), sent when the task is freed. */
struct profile_unsampled_event {
	struct profile_event_header hdr;   /* type == PROFILE_EVENT_UNSAMPLED */
	struct unsampled_record unsampled; /* what it ran since */
};
_Static_assert(sizeof(struct profile_unsampled_event) == 80, "unsampled event layout");

#endif
