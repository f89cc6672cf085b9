/* sampling_abi.h - kernel/user ABI of the sampling concern (bpf/sampling.bpf.h):
 * the stack sample record a perf event or the scheduler tick produces. A
 * sample carries what the other concerns add to it at sample time: Python
 * frames (bpf/python_abi.h), the thread's tags (bpf/tags_abi.h) and its CPU
 * time and counter deltas (bpf/counts_abi.h).
 *
 * Included by BPF (with vmlinux.h types) and by userspace (with <linux/types.h>),
 * so it uses only fixed-width types and explicit padding; _Static_assert pins
 * the layout.
 */
#ifndef DYNOPROF_BPF_SAMPLING_ABI_H
#define DYNOPROF_BPF_SAMPLING_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "counts_abi.h"
#include "events_abi.h"
#include "python_abi.h"
#include "tags_abi.h"

/* Frames per stack kept by bpf_get_stack (kernel and user each). 127 keeps the
 * byte size (127 * 8 = 1016) under a power-of-two mask the verifier can use. */
#define PROFILE_MAX_FRAMES 127
/* User frames the CFI unwinder keeps (bpf/unwind.bpf.h): a stack deeper than
 * this is cut, the outermost frames dropped and counted. */
#define PROFILE_MAX_UFRAMES 128

/* A CPU's state for sampling on the scheduler tick (record -e tick), the value
 * of the per-CPU tick_clocks map; userspace reads tick_ns for the tick rate. */
struct tick_clock {
	__u64 last_expiry; /* when this CPU's previous tick was due */
	__u64 tick_ns;     /* the tick period: ticks fall on a grid of it, so the
			    * smallest step between them seen is it exactly */
	__u64 owed_ns;     /* time not yet covered by a sample */
};
_Static_assert(sizeof(struct tick_clock) == 24, "tick_clock layout");

/* Bytes of stack[] the native frames may use (kernel + user). */
#define PROFILE_NATIVE_BYTES ((PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES) * 8)

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
	__u32 request;     /* the thread's open request number (libdynotag ABI 2), 0: none */
	__u64 stack[PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES + 2 * PY_MAX_FRAMES]; /* see above */
};
_Static_assert(sizeof(struct profile_sample_event) ==
	       192 + (PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES + 2 * PY_MAX_FRAMES) * 8,
	       "sample layout");

#endif
