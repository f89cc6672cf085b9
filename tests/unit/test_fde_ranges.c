/* test_fde_ranges.c - function ranges from .eh_frame_hdr / .eh_frame, and
 * the names a stripped library gets (MiniDebugInfo, function starts).
 *
 * Crafted bytes check the parser's encodings, both paths (search table and
 * walk) and that no truncation or corrupted byte reads outside the input
 * (each input is an exact-size heap copy, so ASan sees any overread). Real
 * files check it against readelf: every FDE of this system's libc and
 * libcrypto, one range each. A library built -O2 and stripped (fixtures/
 * native_names_lib.c) checks what the symbolizer gets: no symbol for its
 * static functions, but each one's start; the same library with
 * MiniDebugInfo made the way Fedora makes it names them.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixture_build.h"

#include "symbolize/elf_symtab.h"
#include "symbolize/fde_ranges.h"
#include "symbolize/minidebug.h"
#include "symbolize/symcache.h"

#define HDR_VADDR 0x1000u
#define FRAME_VADDR 0x2000u

/* A byte buffer being assembled. */
struct bytes {
	uint8_t b[1024]; /* contents */
	size_t n;        /* used */
	int be;          /* big-endian values */
};

static void put_n(struct bytes *o, uint64_t v, size_t n)
{
	assert_true(o->n + n <= sizeof(o->b));
	for (size_t i = 0; i < n; i++) {
		size_t shift = o->be ? (n - 1 - i) * 8 : i * 8;

		o->b[o->n++] = (uint8_t)(v >> shift);
	}
}

static void patch_u32(struct bytes *o, size_t at, uint32_t v)
{
	struct bytes tmp = { .be = o->be };

	put_n(&tmp, v, 4);
	memcpy(o->b + at, tmp.b, 4);
}

static void pad4(struct bytes *o)
{
	while (o->n % 4)
		o->b[o->n++] = 0; /* DW_CFA_nop */
}

/* The function ranges of the crafted file. */
static const uint64_t fn_start[] = { 0x10000, 0x10100, 0x10400 };
static const uint64_t fn_size[] = { 0x100, 0x80, 0x40 };
#define NFN 3

/* Emits a CIE ("zR", FDE pointers in enc; "" and absptr when enc is absptr
 * and plain is set) and returns its offset. */
static size_t emit_cie(struct bytes *o, uint8_t enc, int plain)
{
	size_t at = o->n;

	put_n(o, 0, 4); /* length, patched */
	put_n(o, 0, 4); /* CIE id */
	put_n(o, 1, 1); /* version */
	if (plain) {
		put_n(o, 0, 1);
	} else {
		memcpy(o->b + o->n, "zR", 3);
		o->n += 3;
	}
	put_n(o, 1, 1);    /* code alignment */
	put_n(o, 0x78, 1); /* data alignment -8 */
	put_n(o, 16, 1);   /* return address register */
	if (!plain) {
		put_n(o, 1, 1); /* augmentation data length */
		put_n(o, enc, 1);
	}
	pad4(o);
	patch_u32(o, at, (uint32_t)(o->n - at - 4));
	return at;
}

/* Emits an FDE for [start, start + size) and returns its offset. */
static size_t emit_fde(struct bytes *o, size_t cie, uint8_t enc, int plain, size_t addr_size,
		       uint64_t start, uint64_t size)
{
	size_t at = o->n;

	put_n(o, 0, 4);
	put_n(o, (uint32_t)(o->n - cie), 4);
	if ((enc & 0x70) == 0x10) { /* pcrel sdata4 */
		put_n(o, (uint32_t)(start - (FRAME_VADDR + o->n)), 4);
		put_n(o, size, 4);
	} else {
		put_n(o, start, addr_size);
		put_n(o, size, addr_size);
	}
	if (!plain)
		put_n(o, 0, 1); /* augmentation data length */
	pad4(o);
	patch_u32(o, at, (uint32_t)(o->n - at - 4));
	return at;
}

/* Builds .eh_frame (pcrel sdata4 FDEs) and its .eh_frame_hdr. extra: FDEs
 * beyond the functions' (start, size) pairs, listed in the table too. */
static void build_file(struct bytes *frame, struct bytes *hdr, const uint64_t (*extra)[2],
		       size_t nextra, uint64_t count_bias)
{
	size_t fdes[NFN + 4];
	uint64_t starts[NFN + 4];
	size_t n = 0;

	memset(frame, 0, sizeof(*frame));
	memset(hdr, 0, sizeof(*hdr));
	size_t cie = emit_cie(frame, 0x1b, 0);

	for (size_t i = 0; i < NFN; i++, n++) {
		starts[n] = fn_start[i];
		fdes[n] = emit_fde(frame, cie, 0x1b, 0, 8, fn_start[i], fn_size[i]);
	}
	for (size_t i = 0; i < nextra && n < NFN + 4; i++, n++) {
		starts[n] = extra[i][0];
		fdes[n] = emit_fde(frame, cie, 0x1b, 0, 8, extra[i][0], extra[i][1]);
	}
	put_n(frame, 0, 4); /* terminator */
	/* Search table sorted by start (the extra FDEs are placed in order). */
	put_n(hdr, 1, 1);
	put_n(hdr, 0x1b, 1); /* eh_frame_ptr: pcrel sdata4 */
	put_n(hdr, 0x03, 1); /* fde_count: udata4 */
	put_n(hdr, 0x3b, 1); /* table: datarel sdata4 */
	put_n(hdr, (uint32_t)(FRAME_VADDR - (HDR_VADDR + hdr->n)), 4);
	put_n(hdr, n + count_bias, 4);
	for (size_t i = 0; i < n; i++) {
		size_t best = i;

		for (size_t j = i + 1; j < n; j++)
			if (starts[j] < starts[best])
				best = j;
		uint64_t s = starts[best];
		size_t f = fdes[best];

		starts[best] = starts[i];
		fdes[best] = fdes[i];
		starts[i] = s;
		fdes[i] = f;
		put_n(hdr, (uint32_t)(s - HDR_VADDR), 4);
		put_n(hdr, (uint32_t)(FRAME_VADDR + f - HDR_VADDR), 4);
	}
}

/* Exact-size heap copies of the inputs, so an overread is an ASan report. */
static int parse_copies(const uint8_t *hdr, size_t hdr_size, const uint8_t *frame,
			size_t frame_size, uint8_t addr_size, int be, struct fde_ranges *out)
{
	uint8_t *h = hdr ? malloc(hdr_size ? hdr_size : 1) : NULL;
	uint8_t *f = frame ? malloc(frame_size ? frame_size : 1) : NULL;

	if (h)
		memcpy(h, hdr, hdr_size);
	if (f)
		memcpy(f, frame, frame_size);
	struct fde_input in = { .hdr = h, .hdr_size = hdr_size, .hdr_vaddr = HDR_VADDR,
				.frame = f, .frame_size = frame_size, .frame_vaddr = FRAME_VADDR,
				.addr_size = addr_size, .big_endian = (uint8_t)be };
	int err = fde_ranges__parse(&in, out);

	free(h);
	free(f);
	return err;
}

static void expect_functions(const struct fde_ranges *r)
{
	uint64_t start = 0;

	assert_int_equal(r->nranges, NFN);
	for (size_t i = 0; i < NFN; i++) {
		assert_int_equal(fde_ranges__find(r, fn_start[i], &start), 0);
		assert_int_equal(start, fn_start[i]);
		assert_int_equal(fde_ranges__find(r, fn_start[i] + fn_size[i] / 2, &start), 0);
		assert_int_equal(start, fn_start[i]);
		assert_int_equal(fde_ranges__find(r, fn_start[i] + fn_size[i] - 1, &start), 0);
		assert_int_equal(start, fn_start[i]);
	}
	/* Between functions, before the first, past the last: no function. */
	assert_int_equal(fde_ranges__find(r, 0x10180, &start), -ENOENT);
	assert_int_equal(fde_ranges__find(r, 0x103ff, &start), -ENOENT);
	assert_int_equal(fde_ranges__find(r, 0xffff, &start), -ENOENT);
	assert_int_equal(fde_ranges__find(r, 0x10440, &start), -ENOENT);
	assert_int_equal(fde_ranges__find(r, 0, &start), -ENOENT);
	assert_int_equal(fde_ranges__find(r, UINT64_MAX, &start), -ENOENT);
}

static void test_search_table(void **state)
{
	struct bytes frame, hdr;
	struct fde_ranges r;

	(void)state;
	build_file(&frame, &hdr, NULL, 0, 0);
	assert_int_equal(parse_copies(hdr.b, hdr.n, frame.b, frame.n, 8, 0, &r), 0);
	assert_int_equal(r.from_hdr, 1);
	assert_int_equal(r.skipped, 0);
	expect_functions(&r);
	fde_ranges__release(&r);
}

static void test_walk_without_header(void **state)
{
	struct bytes frame, hdr;
	struct fde_ranges r;

	(void)state;
	build_file(&frame, &hdr, NULL, 0, 0);
	assert_int_equal(parse_copies(NULL, 0, frame.b, frame.n, 8, 0, &r), 0);
	assert_int_equal(r.from_hdr, 0);
	expect_functions(&r);
	fde_ranges__release(&r);
	/* An unknown header version: the walk too. */
	hdr.b[0] = 2;
	assert_int_equal(parse_copies(hdr.b, hdr.n, frame.b, frame.n, 8, 0, &r), 0);
	assert_int_equal(r.from_hdr, 0);
	expect_functions(&r);
	fde_ranges__release(&r);
	/* No .eh_frame at all: nothing, and no error. */
	assert_int_equal(parse_copies(hdr.b, hdr.n, NULL, 0, 8, 0, &r), 0);
	assert_int_equal(r.nranges, 0);
	assert_int_equal(fde_ranges__find(&r, 0x10000, NULL), -ENOENT);
	fde_ranges__release(&r);
}

/* A count past the table's end is cut to the table; overlapping and empty
 * FDEs are dropped (one name per address), the overlap counted. */
static void test_hostile_counts_and_overlaps(void **state)
{
	static const uint64_t extra[][2] = { { 0x10040, 0x10 }, { 0x10200, 0 } };
	struct bytes frame, hdr;
	struct fde_ranges r;

	(void)state;
	build_file(&frame, &hdr, NULL, 0, 1000000);
	assert_int_equal(parse_copies(hdr.b, hdr.n, frame.b, frame.n, 8, 0, &r), 0);
	assert_int_equal(r.from_hdr, 1);
	assert_int_equal(r.skipped, 1000000);
	expect_functions(&r);
	fde_ranges__release(&r);

	build_file(&frame, &hdr, extra, 2, 0);
	assert_int_equal(parse_copies(hdr.b, hdr.n, frame.b, frame.n, 8, 0, &r), 0);
	assert_int_equal(r.skipped, 1);
	expect_functions(&r);
	fde_ranges__release(&r);
}

/* Every prefix of either section, and every byte set to 0x00, 0x80, 0xff:
 * parses without reading outside (ASan), and any range found is a real one. */
static void test_truncated_and_corrupted(void **state)
{
	static const uint8_t values[] = { 0x00, 0x80, 0xff };
	struct bytes frame, hdr, bad;
	struct fde_ranges r;

	(void)state;
	build_file(&frame, &hdr, NULL, 0, 0);
	for (size_t n = 0; n <= frame.n; n++) {
		assert_int_equal(parse_copies(hdr.b, hdr.n, frame.b, n, 8, 0, &r), 0);
		assert_true(r.nranges <= NFN);
		fde_ranges__release(&r);
		assert_int_equal(parse_copies(NULL, 0, frame.b, n, 8, 0, &r), 0);
		assert_true(r.nranges <= NFN);
		fde_ranges__release(&r);
	}
	for (size_t n = 0; n <= hdr.n; n++) {
		assert_int_equal(parse_copies(hdr.b, n, frame.b, frame.n, 8, 0, &r), 0);
		/* A cut table falls back or lists fewer; the walk finds all. */
		assert_true(r.nranges <= NFN);
		fde_ranges__release(&r);
	}
	for (int which = 0; which < 2; which++) {
		struct bytes *src = which ? &hdr : &frame;

		for (size_t i = 0; i < src->n; i++) {
			for (size_t v = 0; v < sizeof(values); v++) {
				bad = *src;
				bad.b[i] = values[v];
				assert_int_equal(parse_copies(which ? bad.b : hdr.b,
							      which ? bad.n : hdr.n,
							      which ? frame.b : bad.b,
							      which ? frame.n : bad.n, 8, 0, &r),
						 0);
				assert_true(r.nranges <= NFN + 1);
				fde_ranges__release(&r);
			}
		}
	}
}

/* ELF32 big-endian, a CIE without augmentation (absolute 4-byte pointers). */
static void test_elf32_big_endian_absptr(void **state)
{
	struct bytes frame = { .be = 1 };
	struct fde_ranges r;

	(void)state;
	size_t cie = emit_cie(&frame, 0, 1);

	for (size_t i = 0; i < NFN; i++)
		emit_fde(&frame, cie, 0, 1, 4, fn_start[i], fn_size[i]);
	put_n(&frame, 0, 4);
	assert_int_equal(parse_copies(NULL, 0, frame.b, frame.n, 4, 1, &r), 0);
	expect_functions(&r);
	fde_ranges__release(&r);
	/* Read as little-endian, the same bytes name nothing sensible, safely. */
	assert_int_equal(parse_copies(NULL, 0, frame.b, frame.n, 4, 0, &r), 0);
	fde_ranges__release(&r);
	assert_int_equal(parse_copies(NULL, 0, frame.b, frame.n, 3, 1, &r), -EINVAL);
}

/* By start, the longer of two with the same start first (the one kept). */
static int cmp_pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	if (x[0] != y[0])
		return x[0] < y[0] ? -1 : 1;
	return x[1] > y[1] ? -1 : x[1] < y[1];
}

/* The FDEs readelf lists for path, as [start, end) with an empty range left
 * out, sorted, overlaps dropped as the parser drops them. */
static size_t readelf_ranges(const char *path, uint64_t (**out)[2])
{
	char cmd[PATH_MAX + 64], line[512];
	uint64_t (*r)[2] = NULL;
	size_t n = 0, cap = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "readelf --debug-dump=frames '%s' 2>/dev/null", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p)) {
		const char *pc = strstr(line, " FDE ");
		uint64_t a, b;

		if (!pc || !(pc = strstr(pc, "pc=")) ||
		    sscanf(pc, "pc=%" SCNx64 "..%" SCNx64, &a, &b) != 2 || b <= a)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			r = realloc(r, cap * sizeof(*r));
			assert_non_null(r);
		}
		r[n][0] = a;
		r[n][1] = b;
		n++;
	}
	pclose(p);
	qsort(r, n, sizeof(*r), cmp_pair);
	size_t kept = 0;
	uint64_t prev_end = 0;

	for (size_t i = 0; i < n; i++) {
		if (kept && r[i][0] < prev_end)
			continue;
		r[kept][0] = r[i][0];
		r[kept][1] = r[i][1];
		prev_end = r[i][1];
		kept++;
	}
	*out = r;
	return kept;
}

/* Every FDE of a real system library, as readelf reads them. */
static void expect_like_readelf(const char *path)
{
	uint64_t (*want)[2] = NULL, start;
	size_t n = readelf_ranges(path, &want);
	struct elf_symtab *t = elf_symtab__open(path);

	assert_non_null(t);
	assert_true(n > 100);
	assert_int_equal(elf_symtab__fde_count(t), n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(elf_symtab__function_start(t, want[i][0], &start), 0);
		assert_int_equal(start, want[i][0]);
		assert_int_equal(elf_symtab__function_start(t, want[i][1] - 1, &start), 0);
		assert_int_equal(start, want[i][0]);
		if (i + 1 < n && want[i + 1][0] > want[i][1])
			assert_int_equal(elf_symtab__function_start(t, want[i][1], &start), -ENOENT);
	}
	elf_symtab__put(t);
	free(want);
}

static void test_system_libraries(void **state)
{
	char path[PATH_MAX];
	FILE *p;

	(void)state;
	/* The libraries this system's python3 hashes and compresses with. */
	const char *names[] = { "libc.so.6", "libcrypto.so.3", "libz.so.1" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd),
			 "ldconfig -p | awk '$1 == \"%s\" && /x86-64/ { print $NF; exit }'",
			 names[i]);
		p = popen(cmd, "r");
		assert_non_null(p);
		path[0] = '\0';
		if (!fgets(path, sizeof(path), p))
			path[0] = '\0';
		pclose(p);
		path[strcspn(path, "\n")] = '\0';
		if (!path[0])
			fail_msg("%s not found by ldconfig -p (scripts/deps.sh installs it)", names[i]);
		expect_like_readelf(path);
	}
}

/* The stripped library and its variants, built once. */
static struct fixture_build fixtures;

static int build_fixtures(void **state)
{
	(void)state;
	return fixture_build(&fixtures, "fde",
		 "gcc -O2 -g -shared -fPIC -Wl,--build-id $F/native_names_lib.c -o libnn_full.so;"
		 "cp libnn_full.so libnn_strip.so; strip --strip-all libnn_strip.so;"
		 /* linked without .eh_frame_hdr: the .eh_frame walk */
		 "gcc -O2 -shared -fPIC -Wl,--no-eh-frame-hdr $F/native_names_lib.c -o libnn_nohdr.so;"
		 "strip --strip-all libnn_nohdr.so;"
		 /* MiniDebugInfo as Fedora's find-debuginfo makes it */
		 "nm -D libnn_full.so --format=posix --defined-only | awk '{ print $1 }' | sort > dynsyms;"
		 "nm libnn_full.so --format=posix --defined-only |"
		 " awk '{ if ($2 == \"T\" || $2 == \"t\" || $2 == \"D\") print $1 }' | sort > funcsyms;"
		 "comm -13 dynsyms funcsyms > keep_symbols;"
		 "objcopy --only-keep-debug libnn_full.so libnn.debug;"
		 "objcopy -S --remove-section .gdb_index --remove-section .comment"
		 " --keep-symbols=keep_symbols libnn.debug mini_debuginfo;"
		 "xz -f mini_debuginfo;"
		 "cp libnn_strip.so libnn_mini.so;"
		 "objcopy --add-section .gnu_debugdata=mini_debuginfo.xz libnn_mini.so;"
		 /* .gnu_debugdata that is no xz stream */
		 "head -c 4096 libnn_full.so > junk; cp libnn_strip.so libnn_junk.so;"
		 "objcopy --add-section .gnu_debugdata=junk libnn_junk.so;"
		 /* .gnu_debugdata that decompresses past MINIDEBUG_MAX_BYTES (an xz bomb) */
		 "head -c 70M /dev/zero | xz -1 > bomb.xz; cp libnn_strip.so libnn_bomb.so;"
		 "objcopy --add-section .gnu_debugdata=bomb.xz libnn_bomb.so;"
		 /* no section headers: e_shoff, e_shnum, e_shstrndx zeroed */
		 "cp libnn_strip.so libnn_noshdr.so;"
		 "dd if=/dev/zero of=libnn_noshdr.so bs=1 seek=40 count=8 conv=notrunc 2>/dev/null;"
		 "dd if=/dev/zero of=libnn_noshdr.so bs=1 seek=60 count=4 conv=notrunc 2>/dev/null");
}

static int remove_fixtures(void **state)
{
	(void)state;
	return fixture_build__remove(&fixtures);
}

static const char *const hot[] = { "nn_light", "nn_medium", "nn_heavy" };

/* A static function's start and size from the unstripped copy's .symtab. */
static uint64_t full_symbol(const char *name, uint64_t *size)
{
	char path[PATH_MAX], cmd[PATH_MAX + 64], line[512], sym[256];
	uint64_t addr, sz, found = 0;
	FILE *p;

	fixture_build__path(&fixtures, path, "libnn_full.so");
	snprintf(cmd, sizeof(cmd), "nm -S --defined-only '%s'", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p))
		if (sscanf(line, "%" SCNx64 " %" SCNx64 " %*c %255s", &addr, &sz, sym) == 3 &&
		    strcmp(sym, name) == 0) {
			found = addr;
			*size = sz;
		}
	pclose(p);
	if (!found)
		fail_msg("no %s in libnn_full.so", name);
	return found;
}

static struct elf_symtab *open_fixture(const char *name)
{
	char path[PATH_MAX];
	struct elf_symtab_opts o = { .no_debug_file = 1 };
	struct elf_symtab *t;

	fixture_build__path(&fixtures, path, name);
	t = elf_symtab__open_opts(path, &o);
	assert_non_null(t);
	return t;
}

/* Stripped: no name for a static function, but every address of it reads
 * as its start; the exported entry point keeps its .dynsym name. */
static void test_stripped_library_function_starts(void **state)
{
	const char *variants[] = { "libnn_strip.so", "libnn_noshdr.so", "libnn_junk.so",
				   "libnn_bomb.so", "libnn_nohdr.so" };

	(void)state;
	for (size_t v = 0; v < sizeof(variants) / sizeof(variants[0]); v++) {
		struct elf_symtab *t = open_fixture(variants[v]);
		const char *name;
		uint64_t size, start, off;

		assert_false(elf_symtab__used_minidebuginfo(t));
		/* Only the bomb hit a bound, and says so. */
		assert_int_equal(elf_symtab__truncated(t), strcmp(variants[v], "libnn_bomb.so") == 0);
		assert_true(elf_symtab__fde_count(t) >= 4);
		for (size_t i = 0; i < 3; i++) {
			uint64_t a = full_symbol(hot[i], &size);

			assert_int_equal(elf_symtab__lookup(t, a + 1, &name, &off), -ENOENT);
			for (uint64_t at = a; at < a + size; at += 3) {
				assert_int_equal(elf_symtab__function_start(t, at, &start), 0);
				assert_int_equal(start, a);
			}
		}
		uint64_t run = full_symbol("nn_run", &size);

		/* (Without section headers there is no .dynsym to name it.) */
		if (strcmp(variants[v], "libnn_noshdr.so") != 0) {
			assert_int_equal(elf_symtab__lookup(t, run + 1, &name, &off), 0);
			assert_string_equal(name, "nn_run");
		} else {
			assert_int_equal(elf_symtab__function_start(t, run + 1, &start), 0);
			assert_int_equal(start, run);
		}
		elf_symtab__put(t);
	}
}

/* MiniDebugInfo names the static functions; a junk .gnu_debugdata is ignored. */
static void test_minidebuginfo_names(void **state)
{
	struct elf_symtab *t = open_fixture("libnn_mini.so");
	const char *name;
	uint64_t size, off;

	(void)state;
	assert_true(elf_symtab__used_minidebuginfo(t));
	assert_null(elf_symtab__debug_path(t));
	for (size_t i = 0; i < 3; i++) {
		uint64_t a = full_symbol(hot[i], &size);

		assert_int_equal(elf_symtab__lookup(t, a + size - 1, &name, &off), 0);
		assert_string_equal(name, hot[i]);
		assert_int_equal(off, size - 1);
	}
	uint64_t run = full_symbol("nn_run", &size);

	assert_int_equal(elf_symtab__lookup(t, run, &name, &off), 0);
	assert_string_equal(name, "nn_run");
	elf_symtab__put(t);
}

/* The symbol cache counts the loads a bound cut (one cache per file: every
 * variant has the same build-id, which a cache would share). */
static void test_symcache_counts_truncated_loads(void **state)
{
	const char *names[] = { "libnn_mini.so", "libnn_bomb.so" };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		char path[PATH_MAX];
		struct symcache *cache = symcache__new(8);
		struct symcache_stats st;
		struct elf_symtab *t;

		assert_non_null(cache);
		fixture_build__path(&fixtures, path, names[i]);
		t = symcache__get(cache, path, 1, 1);
		assert_non_null(t);
		elf_symtab__put(t);
		symcache__stats(cache, &st);
		assert_int_equal(st.loads, 1);
		assert_int_equal(st.truncated_loads, i);
		symcache__free(cache);
	}
}

/* The xz decoder: output bound, garbage, trailing bytes. */
static void test_minidebug_decompress_bounds(void **state)
{
	char path[PATH_MAX];
	void *out = NULL;
	size_t size = 0, full;

	(void)state;
	fixture_build__path(&fixtures, path, "mini_debuginfo.xz");
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	static uint8_t xz[1 << 20];
	size_t n = fread(xz, 1, sizeof(xz) - 1, f);

	fclose(f);
	assert_true(n > 32 && n < sizeof(xz) - 1);
	assert_int_equal(minidebug__decompress(xz, n, 0, &out, &full), 0);
	assert_true(full > 64 && memcmp(out, "\177ELF", 4) == 0);
	free(out);
	assert_int_equal(minidebug__decompress(xz, n, full, &out, &size), 0);
	assert_int_equal(size, full);
	free(out);
	assert_int_equal(minidebug__decompress(xz, n, full - 1, &out, &size), -EFBIG);
	assert_int_equal(minidebug__decompress(xz, n - 1, 0, &out, &size), -EINVAL);
	xz[n] = 0x42;
	assert_int_equal(minidebug__decompress(xz, n + 1, 0, &out, &size), -EINVAL);
	assert_int_equal(minidebug__decompress("not xz at all", 13, 0, &out, &size), -EINVAL);
	assert_int_equal(minidebug__decompress(NULL, 0, 0, &out, &size), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_search_table),
		cmocka_unit_test(test_walk_without_header),
		cmocka_unit_test(test_hostile_counts_and_overlaps),
		cmocka_unit_test(test_truncated_and_corrupted),
		cmocka_unit_test(test_elf32_big_endian_absptr),
		cmocka_unit_test(test_system_libraries),
		cmocka_unit_test(test_stripped_library_function_starts),
		cmocka_unit_test(test_minidebuginfo_names),
		cmocka_unit_test(test_minidebug_decompress_bounds),
		cmocka_unit_test(test_symcache_counts_truncated_loads),
	};

	return cmocka_run_group_tests(tests, build_fixtures, remove_fixtures);
}
