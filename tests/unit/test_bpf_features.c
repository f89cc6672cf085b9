/* The feature check is logic: which features a mode needs, and the one line
 * naming the first one the kernel lacks. Tested with a fake kernel, so any
 * kernel (and no root) will do; the real probes run in every integration
 * test that records, and once here on the kernel the suite runs on. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <cmocka.h>

#include "capture/bpf_features.h"

/* A kernel that has everything but one feature (by name, NULL: none) and
 * records what it was asked. */
struct fake_kernel {
	const char *lacks;   /* f->what or f->btf_name of the missing feature */
	int probe_error;     /* returned for every probe when non-zero */
	int calls;           /* probes made */
	bool asked_loop;     /* bpf_loop was probed */
	bool asked_task_storage; /* the task storage map was probed */
	bool asked_tick;     /* the tick's tracepoint was probed */
	bool asked_fork;     /* the fork tracepoint was probed */
	bool asked_switch;   /* the switch tracepoint was probed */
};

static int fake_probe(void *ctx, const struct bpf_feature *f)
{
	struct fake_kernel *k = ctx;
	k->calls++;
	if (strstr(f->what, "bpf_loop"))
		k->asked_loop = true;
	if (strstr(f->what, "task-local storage"))
		k->asked_task_storage = true;
	if (f->btf_name && !strcmp(f->btf_name, "btf_trace_hrtimer_expire_entry"))
		k->asked_tick = true;
	if (f->btf_name && !strcmp(f->btf_name, "btf_trace_sched_process_fork"))
		k->asked_fork = true;
	if (f->btf_name && !strcmp(f->btf_name, "btf_trace_sched_switch"))
		k->asked_switch = true;
	if (k->probe_error)
		return k->probe_error;
	if (k->lacks && (strstr(f->what, k->lacks) ||
			 (f->btf_name && !strcmp(f->btf_name, k->lacks))))
		return 0;
	return 1;
}

static void test_everything_present_passes(void **state)
{
	(void)state;
	struct fake_kernel k = { 0 };
	struct bpf_feature_needs all = { true, true, true, true, true, true };
	char err[256] = "";
	assert_int_equal(bpf_features__check_with(&all, fake_probe, &k, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_true(k.asked_loop && k.asked_task_storage && k.asked_tick && k.asked_fork &&
		    k.asked_switch);
}

static void test_missing_bpf_loop_is_one_line_with_the_kernel(void **state)
{
	(void)state;
	struct fake_kernel k = { .lacks = "bpf_loop" };
	struct bpf_feature_needs needs = { .perf_event = true, .python_walk = true };
	char err[256] = "";
	assert_int_equal(bpf_features__check_with(&needs, fake_probe, &k, err, sizeof(err)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(err, "this kernel lacks the bpf_loop helper (needs Linux >= 5.17)"));
	assert_non_null(strstr(err, "--no-python"));
	assert_null(strchr(err, '\n'));
}

static void test_unneeded_features_are_not_probed(void **state)
{
	(void)state;
	/* Native stacks on a perf event, no counting: a kernel without bpf_loop
	 * or task storage still records. */
	struct fake_kernel k = { .lacks = "bpf_loop" };
	struct bpf_feature_needs needs = { .perf_event = true };
	char err[256] = "";
	assert_int_equal(bpf_features__check_with(&needs, fake_probe, &k, err, sizeof(err)), 0);
	assert_false(k.asked_loop);
	assert_false(k.asked_task_storage);
	assert_false(k.asked_tick);
	assert_false(k.asked_fork);
	assert_false(k.asked_switch);
}

static void test_missing_task_storage_names_counting(void **state)
{
	(void)state;
	struct fake_kernel k = { .lacks = "task-local storage" };
	struct bpf_feature_needs needs = { .perf_event = true, .counting = true };
	char err[256] = "";
	assert_int_equal(bpf_features__check_with(&needs, fake_probe, &k, err, sizeof(err)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(err, "this kernel lacks task-local storage maps (needs Linux >= 5.11)"));
	assert_non_null(strstr(err, "--no-counts"));
}

static void test_missing_tick_tracepoint(void **state)
{
	(void)state;
	struct fake_kernel k = { .lacks = "btf_trace_hrtimer_expire_entry" };
	struct bpf_feature_needs needs = { .tick = true };
	char err[256] = "";
	assert_int_equal(bpf_features__check_with(&needs, fake_probe, &k, err, sizeof(err)),
			 -EOPNOTSUPP);
	assert_non_null(strstr(err, "hrtimer_expire_entry"));
	assert_non_null(strstr(err, "-e cpu-clock"));
}

static void test_failed_probe_is_left_to_the_load(void **state)
{
	(void)state;
	/* A probe that cannot run (e.g. EPERM) proves nothing missing. */
	struct fake_kernel k = { .probe_error = -EPERM };
	struct bpf_feature_needs all = { true, true, true, true, true, true };
	char err[256] = "";
	assert_int_equal(bpf_features__check_with(&all, fake_probe, &k, err, sizeof(err)), 0);
	assert_true(k.calls > 5);
}

/* The real kernel this runs on: when uname says Linux >= 5.17 with BTF
 * (/sys/kernel/btf/vmlinux, what README requires), every mode's features are
 * there and the check passes with no message; without root a probe that
 * fails is left to the load, so the answer is the same. */
static void test_real_kernel_has_every_feature(void **state)
{
	(void)state;
	struct utsname u;
	int major = 0, minor = 0;
	assert_int_equal(uname(&u), 0);
	assert_int_equal(sscanf(u.release, "%d.%d", &major, &minor), 2);
	if (major < 5 || (major == 5 && minor < 17) || access("/sys/kernel/btf/vmlinux", R_OK))
		fail_msg("Linux %s (BTF %s): below what dynoprof needs, not a machine to test on",
			 u.release, access("/sys/kernel/btf/vmlinux", R_OK) ? "absent" : "present");
	struct bpf_feature_needs all = { true, true, true, true, true, true };
	char err[256] = "";
	int e = bpf_features__check(&all, err, sizeof(err));
	if (e)
		fail_msg("Linux %s: %d: %s", u.release, e, err);
	assert_string_equal(err, "");
	struct bpf_feature_needs none = { 0 };
	assert_int_equal(bpf_features__check(&none, err, sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_everything_present_passes),
		cmocka_unit_test(test_missing_bpf_loop_is_one_line_with_the_kernel),
		cmocka_unit_test(test_unneeded_features_are_not_probed),
		cmocka_unit_test(test_missing_task_storage_names_counting),
		cmocka_unit_test(test_missing_tick_tracepoint),
		cmocka_unit_test(test_failed_probe_is_left_to_the_load),
		cmocka_unit_test(test_real_kernel_has_every_feature),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
