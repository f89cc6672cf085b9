// SPDX-License-Identifier: MIT
/* util/duration: the one duration parser of every flag and config key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#include <cmocka.h>

#include "util/duration.h"

static void test_good(void **state)
{
	(void)state;
	static const struct { const char *text; double s; } good[] = {
		{ "10", 10 },       { "0.5", 0.5 },   { "0", 0 },          { "5s", 5 },
		{ "2m", 120 },      { "1.5h", 5400 }, { "7d", 7 * 86400 }, { "250ms", 0.25 },
		{ "1.", 1 },        { ".5", 0.5 },    { "0ms", 0 },        { "36500d", DURATION_MAX_S },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		double s = -1;
		if (duration__parse(good[i].text, &s))
			fail_msg("'%s' refused", good[i].text);
		if (s < good[i].s - 1e-9 || s > good[i].s + 1e-9)
			fail_msg("'%s' gave %g, want %g", good[i].text, s, good[i].s);
	}
}

static void test_bad(void **state)
{
	(void)state;
	static const char *bad[] = {
		"", ".", "s", "5x", "5 s", " 5", "5s ", "-5", "+5", "5ss", "5S", "5M", "1e3",
		"0x10", "inf", "nan", "1.2.3", "36501d", "5min", "5sec", "5us", "1,5",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double s = 42;
		if (duration__parse(bad[i], &s) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(s == 42);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
