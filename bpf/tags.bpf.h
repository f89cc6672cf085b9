// SPDX-License-Identifier: GPL-2.0
/* tags.bpf.h - the tag reader concern: copies the sampled thread's libdynotag
 * record (bpf/dynotag_abi.h), with its open request's number, into the
 * sample under its sequence counter. No
 * program of its own: the sampling programs call read_thread_tags(). ABI:
 * bpf/tags_abi.h. */
#ifndef DYNOPROF_TAGS_BPF_H
#define DYNOPROF_TAGS_BPF_H

#include "common.bpf.h"
#include "sampling_abi.h" /* struct profile_sample_event */
#include "tags_abi.h"

/* Set by the loader before load. */
const volatile bool thread_tags = true;    /* read libdynotag thread tags */

/* Processes using libdynotag (key: tgid), filled by userspace at discovery. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct tag_proc);
} tag_procs SEC(".maps");

/* Copies the thread's dynotag record into the sample, under its sequence
 * counter: a record being written (odd seq, or seq changed during the copy) is
 * reported as TAG_READ_RACE, never as tags the thread did not hold. */
static __always_inline void read_thread_tags(__u32 pid, struct profile_sample_event *e)
{
	e->tag_status = TAG_READ_NONE;
	e->tag_count = 0;
	e->request = 0;
	if (!thread_tags)
		return;
	struct tag_proc *proc = bpf_map_lookup_elem(&tag_procs, &pid);
	if (!proc)
		return;
	__s32 key = -1;
	__u64 record = 0;
	if (bpf_probe_read_user(&key, sizeof(key), (const void *)(proc->runtime_addr +
			offsetof(struct dynotag_runtime, tss_key))) || key < 0)
		return;
	if (read_thread_specific((__u32)key, &record) || !record)
		return;
	__u32 seq_before = 0, seq_after = 0, count = 0, request = 0;
	if (bpf_probe_read_user(&seq_before, sizeof(seq_before), (const void *)record) ||
	    bpf_probe_read_user(&count, sizeof(count), (const void *)(record + 4)) ||
	    (proc->abi_version >= DYNOTAG_ABI_WHOLE_REQUESTS &&
	     bpf_probe_read_user(&request, sizeof(request), (const void *)(record +
				 offsetof(struct dynotag_record, request)))) ||
	    bpf_probe_read_user(e->tags, sizeof(e->tags),
				(const void *)(record + offsetof(struct dynotag_record, tags))) ||
	    bpf_probe_read_user(&seq_after, sizeof(seq_after), (const void *)record)) {
		e->tag_status = TAG_READ_ERROR;
		count_drop(DROP_TAG_READ_ERROR);
		return;
	}
	if ((seq_before & 1) || seq_before != seq_after) {
		e->tag_status = TAG_READ_RACE;
		count_drop(DROP_TAG_RACE);
		return;
	}
	e->tag_count = count > DYNOTAG_MAX_TAGS ? DYNOTAG_MAX_TAGS : count;
	e->request = request;
	e->tag_status = TAG_READ_OK;
}

#endif
