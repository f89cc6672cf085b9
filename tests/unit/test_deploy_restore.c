// SPDX-License-Identifier: MIT
/* A restarted agent exports the deploy-check verdicts its history holds
 * again (agent/deploy_check.h), reading them back from the stored JSON:
 * escaped names (\", \\, \n, \t, \uXXXX) come back as they were, the newest
 * result of a check wins, damaged records are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/deploy_check.h"
#include "agent/metrics.h"
#include "agent/store.h"
#include "util/strbuf.h"

static void test_verdicts_restored(void **state)
{
	(void)state;
	char dir[] = "/tmp/dynoprof-restore-XXXXXX", db[64], err[256];
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/h.db", dir);
	struct store *s = store__open(db, NULL, err, sizeof(err));
	assert_non_null(s);
	/* Oldest first: the newer result of the same check must win. */
	assert_int_equal(store__put_check(s, 1000,
		"{\"service\": \"sh\\\"op\\\\x\", \"endpoint\": \"/a\\tb\\u0041\\u00e9\", "
		"\"base\": \"aaa\", \"new\": \"bbb\", \"verdict\": \"no change\", "
		"\"ratio\": 1.01, \"ci_low\": -0.01, \"ci_high\": 0.03}"), 0);
	assert_int_equal(store__put_check(s, 2000,
		"{\"service\": \"sh\\\"op\\\\x\", \"endpoint\": \"/a\\tb\\u0041\\u00e9\", "
		"\"base\": \"aaa\", \"new\": \"bbb\", \"verdict\": \"regression\", "
		"\"ratio\": 1.5, \"ci_low\": 0.2, \"ci_high\": 0.8}"), 0);
	/* Damaged: no verdict; an unterminated string; not JSON at all. */
	assert_int_equal(store__put_check(s, 3000,
		"{\"service\": \"x\", \"endpoint\": \"/x\", \"base\": \"1\", \"new\": \"2\"}"), 0);
	assert_int_equal(store__put_check(s, 3001,
		"{\"service\": \"y\", \"endpoint\": \"/y\", \"base\": \"1\", \"new\": \"2\", "
		"\"verdict\": \"regr"), 0);
	assert_int_equal(store__put_check(s, 3002, "garbage"), 0);
	/* Inconclusive: no ratio. */
	assert_int_equal(store__put_check(s, 3003,
		"{\"service\": \"z\\n\", \"endpoint\": \"/z\\r\", \"base\": \"1\", \"new\": \"2\", "
		"\"verdict\": \"insufficient data\", \"ratio\": null, \"ci_low\": null, "
		"\"ci_high\": null}"), 0);

	struct metrics *m = metrics__new(0);
	assert_non_null(m);
	struct deploy_check_opts o = { 0 };
	struct deploy_checker *d = deploy_checker__new(&o, s, m);
	assert_non_null(d);
	struct strbuf text = STRBUF_INIT;
	assert_int_equal(metrics__render(m, &text), 0);
	const char *t = strbuf__str(&text);
	/* Prometheus escapes \ " and newline in label values; the tab and the
	 * decoded \u0041 stay, a non-ASCII \u escape shows as '?'. */
	const char *want[] = {
		"service=\"sh\\\"op\\\\x\"", "endpoint=\"/a\tbA?\"",
		"dynoprof_regression_significant{", "service=\"z\\n\"",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(t, want[i]))
			fail_msg("no %s in:\n%s", want[i], t);
	assert_null(strstr(t, "service=\"x\""));
	assert_null(strstr(t, "service=\"y\""));
	/* The newest verdict of the check: a regression (significant = 1). */
	const char *line = strstr(t, "dynoprof_regression_significant{");
	assert_non_null(line);
	const char *eol = strchr(line, '\n');
	assert_non_null(eol);
	int found = 0;
	for (const char *q = t; (q = strstr(q, "dynoprof_regression_significant{")); q++) {
		const char *e = strchr(q, '\n');
		if (strstr(q, "/a\tbA?") && strstr(q, "/a\tbA?") < e)
			found = !strncmp(e - 2, " 1", 2);
	}
	if (!found)
		fail_msg("the regression's significance is not 1:\n%s", t);
	strbuf__release(&text);
	deploy_checker__free(d);
	metrics__free(m);
	store__close(s);
	char cmd[96];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdicts_restored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
