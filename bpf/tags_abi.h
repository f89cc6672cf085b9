/* tags_abi.h - kernel/user ABI of the tag reader concern (bpf/tags.bpf.h):
 * which processes use libdynotag, and what reading a thread's tags at sample
 * time gave. The tags themselves travel in the sample record
 * (bpf/sampling_abi.h); the memory they are read from is libdynotag's
 * (bpf/dynotag_abi.h).
 *
 * Fixed-width types and explicit padding only; the _Static_asserts pin it.
 */
#ifndef DYNOPROF_BPF_TAGS_ABI_H
#define DYNOPROF_BPF_TAGS_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#include "dynotag_abi.h"

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
	__u32 abi_version;   /* its abi_version: records carry `request` from
			      * DYNOTAG_ABI_WHOLE_REQUESTS on (older ones end at tags[]) */
	__u32 pad;           /* zero */
};
_Static_assert(sizeof(struct tag_proc) == 16, "tag_proc layout");

#endif
