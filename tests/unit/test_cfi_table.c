/* test_cfi_table.c - the CFI table builder against the system's own files.
 *
 * Ground truth is binutils: `readelf --debug-dump=frames-interp` prints, for
 * every FDE, the rules at each location where they change. Every such row
 * readelf prints for libc, liblzma and the Debian python3.11 must read back
 * the same from the table (CFA from rsp/rbp and its offset, where rbp is
 * saved, an undefined return address, the PLT's expression), and every FDE's
 * first address must be covered. Plus hand-made sections: malformed input is
 * skipped, never read past.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "unwind/cfi_table.h"

/* Compares one file's table with readelf's view; returns rows compared. */
static size_t compare_with_readelf(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct cfi_table *t = cfi_table__from_fd(fd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(fd);
	assert_non_null(t);
	const struct cfi_table_stats *st = cfi_table__stats(t);
	fprintf(stderr, "%s: %" PRIu64 " FDEs -> %zu rows (%zu KiB) in %.1f ms; "
		"unsupported %" PRIu64 ", bad %" PRIu64 ", signal %" PRIu64 ", plt %" PRIu64 "\n",
		path, st->fdes, cfi_table__count(t), cfi_table__count(t) * 8 / 1024,
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		st->unsupported, st->bad_entries, st->signal_fdes, st->plt_rows);
	assert_true(st->fdes > 0);
	assert_int_equal(st->bad_entries, 0);

	char cmd[512];
	snprintf(cmd, sizeof(cmd), "readelf --debug-dump=frames-interp '%s' 2>/dev/null", path);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	char line[4096];
	char cols[64][16];
	int ncols = 0, signal_cie = 0;
	size_t compared = 0, fdes = 0;
	/* CIE offsets whose augmentation has 'S'. */
	unsigned long signal_cies[64];
	int nsignal = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long off, len, id, cie;
		uint64_t lo, hi;
		char aug[32];
		if (sscanf(line, "%lx %lx %lx CIE \"%31[^\"]\"", &off, &len, &id, aug) == 4) {
			if (strchr(aug, 'S') && nsignal < 64)
				signal_cies[nsignal++] = off;
			ncols = 0;
			signal_cie = 1; /* the CIE's own rows are not compared */
			continue;
		}
		if (sscanf(line, "%lx %lx %lx FDE cie=%lx pc=%" SCNx64 "..%" SCNx64, &off, &len,
			   &id, &cie, &lo, &hi) == 6) {
			signal_cie = 0;
			for (int i = 0; i < nsignal; i++)
				signal_cie |= signal_cies[i] == cie;
			ncols = 0;
			fdes++;
			const struct unwind_row *r = cfi_table__find(t, lo);
			if (hi > lo) {
				assert_non_null(r);
				if (signal_cie)
					assert_int_equal(r->kind & UNWIND_CFA_MASK, UNWIND_CFA_SIGNAL);
				else if ((r->kind & UNWIND_CFA_MASK) == UNWIND_CFA_NONE ||
					 (r->kind & UNWIND_CFA_MASK) == UNWIND_CFA_GAP)
					fail_msg("%s: FDE at %" PRIx64 " not covered", path, lo);
			}
			continue;
		}
		if (line[0] == '\n' || strstr(line, "terminator")) {
			ncols = 0;
			continue;
		}
		if (strstr(line, "   LOC ")) {
			char *save = NULL;
			ncols = 0;
			for (char *tok = strtok_r(line, " \n", &save); tok && ncols < 64;
			     tok = strtok_r(NULL, " \n", &save))
				snprintf(cols[ncols++], sizeof(cols[0]), "%s", tok);
			continue;
		}
		if (!ncols || signal_cie)
			continue;
		/* "r10 (r10)": a register rule is one column. */
		for (char *q; (q = strstr(line, " ("));) {
			char *close = strchr(q, ')');
			if (!close)
				break;
			memmove(q, close + 1, strlen(close + 1) + 1);
		}
		char *save = NULL, *tok = strtok_r(line, " \n", &save);
		if (!tok)
			continue;
		uint64_t loc = strtoull(tok, NULL, 16);
		const char *cfa = NULL, *rbp = "u", *ra = NULL;
		for (int c = 1; c < ncols; c++) {
			tok = strtok_r(NULL, " \n", &save);
			if (!tok)
				break;
			if (!strcmp(cols[c], "CFA"))
				cfa = tok;
			else if (!strcmp(cols[c], "rbp"))
				rbp = tok;
			else if (!strcmp(cols[c], "ra"))
				ra = tok;
			if (cfa && ra && c >= ncols - 1)
				break;
		}
		if (!cfa || !ra)
			continue;
		/* Keep copies: the tokens live in line. */
		char cfa_s[32], rbp_s[32], ra_s[32];
		snprintf(cfa_s, sizeof(cfa_s), "%s", cfa);
		snprintf(rbp_s, sizeof(rbp_s), "%s", rbp);
		snprintf(ra_s, sizeof(ra_s), "%s", ra);
		const struct unwind_row *r = cfi_table__find(t, loc);
		assert_non_null(r);
		unsigned kind = r->kind & UNWIND_CFA_MASK;
		long n;
		if (!strcmp(ra_s, "u")) {
			if (kind != UNWIND_CFA_END)
				fail_msg("%s: %" PRIx64 ": undefined ra read as kind %u", path, loc, kind);
		} else if (kind == UNWIND_CFA_NONE) {
			/* Only rules the table cannot express may be NONE. */
			int plain = (!strncmp(cfa_s, "rsp+", 4) || !strncmp(cfa_s, "rbp+", 4)) &&
				    !strcmp(ra_s, "c-8") && (!strcmp(rbp_s, "u") || rbp_s[0] == 'c');
			if (plain)
				fail_msg("%s: %" PRIx64 ": %s rbp=%s ra=%s became NONE", path, loc,
					 cfa_s, rbp_s, ra_s);
		} else {
			assert_string_equal(ra_s, "c-8");
			if (sscanf(cfa_s, "rsp+%ld", &n) == 1) {
				assert_int_equal(kind, UNWIND_CFA_RSP);
				assert_int_equal(r->cfa_off * (r->kind & UNWIND_CFA_OFF_X8 ? 8 : 1), n);
			} else if (sscanf(cfa_s, "rbp+%ld", &n) == 1) {
				assert_int_equal(kind, UNWIND_CFA_RBP);
				assert_int_equal(r->cfa_off * (r->kind & UNWIND_CFA_OFF_X8 ? 8 : 1), n);
			} else if (!strcmp(cfa_s, "exp")) {
				assert_true(kind == UNWIND_CFA_PLT || kind == UNWIND_CFA_RBP_DEREF);
			} else {
				fail_msg("%s: %" PRIx64 ": CFA %s read as kind %u", path, loc, cfa_s, kind);
			}
			if (sscanf(rbp_s, "c%ld", &n) == 1) {
				assert_true(r->kind & UNWIND_RBP_SAVED);
				assert_false(r->kind & UNWIND_RBP_AT_RBP);
				assert_int_equal(r->rbp_off8 * 8, n);
			} else if (!strcmp(rbp_s, "exp")) {
				assert_true(r->kind & UNWIND_RBP_SAVED);
				assert_true(r->kind & UNWIND_RBP_AT_RBP);
			} else {
				assert_false(r->kind & UNWIND_RBP_SAVED);
			}
		}
		compared++;
	}
	/* readelf exits 1 on files without .debug_frame, having printed .eh_frame. */
	int status = pclose(f);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) <= 1);
	assert_true(fdes > 0);
	fprintf(stderr, "%s: %zu FDEs, %zu readelf rows compared\n", path, fdes, compared);
	cfi_table__free(t);
	return compared;
}

static void test_libc(void **state)
{
	(void)state;
	assert_true(compare_with_readelf("/lib/x86_64-linux-gnu/libc.so.6") > 10000);
}

static void test_liblzma(void **state)
{
	(void)state;
	assert_true(compare_with_readelf("/lib/x86_64-linux-gnu/liblzma.so.5") > 500);
}

static void test_python311(void **state)
{
	(void)state;
	assert_true(compare_with_readelf("/usr/bin/python3.11") > 10000);
}

/* glibc's sigreturn trampoline is an 'S' FDE: its rows are signal rows. */
static void test_libc_signal_frame(void **state)
{
	(void)state;
	int fd = open("/lib/x86_64-linux-gnu/libc.so.6", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	struct cfi_table *t = cfi_table__from_fd(fd);
	close(fd);
	assert_non_null(t);
	assert_int_equal(cfi_table__stats(t)->signal_fdes, 1);
	cfi_table__free(t);
}

/* The vdso's own CFI, read from this process's memory as the registry does. */
static void test_vdso(void **state)
{
	(void)state;
	const void *vdso = (const void *)getauxval(AT_SYSINFO_EHDR);
	assert_non_null(vdso);
	size_t size = 0;
	char line[512];
	FILE *maps = fopen("/proc/self/maps", "r");
	assert_non_null(maps);
	while (fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		if (strstr(line, "[vdso]") && sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    lo == (unsigned long)vdso)
			size = hi - lo;
	}
	fclose(maps);
	assert_true(size > 0);
	void *copy = malloc(size);
	assert_non_null(copy);
	memcpy(copy, vdso, size);
	struct cfi_table *t = cfi_table__from_memory(copy, size);
	assert_non_null(t);
	assert_true(cfi_table__count(t) > 0);
	cfi_table__free(t);
	free(copy);
}

/* The CIE of the hand-made sections (at offset 0, so their FDEs' CIE pointer
 * is 0x1c): len 0x14, id 0, v1, "zR", caf 1, daf -8, ra 16, aug len 1, enc
 * pcrel|sdata4; def_cfa rsp+8; offset ra at cfa-8; pad. */
#define HANDMADE_CIE \
	0x14, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16, 1, 0x1b, \
	0x0c, 7, 8, 0x90, 1, 0, 0

/* A finished table of the .eh_frame bytes s[0..n) at address 0. */
static struct cfi_table *handmade_table(const uint8_t *s, size_t n)
{
	struct cfi_table *t = cfi_table__new();
	assert_non_null(t);
	assert_int_equal(cfi_table__add_eh_frame(t, s, n, 0), 0);
	assert_int_equal(cfi_table__finish(t), 0);
	return t;
}

/* Hand-made sections: a CIE, an FDE with advance/offset/remember/restore. */
static void test_handmade(void **state)
{
	(void)state;
	uint8_t s[] = {
		HANDMADE_CIE,
		/* FDE: len 0x1c, CIE ptr 0x1c, pc_begin pcrel (field at 0x20: 0x1000 - 0x20),
		 * range 0x40, aug len 0; push rbp at +1 (cfa rsp+16, rbp at cfa-16),
		 * mov rsp,rbp at +4 (cfa rbp), remember, leave at +0x30 (cfa rsp+8),
		 * restore state at +0x31 */
		0x1e, 0, 0, 0, 0x1c, 0, 0, 0, 0xe0, 0x0f, 0, 0, 0x40, 0, 0, 0, 0,
		0x41, 0x0e, 16, 0x86, 2, 0x43, 0x0d, 6, 0x0a, 0x6c, 0x0c, 7, 8, 0x41, 0x0b,
		0, 0,
		/* terminator */
		0, 0, 0, 0,
	};
	struct cfi_table *t = handmade_table(s, sizeof(s));
	assert_int_equal(cfi_table__stats(t)->fdes, 1);
	const struct unwind_row *r = cfi_table__find(t, 0x1000);
	assert_int_equal(r->kind, UNWIND_CFA_RSP);
	assert_int_equal(r->cfa_off, 8);
	r = cfi_table__find(t, 0x1001);
	assert_int_equal(r->kind, UNWIND_CFA_RSP | UNWIND_RBP_SAVED);
	assert_int_equal(r->cfa_off, 16);
	assert_int_equal(r->rbp_off8, -2);
	r = cfi_table__find(t, 0x1010);
	assert_int_equal(r->kind, UNWIND_CFA_RBP | UNWIND_RBP_SAVED);
	assert_int_equal(r->cfa_off, 16);
	r = cfi_table__find(t, 0x1030);
	assert_int_equal(r->kind & UNWIND_CFA_MASK, UNWIND_CFA_RSP);
	assert_int_equal(r->cfa_off, 8);
	r = cfi_table__find(t, 0x1031);
	assert_int_equal(r->kind & UNWIND_CFA_MASK, UNWIND_CFA_RBP);
	r = cfi_table__find(t, 0x1040); /* past the FDE: a gap */
	assert_int_equal(r->kind, UNWIND_CFA_GAP);
	assert_null(cfi_table__find(t, 0xfff));
	cfi_table__free(t);

	/* Every truncation of the section parses without reading past it. */
	for (size_t n = 0; n < sizeof(s); n++) {
		uint8_t *cut = malloc(n ? n : 1);
		memcpy(cut, s, n);
		t = handmade_table(cut, n);
		cfi_table__free(t);
		free(cut);
	}
}

/* GCC's stack realignment through a DRAP register (a function with
 * 64-byte-aligned locals and a variable-length array, -O2): after
 * `lea 8(%rsp),%r10` the CFA is r10 (not expressible: NONE); once rbp is set
 * up, rbp is saved at rbp + 0 and the CFA is *(rbp - 8). */
static void test_stack_realignment(void **state)
{
	(void)state;
	uint8_t s[] = {
		HANDMADE_CIE,
		/* FDE at 0x1000, range 0x40: at +5 def_cfa r10+0; at +9
		 * expression rbp (DW_OP_breg6 0), def_cfa_expression
		 * (DW_OP_breg6 -8; DW_OP_deref) */
		0x1e, 0, 0, 0, 0x1c, 0, 0, 0, 0xe0, 0x0f, 0, 0, 0x40, 0, 0, 0, 0,
		0x45, 0x0c, 10, 0, 0x44, 0x10, 6, 2, 0x76, 0x00, 0x0f, 3, 0x76, 0x78, 0x06,
		0, 0,
		0, 0, 0, 0,
	};
	struct cfi_table *t = handmade_table(s, sizeof(s));
	const struct unwind_row *r = cfi_table__find(t, 0x1000);
	assert_int_equal(r->kind, UNWIND_CFA_RSP);
	r = cfi_table__find(t, 0x1005);
	assert_int_equal(r->kind & UNWIND_CFA_MASK, UNWIND_CFA_NONE);
	r = cfi_table__find(t, 0x1009);
	assert_int_equal(r->kind, UNWIND_CFA_RBP_DEREF | UNWIND_RBP_SAVED | UNWIND_RBP_AT_RBP);
	assert_int_equal(r->cfa_off, -8);
	assert_int_equal(r->rbp_off8, 0);
	cfi_table__free(t);

	/* Another expression stays NONE: DW_OP_breg6 -8 without the deref. */
	s[sizeof(s) - 10] = 2; /* the expression's length: the deref becomes
				* DW_CFA_restore_extended r0 */
	t = handmade_table(s, sizeof(s));
	r = cfi_table__find(t, 0x1009);
	assert_int_equal(r->kind & UNWIND_CFA_MASK, UNWIND_CFA_NONE);
	cfi_table__free(t);
}

static void test_not_elf(void **state)
{
	(void)state;
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	errno = 0;
	assert_null(cfi_table__from_fd(fd));
	assert_int_equal(errno, ENOEXEC);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handmade),
		cmocka_unit_test(test_stack_realignment),
		cmocka_unit_test(test_not_elf),
		cmocka_unit_test(test_vdso),
		cmocka_unit_test(test_libc_signal_frame),
		cmocka_unit_test(test_libc),
		cmocka_unit_test(test_liblzma),
		cmocka_unit_test(test_python311),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
