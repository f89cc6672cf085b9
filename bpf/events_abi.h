/* events_abi.h - kernel/user ABI every BPF concern shares: the ring buffer
 * protocol (record types and the header each record starts with), the
 * exec/exit notifications of process tracking (bpf/sample.bpf.c), and the
 * reasons a sample was lost or degraded, counted per CPU in the one `drops`
 * map each concern adds to.
 *
 * Included by BPF (with vmlinux.h types) and by userspace (with <linux/types.h>),
 * so it uses only fixed-width types and explicit padding; _Static_assert pins
 * the layout.
 */
#ifndef DYNOPROF_BPF_EVENTS_ABI_H
#define DYNOPROF_BPF_EVENTS_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bytes of a task name (the kernel's TASK_COMM_LEN). */
#define PROFILE_COMM_LEN 16

/* Record types on the ring buffer. */
enum profile_event_type {
	PROFILE_EVENT_SAMPLE = 1, /* a stack sample (struct profile_sample_event,
				   * bpf/sampling_abi.h) */
	PROFILE_EVENT_EXEC = 2,   /* a process exec'd: its mappings changed */
	PROFILE_EVENT_EXIT = 3,   /* a process (thread group) exited */
	PROFILE_EVENT_TASK_COUNTS = 4, /* a thread exited: its final counts
					* (struct profile_task_counts_event,
					* bpf/counts_abi.h) */
	PROFILE_EVENT_UNSAMPLED = 5, /* a dead thread's CPU time since its exit, handed
				      * to no sample (struct profile_unsampled_event,
				      * bpf/counts_abi.h) */
};

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
	DROP_PY_TORN = 10,        /* Python frame chain caught mid-update (PY_WALK_TORN):
				   * sample kept, outermost frames cut and marked */
	DROP_UNWIND_NO_CFI = 11,  /* CFI unwinding met a pc without CFI (anonymous or JIT
				   * memory, a gap): stack ends with [unwind: no CFI] */
	DROP_UNWIND_READ = 12,    /* CFI unwinding could not read the stack (page not
				   * resident): stack ends with [unwind: stack unreadable] */
	DROP_UNWIND_BAD_FRAME = 13, /* CFI unwinding found an impossible frame: stack
				   * ends with [unwind: bad frame] */
	DROP_UNWIND_TRUNCATED = 14, /* CFI unwinding stopped at the frame cap (128 frames;
				   * not a Python process's 32 below its Python frames) */
	DROP_UNWIND_PENDING = 15, /* a process whose unwind tables are not built yet
				   * (its first samples): the leaf kept, then
				   * [unwind: tables pending], never a guessed caller */
	DROP_REASON_COUNT = 16,   /* entries of the drops map */
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

/* Exec and exit notifications carry only the header. */
struct profile_task_event {
	struct profile_event_header hdr; /* type == PROFILE_EVENT_EXEC or _EXIT */
};
_Static_assert(sizeof(struct profile_task_event) == 40, "task event layout");

#endif
