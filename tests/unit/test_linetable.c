/* test_linetable.c - CPython line tables decoded exactly as CPython does.
 *
 * For every CPython 3.8 .. 3.13 interpreter installed (pyenv builds under
 * $PYENV_ROOT/versions, /usr/bin/python3.X, /usr/local/bin/python3.X), runs
 * tests/unit/fixtures/py_linetable_dump.py, which compiles a module full of
 * awkward line-table cases and prints each code object's table with the line
 * the interpreter itself reports (co_lines() / dis.findlinestarts()) for every
 * instruction; py_linetable__line() must agree on every offset. Versions with
 * no interpreter are skipped with a message; embedded vectors copied from such
 * dumps keep the decoders tested on machines without any.
 *
 * Truncated, mutated and random tables must never make the decoders read out
 * of bounds (every table sits in a heap block of exactly its size: ASan) and
 * must only ever yield 0, -ENOENT or -EINVAL.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixtures_dir.h"

#include "pyenv_root.h"

#include "python/linetable.h"

#define DIR_MAX 1024

static char fixtures_dir[DIR_MAX];

/* A real-table vector: CPython's own answer for each code unit. */
struct vector {
	unsigned minor;      /* table format */
	int firstlineno;     /* co_firstlineno */
	const char *hex;     /* the table */
	int lines[24];       /* expected line per 2-byte unit, -1 = none */
	int units;           /* entries in lines */
};

/* `plain` from py_linetable_dump.py, whose multi-line expression moves the
 * line back and forth (negative deltas). */
static const struct vector embedded[] = {
	{ 8, 3, "00010801020102ff020202fe0403",
	  { 4, 4, 4, 4, 5, 6, 5, 7, 5, 5, 8, 8, 8, 8 }, 14 },
	{ 10, 3, "08010201020102ff020204fe0803",
	  { 4, 4, 4, 4, 5, 6, 5, 7, 5, 5, 8, 8, 8, 8 }, 14 },
	{ 11, 3, "8000d80809884189058041d8090ad8090af103010a0be0090af105020a0b8041f006000c0d88618834804b",
	  { 3, 4, 4, 4, 4, 4, 5, 6, 5, 5, 7, 5, 5, 5, 8, 8, 8, 8 }, 18 },
	{ 13, 3, "8000d8080989058041d8090ad8090af103010a0be0090af105020a0b8041f006000c0d8834804b",
	  { 3, 4, 4, 4, 4, 5, 6, 5, 5, 7, 5, 5, 5, 8, 8, 8 }, 16 },
};

/* Decodes hex into a heap block of exactly the table's size (so ASan sees any
 * read past it). "-" is the empty table. Returns the block (malloc(1) for an
 * empty table), *len its size. */
static uint8_t *unhex(const char *hex, size_t *len)
{
	size_t n = strcmp(hex, "-") == 0 ? 0 : strlen(hex) / 2;
	uint8_t *out = malloc(n ? n : 1);

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		unsigned byte;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
		out[i] = (uint8_t)byte;
	}
	*len = n;
	return out;
}

/* The decoder must return one of its documented results. */
static void expect_sane(int err)
{
	if (err != 0 && err != -ENOENT && err != -EINVAL)
		fail_msg("unexpected result %d", err);
}

/* Feeds every prefix (or every step-th one for long tables) and many offsets
 * of a table to the decoder, each prefix in its own exact-size block. */
static void check_truncations(unsigned minor, const uint8_t *table, size_t len,
			      int firstlineno, size_t code_len)
{
	size_t step = len > 512 ? 13 : 1;

	for (size_t cut = 0; cut <= len; cut += step) {
		uint8_t *copy = malloc(cut ? cut : 1);
		uint32_t offsets[] = { 0, 2, (uint32_t)code_len / 2, (uint32_t)code_len - 2,
				       (uint32_t)code_len, UINT32_MAX };

		assert_non_null(copy);
		memcpy(copy, table, cut);
		for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
			int line = INT_MIN;

			expect_sane(py_linetable__line(minor, copy, cut, firstlineno, offsets[i],
						       &line));
		}
		free(copy);
	}
}

/* Checks one code object: every code unit (and its odd byte) maps to the
 * expected line; the first offset past the bytecode is past the table. */
static void check_code(unsigned minor, int firstlineno, size_t code_len, const char *hex,
		       const int *expected, size_t units, const char *what)
{
	size_t len;
	uint8_t *table = unhex(hex, &len);

	for (size_t unit = 0; unit < units; unit++) {
		for (uint32_t odd = 0; odd < 2; odd++) {
			uint32_t offset = (uint32_t)unit * 2 + odd;
			int line = INT_MIN;
			int err = py_linetable__line(minor, table, len, firstlineno, offset, &line);

			if (err || line != expected[unit])
				fail_msg("3.%u %s offset %u: got %d (err %d), CPython says %d", minor,
					 what, offset, line, err, expected[unit]);
		}
	}
	if (minor >= 10) {
		int line = INT_MIN;

		assert_int_equal(py_linetable__line(minor, table, len, firstlineno,
						    (uint32_t)code_len, &line), -ENOENT);
		assert_int_equal(line, INT_MIN);
	}
	check_truncations(minor, table, len, firstlineno, code_len ? code_len : 2);
	free(table);
}

static void test_embedded_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(embedded) / sizeof(embedded[0]); i++) {
		const struct vector *v = &embedded[i];

		check_code(v->minor, v->firstlineno, (size_t)v->units * 2, v->hex, v->lines,
			   (size_t)v->units, "embedded");
		if (v->minor == 11) /* 3.12 shares the 3.11 format */
			check_code(12, v->firstlineno, (size_t)v->units * 2, v->hex, v->lines,
				   (size_t)v->units, "embedded");
	}
}

/* Runs the dump script under one interpreter and checks every code object.
 * Returns the number of code objects checked. */
static int check_interpreter(unsigned minor, const char *python)
{
	char cmd[2 * PATH_MAX];
	char *buf = NULL, *code_line = NULL;
	size_t cap = 0;
	int checked = 0;
	FILE *out;

	snprintf(cmd, sizeof(cmd), "'%s' '%s/py_linetable_dump.py'", python, fixtures_dir);
	out = popen(cmd, "r");
	assert_non_null(out);
	while (getline(&buf, &cap, out) > 0) {
		buf[strcspn(buf, "\n")] = '\0';
		if (strncmp(buf, "code ", 5) == 0) {
			free(code_line);
			code_line = strdup(buf);
			assert_non_null(code_line);
		} else if (strncmp(buf, "lines", 5) == 0) {
			unsigned got_minor;
			int firstlineno, hex_at = 0, name_at = 0;
			size_t code_len, units = 0;
			int *expected;
			char *save = NULL, *tok;

			assert_non_null(code_line);
			assert_int_equal(sscanf(code_line, "code %u %d %zu %n%*s %n", &got_minor,
						&firstlineno, &code_len, &hex_at, &name_at), 3);
			assert_int_equal(got_minor, minor);
			code_line[name_at - 1] = '\0';
			expected = calloc(code_len / 2 + 1, sizeof(*expected));
			assert_non_null(expected);
			for (tok = strtok_r(buf + 5, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
				assert_true(units < code_len / 2);
				expected[units++] = strcmp(tok, "N") == 0 ? -1 : atoi(tok);
			}
			assert_int_equal(units, code_len / 2);
			check_code(minor, firstlineno, code_len, code_line + hex_at, expected, units,
				   code_line + name_at);
			free(expected);
			checked++;
		}
	}
	free(buf);
	free(code_line);
	assert_int_equal(pclose(out), 0);
	return checked;
}

/* Checks every installed 3.minor interpreter; skips when there is none. */
static void check_minor(unsigned minor)
{
	char root_buf[PATH_MAX - 64]; /* leaves room for the rest of a path */
	const char *root = pyenv_root(root_buf, sizeof(root_buf));
	char pattern[PATH_MAX], path[PATH_MAX];
	int interpreters = 0;
	glob_t found;

	snprintf(pattern, sizeof(pattern), "%s/versions/3.%u.*/bin/python3.%u", root, minor, minor);
	if (glob(pattern, 0, NULL, &found) == 0) {
		for (size_t i = 0; i < found.gl_pathc; i++) {
			int codes = check_interpreter(minor, found.gl_pathv[i]);

			print_message("    3.%u: %s: %d code objects agree\n", minor,
				      found.gl_pathv[i], codes);
			assert_true(codes > 10);
			interpreters++;
		}
	}
	globfree(&found);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/python3.%u", i ? "/usr/local/bin" : "/usr/bin",
			 minor);
		if (access(path, X_OK) == 0) {
			int codes = check_interpreter(minor, path);

			print_message("    3.%u: %s: %d code objects agree\n", minor, path, codes);
			assert_true(codes > 10);
			interpreters++;
		}
	}
	if (!interpreters) {
		print_message("    3.%u: no interpreter installed, skipped\n", minor);
		skip();
	}
}

static void test_cpython_3_8(void **state) { (void)state; check_minor(8); }
static void test_cpython_3_9(void **state) { (void)state; check_minor(9); }
static void test_cpython_3_10(void **state) { (void)state; check_minor(10); }
static void test_cpython_3_11(void **state) { (void)state; check_minor(11); }
static void test_cpython_3_12(void **state) { (void)state; check_minor(12); }
static void test_cpython_3_13(void **state) { (void)state; check_minor(13); }

/* Deterministic pseudo-random bytes (no libc rand state shared with others). */
static uint32_t next_random(uint32_t *seed)
{
	*seed = *seed * 1664525u + 1013904223u;
	return *seed >> 8;
}

static void test_garbage_never_crashes(void **state)
{
	uint32_t seed = 12345;

	(void)state;
	for (unsigned minor = 8; minor <= 13; minor++) {
		for (int round = 0; round < 4000; round++) {
			size_t len = next_random(&seed) % 48;
			uint8_t *table = malloc(len ? len : 1);
			int line = INT_MIN;

			assert_non_null(table);
			for (size_t i = 0; i < len; i++) {
				table[i] = (uint8_t)next_random(&seed);
				if (round % 2) /* mostly well-formed entry starts for 3.11+ */
					table[i] |= i % 3 == 0 ? 0x80 : 0;
			}
			expect_sane(py_linetable__line(minor, table, len,
						       (int)(next_random(&seed) % 200000) - 1000,
						       next_random(&seed) % 512, &line));
			free(table);
		}
	}
}

static void test_edge_cases(void **state)
{
	static const uint8_t long_varint[] = { 0xf0, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01 };
	static const uint8_t cut_varint[] = { 0xf0, 0x41 };
	static const uint8_t no_entry_start[] = { 0x00, 0x80 };
	static const uint8_t huge_line[] = { 0xe8, 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03 };
	int line = 7;

	(void)state;
	/* Empty tables: 3.8/3.9 every offset is on the first line; 3.10+ nothing. */
	assert_int_equal(py_linetable__line(8, NULL, 0, 42, 10, &line), 0);
	assert_int_equal(line, 42);
	assert_int_equal(py_linetable__line(10, NULL, 0, 42, 0, &line), -ENOENT);
	assert_int_equal(py_linetable__line(13, NULL, 0, 42, 0, &line), -ENOENT);
	/* Unsupported versions. */
	assert_int_equal(py_linetable__line(7, NULL, 0, 1, 0, &line), -EINVAL);
	assert_int_equal(py_linetable__line(PY_LINETABLE_MAX_MINOR + 1, NULL, 0, 1, 0, &line), -EINVAL);
	/* Odd-length pair tables, bad entry starts, bad varints. */
	assert_int_equal(py_linetable__line(9, (const uint8_t *)"\x02", 1, 1, 0, &line), -EINVAL);
	assert_int_equal(py_linetable__line(10, (const uint8_t *)"\x02", 1, 1, 0, &line), -EINVAL);
	assert_int_equal(py_linetable__line(11, no_entry_start, sizeof(no_entry_start), 1, 0, &line),
			 -EINVAL);
	assert_int_equal(py_linetable__line(12, long_varint, sizeof(long_varint), 1, 0, &line),
			 -EINVAL);
	assert_int_equal(py_linetable__line(13, cut_varint, sizeof(cut_varint), 1, 0, &line),
			 -EINVAL);
	/* A line beyond int's range is refused, not wrapped. */
	assert_int_equal(py_linetable__line(11, huge_line, sizeof(huge_line), INT_MAX - 5, 0, &line),
			 -EINVAL);
	assert_int_equal(line, 42);
	/* 3.10 "no line" ranges (delta -128) leave the running line alone. */
	{
		static const uint8_t t310[] = { 0x04, 0x01, 0x02, 0x80, 0x02, 0x01 };

		assert_int_equal(py_linetable__line(10, t310, sizeof(t310), 10, 2, &line), 0);
		assert_int_equal(line, 11);
		assert_int_equal(py_linetable__line(10, t310, sizeof(t310), 10, 4, &line), 0);
		assert_int_equal(line, -1);
		assert_int_equal(py_linetable__line(10, t310, sizeof(t310), 10, 6, &line), 0);
		assert_int_equal(line, 12);
		assert_int_equal(py_linetable__line(10, t310, sizeof(t310), 10, 8, &line), -ENOENT);
	}
}

static void test_instr_offsets(void **state)
{
	static const uint8_t t311[] = { 0x80, 0x00, 0xd8, 0x0b, 0x0c, 0x88, 0x48 }; /* 23, 24, 24 */
	int64_t offset;
	int line = 0;

	(void)state;
	/* 3.8/3.9: f_lasti bytes; 3.10: units; -1 = not started. */
	assert_int_equal(py_linetable__instr_offset(9, 6, 0, &offset), 0);
	assert_int_equal(offset, 6);
	assert_int_equal(py_linetable__instr_offset(10, 6, 0, &offset), 0);
	assert_int_equal(offset, 12);
	assert_int_equal(py_linetable__instr_offset(10, UINT32_MAX, 0, &offset), 0);
	assert_true(offset < 0);
	/* 3.11+: pointer minus code object minus co_code_adaptive. */
	assert_int_equal(py_linetable__instr_offset(11, 184 + 4, 184, &offset), 0);
	assert_int_equal(offset, 4);
	assert_int_equal(py_linetable__instr_offset(12, 192 - 2, 192, &offset), 0);
	assert_int_equal(offset, -2);
	assert_int_equal(py_linetable__instr_offset(PY_LINETABLE_MAX_MINOR + 1, 0, 0, &offset), -EINVAL);

	/* A 3.11/3.12 frame just pushed (prev_instr one unit before the code) is on
	 * co_firstlineno; later units follow the table. */
	assert_int_equal(py_linetable__frame_line(11, t311, sizeof(t311), 23, 184 - 2, 184, &line), 0);
	assert_int_equal(line, 23);
	assert_int_equal(py_linetable__frame_line(12, t311, sizeof(t311), 23, 192 + 2, 192, &line), 0);
	assert_int_equal(line, 24);
	assert_int_equal(py_linetable__frame_line(13, t311, sizeof(t311), 23, 200 + 0, 200, &line), 0);
	assert_int_equal(line, 23);
	assert_int_equal(py_linetable__frame_line(13, t311, sizeof(t311), 23, 200 + 6, 200, &line),
			 -ENOENT);
	assert_int_equal(py_linetable__frame_line(8, (const uint8_t *)"\x00\x01", 2, 5, UINT32_MAX,
						  -1, &line), 0);
	assert_int_equal(line, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_embedded_vectors),
		cmocka_unit_test(test_edge_cases),
		cmocka_unit_test(test_instr_offsets),
		cmocka_unit_test(test_garbage_never_crashes),
		cmocka_unit_test(test_cpython_3_8),
		cmocka_unit_test(test_cpython_3_9),
		cmocka_unit_test(test_cpython_3_10),
		cmocka_unit_test(test_cpython_3_11),
		cmocka_unit_test(test_cpython_3_12),
		cmocka_unit_test(test_cpython_3_13),
	};

	if (fixtures_dir_find(fixtures_dir, sizeof(fixtures_dir))) {
		fprintf(stderr, "test_linetable: cannot find tests/unit/fixtures\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
