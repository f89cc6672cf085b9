// SPDX-License-Identifier: MIT
/* The report "top" table: totals line, rows, shares, recursion, row limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "formats/top.h"
#include "profile/profile.h"

#include "profile_builder.h"

/* A sample of "app", pid and tid 1. */
static void sample(struct profile *p, const uint32_t *frames, uint32_t nframes,
		   uint64_t count, uint64_t cpu)
{
	sample_in(p, "app", 1, 1, frames, nframes, count, cpu);
}

static char *print_top(const struct profile *p, const struct top_opts *opts)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(top__print(p, out, opts), 0);
	fclose(out);
	return text;
}

/* main -> a -> b -> a (recursive), main -> a -> c, main -> b, main. */
static struct profile *recursive_profile(void)
{
	struct profile *p = new_profile();
	uint32_t main_ = frame(p, FRAME_NATIVE, "main", NULL, NULL, 0);
	uint32_t a = frame(p, FRAME_PYTHON, "a", NULL, "m.py", 3);
	uint32_t b = frame(p, FRAME_KERNEL, "b", "[kernel.kallsyms]", NULL, 0);
	uint32_t c = frame(p, FRAME_NATIVE, "c", NULL, NULL, 0);
	sample(p, (uint32_t[]){ main_, a, b, a }, 4, 4, 8000000000ull);
	sample(p, (uint32_t[]){ main_, a, c }, 3, 3, 3000000000ull);
	sample(p, (uint32_t[]){ main_, b }, 2, 2, 1000000000ull);
	sample(p, (uint32_t[]){ main_ }, 1, 1, 300000000ull);
	return p;
}

static void test_recursive_stack(void **state)
{
	(void)state;
	struct profile *p = recursive_profile();
	char *text = print_top(p, NULL);
	/* a is counted once in main;a;b;a: total 4 + 3 = 7 of 10, not 11. */
	assert_string_equal(text,
		"total: 10 samples, 12.3 s cpu\n"
		"  SELF%  TOTAL%  SAMPLES  FUNCTION\n"
		"  40.0%   70.0%        4  a (m.py:3)\n"
		"  30.0%   30.0%        3  c\n"
		"  20.0%   60.0%        2  b_[k]\n"
		"  10.0%  100.0%        1  main\n");
	free(text);
	profile__free(p);
}

static void test_value_index_and_limit(void **state)
{
	(void)state;
	struct profile *p = recursive_profile();
	struct top_opts opts = TOP_OPTS_INIT;
	opts.value_index = 1;
	opts.max_rows = 2;
	char *text = print_top(p, &opts);
	/* Shares of cpu time; SAMPLES still counts samples. */
	assert_string_equal(text,
		"total: 10 samples, 12.3 s cpu\n"
		"  SELF%  TOTAL%  SAMPLES  FUNCTION\n"
		"  65.0%   89.4%        4  a (m.py:3)\n"
		"  24.4%   24.4%        3  c\n");
	free(text);

	opts.value_index = 2;
	FILE *null = fopen("/dev/null", "w");
	assert_int_equal(top__print(p, null, &opts), -EINVAL);
	fclose(null);
	profile__free(p);
}

static void test_ties_and_empty(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	char *text = print_top(p, NULL);
	assert_string_equal(text, "total: 0 samples\n  SELF%  TOTAL%  SAMPLES  FUNCTION\n");
	free(text);

	/* Equal self: larger total first, then by name. Frames that display
	 * alike (same name, other module) are one function. */
	uint32_t v = frame(p, FRAME_NATIVE, "v", NULL, NULL, 0);
	uint32_t x = frame(p, FRAME_NATIVE, "x", "/bin/one", NULL, 0);
	uint32_t x2 = frame(p, FRAME_NATIVE, "x", "/bin/two", NULL, 0);
	uint32_t y = frame(p, FRAME_NATIVE, "y", NULL, NULL, 0);
	uint32_t z = frame(p, FRAME_NATIVE, "z", NULL, NULL, 0);
	uint64_t one = 1, two = 2;
	struct sample_desc descs[] = {
		{ .frames = (uint32_t[]){ y, z }, .nframes = 2, .values = &two },
		{ .frames = (uint32_t[]){ x }, .nframes = 1, .values = &one },
		{ .frames = (uint32_t[]){ x2 }, .nframes = 1, .values = &one },
		{ .frames = (uint32_t[]){ v }, .nframes = 1, .values = &two },
		{ .frames = (uint32_t[]){ v, y }, .nframes = 2, .values = &one },
	};
	for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++)
		assert_int_equal(profile__add_sample(p, &descs[i]), 0);
	text = print_top(p, NULL);
	assert_string_equal(text,
		"total: 7 samples\n"
		"  SELF%  TOTAL%  SAMPLES  FUNCTION\n"
		"  28.6%   42.9%        2  v\n"
		"  28.6%   28.6%        2  x\n"
		"  28.6%   28.6%        2  z\n"
		"  14.3%   42.9%        1  y\n");
	free(text);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recursive_stack),
		cmocka_unit_test(test_value_index_and_limit),
		cmocka_unit_test(test_ties_and_empty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
