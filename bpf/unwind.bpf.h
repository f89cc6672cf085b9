// SPDX-License-Identifier: GPL-2.0
/* unwind.bpf.h - the native unwinding concern: walks the sampled thread's
 * user stack through CFI rows (bpf/unwind_abi.h) for processes userspace
 * published in unwind_procs, frame by frame (bpf_loop): per frame, the pc's
 * rule from this CPU's rule cache, or on a miss the mapping of the pc (binary
 * search of the process's mappings), then its file's row (binary search of
 * the file's table in unwind_tables); then the caller's registers, in one
 * stack read for the usual frame. Mappings without a table are walked by
 * frame pointers; memory
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
	__u32 gen;     /* the publication (struct unwind_proc.gen) rules are
			* cached under */
	__u32 cpu;     /* this CPU: its entry of unwind_rule_cache */
	__u32 copied;  /* unwind_proc_copy holds the process (the first search
			* of the sample copied it) */
	__u32 snap_len;/* bytes of the stack from snap_lo copied into this CPU's
			* unwind_stack_snap (0: none) */
	__u64 snap_lo; /* the stack address snapshot byte 0 was copied from */
};

/* The walk's state, per CPU (not on the BPF stack): the verifier then sees
 * every field as an unknown value, so it checks unwind_step once rather than
 * for each combination of the walk's flags and counters it could track
 * (on the stack, that made loading take seconds). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_walk);
} unwind_walks SEC(".maps");

/* Ends the walk for reason (enum unwind_end_reason): counted, and a marker
 * frame names it in the stack. */
static __always_inline int unwind_end(struct unwind_walk *w, __u32 reason)
{
	w->end = reason + 1;
	return 1;
}

/* The sampled process's unwind_proc, copied by the first search of a sample
 * (a sample whose every rule is cached copies nothing): each search step then
 * reads a per-CPU array, not the hash map. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_proc);
} unwind_proc_copy SEC(".maps");

/* Each CPU's rule cache (bpf/unwind_abi.h), by CPU number: an array, not a
 * per-CPU array, whose values stop at 32 KiB. Only this CPU's sampling
 * program touches its entry, and it does not nest, so no lock. The loader
 * sizes it to the possible CPUs (1 when CFI unwinding is off). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_rule_cache);
} unwind_rule_cache SEC(".maps");

/* The top of the sampled stack, copied in one read when a walk begins: a
 * frame's words are then loads, not a user read each (a read costs about as
 * much as the rest of a cached frame). Reads outside it read the stack. */
#define UNWIND_SNAP_BYTES 4096
/* Walks capped below this many frames (a Python process's few native frames
 * under its Python leaf) read frame by frame: the copy would cost more. */
#define UNWIND_SNAP_MIN_FRAMES 16

/* A CPU's snapshot (16 bytes of slack: a masked offset + 16 stays inside). */
struct unwind_stack_snap {
	__u8 bytes[UNWIND_SNAP_BYTES + 16];
};

/* Each CPU's snapshot, by CPU number (an array: its look-up is inlined);
 * sized like unwind_rule_cache by the loader. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unwind_stack_snap);
} unwind_stack_snap SEC(".maps");

/* Copies the stack from sp: up to UNWIND_SNAP_BYTES, or to the end of sp's
 * page when the next one cannot be read (the top of a stack). */
static __always_inline void unwind_snapshot(struct unwind_walk *w)
{
	struct unwind_stack_snap *snap = bpf_map_lookup_elem(&unwind_stack_snap, &w->cpu);
	if (!snap)
		return;
	if (!bpf_probe_read_user(snap->bytes, UNWIND_SNAP_BYTES, (const void *)w->sp)) {
		w->snap_len = UNWIND_SNAP_BYTES;
	} else {
		__u32 to_page_end = 4096 - (__u32)(w->sp & 4095);
		if (to_page_end > UNWIND_SNAP_BYTES)
			to_page_end = UNWIND_SNAP_BYTES;
		if (to_page_end &&
		    !bpf_probe_read_user(snap->bytes, to_page_end, (const void *)w->sp))
			w->snap_len = to_page_end;
	}
	w->snap_lo = w->sp;
}

/* Reads the stack word at addr: from the snapshot when it holds it. */
static __always_inline int unwind_read_u64(struct unwind_walk *w, __u64 addr, __u64 *out)
{
	__u64 off = addr - w->snap_lo;
	if (w->snap_len >= 8 && off <= w->snap_len - 8) {
		struct unwind_stack_snap *snap = bpf_map_lookup_elem(&unwind_stack_snap, &w->cpu);
		if (snap) {
			*out = *(__u64 *)&snap->bytes[off & (UNWIND_SNAP_BYTES - 1)];
			return 0;
		}
	}
	return read_user_u64(addr, out);
}

/* Two consecutive stack words at addr (a frame's saved rbp and return
 * address sit side by side): from the snapshot, else in one read. */
struct unwind_pair {
	__u64 lo;     /* the word at addr */
	__u64 hi;     /* the word at addr + 8 */
};

static __always_inline int unwind_read_pair(struct unwind_walk *w, __u64 addr,
					    struct unwind_pair *out)
{
	__u64 off = addr - w->snap_lo;
	if (w->snap_len >= 16 && off <= w->snap_len - 16) {
		struct unwind_stack_snap *snap = bpf_map_lookup_elem(&unwind_stack_snap, &w->cpu);
		if (snap) {
			off &= UNWIND_SNAP_BYTES - 1;
			out->lo = *(__u64 *)&snap->bytes[off];
			out->hi = *(__u64 *)&snap->bytes[off + 8];
			return 0;
		}
	}
	return bpf_probe_read_user(out, sizeof(*out), (const void *)addr);
}

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

/* The rule for one pc: a row's rules, or what stands for it. */
struct unwind_rule {
	__s16 cfa_off;   /* struct unwind_row's */
	__u8 kind;       /* struct unwind_row's; UNWIND_CFA_GAP: walk the frame
			  * pointer; UNWIND_CFA_NONE: no CFI, the walk ends */
	__s8 rbp_off8;   /* struct unwind_row's */
};

/* Finds pc's rule in the published process: its mapping (binary search of
 * the mappings), then its file's row (binary search of the rows). Returns
 * 0, or -1 when a table could not be read (a state of the moment, which is
 * not cached). */
static __always_inline int unwind_search_rule(struct unwind_walk *w, __u64 pc,
					      struct unwind_rule *out)
{
	__u32 zero = 0;
	struct unwind_proc *proc = bpf_map_lookup_elem(&unwind_proc_copy, &zero);
	if (!proc)
		return -1;
	if (!w->copied) {
		/* Only the mappings in use: a process maps far fewer than
		 * UNWIND_MAX_MAPS files. */
		struct unwind_proc *live = bpf_map_lookup_elem(&unwind_procs, &w->pid);
		if (!live)
			return -1;
		__u32 n = live->nmaps;
		if (n > UNWIND_MAX_MAPS)
			n = UNWIND_MAX_MAPS;
		if (bpf_probe_read_kernel(proc, 8 + n * sizeof(struct unwind_map), live))
			return -1;
		proc->nmaps = n;
		w->copied = 1;
		w->gen = proc->gen; /* published again since the walk began: its rules */
	}
	out->kind = UNWIND_CFA_NONE;
	out->cfa_off = 0;
	out->rbp_off8 = 0;

	/* The mapping: the last one starting at or below pc. */
	struct map_search ms = { .lo = 0, .hi = proc->nmaps, .pc = pc };
	if (ms.hi > UNWIND_MAX_MAPS)
		ms.hi = UNWIND_MAX_MAPS;
	bpf_loop(UNWIND_MAP_STEPS, map_search_step, &ms, 0);
	if (!ms.lo)
		return 0;
	struct unwind_map *m = &proc->maps[(ms.lo - 1) & (UNWIND_MAX_MAPS - 1)];
	if (pc >= m->end)
		return 0;
	if (m->kind != UNWIND_MAP_CFI) {
		out->kind = UNWIND_CFA_GAP;
		return 0;
	}
	__u64 rel = pc - m->bias;
	if (rel > 0xffffffffull)
		return 0;
	/* The row: a loop of its own (bpf_loop), so the verifier checks one
	 * step, not every path through 24. */
	struct row_search rs = { .lo = 0, .hi = m->row_count, .table = m->table,
				 .pc = (__u32)rel };
	bpf_loop(UNWIND_SEARCH_STEPS, row_search_step, &rs, 0);
	if (rs.failed)
		return -1;
	if (!rs.lo) { /* before the first row: a gap */
		out->kind = UNWIND_CFA_GAP;
		return 0;
	}
	__u32 at = rs.lo - 1;
	void *rows = bpf_map_lookup_elem(&unwind_tables, &rs.table);
	struct unwind_row *row = rows ? bpf_map_lookup_elem(rows, &at) : NULL;
	if (!row)
		return -1;
	out->kind = row->kind;
	out->cfa_off = row->cfa_off;
	out->rbp_off8 = row->rbp_off8;
	return 0;
}

/* pc's slot in a rule cache: a multiplicative hash of pc and the publication. */
static __always_inline __u32 unwind_cache_index(__u64 pc, __u32 gen)
{
	__u64 h = (pc ^ ((__u64)gen << 40)) * 0x9e3779b97f4a7c15ull;
	return (__u32)(h >> (64 - UNWIND_CACHE_BITS)) & (UNWIND_CACHE_SLOTS - 1);
}

/* pc's rule: from this CPU's cache, else searched and cached. Returns 0, or
 * -1 when it could not be found. */
static __always_inline int unwind_rule_for(struct unwind_walk *w, __u64 pc,
					   struct unwind_rule *out)
{
	struct unwind_rule_cache *cache = bpf_map_lookup_elem(&unwind_rule_cache, &w->cpu);
	if (!cache)
		return unwind_search_rule(w, pc, out);
	struct unwind_cache_slot *slot = &cache->slots[unwind_cache_index(pc, w->gen)];
	if (slot->gen == w->gen && slot->pc == pc) {
		out->kind = slot->kind;
		out->cfa_off = slot->cfa_off;
		out->rbp_off8 = slot->rbp_off8;
		cache->hits++;
		return 0;
	}
	if (unwind_search_rule(w, pc, out))
		return -1;
	cache->misses++;
	/* The search may have moved to a newer publication: its slot. */
	slot = &cache->slots[unwind_cache_index(pc, w->gen)];
	slot->gen = 0; /* never a half-written slot that matches */
	slot->pc = pc;
	slot->kind = out->kind;
	slot->cfa_off = out->cfa_off;
	slot->rbp_off8 = out->rbp_off8;
	slot->gen = w->gen;
	return 0;
}

/* Ends the walk at the outermost frame. */
static __always_inline int unwind_outermost(struct unwind_walk *w)
{
	w->end = 1;
	return 1;
}

static int unwind_step(__u32 index, void *unused)
{
	__u32 zero = 0;
	struct unwind_walk *w = bpf_map_lookup_elem(&unwind_walks, &zero);
	if (!w)
		return 1;
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

	__u64 pc = w->exact ? w->pc : w->pc - 1;
	struct unwind_rule rule;
	if (unwind_rule_for(w, pc, &rule))
		return unwind_end(w, UNWIND_END_NO_CFI);

	__u64 cfa, ra = 0, bp = w->bp;
	__u8 kind = rule.kind;
	struct unwind_pair pair;
	if ((kind & UNWIND_CFA_MASK) == UNWIND_CFA_GAP) {
		/* No CFI here: the frame pointer, as bpf_get_stack walks. */
		if (!w->bp || w->bp < w->sp)
			return unwind_outermost(w); /* none: where bpf_get_stack ends too */
		if (unwind_read_pair(w, w->bp, &pair))
			return unwind_end(w, UNWIND_END_READ);
		bp = pair.lo;
		ra = pair.hi;
		cfa = w->bp + 16;
		goto next;
	}
	__s64 off = rule.cfa_off;
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
		if (unwind_read_u64(w, w->bp + off, &cfa))
			return unwind_end(w, UNWIND_END_READ);
		break;
	case UNWIND_CFA_PLT:
		cfa = w->sp + 8 + ((w->pc & 15) >= (__u64)off ? 8 : 0);
		break;
	case UNWIND_CFA_SIGNAL: {
		/* The interrupted context: its pc is exact. */
		__u64 uc = w->sp, sp = 0;
		if (unwind_read_u64(w, uc + UC_RIP, &ra) || unwind_read_u64(w, uc + UC_RSP, &sp) ||
		    unwind_read_u64(w, uc + UC_RBP, &bp))
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
	if ((kind & (UNWIND_RBP_SAVED | UNWIND_RBP_AT_RBP)) == UNWIND_RBP_SAVED &&
	    rule.rbp_off8 == -2) {
		/* The usual frame: rbp saved just below the return address. */
		if (unwind_read_pair(w, cfa - 16, &pair))
			return unwind_end(w, UNWIND_END_READ);
		bp = pair.lo;
		ra = pair.hi;
		goto next;
	}
	if (kind & UNWIND_RBP_SAVED) {
		__u64 base = kind & UNWIND_RBP_AT_RBP ? w->bp : cfa;
		if (unwind_read_u64(w, base + (__s64)rule.rbp_off8 * 8, &bp))
			return unwind_end(w, UNWIND_END_READ);
	}
	if (unwind_read_u64(w, cfa - 8, &ra))
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
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!regs)
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
	struct unwind_walk *w = bpf_map_lookup_elem(&unwind_walks, &zero);
	if (!w)
		return -1;
	*w = (struct unwind_walk){
		.pc = regs->ip, .sp = regs->sp, .bp = regs->bp, .pid = pid,
		.base = base, .max = max, .exact = 1, .gen = proc->gen,
		.cpu = bpf_get_smp_processor_id(),
	};
	/* A deep walk reads many frames near each other: copy them at once. */
	if (max >= UNWIND_SNAP_MIN_FRAMES)
		unwind_snapshot(w);
	bpf_loop(PROFILE_MAX_UFRAMES, unwind_step, NULL, 0);
	if (w->end > 1) {
		__u32 reason = w->end - 1;
		if (reason == UNWIND_END_NO_CFI)
			count_drop(DROP_UNWIND_NO_CFI);
		else if (reason == UNWIND_END_READ)
			count_drop(DROP_UNWIND_READ);
		else
			count_drop(DROP_UNWIND_BAD_FRAME);
		struct profile_sample_event *e = bpf_map_lookup_elem(&scratch, &zero);
		__u32 slot = base + w->n;
		if (e && w->n < max && slot < PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES) {
			e->stack[slot] = UNWIND_MARKER_BASE + reason;
			w->n++;
		}
	} else if (w->n >= max && !w->end && max >= PROFILE_MAX_UFRAMES) {
		/* (A Python process keeps only the native frames below its Python
		 * leaf: its cap is no loss.) */
		count_drop(DROP_UNWIND_TRUNCATED);
	}
	return (int)w->n;
}

#endif
