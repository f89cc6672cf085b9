// SPDX-License-Identifier: MIT
/* Output format names and file-extension detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>

#include <cmocka.h>

#include "formats/format.h"

static void test_from_name(void **state)
{
	(void)state;
	struct {
		const char *name;
		enum output_format want;
	} cases[] = {
		{ "folded", FORMAT_FOLDED }, { "collapsed", FORMAT_FOLDED },
		{ "svg", FORMAT_SVG }, { "FlameGraph", FORMAT_SVG },
		{ "pprof", FORMAT_PPROF }, { "pb", FORMAT_PPROF },
		{ "speedscope", FORMAT_SPEEDSCOPE }, { "JSON", FORMAT_SPEEDSCOPE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum output_format f = (enum output_format)99;
		assert_int_equal(format__from_name(cases[i].name, &f), 0);
		assert_int_equal(f, cases[i].want);
	}
	enum output_format f = FORMAT_PPROF;
	assert_int_equal(format__from_name("html", &f), -EINVAL);
	assert_int_equal(format__from_name("", &f), -EINVAL);
	assert_int_equal(format__from_name(NULL, &f), -EINVAL);
	assert_int_equal(f, FORMAT_PPROF);
}

static void test_from_path(void **state)
{
	(void)state;
	struct {
		const char *path;
		enum output_format want;
	} cases[] = {
		{ "out.folded", FORMAT_FOLDED }, { "/tmp/x.collapsed", FORMAT_FOLDED },
		{ "stacks.txt", FORMAT_FOLDED }, { "flame.SVG", FORMAT_SVG },
		{ "cpu.pb.gz", FORMAT_PPROF }, { "cpu.pprof", FORMAT_PPROF },
		{ "cpu.pb", FORMAT_PPROF }, { "run.json", FORMAT_SPEEDSCOPE },
		{ "run.speedscope.json", FORMAT_SPEEDSCOPE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum output_format f = FORMAT_FOLDED;
		if (format__from_path(cases[i].path, &f) != 0 || f != cases[i].want)
			fail_msg("%s: got %s", cases[i].path, format__name(f));
	}
	const char *bad[] = { "out", "out.gz", "archive.tar.gz", ".svg", "dir/.json", "svg", NULL };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum output_format f = FORMAT_SVG;
		assert_int_equal(format__from_path(bad[i], &f), -EINVAL);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(format__name(FORMAT_FOLDED), "folded");
	assert_string_equal(format__name(FORMAT_SVG), "svg");
	assert_string_equal(format__name(FORMAT_PPROF), "pprof");
	assert_string_equal(format__name(FORMAT_SPEEDSCOPE), "speedscope");
	assert_string_equal(format__name((enum output_format)42), "unknown");
	/* Every canonical name parses back to its format. */
	for (int i = FORMAT_FOLDED; i <= FORMAT_SPEEDSCOPE; i++) {
		enum output_format f;
		assert_int_equal(format__from_name(format__name((enum output_format)i), &f), 0);
		assert_int_equal(f, i);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_name),
		cmocka_unit_test(test_from_path),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
