// SPDX-License-Identifier: GPL-2.0
/* unwind.bpf.h - the native unwinding concern: walks the sampled thread's
 * user stack through CFI rows (bpf/unwind_abi.h) for processes userspace
 * published in unwind_procs, frame by frame (bpf_loop): per frame, the
 * mapping of the pc (binary search of the process's mappings), then its
 * file's row (binary search of the file's table in unwind_tables), then the caller's
 * registers. Mappings without a table are walked by frame pointers; memory
 * with no mapping known (anonymous, JIT) ends the stack with a marker frame.
 * No program of its own: the sampling programs call unwind_user_stack(). */
#ifndef DYNOPROF_UNWIND_BPF_H
#define DYNOPROF_UNWIND_BPF_H

#include "common.bpf.h"
#include "sampling_abi.h"
#include "unwind_abi.h"

/* Included by sampling.bpf.h after its per-CPU `scratch` record, which the
 * walk writes frames into. */

/* Set by the loader before load. */
const volatile bool unwind_cfi = false; /* unwind published processes through CFI */

/* One file's rows (an inner map: created by userspace with exactly the
 * file's row count, BPF_F_INNER_MAP letting sizes differ, so kernel memory
 * follows the files in use). This is the template only. */
struct unwind_rows_inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct unwind_row));
};

/* Every file's table by slot (struct unwind_map.table): slots are filled and
 * emptied by userspace (user/unwind/unwind_registry.c) as files come and go. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, UNWIND_MAX_TABLES);
	__type(key, __u32);
	__array(values, struct unwind_rows_inner);
} unwind_tables SEC(".maps");

/* Processes unwound through CFI (key: tgid), with their executable mappings. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct unwind_proc);
} unwind_procs SEC(".maps");

/* The ucontext a signal trampoline's rsp points at (x86_64): uc_flags,
 * uc_link, uc_stack (24 bytes), then sigcontext's r8..r15, rdi, rsi, rbp,
 * rbx, rdx, rax, rcx, rsp, rip. */
#define UC_RBP 120
#define UC_RSP 160
#define UC_RIP 168

/* State of one walk, shared with the bpf_loop callback. */
struct unwind_walk {
	__u64 pc;      /* the frame's instruction pointer (a return address but
			* for the first frame and after a signal frame) */
	__u64 sp;      /* its stack pointer */
	__u64 bp;      /* its rbp */
	__u32 pid;     /* whose mappings */
	__u32 base;    /* index in stack[] of the first user frame */
	__u32 max;     /* user frames to keep at most */
	__u32 n;       /* frames emitted */
	__u32 exact;   /* pc is exact: look it up as is, not pc - 1 */
	__u32 end;     /* 0 going on; 1 the outermost frame reached; else
			* UNWIND_MARKER_BASE's reason + 1 (see unwind_end) */
};

/* Ends the walk for reason (enum unwind_end_reason): counted, and a marker
 * frame names it in the stack. */
static __always_inline int unwind_end(struct unwind_walk *w, __u32 reason)
{
	w->end = reason + 1;
	return 1;
}

/* The sampled process's unwind_proc, copied once per sample: each frame's
 * search then reads a per-CPU array, not the hash map. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_proc);
} unwind_proc_copy SEC(".maps");

/* State of one binary search of the process's mappings. */
struct map_search {
	__u64 pc;     /* the address looked up */
	__u32 lo;     /* mappings below lo start at or below pc */
	__u32 hi;     /* mappings from hi on start above pc */
};

static int map_search_step(__u32 index, struct map_search *s)
{
	__u32 zero = 0;
	if (s->lo >= s->hi)
		return 1;
	struct unwind_proc *proc = bpf_map_lookup_elem(&unwind_proc_copy, &zero);
	if (!proc)
		return 1;
	__u32 mid = s->lo + (s->hi - s->lo) / 2;
	if (proc->maps[mid & (UNWIND_MAX_MAPS - 1)].start <= s->pc)
		s->lo = mid + 1;
	else
		s->hi = mid;
	return 0;
}

/* State of one binary search of a file's rows. */
struct row_search {
	__u32 lo;     /* rows below lo start at or below pc */
	__u32 hi;     /* rows from hi on start above pc */
	__u32 table;  /* the file's slot in unwind_tables */
	__u32 pc;     /* the file address looked up */
	__u32 failed; /* a row could not be read */
};

static int row_search_step(__u32 index, struct row_search *s)
{
	if (s->lo >= s->hi)
		return 1;
	__u32 mid = s->lo + (s->hi - s->lo) / 2;
	/* The outer look-up is inlined (an array): a load, not a call. */
	void *rows = bpf_map_lookup_elem(&unwind_tables, &s->table);
	struct unwind_row *r = rows ? bpf_map_lookup_elem(rows, &mid) : NULL;
	if (!r) {
		s->failed = 1;
		return 1;
	}
	if (r->pc <= s->pc)
		s->lo = mid + 1;
	else
		s->hi = mid;
	return 0;
}

/* Ends the walk at the outermost frame. */
static __always_inline int unwind_outermost(struct unwind_walk *w)
{
	w->end = 1;
	return 1;
}

static int unwind_step(__u32 index, struct unwind_walk *w)
{
	__u32 zero = 0;
	if (w->n >= w->max)
		return 1;
	struct profile_sample_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 1;
	__u32 slot = w->base + w->n;
	if (slot >= PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES)
		return 1;
	e->stack[slot] = w->pc;
	w->n++;

	struct unwind_proc *proc = bpf_map_lookup_elem(&unwind_proc_copy, &zero);
	if (!proc)
		return unwind_end(w, UNWIND_END_NO_CFI);
	__u64 pc = w->exact ? w->pc : w->pc - 1;

	/* The mapping: the last one starting at or below pc. */
	struct map_search ms = { .lo = 0, .hi = proc->nmaps, .pc = pc };
	if (ms.hi > UNWIND_MAX_MAPS)
		ms.hi = UNWIND_MAX_MAPS;
	bpf_loop(UNWIND_MAP_STEPS, map_search_step, &ms, 0);
	if (!ms.lo)
		return unwind_end(w, UNWIND_END_NO_CFI);
	struct unwind_map *m = &proc->maps[(ms.lo - 1) & (UNWIND_MAX_MAPS - 1)];
	if (pc >= m->end)
		return unwind_end(w, UNWIND_END_NO_CFI);

	__u64 cfa, ra = 0, bp = w->bp;
	__u8 kind = UNWIND_CFA_GAP;
	struct unwind_row *row = NULL;
	if (m->kind == UNWIND_MAP_CFI) {
		__u64 rel = pc - m->bias;
		if (rel > 0xffffffffull)
			return unwind_end(w, UNWIND_END_NO_CFI);
		/* The row: a loop of its own (bpf_loop), so the verifier checks
		 * one step, not every path through 24. */
		struct row_search rs = { .lo = 0, .hi = m->row_count, .table = m->table,
					 .pc = (__u32)rel };
		bpf_loop(UNWIND_SEARCH_STEPS, row_search_step, &rs, 0);
		if (rs.failed)
			return unwind_end(w, UNWIND_END_NO_CFI);
		if (rs.lo) { /* else before the first row: a gap */
			__u32 at = rs.lo - 1;
			void *rows = bpf_map_lookup_elem(&unwind_tables, &rs.table);
			row = rows ? bpf_map_lookup_elem(rows, &at) : NULL;
			if (!row)
				return unwind_end(w, UNWIND_END_NO_CFI);
			kind = row->kind;
		}
	}
	if ((kind & UNWIND_CFA_MASK) == UNWIND_CFA_GAP) {
		/* No CFI here: the frame pointer, as bpf_get_stack walks. */
		if (!w->bp || w->bp < w->sp)
			return unwind_outermost(w); /* none: where bpf_get_stack ends too */
		if (read_user_u64(w->bp, &bp) || read_user_u64(w->bp + 8, &ra))
			return unwind_end(w, UNWIND_END_READ);
		cfa = w->bp + 16;
		goto next;
	}
	if (!row)
		return unwind_end(w, UNWIND_END_NO_CFI);
	__s64 off = row->cfa_off;
	if (kind & UNWIND_CFA_OFF_X8)
		off *= 8;
	switch (kind & UNWIND_CFA_MASK) {
	case UNWIND_CFA_RSP:
		cfa = w->sp + off;
		break;
	case UNWIND_CFA_RBP:
		cfa = w->bp + off;
		break;
	case UNWIND_CFA_RBP_DEREF:
		if (read_user_u64(w->bp + off, &cfa))
			return unwind_end(w, UNWIND_END_READ);
		break;
	case UNWIND_CFA_PLT:
		cfa = w->sp + 8 + ((w->pc & 15) >= (__u64)off ? 8 : 0);
		break;
	case UNWIND_CFA_SIGNAL: {
		/* The interrupted context: its pc is exact. */
		__u64 uc = w->sp, sp = 0;
		if (read_user_u64(uc + UC_RIP, &ra) || read_user_u64(uc + UC_RSP, &sp) ||
		    read_user_u64(uc + UC_RBP, &bp))
			return unwind_end(w, UNWIND_END_READ);
		if (!ra)
			return unwind_end(w, UNWIND_END_BAD_FRAME);
		w->pc = ra;
		w->sp = sp;
		w->bp = bp;
		w->exact = 1;
		return 0;
	}
	case UNWIND_CFA_END:
		return unwind_outermost(w);
	default:
		return unwind_end(w, UNWIND_END_NO_CFI);
	}
	if (kind & UNWIND_RBP_SAVED) {
		__u64 base = kind & UNWIND_RBP_AT_RBP ? w->bp : cfa;
		if (read_user_u64(base + (__s64)row->rbp_off8 * 8, &bp))
			return unwind_end(w, UNWIND_END_READ);
	}
	if (read_user_u64(cfa - 8, &ra))
		return unwind_end(w, UNWIND_END_READ);
next:
	/* Each caller's frame is above its callee's. */
	if (cfa <= w->sp)
		return unwind_end(w, UNWIND_END_BAD_FRAME);
	if (!ra)
		return unwind_outermost(w); /* a zero return address */
	w->pc = ra;
	w->sp = cfa;
	w->bp = bp;
	w->exact = 0;
	return 0;
}

/* Unwinds the current thread's user stack through CFI into scratch's stack[]
 * from index base, at most max frames. Returns the frames written, or -1 when
 * pid is not published (the caller walks frame pointers instead). */
static __always_inline int unwind_user_stack(__u32 pid, struct task_struct *task, __u32 base,
					     __u32 max)
{
	__u32 zero = 0;
	if (!unwind_cfi)
		return -1;
	struct unwind_proc *proc = bpf_map_lookup_elem(&unwind_procs, &pid);
	struct unwind_proc *copy = bpf_map_lookup_elem(&unwind_proc_copy, &zero);
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!copy || !regs)
		return -1;
	if (!proc) {
		/* Not published yet (its first samples, while its tables are
		 * built): the leaf is certain; frame pointers through code built
		 * without them would name a wrong caller. The leaf, then a marker. */
		struct profile_sample_event *e = bpf_map_lookup_elem(&scratch, &zero);
		__u32 at = base;
		if (!e || max < 2 || at >= PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES - 1)
			return -1;
		e->stack[at] = regs->ip;
		e->stack[at + 1] = UNWIND_MARKER_BASE + UNWIND_END_PENDING;
		count_drop(DROP_UNWIND_PENDING);
		return 2;
	}
	if (bpf_probe_read_kernel(copy, sizeof(*copy), proc))
		return -1;
	struct unwind_walk w = {
		.pc = regs->ip, .sp = regs->sp, .bp = regs->bp, .pid = pid,
		.base = base, .max = max, .exact = 1,
	};
	bpf_loop(PROFILE_MAX_UFRAMES, unwind_step, &w, 0);
	if (w.end > 1) {
		__u32 reason = w.end - 1;
		if (reason == UNWIND_END_NO_CFI)
			count_drop(DROP_UNWIND_NO_CFI);
		else if (reason == UNWIND_END_READ)
			count_drop(DROP_UNWIND_READ);
		else
			count_drop(DROP_UNWIND_BAD_FRAME);
		struct profile_sample_event *e = bpf_map_lookup_elem(&scratch, &zero);
		__u32 slot = base + w.n;
		if (e && w.n < max && slot < PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES) {
			e->stack[slot] = UNWIND_MARKER_BASE + reason;
			w.n++;
		}
	} else if (w.n >= max && !w.end && max >= PROFILE_MAX_UFRAMES) {
		/* (A Python process keeps only the native frames below its Python
		 * leaf: its cap is no loss.) */
		count_drop(DROP_UNWIND_TRUNCATED);
	}
	return (int)w.n;
}

#endif
