// SPDX-License-Identifier: MIT
#include "unwind/cfi_table.h"

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* DWARF registers of x86_64. */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

/* remember_state nesting kept per FDE (deeper pushes are malformed input). */
#define STATE_STACK 16

/* A row before sorting: the row, and what orders rows at the same pc. */
struct pending_row {
	struct unwind_row row; /* as it will be published */
	uint32_t real;         /* 0: an FDE's end marker (a GAP row), which any real row
				* at the same pc replaces (the next FDE starts there) */
	uint32_t seq;          /* order of creation: at one pc, the last row wins */
};

struct cfi_table {
	struct pending_row *rows; /* grown while adding; sorted, merged by finish */
	size_t n;                 /* rows used */
	size_t cap;               /* rows allocated */
	struct unwind_row *out;   /* the finished table (NULL until finish) */
	size_t nout;              /* rows in out */
	uint32_t seq;             /* next pending_row.seq */
	struct cfi_table_stats stats; /* what the adds met */
};

/* A bounds-checked reader over untrusted bytes: a failed read sets bad and
 * returns 0, and every later read fails too. */
struct cursor {
	const uint8_t *p;   /* next byte */
	const uint8_t *end; /* one past the last readable byte */
	bool bad;           /* a read went past end */
};

static bool need(struct cursor *c, size_t n)
{
	if (c->bad || (size_t)(c->end - c->p) < n) {
		c->bad = true;
		return false;
	}
	return true;
}

static uint64_t read_u(struct cursor *c, size_t n)
{
	uint64_t v = 0;
	if (!need(c, n))
		return 0;
	for (size_t i = 0; i < n; i++) /* little-endian: x86_64 files only */
		v |= (uint64_t)c->p[i] << (8 * i);
	c->p += n;
	return v;
}

static uint64_t read_uleb(struct cursor *c)
{
	uint64_t v = 0;
	for (unsigned shift = 0;; shift += 7) {
		if (!need(c, 1))
			return 0;
		uint8_t b = *c->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
		if (shift > 70) { /* longer than any 64-bit value's encoding */
			c->bad = true;
			return 0;
		}
	}
}

static int64_t read_sleb(struct cursor *c)
{
	uint64_t v = 0;
	unsigned shift = 0;
	uint8_t b;
	do {
		if (!need(c, 1))
			return 0;
		b = *c->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (shift > 77) {
			c->bad = true;
			return 0;
		}
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		v |= ~(uint64_t)0 << shift;
	return (int64_t)v;
}

/* v * factor, or 0 and the cursor bad when that overflows. */
static int64_t factored(struct cursor *c, int64_t v, int64_t factor)
{
	int64_t r;
	if (__builtin_mul_overflow(v, factor, &r)) {
		c->bad = true;
		return 0;
	}
	return r;
}

/* DW_EH_PE_* pointer encodings. */
#define PE_OMIT 0xff
#define PE_FORMAT 0x0f
#define PE_APPLY 0x70
#define PE_INDIRECT 0x80
#define PE_PCREL 0x10
#define PE_DATAREL 0x30

/* Reads a pointer encoded as enc; base is the address of the section's first
 * byte (pc-relative pointers), sec_start its first byte in memory. */
static uint64_t read_encoded(struct cursor *c, uint8_t enc, uint64_t base,
			     const uint8_t *sec_start)
{
	uint64_t field = base + (uint64_t)(c->p - sec_start);
	uint64_t v;
	if (enc == PE_OMIT)
		return 0;
	switch (enc & PE_FORMAT) {
	case 0x00: v = read_u(c, 8); break;                      /* absptr */
	case 0x01: v = read_uleb(c); break;                      /* uleb128 */
	case 0x02: v = read_u(c, 2); break;                      /* udata2 */
	case 0x03: v = read_u(c, 4); break;                      /* udata4 */
	case 0x04: v = read_u(c, 8); break;                      /* udata8 */
	case 0x09: v = (uint64_t)read_sleb(c); break;            /* sleb128 */
	case 0x0a: v = (uint64_t)(int64_t)(int16_t)read_u(c, 2); break; /* sdata2 */
	case 0x0b: v = (uint64_t)(int64_t)(int32_t)read_u(c, 4); break; /* sdata4 */
	case 0x0c: v = read_u(c, 8); break;                      /* sdata8 */
	default:
		c->bad = true;
		return 0;
	}
	switch (enc & PE_APPLY) {
	case 0x00:
		break;
	case PE_PCREL:
		v += field;
		break;
	case PE_DATAREL: /* relative to .got: never used for FDE addresses */
	default:
		c->bad = true; /* textrel, funcrel, aligned: not in x86_64 CFI */
		return 0;
	}
	return v;
}

/* A register's rule, as far as unwinding needs it. */
enum reg_rule {
	RULE_SAME = 0,      /* unchanged (the initial rule of callee-saved registers) */
	RULE_OFFSET = 1,    /* saved at CFA + off */
	RULE_UNDEFINED = 2, /* no value: for the return address, the outermost frame */
	RULE_OTHER = 3,     /* anything else (register, expression, val_offset) */
	RULE_AT_RBP = 4,    /* saved at rbp + off (the expression DW_OP_breg6 off, as
			     * GCC's stack realignment saves rbp) */
};

enum cfa_rule {
	CFA_REG = 0,     /* reg + off */
	CFA_PLT = 1,     /* the PLT expression, threshold in off */
	CFA_OTHER = 2,   /* any other expression */
	CFA_RBP_DEREF = 3, /* *(rbp + off): DW_OP_breg6 off; DW_OP_deref (stack
			    * realignment through a DRAP register, GCC) */
};

/* The rules at one location. */
struct cfi_state {
	enum cfa_rule cfa;  /* how the CFA is computed */
	uint64_t cfa_reg;   /* CFA_REG: its register */
	int64_t cfa_off;    /* CFA_REG: the offset; CFA_PLT: the threshold */
	enum reg_rule rbp;  /* the caller's rbp */
	int64_t rbp_off;    /* RULE_OFFSET: from the CFA; RULE_AT_RBP: from rbp */
	enum reg_rule ra;   /* the return address */
	int64_t ra_off;     /* RULE_OFFSET: from the CFA */
};

/* A CIE as FDEs need it. */
struct cie {
	uint64_t code_align;  /* advance_loc factor */
	int64_t data_align;   /* offset factor */
	uint64_t ra_reg;      /* return address column */
	uint8_t fde_enc;      /* 'R': encoding of FDE addresses */
	bool has_z;           /* 'z': FDEs have augmentation data */
	bool signal;          /* 'S': a signal trampoline */
	const uint8_t *insns; /* initial instructions */
	const uint8_t *insns_end;
};

static int push_row(struct cfi_table *t, uint64_t pc, const struct unwind_row *r, bool real)
{
	if (t->n >= CFI_TABLE_MAX_ROWS)
		return -E2BIG;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct pending_row *rows = realloc(t->rows, cap * sizeof(*rows));
		if (!rows)
			return -ENOMEM;
		t->rows = rows;
		t->cap = cap;
	}
	struct pending_row *p = &t->rows[t->n++];
	p->row = *r;
	p->row.pc = (uint32_t)pc;
	p->real = real;
	p->seq = t->seq++;
	return 0;
}

/* The published form of the rules s (in an FDE of cie). */
static struct unwind_row row_of(struct cfi_table *t, const struct cie *cie,
				const struct cfi_state *s)
{
	struct unwind_row r = { 0 };
	if (cie->signal) {
		r.kind = UNWIND_CFA_SIGNAL;
		return r;
	}
	if (s->ra == RULE_UNDEFINED) {
		r.kind = UNWIND_CFA_END;
		return r;
	}
	if (s->ra != RULE_OFFSET || s->ra_off != -8)
		goto unsupported;
	if (s->cfa == CFA_PLT) {
		t->stats.plt_rows++;
		r.kind = UNWIND_CFA_PLT;
		r.cfa_off = (int16_t)s->cfa_off;
		return r;
	}
	if (s->cfa == CFA_RBP_DEREF) {
		r.kind = UNWIND_CFA_RBP_DEREF;
	} else if (s->cfa != CFA_REG || (s->cfa_reg != REG_RSP && s->cfa_reg != REG_RBP)) {
		goto unsupported;
	} else {
		r.kind = s->cfa_reg == REG_RSP ? UNWIND_CFA_RSP : UNWIND_CFA_RBP;
	}
	if (s->cfa_off >= INT16_MIN && s->cfa_off <= INT16_MAX) {
		r.cfa_off = (int16_t)s->cfa_off;
	} else if (s->cfa_off % 8 == 0 && s->cfa_off / 8 >= INT16_MIN &&
		   s->cfa_off / 8 <= INT16_MAX) {
		r.cfa_off = (int16_t)(s->cfa_off / 8);
		r.kind |= UNWIND_CFA_OFF_X8;
	} else {
		goto unsupported;
	}
	if (s->rbp == RULE_OFFSET || s->rbp == RULE_AT_RBP) {
		if (s->rbp_off % 8 || s->rbp_off / 8 < INT8_MIN || s->rbp_off / 8 > INT8_MAX)
			goto unsupported;
		r.kind |= UNWIND_RBP_SAVED;
		if (s->rbp == RULE_AT_RBP)
			r.kind |= UNWIND_RBP_AT_RBP;
		r.rbp_off8 = (int8_t)(s->rbp_off / 8);
	} else if (s->rbp != RULE_SAME) {
		goto unsupported; /* rbp elsewhere: its value could not be followed */
	}
	return r;
unsupported:
	t->stats.unsupported++;
	r.kind = UNWIND_CFA_NONE;
	r.cfa_off = 0;
	r.rbp_off8 = 0;
	return r;
}

/* Adds the row of the rules s in force from pc. */
static int emit_row(struct cfi_table *t, const struct cie *cie, const struct cfi_state *s,
		    uint64_t pc)
{
	struct unwind_row r = row_of(t, cie, s);
	return push_row(t, pc, &r, true);
}

/* Is the expression [p, end) the PLT's CFA (rsp + 8 + ((rip & 15) >= N) << 3)?
 * Sets *threshold to N. */
static bool is_plt_expression(const uint8_t *p, size_t len, int64_t *threshold)
{
	static const uint8_t head[] = { 0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a };
	static const uint8_t tail[] = { 0x2a, 0x33, 0x24, 0x22 };
	if (len != sizeof(head) + 1 + sizeof(tail) || memcmp(p, head, sizeof(head)) ||
	    memcmp(p + sizeof(head) + 1, tail, sizeof(tail)))
		return false;
	uint8_t lit = p[sizeof(head)];
	if (lit < 0x30 || lit > 0x4f) /* DW_OP_lit0..lit31 */
		return false;
	*threshold = lit - 0x30;
	return true;
}

/* Is the expression [p, p + len) DW_OP_breg6 (rbp) N, followed by DW_OP_deref
 * when deref? Sets *off to N. The forms GCC's stack realignment emits: the
 * CFA is *(rbp - 8), rbp is saved at rbp + 0. */
static bool is_rbp_expression(const uint8_t *p, size_t len, bool deref, int64_t *off)
{
	struct cursor c = { .p = p, .end = p + len };
	if (!need(&c, 1) || *c.p++ != 0x76) /* DW_OP_breg6 */
		return false;
	*off = read_sleb(&c);
	if (deref && (!need(&c, 1) || *c.p++ != 0x06)) /* DW_OP_deref */
		return false;
	return !c.bad && c.p == c.end;
}

/* Runs a CFA program from *s at location *loc (the FDE's range [lo, hi)),
 * emitting a row each time the location advances when emit. The CIE's
 * initial instructions run with emit false and set *initial at the end. */
static int run_program(struct cfi_table *t, const struct cie *cie, struct cursor *c,
		       struct cfi_state *s, const struct cfi_state *initial, uint64_t *loc,
		       uint64_t hi, bool emit, uint64_t base, const uint8_t *sec_start)
{
	struct cfi_state stack[STATE_STACK];
	unsigned depth = 0;
	int err = 0;

	while (!c->bad && c->p < c->end) {
		uint8_t op = (uint8_t)read_u(c, 1);
		uint64_t reg = 0, advance = 0;
		int64_t off = 0;
		bool is_advance = false;
		switch (op & 0xc0) {
		case 0x40: /* advance_loc */
			advance = (uint64_t)(op & 0x3f) * cie->code_align;
			is_advance = true;
			break;
		case 0x80: /* offset */
			reg = op & 0x3f;
			off = factored(c, (int64_t)read_uleb(c), cie->data_align);
			goto set_offset;
		case 0xc0: /* restore */
			reg = op & 0x3f;
			goto restore;
		default:
			break;
		}
		if (!is_advance) {
			switch (op) {
			case 0x00: /* nop */
				break;
			case 0x01: { /* set_loc */
				uint64_t to = read_encoded(c, cie->fde_enc, base, sec_start);
				if (to < *loc) {
					c->bad = true;
					break;
				}
				advance = to - *loc;
				is_advance = true;
				break;
			}
			case 0x02: advance = read_u(c, 1) * cie->code_align; is_advance = true; break;
			case 0x03: advance = read_u(c, 2) * cie->code_align; is_advance = true; break;
			case 0x04: advance = read_u(c, 4) * cie->code_align; is_advance = true; break;
			case 0x05: /* offset_extended */
				reg = read_uleb(c);
				off = factored(c, (int64_t)read_uleb(c), cie->data_align);
				goto set_offset;
			case 0x11: /* offset_extended_sf */
				reg = read_uleb(c);
				off = factored(c, read_sleb(c), cie->data_align);
				goto set_offset;
			case 0x2f: /* GNU_negative_offset_extended */
				reg = read_uleb(c);
				off = factored(c, (int64_t)read_uleb(c), -cie->data_align);
				goto set_offset;
			case 0x06: /* restore_extended */
				reg = read_uleb(c);
				goto restore;
			case 0x07: /* undefined */
			case 0x08: /* same_value */
				reg = read_uleb(c);
				if (reg == REG_RBP)
					s->rbp = op == 0x07 ? RULE_OTHER : RULE_SAME;
				else if (reg == cie->ra_reg)
					s->ra = op == 0x07 ? RULE_UNDEFINED : RULE_OTHER;
				break;
			case 0x09: /* register */
				reg = read_uleb(c);
				read_uleb(c);
				goto set_other;
			case 0x14: /* val_offset */
			case 0x15: /* val_offset_sf */
				reg = read_uleb(c);
				if (op == 0x14)
					read_uleb(c);
				else
					read_sleb(c);
				goto set_other;
			case 0x10: /* expression */
			case 0x16: { /* val_expression */
				reg = read_uleb(c);
				uint64_t len = read_uleb(c);
				if (!need(c, len))
					break;
				int64_t at;
				bool rbp_at_rbp = op == 0x10 && reg == REG_RBP &&
						  is_rbp_expression(c->p, len, false, &at);
				c->p += len;
				if (rbp_at_rbp) {
					s->rbp = RULE_AT_RBP;
					s->rbp_off = at;
					break;
				}
				goto set_other;
			}
			case 0x0a: /* remember_state */
				if (depth >= STATE_STACK) {
					c->bad = true;
					break;
				}
				stack[depth++] = *s;
				break;
			case 0x0b: /* restore_state */
				if (!depth) {
					c->bad = true;
					break;
				}
				/* Every rule, the CFA's too (DWARF 5 6.4.2.4). */
				*s = stack[--depth];
				break;
			case 0x0c: /* def_cfa */
				s->cfa = CFA_REG;
				s->cfa_reg = read_uleb(c);
				s->cfa_off = (int64_t)read_uleb(c);
				break;
			case 0x12: /* def_cfa_sf */
				s->cfa = CFA_REG;
				s->cfa_reg = read_uleb(c);
				s->cfa_off = factored(c, read_sleb(c), cie->data_align);
				break;
			case 0x0d: /* def_cfa_register */
				s->cfa_reg = read_uleb(c);
				if (s->cfa != CFA_REG) /* a register of an expression: no offset */
					s->cfa_off = 0;
				s->cfa = CFA_REG;
				break;
			case 0x0e: /* def_cfa_offset */
				s->cfa_off = (int64_t)read_uleb(c);
				break;
			case 0x13: /* def_cfa_offset_sf */
				s->cfa_off = factored(c, read_sleb(c), cie->data_align);
				break;
			case 0x0f: { /* def_cfa_expression */
				uint64_t len = read_uleb(c);
				if (!need(c, len))
					break;
				int64_t threshold;
				if (is_plt_expression(c->p, len, &threshold)) {
					s->cfa = CFA_PLT;
					s->cfa_off = threshold;
				} else if (is_rbp_expression(c->p, len, true, &threshold) &&
					   threshold >= INT16_MIN && threshold <= INT16_MAX) {
					s->cfa = CFA_RBP_DEREF;
					s->cfa_off = threshold;
				} else {
					s->cfa = CFA_OTHER;
				}
				c->p += len;
				break;
			}
			case 0x2e: /* GNU_args_size */
				read_uleb(c);
				break;
			default: /* unknown opcode: its length is unknown, stop */
				c->bad = true;
				break;
			}
		}
		if (c->bad)
			break;
		if (is_advance) {
			if (emit && *loc < hi && (err = emit_row(t, cie, s, *loc)))
				return err;
			if (advance > hi - *loc) /* past the FDE's end: nothing more to emit */
				advance = hi - *loc;
			*loc += advance;
		}
		continue;
set_offset:
		if (c->bad)
			break;
		if (reg == REG_RBP) {
			s->rbp = RULE_OFFSET;
			s->rbp_off = off;
		} else if (reg == cie->ra_reg) {
			s->ra = RULE_OFFSET;
			s->ra_off = off;
		}
		continue;
set_other:
		if (c->bad)
			break;
		if (reg == REG_RBP)
			s->rbp = RULE_OTHER;
		else if (reg == cie->ra_reg)
			s->ra = RULE_OTHER;
		continue;
restore:
		if (c->bad)
			break;
		if (!initial) { /* restore in a CIE's own instructions: malformed */
			c->bad = true;
			break;
		}
		if (reg == REG_RBP) {
			s->rbp = initial->rbp;
			s->rbp_off = initial->rbp_off;
		} else if (reg == cie->ra_reg) {
			s->ra = initial->ra;
			s->ra_off = initial->ra_off;
		}
		continue;
	}
	return c->bad ? -EINVAL : 0;
}

/* Parses the CIE whose body (after its id) is c. */
static int parse_cie(struct cie *cie, struct cursor *c, bool debug_frame, uint64_t base,
		     const uint8_t *sec_start)
{
	memset(cie, 0, sizeof(*cie));
	(void)debug_frame; /* FDE addresses are absptr unless 'R' says otherwise */
	uint8_t version = (uint8_t)read_u(c, 1);
	if (version != 1 && version != 3 && version != 4)
		return -EINVAL;
	const uint8_t *aug = c->p;
	while (need(c, 1) && *c->p)
		c->p++;
	if (!need(c, 1))
		return -EINVAL;
	const uint8_t *aug_end = c->p++;
	if (version == 4) { /* address_size, segment_selector_size */
		if (read_u(c, 1) != 8 || read_u(c, 1) != 0)
			return -EINVAL;
	}
	cie->code_align = read_uleb(c);
	cie->data_align = read_sleb(c);
	cie->ra_reg = version == 1 ? read_u(c, 1) : read_uleb(c);
	if (c->bad || cie->code_align == 0 || cie->code_align > 64 ||
	    cie->data_align < -64 || cie->data_align > 64)
		return -EINVAL;
	if (aug < aug_end && *aug == 'z') {
		cie->has_z = true;
		uint64_t len = read_uleb(c);
		if (!need(c, len))
			return -EINVAL;
		struct cursor a = { c->p, c->p + len, false };
		c->p += len;
		for (const uint8_t *q = aug + 1; q < aug_end && !a.bad; q++) {
			switch (*q) {
			case 'R':
				cie->fde_enc = (uint8_t)read_u(&a, 1);
				break;
			case 'L':
				read_u(&a, 1);
				break;
			case 'P': {
				uint8_t enc = (uint8_t)read_u(&a, 1);
				read_encoded(&a, enc & ~PE_INDIRECT, base, sec_start);
				break;
			}
			case 'S':
				cie->signal = true;
				break;
			default: /* 'B' and the like carry no data; others: the
				  * length already covers their data */
				q = aug_end - 1;
				break;
			}
		}
		if (a.bad)
			return -EINVAL;
	} else if (aug < aug_end) {
		/* "eh" (old GCC) and unknown augmentations without 'z': the
		 * layout is unknown. */
		return -EINVAL;
	}
	if (c->bad)
		return -EINVAL;
	cie->insns = c->p;
	cie->insns_end = c->end;
	return 0;
}

/* Adds the FDEs of one section (base: its address, for pc-relative pointers). */
static int parse_section(struct cfi_table *t, const uint8_t *data, size_t size, uint64_t base,
			 bool debug_frame)
{
	const uint8_t *p = data, *end = data + size;
	int err = 0;

	while ((size_t)(end - p) >= 4) {
		struct cursor c = { p, end, false };
		uint64_t len = read_u(&c, 4);
		size_t id_size = 4;
		if (len == 0) {
			if (debug_frame) { /* padding in .debug_frame; the end in .eh_frame */
				p = c.p;
				continue;
			}
			break;
		}
		if (len == 0xffffffffu) {
			len = read_u(&c, 8);
			id_size = 8;
		}
		if (c.bad || len > (size_t)(end - c.p) || len < id_size)
			break; /* the rest of the section cannot be framed */
		const uint8_t *entry_start = c.p, *next = c.p + len;
		struct cursor e = { entry_start, next, false };
		uint64_t id = read_u(&e, id_size);
		p = next;
		bool is_cie = debug_frame ? id == (id_size == 4 ? 0xffffffffu : ~(uint64_t)0) : id == 0;
		struct cie cie;
		if (is_cie) {
			if (parse_cie(&cie, &e, debug_frame, base, data))
				t->stats.bad_entries++;
			else
				t->stats.cies++;
			continue;
		}
		/* An FDE: find its CIE. */
		const uint8_t *cie_at;
		if (debug_frame) {
			if (id >= size)
				goto bad_fde;
			cie_at = data + id;
		} else {
			if (id > (uint64_t)(entry_start - data))
				goto bad_fde;
			cie_at = entry_start - id;
		}
		{
			struct cursor cc = { cie_at, end, false };
			uint64_t clen = read_u(&cc, 4);
			size_t cid_size = 4;
			if (clen == 0xffffffffu) {
				clen = read_u(&cc, 8);
				cid_size = 8;
			}
			if (cc.bad || clen > (size_t)(end - cc.p) || clen < cid_size)
				goto bad_fde;
			cc.end = cc.p + clen;
			uint64_t cid = read_u(&cc, cid_size);
			if (debug_frame ? cid != (cid_size == 4 ? 0xffffffffu : ~(uint64_t)0) : cid != 0)
				goto bad_fde;
			if (parse_cie(&cie, &cc, debug_frame, base, data))
				goto bad_fde;
		}
		uint64_t lo = read_encoded(&e, cie.fde_enc, base, data);
		uint64_t range = read_encoded(&e, cie.fde_enc & PE_FORMAT, base, data);
		if (cie.has_z) {
			uint64_t alen = read_uleb(&e);
			if (!need(&e, alen))
				goto bad_fde;
			e.p += alen;
		}
		if (e.bad)
			goto bad_fde;
		if (range == 0)
			continue; /* an FDE of nothing (a discarded function) */
		if (lo > UINT32_MAX || range > UINT32_MAX - lo) {
			t->stats.high_pcs++;
			continue;
		}
		uint64_t hi = lo + range, loc = lo;
		struct cfi_state init = { .cfa = CFA_REG, .ra = RULE_SAME };
		struct cursor ci = { cie.insns, cie.insns_end, false };
		uint64_t cloc = lo;
		if (run_program(t, &cie, &ci, &init, NULL, &cloc, hi, false, base, data))
			goto bad_fde;
		struct cfi_state s = init;
		err = run_program(t, &cie, &e, &s, &init, &loc, hi, true, base, data);
		if (err == -ENOMEM || err == -E2BIG)
			return err;
		if (err) {
			/* A malformed program: what it said so far stands only up
			 * to here; the rest of the FDE gets no row. */
			err = 0;
			t->stats.bad_entries++;
			if (loc < hi && (err = push_row(t, loc, &(struct unwind_row){ 0 }, true)))
				return err;
		} else if (loc < hi && (err = emit_row(t, &cie, &s, loc))) {
			return err;
		}
		if ((err = push_row(t, hi, &(struct unwind_row){ .kind = UNWIND_CFA_GAP }, false)))
			return err;
		t->stats.fdes++;
		if (cie.signal)
			t->stats.signal_fdes++;
		continue;
bad_fde:
		t->stats.bad_entries++;
	}
	return 0;
}

struct cfi_table *cfi_table__new(void)
{
	struct cfi_table *t = calloc(1, sizeof(*t));
	if (!t)
		errno = ENOMEM;
	return t;
}

void cfi_table__free(struct cfi_table *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t->out);
	free(t);
}

int cfi_table__add_eh_frame(struct cfi_table *t, const uint8_t *data, size_t size,
			    uint64_t vaddr)
{
	if (t->out)
		return -EINVAL;
	return parse_section(t, data, size, vaddr, false);
}

int cfi_table__add_debug_frame(struct cfi_table *t, const uint8_t *data, size_t size)
{
	if (t->out)
		return -EINVAL;
	return parse_section(t, data, size, 0, true);
}

static int cmp_pending(const void *a, const void *b)
{
	const struct pending_row *x = a, *y = b;
	if (x->row.pc != y->row.pc)
		return x->row.pc < y->row.pc ? -1 : 1;
	if (x->real != y->real)
		return x->real < y->real ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool same_rules(const struct unwind_row *a, const struct unwind_row *b)
{
	return a->kind == b->kind && a->cfa_off == b->cfa_off && a->rbp_off8 == b->rbp_off8;
}

int cfi_table__finish(struct cfi_table *t)
{
	if (t->out)
		return -EINVAL;
	if (t->n)
		qsort(t->rows, t->n, sizeof(*t->rows), cmp_pending);
	t->out = malloc((t->n ? t->n : 1) * sizeof(*t->out));
	if (!t->out)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++) {
		/* At one pc the last row (real ones after end markers) wins. */
		if (i + 1 < t->n && t->rows[i + 1].row.pc == t->rows[i].row.pc)
			continue;
		const struct unwind_row *r = &t->rows[i].row;
		if (n && same_rules(&t->out[n - 1], r))
			continue;
		if (!n && r->kind == UNWIND_CFA_GAP)
			continue; /* before the first row is a gap anyway */
		t->out[n++] = *r;
	}
	t->nout = n;
	free(t->rows);
	t->rows = NULL;
	t->n = t->cap = 0;
	return 0;
}

size_t cfi_table__count(const struct cfi_table *t)
{
	return t->nout;
}

const struct unwind_row *cfi_table__rows(const struct cfi_table *t)
{
	return t->out;
}

const struct cfi_table_stats *cfi_table__stats(const struct cfi_table *t)
{
	return &t->stats;
}

const struct unwind_row *cfi_table__find(const struct cfi_table *t, uint64_t pc)
{
	size_t lo = 0, hi = t->nout;
	if (!t->out || pc > UINT32_MAX)
		return NULL;
	while (lo < hi) { /* first row with row.pc > pc */
		size_t mid = lo + (hi - lo) / 2;
		if (t->out[mid].pc <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? &t->out[lo - 1] : NULL;
}

/* Adds the CFI sections of elf to t and finishes it. */
static int add_elf(struct cfi_table *t, Elf *elf)
{
	GElf_Ehdr eh;
	size_t shstrndx;
	int found = 0, err = 0;
	if (!gelf_getehdr(elf, &eh) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
		return -ENOEXEC;
	if (elf_getshdrstrndx(elf, &shstrndx))
		return -ENOEXEC;
	for (int pass = 0; pass < 2 && !err; pass++) {
		Elf_Scn *scn = NULL;
		while ((scn = elf_nextscn(elf, scn)) && !err) {
			GElf_Shdr sh;
			if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
				continue;
			const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
			if (!name || strcmp(name, pass ? ".eh_frame" : ".debug_frame"))
				continue;
			/* Compressed .debug_frame (SHF_COMPRESSED): not read. */
			if (sh.sh_flags & SHF_COMPRESSED)
				continue;
			Elf_Data *d = elf_getdata(scn, NULL);
			if (!d || !d->d_buf || !d->d_size)
				continue;
			found = 1;
			err = pass ? cfi_table__add_eh_frame(t, d->d_buf, d->d_size, sh.sh_addr) :
				     cfi_table__add_debug_frame(t, d->d_buf, d->d_size);
		}
	}
	if (err)
		return err;
	if (!found)
		return -ENODATA;
	return cfi_table__finish(t);
}

static struct cfi_table *from_elf(Elf *elf)
{
	struct cfi_table *t = NULL;
	int err;
	if (!elf) {
		err = -ENOEXEC;
		goto fail;
	}
	if (!(t = cfi_table__new())) {
		err = -ENOMEM;
		goto fail;
	}
	if ((err = add_elf(t, elf)))
		goto fail;
	elf_end(elf);
	return t;
fail:
	elf_end(elf);
	cfi_table__free(t);
	errno = -err;
	return NULL;
}

struct cfi_table *cfi_table__from_fd(int fd)
{
	elf_version(EV_CURRENT);
	return from_elf(elf_begin(fd, ELF_C_READ_MMAP, NULL));
}

struct cfi_table *cfi_table__from_memory(const void *image, size_t size)
{
	elf_version(EV_CURRENT);
	return from_elf(elf_memory((char *)image, size));
}
