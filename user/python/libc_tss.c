// SPDX-License-Identifier: MIT
#include "python/libc_tss.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "python/tls_layout.h"
#include "symbolize/elf_dynsym.h"
#include "util/errmsg.h"
#include "util/file_cache.h"

/* Instructions followed before the data load (glibc's fast path has 6). */
#define MAX_INSNS 24
/* C libraries whose verdict is kept; the cache is emptied when full. */
#define CACHE_MAX 64
/* Registers: rax..r15. */
#define NREGS 16
#define REG_RDI 7
/* Thread pointer words of glibc's tcbhead_t: tcb (offset 0) and self (0x10)
 * both hold the TCB's own address, i.e. the thread pointer. */
#define TCB_SELF_0 0x0
#define TCB_SELF_16 0x10

/* A register's value as a function of the key: mul * key + add (+ the thread
 * pointer when tp); known == 0 for anything else. */
struct sym_reg {
	int known;   /* value follows the formula */
	int64_t mul; /* key coefficient */
	int64_t add; /* constant */
	int tp;      /* 1 when the thread pointer is added */
};

/* A decoded ModRM operand. */
struct operand {
	int is_reg;  /* register operand (mod == 3) */
	int reg;     /* its number when is_reg */
	int base;    /* memory: base register, -1 none */
	int index;   /* memory: index register, -1 none */
	int scale;   /* memory: index scale */
	int64_t disp;/* memory: displacement */
	int rip;     /* memory: RIP-relative */
};

/* Decodes ModRM (+ SIB + displacement) at code[*pc]; sets *reg_field (with
 * REX.R) and *op. Returns 0, or -1 when the bytes run out. */
static int decode_modrm(const uint8_t *code, size_t len, size_t *pc, unsigned rex,
			int *reg_field, struct operand *op)
{
	if (*pc >= len)
		return -1;
	uint8_t modrm = code[(*pc)++];
	int mod = modrm >> 6, rm = modrm & 7;

	memset(op, 0, sizeof(*op));
	op->base = op->index = -1;
	*reg_field = ((modrm >> 3) & 7) | ((rex & 4) ? 8 : 0);
	if (mod == 3) {
		op->is_reg = 1;
		op->reg = rm | ((rex & 1) ? 8 : 0);
		return 0;
	}
	int disp_len = mod == 1 ? 1 : mod == 2 ? 4 : 0;
	if (rm == 4) {
		if (*pc >= len)
			return -1;
		uint8_t sib = code[(*pc)++];
		int index = ((sib >> 3) & 7) | ((rex & 2) ? 8 : 0);
		int base = (sib & 7) | ((rex & 1) ? 8 : 0);
		op->scale = 1 << (sib >> 6);
		op->index = index == 4 ? -1 : index;
		if ((sib & 7) == 5 && mod == 0)
			disp_len = 4; /* no base */
		else
			op->base = base;
	} else if (rm == 5 && mod == 0) {
		op->rip = 1;
		disp_len = 4;
	} else {
		op->base = rm | ((rex & 1) ? 8 : 0);
	}
	if (*pc + (size_t)disp_len > len)
		return -1;
	if (disp_len == 1) {
		op->disp = (int8_t)code[*pc];
	} else if (disp_len == 4) {
		int32_t d;
		memcpy(&d, code + *pc, 4);
		op->disp = d;
	}
	*pc += (size_t)disp_len;
	return 0;
}

static int read_imm(const uint8_t *code, size_t len, size_t *pc, int bytes, int64_t *imm)
{
	if (*pc + (size_t)bytes > len)
		return -1;
	if (bytes == 1) {
		*imm = (int8_t)code[*pc];
	} else {
		int32_t v;
		memcpy(&v, code + *pc, 4);
		*imm = v;
	}
	*pc += (size_t)bytes;
	return 0;
}

/* The address of a memory operand without segment, as a formula. */
static struct sym_reg address_of(const struct sym_reg *regs, const struct operand *op)
{
	struct sym_reg a = {.known = 1, .add = op->disp};
	if (op->rip)
		return (struct sym_reg){0};
	if (op->base >= 0) {
		const struct sym_reg *b = &regs[op->base];
		if (!b->known)
			return (struct sym_reg){0};
		a.mul += b->mul;
		a.add += b->add;
		a.tp += b->tp;
	}
	if (op->index >= 0) {
		const struct sym_reg *x = &regs[op->index];
		if (!x->known || x->tp)
			return (struct sym_reg){0};
		a.mul += x->mul * op->scale;
		a.add += x->add * op->scale;
	}
	return a;
}

/* Formulas are kept within +-2^40 (a key block is a few KiB past the thread
 * pointer), so that no operation of at most x4096 or +2^41 can overflow. */
#define FORMULA_MAX (1LL << 40)

static int out_of_range(const struct sym_reg *r)
{
	return r->known && (r->mul > FORMULA_MAX || r->mul < -FORMULA_MAX ||
			    r->add > FORMULA_MAX || r->add < -FORMULA_MAX || r->tp > 1);
}

static int is_key(const struct sym_reg *r)
{
	return r->known && r->mul == 1 && r->add == 0 && !r->tp;
}

/* A 32-bit write zero-extends: only a small formula without the thread
 * pointer survives it (the key is below 2^32 and so are the constants). */
static struct sym_reg narrow(struct sym_reg r)
{
	if (!r.known || r.tp || r.mul < 0 || r.mul > 1 << 16 || r.add < 0 || r.add > 1 << 24)
		return (struct sym_reg){0};
	return r;
}

#define FAIL(...)                                                                  \
	do {                                                                       \
		errmsg__set(reason, reasonlen, __VA_ARGS__);                        \
		return -ENOTSUP;                                                    \
	} while (0)

int libc_tss__decode(const uint8_t *code, size_t len, struct libc_tss_code *out, char *reason,
		     size_t reasonlen)
{
	struct sym_reg regs[NREGS] = {{0}};
	int64_t bound = -1, pending_cmp = -1;
	size_t pc = 0;

	if (reason && reasonlen)
		reason[0] = '\0';
	if (!code || !out)
		FAIL("no code");
	regs[REG_RDI] = (struct sym_reg){.known = 1, .mul = 1}; /* the key (SysV: %edi) */
	for (int n = 0; n < MAX_INSNS; n++) {
		size_t at = pc;
		unsigned rex = 0;
		int fs = 0, reg, compared = 0;
		struct operand op;
		int64_t imm;

		if (pc + 4 <= len && !memcmp(code + pc, "\xf3\x0f\x1e\xfa", 4)) {
			pc += 4; /* endbr64 */
			continue;
		}
		while (pc < len && code[pc] == 0x64) {
			fs = 1;
			pc++;
		}
		if (pc < len && (code[pc] & 0xf0) == 0x40)
			rex = code[pc++] & 0x0f;
		if (pc >= len)
			FAIL("code ends at +%zu before the thread-specific data is read", at);
		int wide = (rex & 8) != 0;
		uint8_t opc = code[pc++];
		/* Memory operands are only understood through a register formula,
		 * or as %fs:0x0/%fs:0x10 (the thread pointer itself). */
		switch (opc) {
		case 0x90: /* nop */
			break;
		case 0x89:   /* mov r/m, r */
		case 0x8b: { /* mov r, r/m */
			if (decode_modrm(code, len, &pc, rex, &reg, &op))
				FAIL("code ends at +%zu", at);
			if (op.is_reg) {
				int dst = opc == 0x89 ? op.reg : reg, src = opc == 0x89 ? reg : op.reg;
				regs[dst] = wide ? regs[src] : narrow(regs[src]);
				break;
			}
			if (opc != 0x8b || !wide)
				FAIL("unexpected store or narrow load at +%zu", at);
			if (fs) {
				if (op.base >= 0 || op.index >= 0 || op.rip ||
				    (op.disp != TCB_SELF_0 && op.disp != TCB_SELF_16))
					FAIL("load of %%fs:0x%" PRIx64 " at +%zu is not the thread pointer",
					     (uint64_t)op.disp, at);
				regs[reg] = (struct sym_reg){.known = 1, .tp = 1};
				break;
			}
			/* The first load through a formula holding the thread pointer
			 * reads the key's data: the formula is the answer. */
			struct sym_reg entry = address_of(regs, &(struct operand){
				.base = op.base, .index = op.index, .scale = op.scale, .rip = op.rip});
			if (!entry.known || entry.tp != 1 || entry.mul <= 0)
				FAIL("load at +%zu is not from the thread's key block", at);
			if (entry.add < 0 || entry.add > UINT32_MAX || op.disp < 0 ||
			    op.disp > UINT32_MAX || entry.mul > UINT32_MAX)
				FAIL("implausible key block at +%zu", at);
			if (bound < 0)
				FAIL("the key is read at +%zu without a bounds check", at);
			out->layout.specific_1stblock = (uint32_t)entry.add;
			out->layout.entry_size = (uint32_t)entry.mul;
			out->layout.data_offset = (uint32_t)op.disp;
			out->layout.pad = 0;
			out->inline_keys = bound >= UINT32_MAX ? UINT32_MAX : (uint32_t)bound + 1;
			return 0;
		}
		case 0x01: /* add r/m, r */
		case 0x03: { /* add r, r/m */
			if (decode_modrm(code, len, &pc, rex, &reg, &op))
				FAIL("code ends at +%zu", at);
			struct sym_reg src;
			int dst;
			if (op.is_reg) {
				dst = opc == 0x01 ? op.reg : reg;
				src = regs[opc == 0x01 ? reg : op.reg];
			} else if (opc == 0x03 && fs && op.base < 0 && op.index < 0 && !op.rip &&
				   (op.disp == TCB_SELF_0 || op.disp == TCB_SELF_16)) {
				dst = reg;
				src = (struct sym_reg){.known = 1, .tp = 1};
			} else if (fs) {
				FAIL("load of %%fs:0x%" PRIx64 " at +%zu is not the thread pointer",
				     (uint64_t)op.disp, at);
			} else {
				FAIL("unexpected add from memory at +%zu", at);
			}
			if (!wide || !regs[dst].known || !src.known)
				FAIL("add of unknown values at +%zu", at);
			regs[dst].mul += src.mul;
			regs[dst].add += src.add;
			regs[dst].tp += src.tp;
			break;
		}
		case 0x81:   /* group 1, imm32 */
		case 0x83: { /* group 1, imm8 */
			if (decode_modrm(code, len, &pc, rex, &reg, &op) ||
			    read_imm(code, len, &pc, opc == 0x83 ? 1 : 4, &imm))
				FAIL("code ends at +%zu", at);
			if (!op.is_reg || fs)
				FAIL("unexpected memory operand at +%zu", at);
			struct sym_reg *r = &regs[op.reg];
			if ((reg & 7) == 7) { /* cmp */
				if (!is_key(r) || imm < 0)
					FAIL("unexpected compare at +%zu", at);
				pending_cmp = imm;
				compared = 1;
			} else if ((reg & 7) == 0) { /* add */
				if (!r->known)
					FAIL("add to an unknown value at +%zu", at);
				r->add += imm;
				if (!wide)
					*r = narrow(*r);
			} else {
				FAIL("unexpected arithmetic (group 1 /%d) at +%zu", reg & 7, at);
			}
			break;
		}
		case 0xc1: /* shift group, imm8 */
			if (decode_modrm(code, len, &pc, rex, &reg, &op) ||
			    read_imm(code, len, &pc, 1, &imm))
				FAIL("code ends at +%zu", at);
			if (!op.is_reg || (reg & 7) != 4 || imm < 0 || imm > 8 ||
			    !regs[op.reg].known || regs[op.reg].tp || !wide)
				FAIL("unexpected shift at +%zu", at);
			regs[op.reg].mul *= (int64_t)1 << imm;
			regs[op.reg].add *= (int64_t)1 << imm;
			break;
		case 0x69:   /* imul r, r/m, imm32 */
		case 0x6b: { /* imul r, r/m, imm8 */
			if (decode_modrm(code, len, &pc, rex, &reg, &op) ||
			    read_imm(code, len, &pc, opc == 0x6b ? 1 : 4, &imm))
				FAIL("code ends at +%zu", at);
			if (!op.is_reg || !regs[op.reg].known || regs[op.reg].tp || imm <= 0 ||
			    imm > 4096)
				FAIL("unexpected multiply at +%zu", at);
			struct sym_reg r = regs[op.reg];
			r.mul *= imm;
			r.add *= imm;
			regs[reg] = wide ? r : narrow(r);
			break;
		}
		case 0x8d: /* lea */
			if (decode_modrm(code, len, &pc, rex, &reg, &op))
				FAIL("code ends at +%zu", at);
			if (op.is_reg || fs)
				FAIL("unexpected lea at +%zu", at);
			regs[reg] = address_of(regs, &op);
			if (!wide)
				regs[reg] = narrow(regs[reg]);
			break;
		case 0x77: /* ja rel8: the small keys fall through */
		case 0x76: /* jbe rel8: the small keys jump */
		case 0x0f: {
			int cond = opc;
			int32_t rel = 0;
			if (opc == 0x0f) {
				if (pc >= len || (code[pc] != 0x87 && code[pc] != 0x86))
					FAIL("unknown instruction 0f %02x at +%zu",
					     pc < len ? code[pc] : 0, at);
				cond = code[pc++] == 0x87 ? 0x77 : 0x76;
				if (read_imm(code, len, &pc, 4, &imm))
					FAIL("code ends at +%zu", at);
			} else if (read_imm(code, len, &pc, 1, &imm)) {
				FAIL("code ends at +%zu", at);
			}
			rel = (int32_t)imm;
			if (pending_cmp < 0)
				FAIL("branch at +%zu before the key is bounds-checked", at);
			bound = pending_cmp;
			pending_cmp = -1;
			if (cond == 0x76) {
				/* forward only, so the walk ends */
				if (rel <= 0 || pc + (size_t)rel >= len)
					FAIL("branch at +%zu leaves the code read", at);
				pc += (size_t)rel;
			}
			continue;
		}
		default:
			FAIL("unknown instruction %02x at +%zu", opc, at);
		}
		if (!compared)
			pending_cmp = -1; /* a compare counts for the branch right after it */
		for (int r = 0; r < NREGS; r++)
			if (out_of_range(&regs[r]))
				FAIL("implausible value after +%zu", at);
	}
	FAIL("no thread-specific data read in the first %d instructions", MAX_INSNS);
}

int libc_tss__read_code(const char *path, uint8_t *buf, size_t buflen)
{
	static const char *const names[] = {"__pthread_getspecific", "pthread_getspecific"};
	struct elf_sym_value syms[2];
	struct elf_dynsym *file = elf_dynsym__open(path);
	int err;

	if (!file)
		return -errno;
	err = elf_dynsym__find_many(file, names, 2, ELF_DYNSYM_ALL, syms);
	if (err >= 0) {
		const struct elf_sym_value *s = syms[0].found ? &syms[0] : &syms[1];
		size_t len = s->size && s->size < buflen ? (size_t)s->size : buflen;
		if (!s->found) {
			err = -ENOENT;
		} else {
			/* A function near the end of its segment: read less. */
			err = elf_dynsym__read(file, s->value, buf, len);
			while (err && len > 16) {
				len /= 2;
				err = elf_dynsym__read(file, s->value, buf, len);
			}
			if (!err)
				err = (int)len;
		}
	}
	elf_dynsym__free(file);
	return err;
}

int libc_tss__matches(const struct libc_tss_code *code, const struct py_tls_layout *layout)
{
	return code->layout.entry_size == layout->entry_size &&
	       (uint64_t)code->layout.specific_1stblock + code->layout.data_offset ==
		       (uint64_t)layout->specific_1stblock + layout->data_offset &&
	       code->inline_keys >= TLS_LAYOUT_MAX_KEY;
}

/* What is cached per C library file (user/util/file_cache.h keys it by identity
 * and drops it when the file changes). */
struct libc_verdict {
	struct py_tls_layout expected; /* the layout it was judged against */
	int err;               /* 0 or -ENOTSUP */
	char reason[256];      /* the refusal (without the library's name) */
};

static struct file_cache verdicts = FILE_CACHE_INIT(sizeof(struct libc_verdict), CACHE_MAX);

int libc_tss__check(const char *open_path, const struct stat *st, const char *name,
		    const struct py_tls_layout *expected, char *reason, size_t reasonlen)
{
	struct libc_verdict v;
	uint8_t code[LIBC_TSS_CODE_MAX];
	struct libc_tss_code found;
	char why[200];

	if (!file_cache__get(&verdicts, st, &v) ||
	    memcmp(&v.expected, expected, sizeof(*expected))) {
		memset(&v, 0, sizeof(v));
		v.expected = *expected;
		int n = libc_tss__read_code(open_path, code, sizeof(code));
		if (n == -ENOENT) {
			v.err = -ENOTSUP;
			snprintf(v.reason, sizeof(v.reason), "defines no pthread_getspecific");
		} else if (n < 0) {
			errmsg__set(reason, reasonlen, "C library %s: %s", name, strerror(-n));
			return n; /* not cached: may be readable later */
		} else if (libc_tss__decode(code, (size_t)n, &found, why, sizeof(why))) {
			v.err = -ENOTSUP;
			snprintf(v.reason, sizeof(v.reason), "its pthread_getspecific is not understood "
				 "(%s)", why);
		} else if (!libc_tss__matches(&found, expected)) {
			v.err = -ENOTSUP;
			snprintf(v.reason, sizeof(v.reason),
				 "it keeps thread-specific data at tp+0x%x+%u*key+%u (keys < %u), "
				 "dynoprof's at tp+0x%x+%u*key+%u",
				 found.layout.specific_1stblock, found.layout.entry_size,
				 found.layout.data_offset, found.inline_keys,
				 expected->specific_1stblock, expected->entry_size,
				 expected->data_offset);
		}
		file_cache__put(&verdicts, st, &v);
	}
	if (v.err)
		errmsg__set(reason, reasonlen,
			    "C library %s: %s: Python threads cannot be found", name, v.reason);
	return v.err;
}
