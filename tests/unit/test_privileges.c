// SPDX-License-Identifier: MIT
/* Which capabilities a run lacks, and the one line per capability that says
 * what it costs: root (every capability) hears nothing, the old README's
 * `cap_bpf,cap_perfmon` hears about each missing one exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/privileges.h"

static const struct privileges_host modern = { .kallsyms_open = 0, .memlock_charged = 0 };

static size_t count(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* describe_missing() into a string (caller frees). */
static char *describe(uint64_t missing, size_t *named)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	*named = privileges__describe_missing(missing, "dynoprof:", f);
	fclose(f);
	return buf;
}

static void test_root_lacks_nothing(void **state)
{
	(void)state;
	size_t named;
	assert_int_equal(privileges__missing(~0ULL, &modern), 0);
	char *text = describe(0, &named);
	assert_int_equal(named, 0);
	assert_string_equal(text, "");
	free(text);
}

static void test_old_readme_set_names_each_once(void **state)
{
	(void)state;
	size_t named;
	uint64_t have = CAPMASK(CAPBIT_BPF) | CAPMASK(CAPBIT_PERFMON);
	uint64_t missing = privileges__missing(have, &modern);
	assert_int_equal(missing, PRIVILEGES_FULL & ~have);
	char *text = describe(missing, &named);
	assert_int_equal(named, 4);
	const char *names[] = { "CAP_SYS_PTRACE:", "CAP_DAC_READ_SEARCH:", "CAP_SYSLOG:",
				"CAP_CHECKPOINT_RESTORE:" };
	for (size_t i = 0; i < 4; i++)
		if (count(text, names[i]) != 1)
			fail_msg("%s named %zu times in:\n%s", names[i], count(text, names[i]), text);
	assert_int_equal(count(text, "\n"), 5); /* 4 + the setcap line */
	assert_non_null(strstr(text, "setcap " PRIVILEGES_SETCAP " dynoprof"));
	free(text);
}

static void test_host_settings_change_the_set(void **state)
{
	(void)state;
	struct privileges_host open_kallsyms = { .kallsyms_open = 1 };
	struct privileges_host old_kernel = { .memlock_charged = 1 };
	struct privileges_host old_unlimited = { .memlock_charged = 1, .memlock_unlimited = 1 };
	assert_int_equal(privileges__missing(PRIVILEGES_FULL & ~CAPMASK(CAPBIT_SYSLOG),
					     &open_kallsyms), 0);
	assert_int_equal(privileges__missing(PRIVILEGES_FULL, &old_kernel),
			 CAPMASK(CAPBIT_SYS_RESOURCE));
	assert_int_equal(privileges__missing(PRIVILEGES_FULL, &old_unlimited), 0);
	/* CAP_SYS_ADMIN stands in for BPF, PERFMON and CHECKPOINT_RESTORE only. */
	assert_int_equal(privileges__missing(CAPMASK(CAPBIT_SYS_ADMIN), &modern),
			 CAPMASK(CAPBIT_SYS_PTRACE) | CAPMASK(CAPBIT_DAC_READ_SEARCH) |
			 CAPMASK(CAPBIT_SYSLOG));
}

static void test_effective_reads_this_process(void **state)
{
	(void)state;
	uint64_t cap = 0;
	assert_int_equal(privileges__effective(&cap), 0);
	/* The unit tests run as root (make test): every capability of the set. */
	if (geteuid() == 0)
		assert_int_equal(cap & PRIVILEGES_FULL, PRIVILEGES_FULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_lacks_nothing),
		cmocka_unit_test(test_old_readme_set_names_each_once),
		cmocka_unit_test(test_host_settings_change_the_set),
		cmocka_unit_test(test_effective_reads_this_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
