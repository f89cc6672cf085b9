// SPDX-License-Identifier: MIT
/* Counts never wrap: a profile keeps each value's sum over its samples at most
 * UINT64_MAX (clamping what would pass it, counted by profile__saturated), so
 * no total or sum over a subset of samples (groups, merged folded lines)
 * wraps; pprof input with negative values is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "formats/folded.h"
#include "formats/groups.h"
#include "formats/pprof.h"
#include "profile/profile.h"
#include "util/strbuf.h"

static struct profile *read_folded(const char *text)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	char err[128] = "";
	if (folded__read(p, f, NULL, err, sizeof(err)))
		fail_msg("folded__read: %s", err);
	fclose(f);
	return p;
}

static void test_folded_same_line_saturates(void **state)
{
	(void)state;
	/* The example: it used to report "total: 4 samples". */
	struct profile *p = read_folded("a;b;c 18446744073709551615\na;b;c 5\n");
	assert_int_equal(profile__sample_count(p), 1);
	assert_true(profile__total(p, 0) == UINT64_MAX);
	assert_true(profile__sample(p, 0)->values[0] == UINT64_MAX);
	assert_int_equal(profile__saturated(p), 1);
	profile__free(p);
}

static void test_folded_distinct_lines_saturate(void **state)
{
	(void)state;
	struct profile *p = read_folded("a;b 18446744073709551000\nx;y 1000\nx;z 7\n");
	assert_true(profile__total(p, 0) == UINT64_MAX);
	assert_int_equal(profile__saturated(p), 2); /* x;y clamped, x;z got nothing */
	/* Every group sum is a subset of the total: none wraps. */
	const char *keys[] = { "none" };
	struct group_row *rows = NULL;
	size_t nrows = 0;
	assert_int_equal(groups__compute(p, keys, 1, &rows, &nrows), 0);
	assert_int_equal(nrows, 1);
	assert_true(rows[0].samples == UINT64_MAX);
	groups__free(rows, nrows);
	profile__free(p);
}

static void test_no_saturation_below_the_limit(void **state)
{
	(void)state;
	struct profile *p = read_folded("a;b 9223372036854775807\na;b 9223372036854775807\n"
					"c 1\n");
	assert_true(profile__total(p, 0) == UINT64_MAX);
	assert_int_equal(profile__saturated(p), 0);
	profile__free(p);
}

static void test_pprof_negative_values_refused(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	struct frame_desc d = { .kind = FRAME_SPECIAL, .name = "[x]" };
	uint32_t id;
	assert_int_equal(profile__add_frame(p, &d, &id), 0);
	uint64_t v[PROFILE_MAX_VALUES] = { (uint64_t)-3 }; /* int64 -3 on the wire */
	struct sample_desc s = { .frames = &id, .nframes = 1, .comm = "c", .values = v };
	assert_int_equal(profile__add_sample(p, &s), 0);
	struct strbuf sb = { 0 };
	assert_int_equal(pprof__encode(p, &sb), 0);
	struct profile *q = profile__new();
	assert_non_null(q);
	char err[160] = "";
	assert_int_equal(pprof__decode(q, sb.data, sb.len, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "negative"));
	profile__free(q);
	strbuf__release(&sb);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folded_same_line_saturates),
		cmocka_unit_test(test_folded_distinct_lines_saturate),
		cmocka_unit_test(test_no_saturation_below_the_limit),
		cmocka_unit_test(test_pprof_negative_values_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
