// SPDX-License-Identifier: MIT
/* `dynoprof record` and `dynoprof agent` refuse what they cannot do before
 * they load any BPF: every bad option value, every conflicting pair, a
 * process or thread that does not exist, an output that cannot be written,
 * each with exit status 2 and one line starting `dynoprof:`; --help prints
 * the options from the table and exits 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "cli_run.h"

/* A pid no process has (above pid_max's ceiling of 2^22). */
#define NO_PID "4194400"

static void test_record_refuses_bad_options(void **state)
{
	(void)state;
	static const struct {
		const char *args[6];
		const char *says;
	} bad[] = {
		{ { "-p", "abc" }, "bad PID list 'abc'" },
		{ { "--tid", "1,x" }, "bad TID list" },
		{ { "-F", "0" }, "bad frequency '0'" },
		{ { "-d", "forever" }, "bad duration 'forever'" },
		{ { "-d", "0" }, "bad duration" },
		{ { "-e", "bogus" }, "unknown event 'bogus'" },
		{ { "--group-by", "" }, "bad --group-by" },
		{ { "--tag", "novalue" }, "bad --tag 'novalue'" },
		{ { "--endpoint-from", "rails" }, "bad --endpoint-from 'rails'" },
		{ { "--env-tag", "NOKEY" }, "bad --env-tag 'NOKEY'" },
		{ { "--window", "2h" }, "bad --window '2h'" },
		{ { "-c", "5" }, "bad period '5'" },
		{ { "--python-lines", "maybe" }, "bad --python-lines 'maybe'" },
		{ { "--counts", "c.json", "--no-counts" }, "exclude each other" },
		{ { "-p", "1", "--", "true" }, "-p/--tid and a COMMAND exclude each other" },
		{ { "-e", "tick", "--no-counts" }, "drop --no-counts" },
		{ { "--children" }, "--children goes with -p PID" },
		{ { "-o", "profile.unknown" }, "cannot tell the format of 'profile.unknown'" },
		{ { "--format", "png" }, "unknown format 'png'" },
		{ { "-p", NO_PID }, "no process with PID " NO_PID },
		{ { "--tid", NO_PID }, "no thread with TID " NO_PID },
		{ { "-o", "/nonexistent-dir/p.svg" }, "/nonexistent-dir" },
		{ { "--counts", "/nonexistent-dir/c.json" }, "/nonexistent-dir" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const *a = bad[i].args;
		int rc = cli_run(cmd_record, "record", a[0], a[1], a[2], a[3], a[4], a[5], NULL);
		cli_usage_error(rc, bad[i].says);
	}
	/* An unknown option: one line too. */
	cli_usage_error(cli_run(cmd_record, "record", "--frequency", "99", NULL), "--frequency");
}

static void test_record_takes_good_options(void **state)
{
	(void)state;
	/* Every option with a good value is taken; the capture then stops at
	 * the process that does not exist, before any BPF. */
	static const char *const events[] = { "auto", "cpu-clock", "cycles", "instructions",
					      "tick" };
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		int rc = cli_run(cmd_record, "record", "-F", "49", "-d", "2m", "-e", events[i],
				 "-c", "100000", "--no-kernel", "--counts", "-", "--counter-standin",
				 "--python-lines", i % 2 ? "on" : "off", "--group-by",
				 "endpoint,commit", "--tag", "endpoint=/a", "--endpoint-from", "django",
				 "--env-tag", "RELEASE=commit", "--window", "500ms", "-o", "-",
				 "--format", "folded", "--weight", "cpu", "-q", "--children", "-p",
				 NO_PID, NULL);
		cli_usage_error(rc, "no process with PID " NO_PID);
	}
	int rc = cli_run(cmd_record, "record", "--no-python", "--no-tags", "--no-counts", "-a",
			 "-d", "0.5", "--tid", NO_PID, NULL);
	cli_usage_error(rc, "no thread with TID " NO_PID);
}

static void test_help_from_the_table(void **state)
{
	(void)state;
	assert_int_equal(cli_run(cmd_record, "record", "--help", NULL), 0);
	if (!strstr(out_text, "--freq") || !strstr(out_text, "--window") ||
	    !strstr(out_text, "--endpoint-from"))
		fail_msg("record --help:\n%s", out_text);
	assert_int_equal(cli_run(cmd_agent, "agent", "--help", NULL), 0);
	if (!strstr(out_text, "/api/v1/regressions") || !strstr(out_text, "--listen"))
		fail_msg("agent --help:\n%s", out_text);
	assert_int_equal(cli_run(cmd_report, "report", "--help", NULL), 0);
	assert_non_null(strstr(out_text, "--weight"));
	assert_int_equal(cli_run(cmd_diff, "diff", "--help", NULL), 0);
	assert_non_null(strstr(out_text, "--min-effect"));
}

static void test_agent_refuses_bad_setup(void **state)
{
	(void)state;
	cli_usage_error(cli_run(cmd_agent, "agent", "now", NULL), "agent takes no arguments");
	cli_usage_error(cli_run(cmd_agent, "agent", "--config", "/nonexistent-dir/agent.conf",
				NULL), "/nonexistent-dir/agent.conf");
	cli_usage_error(cli_run(cmd_agent, "agent", "--window", "0", NULL), "window");
	cli_usage_error(cli_run(cmd_agent, "agent", "--bogus", NULL), "--bogus");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_refuses_bad_options),
		cmocka_unit_test(test_record_takes_good_options),
		cmocka_unit_test(test_help_from_the_table),
		cmocka_unit_test(test_agent_refuses_bad_setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
