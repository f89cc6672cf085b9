// SPDX-License-Identifier: GPL-2.0
/* sample.bpf.c - dynoprof's one BPF object (one skeleton, shared maps): samples
 * kernel and user stacks on a perf event or the scheduler tick on every CPU,
 * streams them to userspace over a ring buffer, and notifies exec/exit so that
 * userspace can read a process's mappings while it lives.
 *
 * Each concern lives in its own header, with its own kernel/user ABI:
 *   common.bpf.h       ring buffer, drops, target filters   events_abi.h
 *   sampling.bpf.h     sample_stack, sample_on_tick         sampling_abi.h
 *   python_walk.bpf.h  the CPython frame walk               python_abi.h
 *   tags.bpf.h         the libdynotag thread tag reader     tags_abi.h
 *   counts.bpf.h       exact CPU time and counters          counts_abi.h
 * This file keeps process tracking (on_exec, on_exit, on_fork). The loader
 * (user/capture/sampler.c) loads only the programs its mode uses. */
#include "common.bpf.h"
#include "python_walk.bpf.h"
#include "tags.bpf.h"
#include "counts.bpf.h"
#include "sampling.bpf.h"

char LICENSE[] SEC("license") = "GPL";

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = p->tgid, tid = p->pid;
	if (filter_pids && !bpf_map_lookup_elem(&targets, &pid))
		return 0;
	if (!task_in_cgroup(p, true)) /* the exec'ing task is the current one */
		return 0;
	/* No wake-up: the record only has to be read before the new image's
	 * first sample, which follows it in the ring buffer and is news (it
	 * wakes the reader). A host's churn of short-lived commands must not
	 * wake the reader for each. */
	notify(PROFILE_EVENT_EXEC, pid, tid, false);
	bpf_map_delete_elem(&seen_pids, &pid); /* its next sample is news again */
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 pid = p->tgid, tid = p->pid;
	if (counting)
		flush_task_counts(pid, tid);
	if (pid != tid) /* only the thread group leader ends the process */
		return 0;
	if (!filter_pids || bpf_map_lookup_elem(&targets, &pid))
		notify(PROFILE_EVENT_EXIT, pid, tid, false);
	bpf_map_delete_elem(&seen_pids, &pid);
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
	/* A full targets map would lose the child's samples: counted. */
	if (bpf_map_lookup_elem(&targets, &ppid) &&
	    bpf_map_update_elem(&targets, &cpid, &one, BPF_ANY))
		count_drop(DROP_FORK_UNTRACKED);
	return 0;
}
