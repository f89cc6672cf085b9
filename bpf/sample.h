/* profile.h - kernel/user ABI of the sampling program (bpf/sample.bpf.c).
 *
 * Included by BPF (with vmlinux.h types) and by userspace (with <stdint.h>), so it
 * uses only fixed-width types and explicit padding; _Static_assert pins the layout.
 */
#ifndef DYNOPROF_BPF_SAMPLE_H
#define DYNOPROF_BPF_SAMPLE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "python.h"
#include "dynotag_abi.h"

/* Frames per stack kept by bpf_get_stack (kernel and user each). 127 keeps the
 * byte size (127 * 8 = 1016) under a power-of-two mask the verifier can use. */
#define PROFILE_MAX_FRAMES 127
#define PROFILE_COMM_LEN 16

/* Record types on the ring buffer. */
enum profile_event_type {
	PROFILE_EVENT_SAMPLE = 1, /* a stack sample (struct profile_sample_event) */
	PROFILE_EVENT_EXEC = 2,   /* a process exec'd: its mappings changed */
	PROFILE_EVENT_EXIT = 3,   /* a process (thread group) exited */
	PROFILE_EVENT_TASK_COUNTS = 4, /* a thread exited: its final counts
					* (struct profile_task_counts_event) */
	PROFILE_EVENT_UNSAMPLED = 5, /* a dead thread's CPU time since its exit, handed
				      * to no sample (struct profile_unsampled_event) */
};

/* Counting-event slots, read at every context switch and sample while open. */
enum counter_slot {
	COUNTER_PRIMARY = 0,   /* instructions, or the software stand-in (see user/capture/counters.h) */
	COUNTER_CYCLES = 1,    /* cycles when the PMU exposes them */
	COUNTER_SLOTS = 2,
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

/* What a CPU last accounted counters up to. */
struct cpu_checkpoint {
	__u32 tid;             /* thread on the CPU since the checkpoint; 0 none/idle */
	__u32 pad;             /* zero */
	__u64 counters[COUNTER_SLOTS]; /* counter values then */
};

/* A CPU's state for sampling on the scheduler tick (record -e tick), the value
 * of the per-CPU tick_clocks map; userspace reads tick_ns for the tick rate. */
struct tick_clock {
	__u64 last_expiry; /* when this CPU's previous tick was due */
	__u64 tick_ns;     /* the tick period: ticks fall on a grid of it, so the
			    * smallest step between them seen is it exactly */
	__u64 owed_ns;     /* time not yet covered by a sample */
};
_Static_assert(sizeof(struct tick_clock) == 24, "tick_clock layout");

/* Reasons a sample was lost or degraded, counted per CPU in the `drops` map. */
enum profile_drop_reason {
	DROP_RINGBUF_FULL = 0,    /* ring buffer had no room: sample lost */
	DROP_KSTACK_ERROR = 1,    /* bpf_get_stack(kernel) failed: sample kept without kernel frames */
	DROP_USTACK_ERROR = 2,    /* bpf_get_stack(user) failed: sample kept without user frames */
	DROP_EVENT_RINGBUF_FULL = 3, /* exec/exit notification lost */
	DROP_PY_READ_ERROR = 4,   /* a Python frame read faulted: sample kept, walk cut short */
	DROP_PY_TRUNCATED = 5,    /* Python walk stopped before the outermost frame (deeper
				   * than PY_MAX_FRAMES, or steps used up by shim frames) */
	DROP_TAG_RACE = 6,        /* thread tags were being written: sample kept untagged */
	DROP_TAG_READ_ERROR = 7,  /* thread tag record unreadable: sample kept untagged */
	DROP_COUNTER_BACKWARDS = 8, /* a counter read below its checkpoint (a sample nested
				   * in a switch): that delta counted as 0 */
	DROP_FORK_UNTRACKED = 9,  /* a target's child could not be added to targets (map
				   * full): its samples are lost */
	DROP_REASON_COUNT = 10,
};

/* Common header of every ring buffer record. */
struct profile_event_header {
	__u32 type;     /* enum profile_event_type */
	__u32 pid;      /* thread group id (process id) */
	__u32 tid;      /* thread id */
	__u32 cpu;      /* CPU the event happened on */
	__u64 time_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	char comm[PROFILE_COMM_LEN]; /* thread name at event time */
};
_Static_assert(sizeof(struct profile_event_header) == 40, "header layout");

/* Bytes of stack[] the native frames may use (kernel + user). */
#define PROFILE_NATIVE_BYTES (2 * PROFILE_MAX_FRAMES * 8)

/* A sample: header, then in stack[]: kstack_len kernel frames, ustack_len user
 * frames (innermost first, as bpf_get_stack returns them), then py_len Python
 * frames (struct py_frame, 16 bytes each, innermost first). Only the used part
 * of stack[] is sent: the record size is offsetof(stack) + 8 * (kstack_len +
 * ustack_len) + 16 * py_len (negative lengths count as 0). */
struct profile_sample_event {
	struct profile_event_header hdr; /* type == PROFILE_EVENT_SAMPLE */
	__u64 period;      /* event period of this sample (ns for cpu-clock, count for HW events) */
	__s32 kstack_len;  /* kernel frames in stack[], or -errno when unavailable */
	__s32 ustack_len;  /* user frames after the kernel ones, or -errno; 0 for kernel threads */
	__u32 py_len;      /* Python frames after the user frames */
	__u32 py_status;   /* enum py_walk_status */
	__u64 delta_ns;    /* the thread's on-CPU ns since its previous sample, as of the
			    * scheduler's last update (0 when counting is off): summed per
			    * process, the exact total a window's samples are scaled to
			    * (user/aggregate/apportion.h) */
	__u64 delta[COUNTER_SLOTS]; /* likewise for the counters */
	__u32 tag_status;  /* enum tag_read_status */
	__u32 tag_count;   /* pairs valid in tags[] (TAG_READ_OK only) */
	struct dynotag_pair tags[DYNOTAG_MAX_TAGS]; /* the thread's tags (string ids) */
	char group_comm[PROFILE_COMM_LEN]; /* process name: the thread group leader's comm */
	__u32 ppid;        /* the process's parent (thread group id) */
	__u32 pad;         /* zero */
	__u64 stack[2 * PROFILE_MAX_FRAMES + 2 * PY_MAX_FRAMES]; /* see above */
};
_Static_assert(sizeof(struct profile_sample_event) ==
	       192 + (2 * PROFILE_MAX_FRAMES + 2 * PY_MAX_FRAMES) * 8, "sample layout");

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

/* Outcome of reading a thread's dynotag record at sample time. */
enum tag_read_status {
	TAG_READ_NONE = 0,   /* the process has no libdynotag, or the thread set no tag */
	TAG_READ_OK = 1,     /* tags[] is a consistent snapshot */
	TAG_READ_RACE = 2,   /* the thread was writing its tags: none reported */
	TAG_READ_ERROR = 3,  /* the record could not be read */
};

/* A process using libdynotag, the value of tag_procs (key: tgid). */
struct tag_proc {
	__u64 runtime_addr;  /* address of its `dynotag_runtime` object */
};
_Static_assert(sizeof(struct tag_proc) == 8, "tag_proc layout");

/* Exec and exit notifications carry only the header. */
struct profile_task_event {
	struct profile_event_header hdr; /* type == PROFILE_EVENT_EXEC or _EXIT */
};

#endif
