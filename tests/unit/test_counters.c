/* The counter choice is logic: hardware instructions when they open, else the
 * software cpu-clock stand-in, with a reason that says which and why. Tested
 * with a fake opener, so no PMU is needed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "capture/counters.h"

/* Which probes open, and how the others fail. */
struct fake_pmu {
	int opens[3];   /* per enum counter_probe: 1 opens */
	int error;      /* -errno for the others */
	int calls;      /* probes made */
};

static int fake_open(enum counter_probe kind, int cpu, void *ctx)
{
	struct fake_pmu *pmu = ctx;
	(void)cpu;
	pmu->calls++;
	if (!pmu->opens[kind])
		return pmu->error;
	return dup(0); /* a real fd the chooser will close */
}

static void test_hardware_selected_when_counter_opens(void **state)
{
	(void)state;
	struct fake_pmu pmu = { .opens = { 1, 1, 1 }, .error = -ENOENT };
	struct counter_choice c;
	assert_int_equal(counters__choose(fake_open, &pmu, 0, true, &c), 0);
	assert_int_equal(c.primary, COUNTER_PRIMARY_INSTRUCTIONS);
	assert_true(c.cycles);
	assert_non_null(strstr(c.reason, "instructions and cycles"));
	assert_string_equal(counters__primary_name(c.primary), "instructions");
}

static void test_fallback_to_cpu_time_without_pmu(void **state)
{
	(void)state;
	struct fake_pmu pmu = { .opens = { 0, 0, 1 }, .error = -ENOENT };
	struct counter_choice c;
	assert_int_equal(counters__choose(fake_open, &pmu, 0, true, &c), 0);
	assert_int_equal(c.primary, COUNTER_PRIMARY_CPU_CLOCK);
	assert_false(c.cycles);
	assert_non_null(strstr(c.reason, "CPU time only"));
	assert_non_null(strstr(c.reason, strerror(ENOENT)));
	assert_string_equal(counters__primary_name(c.primary), "cpu-clock");
}

static void test_no_standin_means_no_counter(void **state)
{
	(void)state;
	struct fake_pmu pmu = { .opens = { 0, 0, 1 }, .error = -ENOENT };
	struct counter_choice c;
	assert_int_equal(counters__choose(fake_open, &pmu, 0, false, &c), 0);
	assert_int_equal(c.primary, COUNTER_PRIMARY_NONE);
	assert_non_null(strstr(c.reason, "CPU time only"));
	assert_string_equal(counters__primary_name(c.primary), "none");
	/* With a PMU, instructions regardless of the stand-in setting. */
	struct fake_pmu hw = { .opens = { 1, 1, 1 }, .error = -ENOENT };
	assert_int_equal(counters__choose(fake_open, &hw, 0, false, &c), 0);
	assert_int_equal(c.primary, COUNTER_PRIMARY_INSTRUCTIONS);
}

static void test_instructions_without_cycles(void **state)
{
	(void)state;
	struct fake_pmu pmu = { .opens = { 1, 0, 1 }, .error = -EOPNOTSUPP };
	struct counter_choice c;
	assert_int_equal(counters__choose(fake_open, &pmu, 0, true, &c), 0);
	assert_int_equal(c.primary, COUNTER_PRIMARY_INSTRUCTIONS);
	assert_false(c.cycles);
}

static void test_nothing_opens_is_an_error(void **state)
{
	(void)state;
	struct fake_pmu pmu = { .opens = { 0, 0, 0 }, .error = -EACCES };
	struct counter_choice c;
	assert_int_equal(counters__choose(fake_open, &pmu, 0, true, &c), -EACCES);
	assert_non_null(strstr(c.reason, "no counting event opens"));
}

static void test_real_machine_choice_is_consistent(void **state)
{
	(void)state;
	struct counter_choice c;
	if (counters__choose(counters__open_real, NULL, 0, true, &c)) {
		skip();
		return;
	}
	/* Whatever the machine: instructions only when the real counter opens. */
	int fd = counters__open_real(COUNTER_PROBE_INSTRUCTIONS, 0, NULL);
	assert_int_equal(c.primary == COUNTER_PRIMARY_INSTRUCTIONS, fd >= 0);
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hardware_selected_when_counter_opens),
		cmocka_unit_test(test_fallback_to_cpu_time_without_pmu),
		cmocka_unit_test(test_no_standin_means_no_counter),
		cmocka_unit_test(test_instructions_without_cycles),
		cmocka_unit_test(test_nothing_opens_is_an_error),
		cmocka_unit_test(test_real_machine_choice_is_consistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
