// SPDX-License-Identifier: MIT
/* The function-range parser of .eh_frame_hdr / .eh_frame (symbolize/
 * fde_ranges.h), fed the two sections as a binary holds them. Input:
 *   byte 0      flags: bit 0 ELF32 (4-byte absptr), bit 1 big-endian
 *   bytes 1-2   length of .eh_frame_hdr (little-endian; 0: none)
 *   bytes 3-10  vaddr of .eh_frame_hdr (little-endian)
 *   bytes 11-18 vaddr of .eh_frame (little-endian)
 *   then the .eh_frame_hdr bytes, then the .eh_frame bytes (the rest).
 * Each section is an exact-size heap copy, so any overread is reported.
 * Seeds (tests/fuzz/gen_corpus.py): the sections of binaries built here. */
#include "fuzz_util.h"

#include "symbolize/fde_ranges.h"

#define HEAD 19

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t *copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (!c)
		abort();
	memcpy(c, p, n);
	return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fde_ranges r;
	if (size < HEAD)
		return 0;
	size_t hdr_len = (size_t)le(data + 1, 2);
	if (hdr_len > size - HEAD)
		hdr_len = size - HEAD;
	uint8_t *hdr = hdr_len ? copy(data + HEAD, hdr_len) : NULL;
	size_t frame_len = size - HEAD - hdr_len;
	uint8_t *frame = frame_len ? copy(data + HEAD + hdr_len, frame_len) : NULL;
	struct fde_input in = { .hdr = hdr, .hdr_size = hdr_len, .hdr_vaddr = le(data + 3, 8),
				.frame = frame, .frame_size = frame_len,
				.frame_vaddr = le(data + 11, 8),
				.addr_size = (data[0] & 1) ? 4 : 8, .big_endian = (data[0] >> 1) & 1 };
	int err = fde_ranges__parse(&in, &r);
	if (err && err != -ENOMEM)
		abort(); /* only allocation may fail on valid arguments */
	if (!err) {
		uint64_t start, prev_end = 0;
		/* Sorted, disjoint, non-empty, and each found at both ends. */
		for (size_t i = 0; i < r.nranges; i++) {
			uint64_t s = r.base + r.ranges[i].start, e = s + r.ranges[i].size;
			if (r.ranges[i].size == 0 || (i && s < prev_end))
				abort();
			if (fde_ranges__find(&r, s, &start) || start != s ||
			    fde_ranges__find(&r, e - 1, &start) || start != s)
				abort();
			prev_end = e;
		}
		fde_ranges__find(&r, 0, &start);
		fde_ranges__find(&r, UINT64_MAX, &start);
		fde_ranges__find(&r, in.hdr_vaddr, &start);
	}
	fde_ranges__release(&r);
	free(hdr);
	free(frame);
	return 0;
}
