/* test_py_static_tls.c - a shared libpython 3.15's thread state, a
 * thread-local read through __tls_get_addr, located in static TLS.
 *
 * Real bytes: the first 48 bytes of PyGILState_GetThisThreadState of Debian
 * unstable's libpython3.15.so.1.0 (3.15.2) and libpython3.15d.so.1.0, and
 * (tests/unit/fixtures/py_static_tls/libpython3.15.2-link_map.bin) the first
 * 2 KiB of the dynamic linker's struct link_map (glibc 2.43) for
 * libpython3.15.so.1.0 in a live process embedding it
 * (tests/workloads/embed/py_embed.c), loaded at bias 0x7f5b1ae00000, module
 * id 1, its TLS block 0x30 bytes below the thread pointer.
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
#include "python/py_static_tls.h"
#include "python/py_tstate_find.h"

#define BIAS 0x7f5b1ae00000ull
#define WORDS (PY_STATIC_TLS_LINK_MAP_BYTES / 8)

static void load(uint64_t *words)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	assert_int_equal(fixtures_dir_find(dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/py_static_tls/libpython3.15.2-link_map.bin", dir);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	assert_int_equal(fread(words, 8, WORDS, f), WORDS);
	fclose(f);
}

/* py_tstate_find() on the real code: the tls_index and the variable's offset
 * in the library's block (0x28 in 3.15.2, 0x18 in its debug build). */
static void test_tstate_find_local_dynamic(void **state)
{
	(void)state;
	static const struct {
		uint64_t addr;      /* PyGILState_GetThisThreadState's st_value */
		const char *code;   /* its first 48 bytes */
		uint64_t tls_index; /* the GOT entry its lea takes */
		int32_t dtpoff;     /* mov disp(%rax),%rax */
	} libs[] = {
		{ 0x3cf120,
		  "\xf3\x0f\x1e\xfa\x55\x48\x89\xe5\x48\x8d\x3d\x61\xa6\x4a\x00\xe8\x5c\x9d\xcf\xff\x5d\x48\x8b\x80\x28\x00\x00\x00\xc3\x0f\x1f\x00\xf3\x0f\x1e\xfa\x48\x8b\x15\x35\xab\x4a\x00\xb8\x01\x00\x00\x00",
		  0x879790, 0x28 },
		{ 0x46e762,
		  "\xf3\x0f\x1e\xfa\x55\x48\x89\xe5\x48\x8d\x3d\xdf\xae\x64\x00\xe8\x6a\xa6\xc5\xff\x48\x8b\x80\x18\x00\x00\x00\x5d\xc3\xf3\x0f\x1e\xfa\x48\x8b\x05\x7e\xb4\x64\x00\x83\xb8\x60\x66\x00\x00\x00\x74",
		  0xab9650, 0x18 },
	};
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		struct py_offsets o = { 0 };
		uint64_t slot = 0;
		int32_t dtpoff = -1;
		/* _PyRuntime far away: the lea is not a Py_tss_t. */
		assert_int_equal(py_tstate_find((const uint8_t *)libs[i].code, 48, BIAS + libs[i].addr,
						BIAS + 0x900000, 0x549c8, &o, &slot, &dtpoff), 2);
		assert_int_equal(slot, BIAS + libs[i].tls_index);
		assert_int_equal(dtpoff, libs[i].dtpoff);
		assert_int_equal(o.tstate_tls, 0);
		assert_int_equal(o.runtime_tss_key, 0);
	}
	/* A lea not followed by a call: not taken. */
	const uint8_t lea[] = "\x48\x8d\x3d\x61\xa6\x4a\x00\x90\x90\x90\x90\x90\x48\x8b\x80\x28\x00\x00\x00";
	struct py_offsets o = { 0 };
	uint64_t slot = 0;
	int32_t dtpoff = 0;
	assert_int_equal(py_tstate_find(lea, sizeof(lea) - 1, 0x1000, 0x400000, 0x50000, &o,
					&slot, &dtpoff), -ENOENT);
}

static void test_real_link_map(void **state)
{
	(void)state;
	uint64_t words[WORDS];
	int64_t off = 0;
	load(words);
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS, 1, &off), 0);
	assert_int_equal(off, 0x30);
	/* The thread state: fsbase - 0x30 + 0 (tls_index offset) + 0x28. */
	assert_int_equal(-off + 0 + 0x28, -8);
	/* Another module id, another library's bias: not this link_map. */
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS, 2, &off), -ENOENT);
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS + (1ull << 33), 1, &off), -ENOENT);
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS, 0, &off), -ENOENT);
	assert_int_equal(py_static_tls__scan(NULL, 0, BIAS, 1, &off), -ENOENT);
}

/* The same link_map as a dlopen'ed library's (no static offset): refused. */
static void test_dynamic_tls_refused(void **state)
{
	(void)state;
	uint64_t words[WORDS];
	int64_t off = 0;
	size_t at = WORDS;
	load(words);
	for (size_t i = 0; i + 7 <= WORDS; i++) {
		if (words[i + 6] == 1 && words[i + 5] == 0x30 && words[i + 2] == 0x30) {
			at = i;
			break;
		}
	}
	assert_true(at < WORDS);
	words[at + 5] = (uint64_t)-1; /* FORCED_DYNAMIC_TLS_OFFSET */
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS, 1, &off), -EOPNOTSUPP);
	words[at + 5] = 0;             /* NO_TLS_OFFSET */
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS, 1, &off), -EOPNOTSUPP);
	/* An offset smaller than the block (not variant II): not believed. */
	words[at + 5] = 0x10;
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS, 1, &off), -ENOENT);
	/* An alignment that is not a power of two. */
	words[at + 5] = 0x30;
	words[at + 3] = 12;
	assert_int_equal(py_static_tls__scan(words, WORDS, BIAS, 1, &off), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tstate_find_local_dynamic),
		cmocka_unit_test(test_real_link_map),
		cmocka_unit_test(test_dynamic_tls_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
