// SPDX-License-Identifier: GPL-2.0
/* common.bpf.h - what every BPF concern of bpf/sample.bpf.c shares: the ring
 * buffer and its wake-up policy, the per-CPU drop counters, the target
 * filters (processes, threads) and reading a thread's pthread TSS slot (the
 * Python walk and the tag reader both go through it). Included first, once,
 * by bpf/sample.bpf.c; the ABI is bpf/events_abi.h. */
#ifndef DYNOPROF_COMMON_BPF_H
#define DYNOPROF_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "events_abi.h"
#include "python_abi.h" /* struct py_tls_layout */

/* Set by the loader before load. */
const volatile bool filter_pids = false;   /* sample only tgids in `targets` */
const volatile bool filter_tids = false;   /* sample only tids in `target_tids` */
const volatile bool follow_children = false; /* add forked children of targets */
/* `--cgroup`: only tasks in the cgroup v2 with this id, at this depth below
 * the root (1: a child of the root), or in a cgroup below it. */
const volatile bool filter_cgroup = false;
const volatile __u32 cgroup_level = 0;
const volatile __u64 cgroup_id = 0;

/* glibc pthread_getspecific layout, calibrated by userspace. */
const volatile struct py_tls_layout tls = { .specific_1stblock = 0x310, .entry_size = 16,
					    .data_offset = 8 };

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

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

/* Processes sampled recently (LRU): the first sample of a process wakes the
 * reader at once, so it reads the process's mappings while it lives. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} seen_pids SEC(".maps");

/* Waking the reader on every record costs an irq_work per sample (it was most
 * of the program's cost); userspace drains every POLL interval anyway, so wake
 * it only for news (a new process's first sample, also after an exec) or once
 * a backlog builds up. */
#define WAKEUP_BACKLOG_BYTES (256 * 1024)

static __always_inline __u64 wakeup_flags(bool news)
{
	if (news || bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > WAKEUP_BACKLOG_BYTES)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Returns true the first time pid is seen (since it was last evicted). */
static __always_inline bool first_sight(__u32 pid)
{
	__u8 one = 1;
	if (bpf_map_lookup_elem(&seen_pids, &pid))
		return false;
	bpf_map_update_elem(&seen_pids, &pid, &one, BPF_ANY);
	return true;
}

/* Deepest cgroup level the ancestor check reads (the kernel's own limit is
 * far beyond real hierarchies). */
#define CGROUP_MAX_LEVEL 64

/* Whether task runs in the filter's cgroup or below it (true when not
 * filtering): its default-hierarchy cgroup's ancestor at cgroup_level. The
 * current task takes the helper (one call); other tasks (iterators, the
 * task switched out) are read through cgroup->ancestors[]. */
static __always_inline bool task_in_cgroup(struct task_struct *task, bool current)
{
	if (!filter_cgroup)
		return true;
	if (current)
		return bpf_get_current_ancestor_cgroup_id(cgroup_level) == cgroup_id;
	struct cgroup *cg = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	__u32 level = cgroup_level;
	if (!cg || level > CGROUP_MAX_LEVEL || BPF_CORE_READ(cg, level) < (int)level)
		return false;
	struct cgroup *anc = NULL;
	bpf_probe_read_kernel(&anc, sizeof(anc), (void *)cg +
			      bpf_core_field_offset(struct cgroup, ancestors) + level * sizeof(anc));
	return anc && BPF_CORE_READ(anc, kn, id) == cgroup_id;
}

static __always_inline bool is_target(__u32 pid, __u32 tid)
{
	if (filter_pids && !bpf_map_lookup_elem(&targets, &pid))
		return false;
	if (filter_tids && !bpf_map_lookup_elem(&target_tids, &tid))
		return false;
	return task_in_cgroup(NULL, true);
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

static __always_inline int read_user_u64(__u64 addr, __u64 *out)
{
	return bpf_probe_read_user(out, sizeof(*out), (const void *)addr);
}

/* Reads the value glibc's pthread_getspecific(key) would return in the current
 * thread (keys < 32 only: the first-level block). */
static __always_inline int read_thread_specific(__u32 key, __u64 *value)
{
	if (key >= 32)
		return -1;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (!fsbase)
		return -1;
	return read_user_u64(fsbase + tls.specific_1stblock + (__u64)key * tls.entry_size +
			     tls.data_offset, value);
}

static __always_inline void notify(__u32 type, __u32 pid, __u32 tid, bool wake)
{
	struct profile_task_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_drop(DROP_EVENT_RINGBUF_FULL);
		return;
	}
	fill_header(&e->hdr, type, pid, tid);
	bpf_ringbuf_submit(e, wakeup_flags(wake));
}

#endif
