// SPDX-License-Identifier: MIT
#include "python/py_tstate_find.h"

#include <errno.h>
#include <string.h>

/* Sets the TSS key offset when addr (the Py_tss_t) lies inside _PyRuntime. */
static int tss_at(uint64_t addr, uint64_t runtime_addr, uint64_t runtime_size,
		  struct py_offsets *o)
{
	if (addr < runtime_addr || addr + 8 > runtime_addr + runtime_size || addr % 4 ||
	    addr - runtime_addr > INT16_MAX)
		return 0;
	o->runtime_tss_key = (int16_t)(addr - runtime_addr);
	o->tstate_tls = 0;
	return 1;
}

/* After a `call __tls_get_addr` ending at p: an optional `pop %rbp` (5d),
 * then mov disp8(%rax),%rax (48 8b 40 disp8) or mov disp32(%rax),%rax
 * (48 8b 80 disp32). Returns 1 with *disp set, else 0. */
static int dtpoff_load(const uint8_t *p, size_t left, int32_t *disp)
{
	if (left && p[0] == 0x5d) {
		p++;
		left--;
	}
	if (left >= 4 && p[0] == 0x48 && p[1] == 0x8b && p[2] == 0x40) {
		*disp = (int8_t)p[3];
		return 1;
	}
	if (left >= 7 && p[0] == 0x48 && p[1] == 0x8b && p[2] == 0x80) {
		memcpy(disp, p + 3, 4);
		return 1;
	}
	return 0;
}

int py_tstate_find(const uint8_t *code, size_t len, uint64_t code_addr, uint64_t runtime_addr,
		   uint64_t runtime_size, struct py_offsets *o, uint64_t *tls_slot,
		   int32_t *tls_dtpoff)
{
	/* Byte by byte: the patterns are long enough not to be found inside
	 * other instructions of these few bytes by chance, and each result is
	 * checked (inside _PyRuntime, or a small negative thread-local offset). */
	for (size_t i = 0; i < len; i++) {
		const uint8_t *p = code + i;
		size_t left = len - i;
		int32_t d;
		/* mov %fs:disp32,%rax: 64 48 8b 04 25 disp32 */
		if (left >= 9 && !memcmp(p, "\x64\x48\x8b\x04\x25", 5)) {
			memcpy(&d, p + 5, 4);
			if (d < 0 && d > -65536 && d % 8 == 0) {
				o->tstate_tls = d;
				return 0;
			}
		}
		/* cmpl $0,rel32(%rip): 83 3d rel32 00 -> the Py_tss_t (_is_initialized) */
		if (left >= 7 && p[0] == 0x83 && p[1] == 0x3d && p[6] == 0) {
			memcpy(&d, p + 2, 4);
			if (tss_at(code_addr + i + 7 + (int64_t)d, runtime_addr, runtime_size, o))
				return 0;
		}
		/* mov rel32(%rip),%edi: 8b 3d rel32 -> the key, 4 bytes in */
		if (left >= 6 && p[0] == 0x8b && p[1] == 0x3d) {
			memcpy(&d, p + 2, 4);
			if (tss_at(code_addr + i + 6 + (int64_t)d - 4, runtime_addr, runtime_size, o))
				return 0;
		}
		/* lea rel32(%rip),%rdi: 48 8d 3d rel32 -> the Py_tss_t */
		if (left >= 7 && p[0] == 0x48 && p[1] == 0x8d && p[2] == 0x3d) {
			memcpy(&d, p + 3, 4);
			if (tss_at(code_addr + i + 7 + (int64_t)d, runtime_addr, runtime_size, o))
				return 0;
			/* A shared libpython's thread-local (local-dynamic, as
			 * Debian builds 3.15): the lea takes the GOT's tls_index,
			 * call __tls_get_addr (e8 rel32) returns the module's TLS
			 * block, mov disp(%rax),%rax reads the variable at disp. */
			int32_t disp;
			if (left >= 7 + 5 + 4 && p[7] == 0xe8 &&
			    dtpoff_load(p + 12, left - 12, &disp) && disp >= 0 && disp % 8 == 0) {
				*tls_slot = code_addr + i + 7 + (int64_t)d;
				*tls_dtpoff = disp;
				return 2;
			}
		}
		/* A shared libpython's thread-local (initial-exec): mov
		 * rel32(%rip),%rax (48 8b 05 rel32) loads its offset from the GOT,
		 * mov %fs:(%rax),%rax (64 48 8b 00) reads it. */
		if (left >= 11 && !memcmp(p, "\x48\x8b\x05", 3) &&
		    !memcmp(p + 7, "\x64\x48\x8b\x00", 4)) {
			memcpy(&d, p + 3, 4);
			*tls_slot = code_addr + i + 7 + (int64_t)d;
			return 1;
		}
		/* A shared libpython taking _PyRuntime from its GOT: mov
		 * rel32(%rip),%rax (48 8b 05 rel32), then lea disp32(%rax),%reg
		 * (48 8d [mod 10, rm 000] disp32) -> the Py_tss_t at disp32. */
		if (left >= 14 && !memcmp(p, "\x48\x8b\x05", 3)) {
			for (size_t j = 7; j + 7 <= left && j < 7 + 8; j++) {
				const uint8_t *q = p + j;
				if (q[0] != 0x48 || q[1] != 0x8d || (q[2] & 0xc7) != 0x80)
					continue;
				memcpy(&d, q + 3, 4);
				if (d > 0 && (uint64_t)d + 8 <= runtime_size && d % 4 == 0 &&
				    d <= INT16_MAX) {
					o->runtime_tss_key = (int16_t)d;
					o->tstate_tls = 0;
					return 0;
				}
			}
		}
		/* mov $imm32,%edi: bf imm32 -> the Py_tss_t (non-PIE executables) */
		if (left >= 5 && p[0] == 0xbf) {
			uint32_t imm;
			memcpy(&imm, p + 1, 4);
			if (tss_at(imm, runtime_addr, runtime_size, o))
				return 0;
		}
	}
	return -ENOENT;
}
