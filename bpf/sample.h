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

/* Frames per stack kept by bpf_get_stack (kernel and user each). 127 keeps the
 * byte size (127 * 8 = 1016) under a power-of-two mask the verifier can use. */
#define PROFILE_MAX_FRAMES 127
#define PROFILE_COMM_LEN 16

/* Record types on the ring buffer. */
enum profile_event_type {
	PROFILE_EVENT_SAMPLE = 1, /* a stack sample (struct profile_sample_event) */
	PROFILE_EVENT_EXEC = 2,   /* a process exec'd: its mappings changed */
	PROFILE_EVENT_EXIT = 3,   /* a process (thread group) exited */
};

/* Reasons a sample was lost or degraded, counted per CPU in the `drops` map. */
enum profile_drop_reason {
	DROP_RINGBUF_FULL = 0,    /* ring buffer had no room: sample lost */
	DROP_KSTACK_ERROR = 1,    /* bpf_get_stack(kernel) failed: sample kept without kernel frames */
	DROP_USTACK_ERROR = 2,    /* bpf_get_stack(user) failed: sample kept without user frames */
	DROP_EVENT_RINGBUF_FULL = 3, /* exec/exit notification lost */
	DROP_REASON_COUNT = 4,
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

/* A sample: header, then kstack_len kernel frames followed by ustack_len user
 * frames in stack[] (innermost first, as bpf_get_stack returns them). Only the
 * used part of stack[] is sent: record size is offsetof(stack) + frames * 8. */
struct profile_sample_event {
	struct profile_event_header hdr; /* type == PROFILE_EVENT_SAMPLE */
	__u64 period;      /* event period of this sample (ns for cpu-clock, count for HW events) */
	__s32 kstack_len;  /* kernel frames in stack[], or -errno when unavailable */
	__s32 ustack_len;  /* user frames after the kernel ones, or -errno; 0 for kernel threads */
	__u64 stack[2 * PROFILE_MAX_FRAMES + 2]; /* kernel frames then user frames */
};
_Static_assert(sizeof(struct profile_sample_event) == 56 + (2 * 127 + 2) * 8, "sample layout");

/* Exec and exit notifications carry only the header. */
struct profile_task_event {
	struct profile_event_header hdr; /* type == PROFILE_EVENT_EXEC or _EXIT */
};

#endif
