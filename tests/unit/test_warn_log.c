// SPDX-License-Identifier: MIT
/* Repeated warnings: each subject said once per kind, only the first
 * WARN_LOG_NAMED subjects of a kind, the rest counted and summarised with a
 * doubling gap; kinds beyond the bound fold into "other warnings". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/warn_log.h"

/* Lines written to the memstream so far. */
static size_t lines(FILE *f, char **buf)
{
	fflush(f);
	size_t n = 0;
	for (const char *p = *buf; p && *p; p++)
		n += *p == '\n';
	return n;
}

static void test_named_once_then_counted(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	struct warn_log *w = warn_log__new(f, 8);
	assert_non_null(w);
	const char *kind = "Python processes showing native frames only (Python 3.6)";
	/* The same process again and again: said once. */
	assert_int_equal(warn_log__say(w, kind, 100, "PID %d: old Python", 100), 1);
	for (int i = 0; i < 50; i++)
		assert_int_equal(warn_log__say(w, kind, 100, "PID %d: old Python", 100), 0);
	assert_int_equal(lines(f, &buf), 1);
	assert_non_null(strstr(buf, "PID 100: old Python\n"));
	/* Other processes: the first few named, the rest counted. */
	for (int pid = 101; pid < 120; pid++)
		warn_log__say(w, kind, pid, "PID %d: old Python", pid);
	assert_int_equal(lines(f, &buf), WARN_LOG_NAMED);
	assert_null(strstr(buf, "PID 103:"));
	assert_int_equal(warn_log__counted(w), 50 + 19 - (WARN_LOG_NAMED - 1));
	/* The summary says how many, once. */
	assert_int_equal(warn_log__summary(w, "dynoprof agent", "since", 0), 1);
	char want[256];
	snprintf(want, sizeof(want), "dynoprof agent: %d more: %s (since)\n",
		 50 + 19 - (WARN_LOG_NAMED - 1), kind);
	fflush(f);
	assert_non_null(strstr(buf, want));
	assert_int_equal(warn_log__summary(w, "dynoprof agent", "since", 0), 0);

	/* A steady stream: summaries 1, 2, 4, 8, 8 ... calls apart (max_gap 8). */
	int said_at[16], nsaid = 0;
	for (int call = 0; call < 40; call++) {
		warn_log__say(w, kind, 1000 + call, "PID %d", 1000 + call);
		if (warn_log__summary(w, "p", NULL, 0) && nsaid < 16)
			said_at[nsaid++] = call;
	}
	assert_true(nsaid >= 5 && nsaid <= 7);
	for (int i = 1; i < nsaid; i++)
		assert_true(said_at[i] - said_at[i - 1] <= 8);
	/* force says whatever is pending. */
	warn_log__say(w, kind, 5000, "PID 5000");
	assert_int_equal(warn_log__summary(w, "p", NULL, 1), 1);
	warn_log__free(w);
	fclose(f);
	free(buf);
}

static void test_kinds_are_bounded(void **state)
{
	(void)state;
	struct warn_log *w = warn_log__new(NULL, 0);
	assert_non_null(w);
	char kind[32];
	for (int i = 0; i < WARN_LOG_MAX_KINDS; i++) {
		snprintf(kind, sizeof(kind), "kind %d", i);
		assert_int_equal(warn_log__say(w, kind, 1, "x"), 1);
	}
	/* Beyond the bound: counted as "other warnings", never said. */
	assert_int_equal(warn_log__say(w, "one too many", 1, "x"), 0);
	assert_int_equal(warn_log__counted(w), 1);
	assert_int_equal(warn_log__summary(w, "p", NULL, 1), 1);
	assert_int_equal(warn_log__say(NULL, "k", 1, "x"), 0);
	assert_int_equal(warn_log__summary(NULL, "p", NULL, 1), 0);
	warn_log__free(w);
	warn_log__free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_once_then_counted),
		cmocka_unit_test(test_kinds_are_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
