// SPDX-License-Identifier: MIT
/* fde_ranges.c - function ranges from .eh_frame_hdr / .eh_frame FDE headers. */
#include "symbolize/fde_ranges.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* DWARF exception-header pointer encodings (LSB, "DWARF Extensions"). */
#define DW_EH_PE_omit 0xff
#define DW_EH_PE_absptr 0x00
#define DW_EH_PE_uleb128 0x01
#define DW_EH_PE_udata2 0x02
#define DW_EH_PE_udata4 0x03
#define DW_EH_PE_udata8 0x04
#define DW_EH_PE_sleb128 0x09
#define DW_EH_PE_sdata2 0x0a
#define DW_EH_PE_sdata4 0x0b
#define DW_EH_PE_sdata8 0x0c
#define DW_EH_PE_pcrel 0x10
#define DW_EH_PE_datarel 0x30

/* Longest CIE augmentation string read ("zPLRSB" and kin are a few letters):
 * parsing a CIE costs a bounded time however large a hostile one is, so
 * FDEs alternating between CIEs never make the parse quadratic. */
#define AUGMENTATION_MAX 32

/* CIEs whose FDE encoding is remembered while reading (direct-mapped by
 * offset): a binary has a handful of CIEs that its FDEs alternate between. */
#define CIE_CACHE_SLOTS 16

/* A bounded reader over one buffer. */
struct cursor {
	const uint8_t *buf; /* bytes */
	size_t size;        /* readable bytes at buf (an entry's end, not the buffer's) */
	size_t pos;         /* next byte to read */
	uint64_t vaddr;     /* ELF vaddr of buf[0], for pc-relative pointers */
	bool be;            /* big-endian */
};

/* One remembered CIE. */
struct cie_slot {
	size_t offset;    /* the CIE's offset in .eh_frame, SIZE_MAX when empty */
	uint8_t encoding; /* its FDEs' pointer encoding ('R'), absptr without one */
	bool valid;       /* the CIE parsed */
};

/* The ranges gathered before sorting. */
struct raw_range {
	uint64_t start; /* pc_begin */
	uint64_t end;   /* pc_begin + pc_range */
};

/* State of one parse. */
struct parser {
	const struct fde_input *in;            /* the caller's input */
	struct cie_slot cies[CIE_CACHE_SLOTS]; /* CIE encodings seen */
	struct raw_range *raw;                 /* gathered ranges */
	size_t nraw;                           /* entries in raw */
	size_t capraw;                         /* allocated entries in raw */
	uint64_t skipped;                      /* FDEs that did not parse */
	uint64_t truncated;                    /* FDEs past FDE_RANGES_MAX */
	size_t walk_from;                      /* .eh_frame's offset in frame (the header's pointer) */
};

static int read_uint(struct cursor *c, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (c->pos > c->size || c->size - c->pos < n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t k = c->be ? i : n - 1 - i;

		v = v << 8 | c->buf[c->pos + k];
	}
	c->pos += n;
	*out = v;
	return 0;
}

static int read_uleb(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		uint64_t b;

		if (read_uint(c, 1, &b))
			return -EINVAL;
		v |= (b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EINVAL; /* more than 10 bytes: not a value we can hold */
}

static int read_sleb(struct cursor *c, int64_t *out)
{
	uint64_t v = 0, b = 0;
	unsigned shift = 0;

	do {
		if (shift >= 64 || read_uint(c, 1, &b))
			return -EINVAL;
		v |= (b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~(uint64_t)0 << shift;
	*out = (int64_t)v;
	return 0;
}

/* Size in bytes of a fixed-size encoding's value, 0 for LEB128 or unknown. */
static size_t encoding_size(uint8_t enc, uint8_t addr_size)
{
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
		return addr_size;
	case DW_EH_PE_udata2:
	case DW_EH_PE_sdata2:
		return 2;
	case DW_EH_PE_udata4:
	case DW_EH_PE_sdata4:
		return 4;
	case DW_EH_PE_udata8:
	case DW_EH_PE_sdata8:
		return 8;
	default:
		return 0;
	}
}

/* Reads a pointer of encoding enc. apply: add its base (pcrel: the field's
 * vaddr; datarel: datarel_base, which has_datarel says exists); otherwise the
 * raw value (pc_range). Indirect and the other bases are refused. */
static int read_encoded(struct cursor *c, uint8_t enc, uint8_t addr_size, bool apply,
			bool has_datarel, uint64_t datarel_base, uint64_t *out)
{
	uint64_t field = c->vaddr + c->pos, v;
	uint8_t fmt = enc & 0x0f;
	int err;

	if (enc == DW_EH_PE_omit || (enc & 0x80))
		return -EINVAL;
	if (fmt == DW_EH_PE_uleb128) {
		err = read_uleb(c, &v);
	} else if (fmt == DW_EH_PE_sleb128) {
		int64_t s;

		err = read_sleb(c, &s);
		v = (uint64_t)s;
	} else {
		size_t n = encoding_size(enc, addr_size);

		if (n == 0)
			return -EINVAL;
		err = read_uint(c, n, &v);
		/* Signed formats sign-extend; absptr of 4 bytes is a 32-bit address. */
		if (!err && n < 8 && (fmt & 0x08) && (v >> (8 * n - 1)) & 1)
			v |= ~(uint64_t)0 << (8 * n);
	}
	if (err)
		return err;
	if (apply) {
		switch (enc & 0x70) {
		case 0:
			break;
		case DW_EH_PE_pcrel:
			v += field;
			break;
		case DW_EH_PE_datarel:
			if (!has_datarel)
				return -EINVAL;
			v += datarel_base;
			break;
		default:
			return -EINVAL;
		}
	}
	*out = v;
	return 0;
}

/* Reads an entry's 4-byte length at off of .eh_frame. Returns 0 with the
 * entry's end (one past it) or -EINVAL (64-bit lengths are not used in
 * .eh_frame; a length past the buffer is corrupt). *terminator: length 0. */
static int entry_bounds(const struct fde_input *in, size_t off, size_t *end, bool *terminator)
{
	struct cursor c = { .buf = in->frame, .size = in->frame_size, .pos = off,
			    .be = in->big_endian };
	uint64_t len;

	*terminator = false;
	if (read_uint(&c, 4, &len))
		return -EINVAL;
	if (len == 0) {
		*terminator = true;
		return 0;
	}
	if (len == 0xffffffffu || len > in->frame_size - c.pos)
		return -EINVAL;
	*end = c.pos + (size_t)len;
	return 0;
}

/* A cursor over the CIE or FDE at off (not a terminator), past its length,
 * and the entry's 4-byte id (CIE: 0; FDE: the distance back to its CIE).
 * 0 or -EINVAL. */
static int open_entry(const struct fde_input *in, size_t off, struct cursor *c, uint64_t *id)
{
	size_t end;
	bool term;

	if (entry_bounds(in, off, &end, &term) || term)
		return -EINVAL;
	*c = (struct cursor){ .buf = in->frame, .size = end, .pos = off + 4,
			      .be = in->big_endian, .vaddr = in->frame_vaddr };
	return read_uint(c, 4, id);
}

/* Parses the CIE at off: the encoding of its FDEs' pointers. */
static int parse_cie(const struct fde_input *in, size_t off, uint8_t *encoding)
{
	struct cursor c;
	uint64_t id, version, u;
	int64_t s;

	if (open_entry(in, off, &c, &id) || id != 0 || read_uint(&c, 1, &version) ||
	    (version != 1 && version != 3 && version != 4))
		return -EINVAL;
	const char *aug = (const char *)c.buf + c.pos;
	size_t room = c.size - c.pos < AUGMENTATION_MAX ? c.size - c.pos : AUGMENTATION_MAX;
	size_t aug_len = strnlen(aug, room);

	if (aug_len == room)
		return -EINVAL; /* unterminated within the entry, or longer than any real one */
	c.pos += aug_len + 1;
	if (aug[0] == 'e' && aug[1] == 'h') {
		c.pos += in->addr_size; /* GCC 2.x "eh" pointer */
		aug += 2;
	}
	if (version == 4 && (read_uint(&c, 1, &u) || read_uint(&c, 1, &u)))
		return -EINVAL;
	if (read_uleb(&c, &u) || read_sleb(&c, &s))
		return -EINVAL;
	if (version == 1 ? read_uint(&c, 1, &u) : read_uleb(&c, &u))
		return -EINVAL;
	*encoding = DW_EH_PE_absptr;
	if (aug[0] == '\0')
		return 0;
	if (aug[0] != 'z')
		return -EINVAL; /* no length to skip what we do not know */
	if (read_uleb(&c, &u) || u > c.size - c.pos)
		return -EINVAL;
	c.size = c.pos + (size_t)u;
	for (const char *a = aug + 1; *a; a++) {
		uint64_t byte, ignored;

		switch (*a) {
		case 'R':
			if (read_uint(&c, 1, &byte))
				return -EINVAL;
			*encoding = (uint8_t)byte;
			return 0;
		case 'P':
			/* The personality pointer is skipped, not followed: its
			 * format alone sizes it (often indirect|pcrel|sdata4). */
			if (read_uint(&c, 1, &byte) ||
			    read_encoded(&c, (uint8_t)(byte & 0x0f), in->addr_size, false, false, 0,
					 &ignored))
				return -EINVAL;
			break;
		case 'L':
			if (read_uint(&c, 1, &byte))
				return -EINVAL;
			break;
		case 'S':
		case 'B':
			break;
		default:
			return 0; /* unknown letter: 'R' would have come first in practice */
		}
	}
	return 0;
}

static int cie_encoding(struct parser *p, size_t off, uint8_t *encoding)
{
	struct cie_slot *slot = &p->cies[off % CIE_CACHE_SLOTS];

	if (slot->offset != off) {
		slot->offset = off;
		slot->encoding = DW_EH_PE_absptr;
		slot->valid = parse_cie(p->in, off, &slot->encoding) == 0;
	}
	*encoding = slot->encoding;
	return slot->valid ? 0 : -EINVAL;
}

/* Parses the FDE at off of .eh_frame into [*start, *end). -EINVAL when it is
 * no FDE or does not parse, -ENOENT for an empty range. */
static int parse_fde(struct parser *p, size_t off, uint64_t *start, uint64_t *end_out)
{
	const struct fde_input *in = p->in;
	struct cursor c;
	uint64_t cie_ptr, begin, range;
	uint8_t enc;

	if (open_entry(in, off, &c, &cie_ptr) || cie_ptr == 0 || cie_ptr > off + 4)
		return -EINVAL;
	if (cie_encoding(p, off + 4 - (size_t)cie_ptr, &enc) ||
	    read_encoded(&c, enc, in->addr_size, true, false, 0, &begin) ||
	    read_encoded(&c, enc & 0x0f, in->addr_size, false, false, 0, &range))
		return -EINVAL;
	if (in->addr_size == 4) {
		begin &= 0xffffffffu;
		range &= 0xffffffffu;
	}
	if (range == 0)
		return -ENOENT;
	if (begin + range < begin)
		return -EINVAL;
	*start = begin;
	*end_out = begin + range;
	return 0;
}

static int push(struct parser *p, uint64_t start, uint64_t end)
{
	if (p->nraw >= FDE_RANGES_MAX) {
		p->truncated++;
		return 0;
	}
	if (p->nraw == p->capraw) {
		size_t cap = p->capraw ? p->capraw * 2 : 256;
		struct raw_range *r = realloc(p->raw, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		p->raw = r;
		p->capraw = cap;
	}
	p->raw[p->nraw].start = start;
	p->raw[p->nraw].end = end;
	p->nraw++;
	return 0;
}

/* Adds the FDE at off (counting one that does not parse). */
static int add_fde(struct parser *p, size_t off)
{
	uint64_t start, end;
	int err = parse_fde(p, off, &start, &end);

	if (err == -ENOENT)
		return 0;
	if (err) {
		p->skipped++;
		return 0;
	}
	return push(p, start, end);
}

/* The fallback: every FDE of .eh_frame in file order, to the terminator. */
static int walk_eh_frame(struct parser *p)
{
	const struct fde_input *in = p->in;
	size_t off = p->walk_from;

	while (in->frame && off < in->frame_size) {
		struct cursor c = { .buf = in->frame, .size = in->frame_size, .pos = off + 4,
				    .be = in->big_endian };
		uint64_t id;
		size_t end;
		bool term;
		int err;

		if (entry_bounds(in, off, &end, &term) || term)
			break; /* the terminator, or nothing after it can be trusted */
		if (read_uint(&c, 4, &id))
			break;
		if (id != 0) {
			err = add_fde(p, off);
			if (err)
				return err;
		}
		off = end;
	}
	return 0;
}

/* The primary path: .eh_frame_hdr's search table. Returns -EINVAL when the
 * header is unusable (the caller walks .eh_frame instead). */
static int read_hdr_table(struct parser *p)
{
	const struct fde_input *in = p->in;
	struct cursor c = { .buf = in->hdr, .size = in->hdr_size, .vaddr = in->hdr_vaddr,
			    .be = in->big_endian };
	uint64_t version, ptr_enc, count_enc, table_enc, frame_ptr, count;

	if (!in->hdr || !in->frame || read_uint(&c, 1, &version) || version != 1 ||
	    read_uint(&c, 1, &ptr_enc) || read_uint(&c, 1, &count_enc) ||
	    read_uint(&c, 1, &table_enc) ||
	    read_encoded(&c, (uint8_t)ptr_enc, in->addr_size, true, true, in->hdr_vaddr,
			 &frame_ptr))
		return -EINVAL;
	/* frame may start before .eh_frame (a file without section headers
	 * passes the whole segment): a fallback walk starts where this points. */
	if (frame_ptr < in->frame_vaddr || frame_ptr - in->frame_vaddr >= in->frame_size)
		return -EINVAL;
	p->walk_from = (size_t)(frame_ptr - in->frame_vaddr);
	size_t entry = encoding_size((uint8_t)table_enc, in->addr_size);

	if (count_enc == DW_EH_PE_omit || table_enc == DW_EH_PE_omit || entry == 0 ||
	    read_encoded(&c, (uint8_t)count_enc, in->addr_size, true, true, in->hdr_vaddr,
			 &count))
		return -EINVAL;
	/* A count larger than the table holds is cut to what is there. */
	size_t room = (c.size - c.pos) / (2 * entry);

	if (count > room) {
		p->skipped += count - room;
		count = room;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint64_t loc, fde, start, end;
		int err;

		if (read_encoded(&c, (uint8_t)table_enc, in->addr_size, true, true, in->hdr_vaddr,
				 &loc) ||
		    read_encoded(&c, (uint8_t)table_enc, in->addr_size, true, true, in->hdr_vaddr,
				 &fde))
			return -EINVAL; /* cannot happen: room was checked */
		if (fde < in->frame_vaddr || fde - in->frame_vaddr >= in->frame_size) {
			p->skipped++;
			continue;
		}
		err = parse_fde(p, (size_t)(fde - in->frame_vaddr), &start, &end);
		if (err == -ENOENT)
			continue;
		if (err || start != loc) {
			p->skipped++;
			continue;
		}
		err = push(p, start, end);
		if (err)
			return err;
	}
	return 0;
}

static int cmp_raw(const void *a, const void *b)
{
	const struct raw_range *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	/* Same start: the longer first (it is kept). */
	return x->end > y->end ? -1 : x->end < y->end;
}

/* Sorts the gathered ranges, drops overlaps and ranges beyond 4 GiB of the
 * first one, and packs them into out. */
static int pack(struct parser *p, struct fde_ranges *out)
{
	if (p->nraw == 0)
		return 0;
	qsort(p->raw, p->nraw, sizeof(*p->raw), cmp_raw);
	out->ranges = malloc(p->nraw * sizeof(*out->ranges));
	if (!out->ranges)
		return -ENOMEM;
	out->base = p->raw[0].start;
	uint64_t prev_end = out->base;

	for (size_t i = 0; i < p->nraw; i++) {
		const struct raw_range *r = &p->raw[i];

		if (r->start < prev_end) {
			p->skipped++; /* overlaps a kept range: one name per address */
			continue;
		}
		if (r->end - out->base > UINT32_MAX) {
			p->truncated++;
			continue;
		}
		out->ranges[out->nranges].start = (uint32_t)(r->start - out->base);
		out->ranges[out->nranges].size = (uint32_t)(r->end - r->start);
		out->nranges++;
		prev_end = r->end;
	}
	if (out->nranges == 0) {
		free(out->ranges);
		out->ranges = NULL;
	} else if (out->nranges < p->nraw) {
		struct fde_range *shrunk = realloc(out->ranges, out->nranges * sizeof(*shrunk));

		if (shrunk) /* else the larger block serves as well */
			out->ranges = shrunk;
	}
	return 0;
}

int fde_ranges__parse(const struct fde_input *in, struct fde_ranges *out)
{
	struct parser p = { .in = in };
	int err;

	if (!in || !out || (in->addr_size != 4 && in->addr_size != 8))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < CIE_CACHE_SLOTS; i++)
		p.cies[i].offset = SIZE_MAX;
	err = read_hdr_table(&p);
	if (err == 0) {
		out->from_hdr = 1;
	} else if (err == -EINVAL) {
		p.nraw = 0;
		p.skipped = p.truncated = 0;
		err = walk_eh_frame(&p);
	}
	if (!err)
		err = pack(&p, out);
	free(p.raw);
	out->skipped = p.skipped;
	out->truncated = p.truncated;
	if (err)
		fde_ranges__release(out);
	return err;
}

void fde_ranges__release(struct fde_ranges *r)
{
	if (!r)
		return;
	free(r->ranges);
	memset(r, 0, sizeof(*r));
}

int fde_ranges__find(const struct fde_ranges *r, uint64_t vaddr, uint64_t *start)
{
	size_t lo = 0, hi;

	if (!r || r->nranges == 0 || vaddr < r->base || vaddr - r->base > UINT32_MAX)
		return -ENOENT;
	uint32_t rel = (uint32_t)(vaddr - r->base);

	hi = r->nranges;
	while (lo < hi) { /* the first range starting after rel */
		size_t mid = lo + (hi - lo) / 2;

		if (r->ranges[mid].start <= rel)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return -ENOENT;
	const struct fde_range *f = &r->ranges[lo - 1];

	if ((uint64_t)rel - f->start >= f->size)
		return -ENOENT;
	if (start)
		*start = r->base + f->start;
	return 0;
}
