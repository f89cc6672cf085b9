// SPDX-License-Identifier: MIT
/* The top table's header line says each value's total in its own units:
 * nanoseconds as ns/ms/s, bytes as B/KiB/MiB..., counts bare, any other
 * unit named; a profile whose counts saturated says so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/top.h"

static char out[4096];

static const char *header(const uint64_t *values, size_t n, const char *const (*types)[2])
{
	struct profile *p = profile__new();
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(profile__add_value_type(p, types[i][0], types[i][1]), (int)i);
	uint32_t f;
	struct frame_desc d = { .kind = FRAME_NATIVE, .name = "work" };
	assert_int_equal(profile__add_frame(p, &d, &f), 0);
	for (int k = 0; k < 2; k++) { /* twice: sums of UINT64_MAX saturate */
		struct sample_desc s = { .frames = &f, .nframes = 1, .pid = 1, .tid = 1 + (uint32_t)k,
					 .values = values };
		assert_int_equal(profile__add_sample(p, &s), 0);
	}
	FILE *m = fmemopen(out, sizeof(out), "w");
	assert_non_null(m);
	struct top_opts o = TOP_OPTS_INIT;
	assert_int_equal(top__print(p, m, &o), 0);
	fclose(m);
	profile__free(p);
	return out;
}

static void expect(const char *want)
{
	if (!strstr(out, want))
		fail_msg("no \"%s\" in:\n%s", want, out);
}

static void test_units(void **state)
{
	(void)state;
	static const char *const types[][2] = {
		{ "samples", "count" }, { "cpu", "nanoseconds" }, { "alloc", "bytes" },
		{ "wall", "nanoseconds" }, { "io", "bytes" }, { "energy", "joules" },
	};
	uint64_t v[6] = { 3, 400, 3ull << 30, 2500000, 100, 7 };
	header(v, 6, types);
	expect("total: 6 samples, 800 ns cpu, 6.0 GiB alloc, 5.0 ms wall, 200 B io, "
	       "14 joules energy");
	assert_null(strstr(out, "saturated"));
	/* Counts past 64 bits: the totals are clamped, and said to be. */
	uint64_t big[2] = { UINT64_MAX, 2000000000 };
	header(big, 2, types);
	expect("4.0 s cpu");
	expect("(saturated: the input's counts do not fit 64 bits)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_units),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
