/* test_py_debug_offsets.c - reading CPython 3.13+'s own layout description.
 *
 * The fixtures are the real first bytes of _PyRuntime (_Py_DebugOffsets)
 * dumped from Debian's 3.13.18, 3.14.10, 3.15.2 and the 3.14/3.15 debug builds
 * (tests/unit/fixtures/py_debug_offsets/, one .bin each, made with ctypes in each
 * interpreter: ctypes.string_at(addressof(c_char.in_dll(pythonapi,
 * "_PyRuntime")), N)), and the first bytes of each one's
 * PyGILState_GetThisThreadState. Each is parsed as it is, then corrupted
 * copies are refused with the field named.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures_dir.h"
#include "python/py_debug_offsets.h"
#include "python/py_tstate_find.h"

/* One dumped interpreter. */
struct dump {
	const char *tag;         /* fixture file stem */
	uint64_t runtime_addr;   /* _PyRuntime (st_value; non-PIE: also the address) */
	uint64_t runtime_size;   /* its st_size */
	uint64_t gilstate_addr;  /* PyGILState_GetThisThreadState */
	const char *gilstate;    /* its first 48 bytes */
	unsigned minor;          /* 3.minor */
	int16_t owner;           /* expected interpreter frame owner offset */
	int16_t adaptive;        /* expected co_code_adaptive */
	int16_t tss;             /* expected autoTSSkey offset (0: none) */
	int32_t tls;             /* expected thread-local offset (0: none) */
};

static const struct dump dumps[] = {
	{ "3.13.18", 0xb176a0, 0x45310, 0x56c7b0,
	  "\xf3\x0f\x1e\xfa\x83\x3d\x55\xb7\x5a\x00\x00\x0f\x84\xdb\xa4\xeb\xff\x8b\x3d\x4d\xb7\x5a\x00\xe9\x44\x50\xeb\xff\x0f\x1f\x40\x00\xf3\x0f\x1e\xfa\x8b\x07\xc3\x66\x0f\x1f\x84\x00\x00\x00\x00\x00",
	  13, 70, 200, 0x870, 0 },
	{ "3.14.10", 0xba07c0, 0x4d4c8, 0x42c79a,
	  "\xf3\x0f\x1e\xfa\x83\x3d\x3b\x49\x77\x00\x00\x74\x0a\xbf\xe0\x10\xba\x00\xe9\x7f\x2e\x11\x00\x31\xc0\xc3\x66\x0f\x6f\x44\x24\x30\x41\x0f\x11\x01\x66\x0f\x6f\x44\x24\x40\x41\x0f\x11\x41\x10\xe9",
	  14, 74, 208, 0x920, 0 },
	{ "3.14.10d", 0xc3e900, 0x51358, 0x6e196a,
	  "\xf3\x0f\x1e\xfa\x55\x48\x89\xe5\xbf\x20\xf2\xc3\x00\xe8\xd7\xa5\x01\x00\x85\xc0\x74\x0c\xbf\x20\xf2\xc3\x00\xe8\x34\xd5\xff\xff\x5d\xc3\xb8\x00\x00\x00\x00\xeb\xf7\xf3\x0f\x1e\xfa\x83\x3d\x42",
	  14, 74, 208, 0x920, 0 },
	{ "3.15.2", 0xc408a0, 0x549c8, 0x42fa7d,
	  "\xf3\x0f\x1e\xfa\x64\x48\x8b\x04\x25\xd8\xff\xff\xff\xc3\x66\x0f\x6f\x45\xe0\x41\x0f\x11\x00\x66\x0f\x6f\x45\xf0\x41\x0f\x11\x40\x10\xe9\x12\x6d\x31\x00\xf3\x0f\x1e\xfa\x55\xb8\x64\x00\x00\x00",
	  15, 74, 208, 0, -0x28 },
	{ "3.15.2d", 0xe48580, 0x58860, 0x7a1a1b,
	  "\xf3\x0f\x1e\xfa\x64\x48\x8b\x04\x25\xe8\xff\xff\xff\xc3\xf3\x0f\x1e\xfa\x83\x3d\xac\xd1\x6a\x00\x00\x74\x1e\x64\x48\x8b\x04\x25\xf8\xff\xff\xff\x48\x85\xc0\x74\x16\x64\x48\x3b\x04\x25\xe8\xff",
	  15, 74, 208, 0, -0x18 },
};
#define NDUMPS (sizeof(dumps) / sizeof(dumps[0]))

/* py_tstate_find()'s offset in a TLS block (set on return 2 only). */
static int32_t dtp;

/* Reads fixture tag into buf (zero-padded to PY_DEBUG_OFFSETS_READ, as read
 * from a live _PyRuntime the rest would be runtime state). Returns its size. */
static size_t load(const char *tag, uint8_t *buf)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	assert_int_equal(fixtures_dir_find(dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/py_debug_offsets/%s.bin", dir, tag);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	memset(buf, 0, PY_DEBUG_OFFSETS_READ);
	size_t n = fread(buf, 1, PY_DEBUG_OFFSETS_READ, f);
	fclose(f);
	assert_true(n >= 584);
	return n;
}

static void put64(uint8_t *buf, size_t off, uint64_t v)
{
	memcpy(buf + off, &v, sizeof(v));
}

/* Parses buf expecting refusal with a reason containing want. */
static void expect_refused(const uint8_t *buf, unsigned expect_minor, uint64_t runtime_size,
			   const char *want)
{
	struct py_layout l;
	struct py_debug_offsets_info info;
	char reason[256] = "";
	int err = py_debug_offsets__parse(buf, PY_DEBUG_OFFSETS_READ, expect_minor, runtime_size,
					  &l, &info, reason, sizeof(reason));
	if (err != -ENOTSUP || !strstr(reason, want))
		fail_msg("expected refusal with \"%s\", got %d \"%s\"", want, err, reason);
	assert_null(strchr(reason, '\n'));
}

static void test_real_dumps(void **state)
{
	(void)state;
	uint8_t buf[PY_DEBUG_OFFSETS_READ];
	for (size_t i = 0; i < NDUMPS; i++) {
		const struct dump *d = &dumps[i];
		struct py_layout l;
		struct py_debug_offsets_info info;
		char reason[256] = "";
		uint64_t slot = 0;
		load(d->tag, buf);
		int err = py_debug_offsets__parse(buf, sizeof(buf), d->minor, d->runtime_size, &l,
						  &info, reason, sizeof(reason));
		if (err)
			fail_msg("%s: %d %s", d->tag, err, reason);
		assert_int_equal(info.layout_minor, d->minor);
		assert_int_equal(info.free_threaded, 0);
		assert_int_equal(l.minor, d->minor);
		assert_int_equal(l.source, PY_LAYOUT_DEBUG_OFFSETS);
		/* Thread state and frame: what the walker reads. */
		assert_int_equal(l.walk.tstate_frame, 72);
		assert_int_equal(l.walk.tstate_cframe, -1);
		assert_int_equal(l.walk.frame_code, 0);
		assert_int_equal(l.walk.frame_previous, 8);
		assert_int_equal(l.walk.frame_instr, 56);
		assert_int_equal(l.walk.frame_owner, d->owner);
		assert_int_equal(l.walk.owner_cstack, 3);
		assert_int_equal(l.walk.code_tag_mask, d->minor >= 14 ? 7 : 0);
		assert_int_equal(l.walk.instr_kind, PY_INSTR_POINTER);
		assert_int_equal(l.walk.code_firstlineno, 68);
		assert_int_equal(l.walk.code_adaptive, d->adaptive);
		/* Code objects and strings: what the resolver reads. */
		assert_int_equal(l.code.ob_type, 8);
		assert_int_equal(l.code.type_name, 24);
		assert_int_equal(l.code.co_filename, 112);
		assert_int_equal(l.code.co_name, 120);
		assert_int_equal(l.code.co_qualname, 128);
		assert_int_equal(l.code.co_linetable, 136);
		assert_int_equal(l.code.co_code_adaptive, d->adaptive);
		assert_int_equal(l.code.unicode_ascii_data, 40);
		assert_int_equal(l.code.unicode_compact_data, 56);
		assert_int_equal(l.code.bytes_data, 32);
		/* The thread state: a pthread key in _PyRuntime (3.13, 3.14) or a
		 * thread-local (3.15). */
		err = py_tstate_find((const uint8_t *)d->gilstate, 48, d->gilstate_addr,
				     d->runtime_addr, d->runtime_size, &l.walk, &slot, &dtp);
		assert_int_equal(err, 0);
		assert_int_equal(l.walk.runtime_tss_key, d->tss);
		assert_int_equal(l.walk.tstate_tls, d->tls);
	}
}

/* On 3.13 the debug offsets and the built-in table agree on every field the
 * walker and the resolver use (the live cross-check is in
 * tests/integration/test_python_next.py). */
static void test_313_matches_table(void **state)
{
	(void)state;
	uint8_t buf[PY_DEBUG_OFFSETS_READ];
	struct py_layout l, t;
	struct py_debug_offsets_info info;
	char reason[256];
	uint64_t slot;
	load("3.13.18", buf);
	assert_int_equal(py_debug_offsets__parse(buf, sizeof(buf), 13, dumps[0].runtime_size, &l,
						 &info, reason, sizeof(reason)), 0);
	assert_int_equal(py_tstate_find((const uint8_t *)dumps[0].gilstate, 48,
					dumps[0].gilstate_addr, dumps[0].runtime_addr,
					dumps[0].runtime_size, &l.walk, &slot, &dtp), 0);
	assert_int_equal(py_layout__from_table(13, &t), 0);
	assert_memory_equal(&l.walk, &t.walk, sizeof(l.walk));
	assert_memory_equal(&l.code, &t.code, sizeof(l.code));
	assert_int_equal(py_layout__from_table(14, &t), -ENOTSUP);
}

static void test_corrupted(void **state)
{
	(void)state;
	uint8_t good[PY_DEBUG_OFFSETS_READ], buf[PY_DEBUG_OFFSETS_READ];
	uint64_t size14 = dumps[1].runtime_size;
	load("3.14.10", good);

#define FRESH() memcpy(buf, good, sizeof(buf))
	FRESH();
	memcpy(buf, "xdebugpz", 8);
	expect_refused(buf, 14, size14, "cookie \"xdebugpy\" missing");
	FRESH();
	memset(buf, 0, 64); /* absent: no debug offsets at all */
	expect_refused(buf, 14, size14, "no _Py_DebugOffsets");
	FRESH();
	put64(buf, 8, 0x030c0af0); /* says 3.12 */
	expect_refused(buf, 0, size14, "is not CPython 3.13 or later");
	FRESH();
	put64(buf, 8, 0xdeadbeef030e0af0ull);
	expect_refused(buf, 0, size14, "is not CPython 3.13 or later");
	FRESH();
	expect_refused(buf, 13, size14, "says version 3.14, the interpreter says 3.13");
	FRESH();
	put64(buf, 16, 1);
	expect_refused(buf, 14, size14, "free-threaded (no-GIL) build");
	FRESH();
	put64(buf, 16, 7);
	expect_refused(buf, 14, size14, "free_threaded flag 7");
	FRESH();
	expect_refused(buf, 14, size14 + 8, "differs from _PyRuntime's");
	FRESH();
	put64(buf, 24, 1 << 30);
	expect_refused(buf, 14, 0, "runtime state size");
	FRESH();
	put64(buf, 176 + 4 * 8, 1 << 20); /* thread_state.current_frame */
	expect_refused(buf, 14, size14, "thread state");
	FRESH();
	put64(buf, 248 + 5 * 8, 200); /* interpreter_frame.owner past the walker's chunk */
	expect_refused(buf, 14, size14, "interpreter frame");
	FRESH();
	put64(buf, 248 + 2 * 8, 8); /* executable == previous */
	expect_refused(buf, 14, size14, "interpreter frame");
	FRESH();
	put64(buf, 248 + 3 * 8, 57); /* instr_ptr misaligned */
	expect_refused(buf, 14, size14, "interpreter frame");
	FRESH();
	put64(buf, 312 + 5 * 8, 0x45); /* code firstlineno misaligned */
	expect_refused(buf, 14, size14, "code object");
	FRESH();
	put64(buf, 312 + 2 * 8, 4096); /* code name past the code object */
	expect_refused(buf, 14, size14, "code object");
	FRESH();
	put64(buf, 400 + 8, 24); /* ob_type past PyObject */
	expect_refused(buf, 14, size14, "object header");
	FRESH();
	put64(buf, 592 + 16, 8); /* bytes ob_sval before ob_size */
	expect_refused(buf, 14, size14, "bytes object");
	FRESH();
	put64(buf, 616 + 24, 0x30); /* str ASCII header size against the str size */
	expect_refused(buf, 14, size14, "str object");

	/* Too short for the layout. */
	struct py_layout l;
	struct py_debug_offsets_info info;
	char reason[256];
	assert_int_equal(py_debug_offsets__parse(good, 600, 14, size14, &l, &info, reason,
						 sizeof(reason)), -EINVAL);
	assert_int_equal(py_debug_offsets__parse(good, 16, 14, size14, &l, &info, reason,
						 sizeof(reason)), -EINVAL);
#undef FRESH
}

/* A 3.16 is read with the 3.15 layout when that layout checks out, and
 * refused (one line, saying why) when it does not. */
static void test_newer_minor(void **state)
{
	(void)state;
	uint8_t buf[PY_DEBUG_OFFSETS_READ];
	uint64_t size15 = dumps[3].runtime_size;
	struct py_layout l;
	struct py_debug_offsets_info info;
	char reason[256] = "";

	load("3.15.2", buf);
	put64(buf, 8, 0x031000a0); /* 3.16.0a0 */
	assert_int_equal(py_debug_offsets__parse(buf, sizeof(buf), 16, size15, &l, &info, reason,
						 sizeof(reason)), 0);
	assert_int_equal(l.source, PY_LAYOUT_NEWER);
	assert_int_equal(l.minor, 16);
	assert_int_equal(info.layout_minor, 15);
	assert_int_equal(l.walk.frame_owner, 74);
	/* Without the _PyRuntime size the guess cannot be checked. */
	expect_refused(buf, 16, 0, "newer than dynoprof knows (3.8-3.15)");
	/* A 3.16 that added a field to the thread state moves every later
	 * section: the 3.15 layout no longer fits. */
	uint8_t moved[PY_DEBUG_OFFSETS_READ];
	memcpy(moved, buf, 176 + 17 * 8);
	put64(moved, 176 + 17 * 8, 0x30);
	memcpy(moved + 176 + 18 * 8, buf + 176 + 17 * 8, sizeof(moved) - (176 + 18 * 8));
	expect_refused(moved, 16, size15, "(read with the 3.15 layout)");
}

/* pyenv's shared libpython3.13.so.1.0 (3.13.0) takes _PyRuntime from its GOT. */
static void test_tstate_shared_library(void **state)
{
	(void)state;
	struct py_offsets o = { 0 };
	uint64_t slot = 0;
	const uint8_t code[] = "\x48\x8b\x05\xe9\x6b\x25\x00\x53\x48\x8d\x98\x70\x08\x00"
			       "\x00\x48\x89\xdf\xe8\xd9\x59\xdf\xff";
	assert_int_equal(py_tstate_find(code, sizeof(code) - 1, 0x2940c0, 0x4eacb0 + 0x3e810,
					0x45310, &o, &slot, &dtp), 0);
	assert_int_equal(o.runtime_tss_key, 0x870);
	assert_int_equal(o.tstate_tls, 0);
	/* The same displacement past _PyRuntime's end is not taken. */
	assert_int_equal(py_tstate_find(code, sizeof(code) - 1, 0x2940c0, 0x4eacb0 + 0x3e810,
					0x800, &o, &slot, &dtp), -ENOENT);
	/* A shared libpython 3.15's thread-local: the GOT slot holding its
	 * offset (mov 0x1000(%rip),%rax; mov %fs:(%rax),%rax), for the caller
	 * to read. */
	const uint8_t tls[] = "\xf3\x0f\x1e\xfa\x48\x8b\x05\x00\x10\x00\x00\x64\x48\x8b"
			      "\x00\xc3";
	assert_int_equal(py_tstate_find(tls, sizeof(tls) - 1, 0x7000, 0x400000, 0x50000, &o,
					&slot, &dtp), 1);
	assert_int_equal(slot, 0x7000 + 4 + 7 + 0x1000);
}

static void test_tstate_not_found(void **state)
{
	(void)state;
	struct py_offsets o = { 0 };
	uint64_t slot = 0;
	/* The general-dynamic model (__tls_get_addr): not recognised. */
	const uint8_t gd[] = "\x66\x48\x8d\x3d\x10\x20\x30\x00\x66\x66\x48\xe8\x00\x00\x00\x00"
			     "\x48\x8b\x00\xc3";
	assert_int_equal(py_tstate_find(gd, sizeof(gd) - 1, 0x1000, 0x400000, 0x50000, &o, &slot, &dtp),
			 -ENOENT);
	/* A cmpl/mov into memory that is not _PyRuntime: not taken. */
	assert_int_equal(py_tstate_find((const uint8_t *)dumps[1].gilstate, 48,
					dumps[1].gilstate_addr, 0x100000, 0x1000, &o, &slot, &dtp), -ENOENT);
	/* A positive thread-local offset is not static TLS of the executable. */
	const uint8_t pos[] = "\x64\x48\x8b\x04\x25\x28\x00\x00\x00\xc3";
	assert_int_equal(py_tstate_find(pos, sizeof(pos) - 1, 0x1000, 0x400000, 0x50000, &o,
					&slot, &dtp), -ENOENT);
	assert_int_equal(py_tstate_find(NULL, 0, 0, 0, 0, &o, &slot, &dtp), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_dumps),
		cmocka_unit_test(test_313_matches_table),
		cmocka_unit_test(test_corrupted),
		cmocka_unit_test(test_newer_minor),
		cmocka_unit_test(test_tstate_shared_library),
		cmocka_unit_test(test_tstate_not_found),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
