// SPDX-License-Identifier: MIT
/* The agent's Prometheus registry: exact exposition text, escaping, number
 * formatting, counter and gauge rules, the cardinality cap and its overflow
 * counter, and updates from several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>

#include <cmocka.h>

#include "agent/metrics.h"
#include "util/strbuf.h"

#define L(n, v) { .name = (n), .value = (v) }

/* Renders m and compares with want, showing both on a mismatch. */
static void expect_render(struct metrics *m, const char *want)
{
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(metrics__render(m, &out), 0);
	if (strcmp(strbuf__str(&out), want))
		fail_msg("rendered:\n%s\nwanted:\n%s", strbuf__str(&out), want);
	strbuf__release(&out);
}

static char *render(struct metrics *m)
{
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(metrics__render(m, &out), 0);
	char *text = strdup(strbuf__str(&out));
	strbuf__release(&out);
	return text;
}

static void test_small_registry_exact_text(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(0);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "dynoprof_samples_total", METRIC_COUNTER,
					  "Samples taken."), 0);
	assert_int_equal(metrics__declare(m, "dynoprof_buffer_bytes", METRIC_GAUGE,
					  "Ring buffer size.\nIn bytes, with a \\ backslash."), 0);
	assert_int_equal(metrics__declare(m, "dynoprof_unused", METRIC_GAUGE, "No series."), 0);

	struct metric_label a[] = { L("service", "api"), L("endpoint", "/a") };
	struct metric_label b[] = { L("endpoint", "/b"), L("service", "api") };
	struct metric_label a_reordered[] = { L("endpoint", "/a"), L("service", "api") };
	assert_int_equal(metrics__add(m, "dynoprof_samples_total", a, 2, 3), 0);
	assert_int_equal(metrics__add(m, "dynoprof_samples_total", b, 2, 2), 0);
	/* The same label set in another order is the same series. */
	assert_int_equal(metrics__add(m, "dynoprof_samples_total", a_reordered, 2, 4), 0);
	assert_int_equal(metrics__set(m, "dynoprof_buffer_bytes", NULL, 0, 1048576), 0);

	expect_render(m,
		      "# HELP dynoprof_buffer_bytes Ring buffer size.\\nIn bytes, with a \\\\ backslash.\n"
		      "# TYPE dynoprof_buffer_bytes gauge\n"
		      "dynoprof_buffer_bytes 1048576\n"
		      "# HELP dynoprof_samples_total Samples taken.\n"
		      "# TYPE dynoprof_samples_total counter\n"
		      "dynoprof_samples_total{endpoint=\"/a\",service=\"api\"} 7\n"
		      "dynoprof_samples_total{endpoint=\"/b\",service=\"api\"} 2\n");

	/* Rendering twice gives the same text (deterministic order). */
	char *first = render(m), *second = render(m);
	assert_string_equal(first, second);
	free(first);
	free(second);
	metrics__free(m);
}

static void test_label_value_escaping(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(0);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "x_total", METRIC_COUNTER, "h"), 0);
	struct metric_label l[] = { L("path", "a\"b\\c\nd"), L("empty", NULL) };
	assert_int_equal(metrics__add(m, "x_total", l, 2, 1), 0);
	expect_render(m, "# HELP x_total h\n"
			 "# TYPE x_total counter\n"
			 "x_total{empty=\"-\",path=\"a\\\"b\\\\c\\nd\"} 1\n");
	/* "" reads as NULL: the same series, "-" (without that tag). */
	struct metric_label l2[] = { L("path", "a\"b\\c\nd"), L("empty", "") };
	assert_int_equal(metrics__add(m, "x_total", l2, 2, 1), 0);
	expect_render(m, "# HELP x_total h\n"
			 "# TYPE x_total counter\n"
			 "x_total{empty=\"-\",path=\"a\\\"b\\\\c\\nd\"} 2\n");
	metrics__free(m);
}

static void expect_formatted(double v, const char *want)
{
	struct strbuf out = STRBUF_INIT;
	metrics__format_value(&out, v);
	if (strcmp(strbuf__str(&out), want))
		fail_msg("%.17g rendered as '%s', want '%s'", v, strbuf__str(&out), want);
	strbuf__release(&out);
}

static void test_value_formatting(void **state)
{
	(void)state;
	expect_formatted(0, "0");
	expect_formatted(-0.0, "0");
	expect_formatted(7, "7");
	expect_formatted(-5, "-5");
	expect_formatted(123456789012.0, "123456789012");
	expect_formatted(1e20, "100000000000000000000");
	expect_formatted(1e21, "1e+21");
	expect_formatted(0.1, "0.1");
	expect_formatted(2.5, "2.5");
	expect_formatted(1.0 / 3, "0.3333333333333333");
	expect_formatted(1e-9, "1e-09");
	expect_formatted(NAN, "NaN");
	expect_formatted(INFINITY, "+Inf");
	expect_formatted(-INFINITY, "-Inf");
	/* Every finite value reads back to itself. */
	double samples[] = { 0.1 + 0.2, 1e300, 5e-324, 123.456, 9007199254740993.0 };
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		struct strbuf out = STRBUF_INIT;
		metrics__format_value(&out, samples[i]);
		assert_true(strtod(strbuf__str(&out), NULL) == samples[i]);
		strbuf__release(&out);
	}
}

static void test_large_counter_keeps_precision(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(0);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "instructions_total", METRIC_COUNTER, "i"), 0);
	assert_int_equal(metrics__add(m, "instructions_total", NULL, 0, 9007199254740992.0), 0);
	/* Past 2^53 a double would drop each of these. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(metrics__add(m, "instructions_total", NULL, 0, 1), 0);
	expect_render(m, "# HELP instructions_total i\n"
			 "# TYPE instructions_total counter\n"
			 "instructions_total 9007199254740995\n");
	metrics__free(m);
}

static void test_counter_rules(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(0);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "c_total", METRIC_COUNTER, "c"), 0);
	/* Idempotent with the same type, refused with another. */
	assert_int_equal(metrics__declare(m, "c_total", METRIC_COUNTER, "c"), 0);
	assert_int_equal(metrics__declare(m, "c_total", METRIC_GAUGE, "c"), -EEXIST);
	/* Bad names. */
	assert_int_equal(metrics__declare(m, "", METRIC_COUNTER, "x"), -EINVAL);
	assert_int_equal(metrics__declare(m, "1abc", METRIC_COUNTER, "x"), -EINVAL);
	assert_int_equal(metrics__declare(m, "a-b", METRIC_COUNTER, "x"), -EINVAL);
	assert_int_equal(metrics__declare(m, "ns:sub_total", METRIC_COUNTER, "x"), 0);
	/* Counters end in _total, gauges do not. */
	assert_int_equal(metrics__declare(m, "cache_hits", METRIC_COUNTER, "x"), -EINVAL);
	assert_int_equal(metrics__declare(m, "queue_total", METRIC_GAUGE, "x"), -EINVAL);
	assert_int_equal(metrics__declare(m, "_total", METRIC_COUNTER, "x"), -EINVAL);

	assert_int_equal(metrics__add(m, "missing_total", NULL, 0, 1), -ENOENT);
	assert_int_equal(metrics__add(m, "c_total", NULL, 0, 0.5), 0);
	assert_int_equal(metrics__add(m, "c_total", NULL, 0, 0.5), 0);
	assert_int_equal(metrics__add(m, "c_total", NULL, 0, -1), -EINVAL);
	assert_int_equal(metrics__add(m, "c_total", NULL, 0, NAN), -EINVAL);
	assert_int_equal(metrics__add(m, "c_total", NULL, 0, INFINITY), -EINVAL);
	/* Setting a cumulative total: forwards only. */
	assert_int_equal(metrics__set(m, "c_total", NULL, 0, 0.5), -EINVAL);
	assert_int_equal(metrics__set(m, "c_total", NULL, 0, 10), 0);
	assert_int_equal(metrics__clear(m, "c_total"), -EINVAL);

	struct metric_label bad_name[] = { L("bad-name", "x") };
	struct metric_label repeated[] = { L("a", "1"), L("a", "2") };
	assert_int_equal(metrics__add(m, "c_total", bad_name, 1, 1), -EINVAL);
	assert_int_equal(metrics__add(m, "c_total", repeated, 2, 1), -EINVAL);

	expect_render(m, "# HELP c_total c\n"
			 "# TYPE c_total counter\n"
			 "c_total 10\n");
	metrics__free(m);
}

static void test_gauge_rules(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(0);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "g", METRIC_GAUGE, "g"), 0);
	struct metric_label one[] = { L("k", "1") };
	struct metric_label two[] = { L("k", "2") };
	assert_int_equal(metrics__set(m, "g", one, 1, 5), 0);
	assert_int_equal(metrics__set(m, "g", one, 1, 2.5), 0);  /* replaces */
	assert_int_equal(metrics__set(m, "g", two, 1, 1), 0);
	assert_int_equal(metrics__add(m, "g", two, 1, -3), 0);   /* gauges go down */
	expect_render(m, "# HELP g g\n"
			 "# TYPE g gauge\n"
			 "g{k=\"1\"} 2.5\n"
			 "g{k=\"2\"} -2\n");
	/* A snapshot: clear, then set only what is current. */
	assert_int_equal(metrics__clear(m, "g"), 0);
	expect_render(m, "");
	assert_int_equal(metrics__set(m, "g", two, 1, 4), 0);
	expect_render(m, "# HELP g g\n"
			 "# TYPE g gauge\n"
			 "g{k=\"2\"} 4\n");
	assert_int_equal(metrics__clear(m, "nothing"), -ENOENT);
	metrics__free(m);
}

static void test_cap_folds_endpoint(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(3);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "req_total", METRIC_COUNTER, "r"), 0);
	char endpoint[16];
	for (int i = 0; i < 6; i++) {
		snprintf(endpoint, sizeof(endpoint), "/e%d", i);
		struct metric_label l[] = { L("service", "api"), L("endpoint", endpoint) };
		assert_int_equal(metrics__add(m, "req_total", l, 2, (double)(i + 1)), 0);
	}
	/* Existing series still count normally once the cap is reached. */
	struct metric_label e0[] = { L("service", "api"), L("endpoint", "/e0") };
	assert_int_equal(metrics__add(m, "req_total", e0, 2, 10), 0);
	expect_render(m, "# HELP dynoprof_metrics_overflow_total Updates folded into an __other__ "
			 "series because their metric family reached its series limit.\n"
			 "# TYPE dynoprof_metrics_overflow_total counter\n"
			 "dynoprof_metrics_overflow_total{family=\"req_total\"} 3\n"
			 "# HELP req_total r\n"
			 "# TYPE req_total counter\n"
			 "req_total{endpoint=\"/e0\",service=\"api\"} 11\n"
			 "req_total{endpoint=\"/e1\",service=\"api\"} 2\n"
			 "req_total{endpoint=\"/e2\",service=\"api\"} 3\n"
			 "req_total{endpoint=\"__other__\",service=\"api\"} 15\n");
	metrics__free(m);
}

static void test_cap_folds_all_labels_without_endpoint(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(2);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "threads", METRIC_GAUGE, "t"), 0);
	char pid[16];
	for (int i = 0; i < 5; i++) {
		snprintf(pid, sizeof(pid), "%d", 100 + i);
		struct metric_label l[] = { L("pid", pid), L("comm", "python") };
		assert_int_equal(metrics__set(m, "threads", l, 2, 1), 0);
	}
	/* Folded gauge sets add up: __other__ holds the 3 cut-off series. */
	expect_render(m, "# HELP dynoprof_metrics_overflow_total Updates folded into an __other__ "
			 "series because their metric family reached its series limit.\n"
			 "# TYPE dynoprof_metrics_overflow_total counter\n"
			 "dynoprof_metrics_overflow_total{family=\"threads\"} 3\n"
			 "# HELP threads t\n"
			 "# TYPE threads gauge\n"
			 "threads{comm=\"__other__\",pid=\"__other__\"} 3\n"
			 "threads{comm=\"python\",pid=\"100\"} 1\n"
			 "threads{comm=\"python\",pid=\"101\"} 1\n");
	/* After a clear the family takes new label sets again. */
	assert_int_equal(metrics__clear(m, "threads"), 0);
	struct metric_label l[] = { L("pid", "200"), L("comm", "python") };
	assert_int_equal(metrics__set(m, "threads", l, 2, 4), 0);
	char *text = render(m);
	assert_non_null(strstr(text, "threads{comm=\"python\",pid=\"200\"} 4\n"));
	assert_null(strstr(text, "__other__\"}"));
	free(text);
	metrics__free(m);
}

static size_t count_lines_starting(const char *text, const char *prefix)
{
	size_t n = 0;
	for (const char *line = text; line && *line;) {
		if (!strncmp(line, prefix, strlen(prefix)))
			n++;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return n;
}

static void test_cap_hard_bound(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(2);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "hits_total", METRIC_COUNTER, "h"), 0);
	char service[16], endpoint[16];
	for (int i = 0; i < 50; i++) {
		snprintf(service, sizeof(service), "s%d", i);
		snprintf(endpoint, sizeof(endpoint), "/e%d", i);
		struct metric_label l[] = { L("service", service), L("endpoint", endpoint) };
		assert_int_equal(metrics__add(m, "hits_total", l, 2, 1), 0);
	}
	char *text = render(m);
	/* 2 own series, endpoint-folded ones up to 2 * 2, one all-__other__. */
	assert_int_equal(count_lines_starting(text, "hits_total{"), 5);
	assert_non_null(strstr(text, "hits_total{endpoint=\"__other__\",service=\"__other__\"} 46\n"));
	assert_non_null(strstr(text, "dynoprof_metrics_overflow_total{family=\"hits_total\"} 48\n"));
	free(text);
	metrics__free(m);
}

#define THREADS 4
#define ADDS_PER_THREAD 20000

struct worker {
	struct metrics *m;  /* shared registry */
	int index;          /* thread number */
};

static void *adder(void *arg)
{
	struct worker *w = arg;
	char own[16];
	snprintf(own, sizeof(own), "t%d", w->index);
	struct metric_label shared[] = { L("who", "all") };
	struct metric_label mine[] = { L("who", own) };
	for (int i = 0; i < ADDS_PER_THREAD; i++) {
		if (metrics__add(w->m, "ops_total", shared, 1, 1) ||
		    metrics__add(w->m, "ops_total", mine, 1, 1) ||
		    metrics__set(w->m, "last", mine, 1, i))
			return (void *)1;
	}
	return NULL;
}

static void *renderer(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 200; i++) {
		struct strbuf out = STRBUF_INIT;
		if (metrics__render(w->m, &out)) {
			strbuf__release(&out);
			return (void *)1;
		}
		strbuf__release(&out);
	}
	return NULL;
}

static void test_concurrent_updates(void **state)
{
	(void)state;
	struct metrics *m = metrics__new(0);
	assert_non_null(m);
	assert_int_equal(metrics__declare(m, "ops_total", METRIC_COUNTER, "o"), 0);
	assert_int_equal(metrics__declare(m, "last", METRIC_GAUGE, "l"), 0);
	pthread_t threads[THREADS + 1];
	struct worker workers[THREADS + 1];
	for (int i = 0; i <= THREADS; i++) {
		workers[i] = (struct worker){ .m = m, .index = i };
		assert_int_equal(pthread_create(&threads[i], NULL, i < THREADS ? adder : renderer,
						&workers[i]), 0);
	}
	for (int i = 0; i <= THREADS; i++) {
		void *ret;
		assert_int_equal(pthread_join(threads[i], &ret), 0);
		assert_null(ret);
	}
	char *text = render(m);
	char want[64];
	snprintf(want, sizeof(want), "ops_total{who=\"all\"} %d\n", THREADS * ADDS_PER_THREAD);
	assert_non_null(strstr(text, want));
	for (int i = 0; i < THREADS; i++) {
		snprintf(want, sizeof(want), "ops_total{who=\"t%d\"} %d\n", i, ADDS_PER_THREAD);
		assert_non_null(strstr(text, want));
		snprintf(want, sizeof(want), "last{who=\"t%d\"} %d\n", i, ADDS_PER_THREAD - 1);
		assert_non_null(strstr(text, want));
	}
	free(text);
	metrics__free(m);
}

static void test_null_safety(void **state)
{
	(void)state;
	metrics__free(NULL);
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(metrics__render(NULL, &out), -EINVAL);
	assert_int_equal(metrics__add(NULL, "x", NULL, 0, 1), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_registry_exact_text),
		cmocka_unit_test(test_label_value_escaping),
		cmocka_unit_test(test_value_formatting),
		cmocka_unit_test(test_large_counter_keeps_precision),
		cmocka_unit_test(test_counter_rules),
		cmocka_unit_test(test_gauge_rules),
		cmocka_unit_test(test_cap_folds_endpoint),
		cmocka_unit_test(test_cap_folds_all_labels_without_endpoint),
		cmocka_unit_test(test_cap_hard_bound),
		cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test(test_null_safety),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
