/* unwind_abi.h - kernel/user ABI of native unwinding through CFI
 * (bpf/unwind.bpf.h): the compact unwind rows userspace builds from a file's
 * .eh_frame / .debug_frame (user/unwind/cfi_table.h), one table (an inner
 * map, sized to its rows) per file, shared by every process that maps the
 * file, and a process's table of executable mappings, each naming the table
 * that unwinds it.
 *
 * Included by BPF (with vmlinux.h types) and by userspace (with <linux/types.h>),
 * so it uses only fixed-width types and explicit padding; _Static_assert pins
 * the layout.
 */
#ifndef DYNOPROF_BPF_UNWIND_ABI_H
#define DYNOPROF_BPF_UNWIND_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* How a row computes the caller's CFA (canonical frame address: the caller's
 * stack pointer; its return address is at CFA - 8 on x86_64). */
enum unwind_cfa_kind {
	UNWIND_CFA_NONE = 0,   /* a rule dynoprof cannot evaluate (a CFA from another
				* register, another expression, a malformed program):
				* the stack ends with [unwind: no CFI] */
	UNWIND_CFA_RSP = 1,    /* CFA = rsp + cfa_off */
	UNWIND_CFA_RBP = 2,    /* CFA = rbp + cfa_off */
	UNWIND_CFA_PLT = 3,    /* a PLT stub's expression: CFA = rsp + 8, + 8 more when
				* (pc & 15) >= cfa_off */
	UNWIND_CFA_SIGNAL = 4, /* a signal trampoline ('S' augmentation): the interrupted
				* registers are in the ucontext at rsp */
	UNWIND_CFA_END = 5,    /* the return address is undefined: the outermost frame */
	UNWIND_CFA_GAP = 6,    /* no FDE covers this pc (code built without unwind tables,
				* e.g. Chromium's, which keeps frame pointers instead):
				* this frame is walked by its frame pointer */
	UNWIND_CFA_RBP_DEREF = 7, /* CFA = *(rbp + cfa_off): GCC's stack realignment
				   * (DW_OP_breg6 -8; DW_OP_deref, the DRAP register
				   * saved below the realigned frame) */
};

/* Row flag: the caller's rbp is saved at CFA + rbp_off8 * 8 (else unchanged). */
#define UNWIND_RBP_SAVED 0x10
/* Row flag: cfa_off is in 8-byte units (an offset past the s16 range: a
 * function with a large stack frame). */
#define UNWIND_CFA_OFF_X8 0x20
/* Row flag (with UNWIND_RBP_SAVED): rbp is saved at rbp + rbp_off8 * 8, not
 * relative to the CFA (DW_CFA_expression rbp: DW_OP_breg6 N, stack realignment). */
#define UNWIND_RBP_AT_RBP 0x40
/* Mask of the cfa kind in unwind_row.kind. */
#define UNWIND_CFA_MASK 0x0f

/* One row: from pc up to the next row's pc, the rules are these. 8 bytes. */
struct unwind_row {
	__u32 pc;        /* address in the file's virtual address space (ELF p_vaddr) */
	__s16 cfa_off;   /* see enum unwind_cfa_kind; times 8 with UNWIND_CFA_OFF_X8 */
	__u8 kind;       /* enum unwind_cfa_kind | UNWIND_RBP_SAVED | UNWIND_CFA_OFF_X8 */
	__s8 rbp_off8;   /* where rbp is saved, in 8-byte units from the CFA */
};
_Static_assert(sizeof(struct unwind_row) == 8, "unwind_row layout");

/* How a mapping is unwound. */
enum unwind_map_kind {
	UNWIND_MAP_CFI = 1, /* rows [0, row_count) of table `table` */
	UNWIND_MAP_FP = 2,  /* no table (no CFI in the file, or over the budget): frame
			     * pointers, as without CFI unwinding */
};

/* One executable mapping of a process. */
struct unwind_map {
	__u64 start;      /* first address */
	__u64 end;        /* one past the last address */
	__u64 bias;       /* pc - bias is the file's virtual address (mod 2^64) */
	__u32 table;      /* the file's slot in unwind_tables (UNWIND_MAP_CFI) */
	__u32 row_count;  /* rows in that table (UNWIND_MAP_CFI) */
	__u32 kind;       /* enum unwind_map_kind */
	__u32 pad;        /* zero */
};
_Static_assert(sizeof(struct unwind_map) == 40, "unwind_map layout");

/* Files with a table at once (slots of unwind_tables). */
#define UNWIND_MAX_TABLES 4096

/* Executable mappings kept per process; a process with more is unwound
 * through the first ones (by address) and counted. */
#define UNWIND_MAX_MAPS 128

/* A process's executable mappings, sorted by start, the value of unwind_procs
 * (key: tgid). A process absent from it is walked by frame pointers. */
struct unwind_proc {
	__u32 nmaps;      /* entries valid in maps[] */
	__u32 gen;        /* this publication's number, never 0 and never reused
			   * (userspace counts them): BPF's per-CPU rule cache
			   * keys on it, so a process published again (new
			   * mappings, an exec, a reused pid) never reads rules
			   * found in an older publication */
	struct unwind_map maps[UNWIND_MAX_MAPS];
};
_Static_assert(sizeof(struct unwind_proc) == 8 + 40 * UNWIND_MAX_MAPS, "unwind_proc layout");

/* Why an unwind ended early: the outermost user frame of such a stack is the
 * marker address UNWIND_MARKER_BASE + reason, which userspace names. */
enum unwind_end_reason {
	UNWIND_END_NO_CFI = 1,     /* pc in memory without CFI (anonymous, JIT, a gap) */
	UNWIND_END_READ = 2,       /* a stack read faulted (the page not resident) */
	UNWIND_END_BAD_FRAME = 3,  /* the rules gave an impossible frame (the CFA not
				    * above the stack pointer, a return address of 0
				    * mid-stack) */
	UNWIND_END_PENDING = 4,    /* the process is not published yet (its tables are
				    * being built): only the leaf is certain, a frame
				    * pointer walk could name a wrong caller */
};
#define UNWIND_MARKER_BASE 0xffffffffffffff00ull
#define UNWIND_MARKER_MAX  (UNWIND_MARKER_BASE + 16)

/* The per-CPU cache of unwind rules (bpf/unwind.bpf.h): most samples walk
 * the same few hundred return addresses, so a frame whose rule was found
 * before costs a load instead of two binary searches. Direct-mapped, 2^12
 * slots per CPU (64 KiB each); a collision only costs the search again. */
#define UNWIND_CACHE_BITS 12
#define UNWIND_CACHE_SLOTS (1u << UNWIND_CACHE_BITS)

/* One cached rule: what the walk found for pc in publication gen. */
struct unwind_cache_slot {
	__u64 pc;        /* the address looked up (a return address minus 1) */
	__u32 gen;       /* struct unwind_proc.gen it was found in; 0: empty */
	__s16 cfa_off;   /* the row's (struct unwind_row) */
	__u8 kind;       /* the row's kind; UNWIND_CFA_GAP for a mapping walked by
			  * frame pointers; UNWIND_CFA_NONE where no mapping or row
			  * covers pc (the walk ends there, named) */
	__s8 rbp_off8;   /* the row's */
};
_Static_assert(sizeof(struct unwind_cache_slot) == 16, "unwind_cache_slot layout");

/* A CPU's cache (the value of unwind_rule_cache, one entry per CPU). */
struct unwind_rule_cache {
	__u64 hits;      /* frames whose rule came from the cache */
	__u64 misses;    /* frames that searched (and filled a slot) */
	struct unwind_cache_slot slots[UNWIND_CACHE_SLOTS];
};
_Static_assert(sizeof(struct unwind_rule_cache) == 16 + 16 * UNWIND_CACHE_SLOTS,
	       "unwind_rule_cache layout");

/* Steps of one binary search of the rows: tables of up to 2^24 rows. */
#define UNWIND_SEARCH_STEPS 24
/* Steps of the search of a process's mappings: up to 2^7 = UNWIND_MAX_MAPS. */
#define UNWIND_MAP_STEPS 8

#endif
