/* fde_ranges.h - the function ranges an ELF file's unwind tables declare.
 *
 * Every function a compiler emits CFI for has one FDE in .eh_frame, whose
 * header says where the function starts (pc_begin) and how long it is
 * (pc_range). A stripped binary keeps .eh_frame (the unwinder needs it at run
 * time), so these ranges name the function an address belongs to when no
 * symbol does: "libcrypto.so.3+0x29c240" for every address of one function,
 * not one row per address.
 *
 * Only FDE headers are read, never the CFA programs: the ranges come from the
 * sorted search table of .eh_frame_hdr (each entry's FDE read for its length),
 * or, when there is no usable header, from a walk of .eh_frame itself. Every
 * byte is hostile input: reads are bounds-checked, entries that do not parse
 * are skipped (counted), and the result holds at most FDE_RANGES_MAX entries.
 */
#ifndef DYNOPROF_FDE_RANGES_H
#define DYNOPROF_FDE_RANGES_H

#include <stddef.h>
#include <stdint.h>

/* Most ranges one table keeps (8 bytes each: 32 MiB): a binary with more
 * FDEs keeps the first ones (fde_ranges.truncated says how many were not). */
#define FDE_RANGES_MAX (1u << 22)

/* One function: [base + start, base + start + size). */
struct fde_range {
	uint32_t start; /* first byte, relative to fde_ranges.base */
	uint32_t size;  /* bytes (pc_range); never 0 */
};

/* The section bytes to read, as the file holds them. */
struct fde_input {
	const uint8_t *hdr;   /* .eh_frame_hdr bytes, or NULL */
	size_t hdr_size;      /* bytes at hdr */
	uint64_t hdr_vaddr;   /* ELF vaddr of hdr[0] */
	const uint8_t *frame; /* .eh_frame bytes (may run past its end to a segment's), or NULL */
	size_t frame_size;    /* bytes at frame */
	uint64_t frame_vaddr; /* ELF vaddr of frame[0] */
	uint8_t addr_size;    /* 8 (ELF64) or 4 (ELF32): size of DW_EH_PE_absptr */
	uint8_t big_endian;   /* nonzero for ELFDATA2MSB */
};

/* The parsed table: sorted by start, no two ranges overlap. */
struct fde_ranges {
	struct fde_range *ranges; /* malloc'd, nranges entries (NULL when empty) */
	size_t nranges;           /* entries */
	uint64_t base;            /* vaddr every start is relative to */
	uint64_t skipped;         /* FDEs that did not parse, or overlapped a kept one */
	uint64_t truncated;       /* FDEs left out by FDE_RANGES_MAX or a >4 GiB span */
	int from_hdr;             /* 1: read through .eh_frame_hdr; 0: .eh_frame walk */
};

/* Reads the ranges of in into *out (zeroed first). Returns 0 (possibly with
 * no range: a file without unwind tables), -EINVAL for bad arguments, or
 * -ENOMEM. Never reads outside in's buffers. Free with fde_ranges__release. */
int fde_ranges__parse(const struct fde_input *in, struct fde_ranges *out);

/* Frees out's array and zeroes it. Accepts NULL. */
void fde_ranges__release(struct fde_ranges *r);

/* Finds the range containing vaddr: returns 0 with *start (vaddr) set, or
 * -ENOENT. */
int fde_ranges__find(const struct fde_ranges *r, uint64_t vaddr, uint64_t *start);

#endif
