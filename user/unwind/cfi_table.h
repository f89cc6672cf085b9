/* Layer unwind: native stacks without frame pointers. A file's call frame
 * information (.eh_frame, .debug_frame) becomes a compact table of unwind rows
 * (cfi_table.h); the registry (unwind_registry.h) builds one per mapped file,
 * off the sampling path, shares it by build-id, and publishes it and each
 * process's mappings into the BPF maps the sampling program unwinds with.
 * (Layers and their order: scripts/check-layers.sh.) */
/* cfi_table.h - a file's CFI evaluated into sorted unwind rows for x86_64.
 *
 * Parses the CIEs and FDEs of .eh_frame and .debug_frame (augmentations z, R,
 * P, L, S; every pointer encoding), runs each FDE's CFA program and keeps, for
 * each address where the rules change, how to find the caller: the CFA from
 * rsp or rbp plus an offset (or the PLT's well-known expression, or a signal
 * frame), where rbp is saved, and whether the return address is undefined
 * (the outermost frame). Rules it cannot express (a CFA from another register,
 * other expressions) become UNWIND_CFA_NONE rows: the unwinder stops there
 * rather than guess a caller. Addresses no FDE covers get UNWIND_CFA_GAP rows
 * (walked by frame pointers). Consecutive identical rows are merged.
 *
 * Section bytes are untrusted: every read is bounds-checked, programs and
 * state stacks are bounded, and the table never exceeds CFI_TABLE_MAX_ROWS.
 */
#ifndef DYNOPROF_CFI_TABLE_H
#define DYNOPROF_CFI_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "unwind_abi.h"

/* Rows one table may hold (a shard's binary search covers 2^UNWIND_SEARCH_STEPS). */
#define CFI_TABLE_MAX_ROWS (1u << 22)

/* What a build met. */
struct cfi_table_stats {
	uint64_t cies;          /* CIEs parsed */
	uint64_t fdes;          /* FDEs evaluated */
	uint64_t bad_entries;   /* CIEs/FDEs skipped as malformed */
	uint64_t unsupported;   /* rows whose rules cannot be expressed (made NONE rows) */
	uint64_t signal_fdes;   /* FDEs of signal trampolines ('S') */
	uint64_t plt_rows;      /* rows with the PLT expression */
	uint64_t high_pcs;      /* FDEs beyond 4 GiB of address space (skipped) */
};

struct cfi_table;

/* An empty table to add sections to. NULL + errno. */
struct cfi_table *cfi_table__new(void);
void cfi_table__free(struct cfi_table *t);

/* Adds the FDEs of an .eh_frame section's bytes, loaded at vaddr (pc-relative
 * pointers are relative to it). 0 or -errno (-ENOMEM, -E2BIG past the row
 * cap); malformed entries are skipped and counted. */
int cfi_table__add_eh_frame(struct cfi_table *t, const uint8_t *data, size_t size,
			    uint64_t vaddr);
/* Likewise for a .debug_frame section (absolute 8-byte addresses). */
int cfi_table__add_debug_frame(struct cfi_table *t, const uint8_t *data, size_t size);
/* Sorts and merges the rows; call once, after the last add. 0 or -errno. */
int cfi_table__finish(struct cfi_table *t);

/* Builds the table of an ELF image: a file (fd, read through libelf) or a
 * whole image in memory (the vdso). .eh_frame then .debug_frame, finished.
 * NULL + errno: ENODATA when the file has no CFI, ENOEXEC when it is not a
 * 64-bit x86_64 ELF. */
struct cfi_table *cfi_table__from_fd(int fd);
struct cfi_table *cfi_table__from_memory(const void *image, size_t size);

size_t cfi_table__count(const struct cfi_table *t);
const struct unwind_row *cfi_table__rows(const struct cfi_table *t);
const struct cfi_table_stats *cfi_table__stats(const struct cfi_table *t);
/* The row in force at pc (the last row with row.pc <= pc), or NULL before the
 * first (a gap too). */
const struct unwind_row *cfi_table__find(const struct cfi_table *t, uint64_t pc);

#endif
