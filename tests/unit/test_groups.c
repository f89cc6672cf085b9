// SPDX-License-Identifier: MIT
/* The "by endpoint,commit" summary: per group its samples, share, CPU,
 * requests and top self function, largest first; the printed table's header
 * and rows (columns that depend on requests and instructions); key lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/groups.h"
#include "profile/profile.h"

static uint32_t frame(struct profile *p, const char *name)
{
	struct frame_desc d = { .kind = FRAME_NATIVE, .name = name };
	uint32_t id;
	assert_int_equal(profile__add_frame(p, &d, &id), 0);
	return id;
}

/* Adds a sample with the given stack (names, root first) and labels. */
static void add(struct profile *p, const char *const *names, uint32_t n, const char *endpoint,
		const char *commit, const uint64_t *values)
{
	uint32_t ids[8];
	const char *keys[2], *vals[2];
	uint32_t nl = 0;
	for (uint32_t i = 0; i < n; i++)
		ids[i] = frame(p, names[i]);
	if (endpoint) {
		keys[nl] = "endpoint";
		vals[nl++] = endpoint;
	}
	if (commit) {
		keys[nl] = "commit";
		vals[nl++] = commit;
	}
	struct sample_desc d = { .frames = ids, .nframes = n, .pid = 1, .tid = 1, .comm = "app",
				 .label_keys = keys, .label_values = vals, .nlabels = nl,
				 .values = values };
	assert_int_equal(profile__add_sample(p, &d), 0);
}

/* samples/count, cpu/nanoseconds[, requests/count]:
 *   /a c1: main;handle;sql x6 (60 ms, 10 requests), main;handle;json x2 (20 ms)
 *   /b c1: main;handle;json x3 (30 ms, 5 requests)
 *   (none): main x1 (10 ms) */
static struct profile *make_profile(int with_requests)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	if (with_requests)
		assert_int_equal(profile__add_value_type(p, "requests", "count"), 2);
	const char *sql[] = { "main", "handle", "sql" }, *json[] = { "main", "handle", "json" };
	const char *top[] = { "main" };
	uint64_t v1[] = { 6, 60000000, 10 }, v2[] = { 2, 20000000, 0 };
	uint64_t v3[] = { 3, 30000000, 5 }, v4[] = { 1, 10000000, 0 };
	add(p, sql, 3, "/a", "c1", v1);
	add(p, json, 3, "/a", "c1", v2);
	add(p, json, 3, "/b", "c1", v3);
	add(p, top, 1, NULL, NULL, v4);
	return p;
}

static void test_compute(void **state)
{
	(void)state;
	struct profile *p = make_profile(1);
	const char *keys[] = { "endpoint" };
	struct group_row *rows = NULL;
	size_t n = 0;
	assert_int_equal(groups__compute(p, keys, 1, &rows, &n), 0);
	assert_int_equal(n, 3);

	assert_string_equal(rows[0].key, "/a");
	assert_int_equal(rows[0].samples, 8);
	assert_int_equal(rows[0].cpu_ns, 80000000);
	assert_int_equal(rows[0].requests, 10);
	assert_int_equal(rows[0].instructions, 0);
	assert_true(fabs(rows[0].share - 8.0 / 12.0) < 1e-9);
	assert_string_equal(rows[0].top_function, "sql");
	assert_int_equal(rows[0].top_samples, 6);

	assert_string_equal(rows[1].key, "/b");
	assert_int_equal(rows[1].samples, 3);
	assert_int_equal(rows[1].cpu_ns, 30000000);
	assert_int_equal(rows[1].requests, 5);
	assert_true(fabs(rows[1].share - 0.25) < 1e-9);
	assert_string_equal(rows[1].top_function, "json");
	assert_int_equal(rows[1].top_samples, 3);

	assert_string_equal(rows[2].key, "-");
	assert_int_equal(rows[2].samples, 1);
	assert_string_equal(rows[2].top_function, "main");
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += rows[i].share;
	assert_true(fabs(sum - 1) < 1e-9);
	groups__free(rows, n);

	/* Two keys: values joined by ", ". */
	const char *two[] = { "endpoint", "commit" };
	assert_int_equal(groups__compute(p, two, 2, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].key, "/a, c1");
	assert_string_equal(rows[1].key, "/b, c1");
	assert_string_equal(rows[2].key, "-, -");
	groups__free(rows, n);

	/* No keys: one group of everything. */
	assert_int_equal(groups__compute(p, NULL, 0, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].samples, 12);
	assert_true(fabs(rows[0].share - 1) < 1e-9);
	assert_string_equal(rows[0].top_function, "sql");
	assert_int_equal(rows[0].top_samples, 6);
	groups__free(rows, n);
	groups__free(NULL, 0);
	profile__free(p);

	/* An empty profile has no groups. */
	p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(groups__compute(p, keys, 1, &rows, &n), 0);
	assert_int_equal(n, 0);
	groups__free(rows, n);
	profile__free(p);
}

/* Prints into a string; returns it (caller frees). */
static char *print(const struct profile *p, const char *const *keys, size_t nkeys)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(groups__print(p, f, keys, nkeys), 0);
	fclose(f);
	return text;
}

/* Returns line i (0-based) of text in buf. */
static const char *line(const char *text, int i, char *buf, size_t len)
{
	const char *s = text;
	for (; i > 0 && s; i--) {
		s = strchr(s, '\n');
		if (s)
			s++;
	}
	assert_non_null(s);
	size_t n = strcspn(s, "\n");
	assert_true(n < len);
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

static void test_print(void **state)
{
	(void)state;
	struct profile *p = make_profile(1);
	const char *keys[] = { "endpoint", "commit" };
	char *text = print(p, keys, 2), l[256];

	line(text, 0, l, sizeof(l));
	assert_non_null(strstr(l, "SAMPLES"));
	assert_non_null(strstr(l, "SHARE%"));
	assert_non_null(strstr(l, "CPU"));
	assert_non_null(strstr(l, "REQUESTS"));
	assert_non_null(strstr(l, "CPU-ms/REQ"));
	assert_non_null(strstr(l, "endpoint, commit"));
	assert_non_null(strstr(l, "TOP FUNCTION"));
	assert_null(strstr(l, "INSTRUCTIONS"));

	/* /a: 8 samples, 66.7%, 0.080 s, 10 requests, 8 ms per request. */
	line(text, 1, l, sizeof(l));
	assert_non_null(strstr(l, " 8 "));
	assert_non_null(strstr(l, "66.7%"));
	assert_non_null(strstr(l, "0.080s"));
	assert_non_null(strstr(l, " 10 "));
	assert_non_null(strstr(l, "8.000"));
	assert_non_null(strstr(l, "/a, c1"));
	assert_non_null(strstr(l, "sql (6)"));
	line(text, 2, l, sizeof(l));
	assert_non_null(strstr(l, "25.0%"));
	assert_non_null(strstr(l, "6.000")); /* 30 ms / 5 */
	assert_non_null(strstr(l, "json (3)"));
	/* The untagged group: no requests, "-" per request. */
	line(text, 3, l, sizeof(l));
	assert_non_null(strstr(l, "8.3%"));
	assert_non_null(strstr(l, "-, -"));
	assert_non_null(strstr(l, "main (1)"));
	/* Header and three rows, nothing else. */
	size_t nl = 0;
	for (const char *c = text; *c; c++)
		nl += *c == '\n';
	assert_int_equal(nl, 4);
	free(text);
	profile__free(p);

	/* Without request counts there are no request columns. */
	p = make_profile(0);
	text = print(p, keys, 1);
	line(text, 0, l, sizeof(l));
	assert_null(strstr(l, "REQUESTS"));
	assert_non_null(strstr(l, "endpoint"));
	assert_null(strstr(l, "commit"));
	line(text, 1, l, sizeof(l));
	assert_non_null(strstr(l, "/a"));
	free(text);
	profile__free(p);

	/* Instructions counted: an instructions column and instructions per request. */
	p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	assert_int_equal(profile__add_value_type(p, "instructions", "count"), 2);
	assert_int_equal(profile__add_value_type(p, "requests", "count"), 3);
	const char *st[] = { "main", "work" };
	uint64_t v[] = { 4, 40000000, 1000000, 4 };
	add(p, st, 2, "/i", NULL, v);
	text = print(p, keys, 1);
	line(text, 0, l, sizeof(l));
	assert_non_null(strstr(l, "INSTRUCTIONS"));
	assert_non_null(strstr(l, "INSTR/REQ"));
	line(text, 1, l, sizeof(l));
	assert_non_null(strstr(l, "1000000"));
	assert_non_null(strstr(l, "250000"));
	assert_non_null(strstr(l, "work (4)"));
	free(text);
	profile__free(p);
}

static void test_parse_keys(void **state)
{
	(void)state;
	const char *keys[4];
	char t1[] = "endpoint,commit";
	assert_int_equal(groups__parse_keys(t1, keys, 4), 2);
	assert_string_equal(keys[0], "endpoint");
	assert_string_equal(keys[1], "commit");
	char t2[] = "service";
	assert_int_equal(groups__parse_keys(t2, keys, 4), 1);
	assert_string_equal(keys[0], "service");
	char t3[] = "a,b,c,d";
	assert_int_equal(groups__parse_keys(t3, keys, 4), 4);
	assert_string_equal(keys[3], "d");

	const char *bad[] = { "", "a,b,c,d,e", "a,,b", ",a", "a,", "," };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%s", bad[i]);
		int n = groups__parse_keys(buf, keys, 4);
		if (n != -EINVAL)
			fail_msg("'%s': expected -EINVAL, got %d", bad[i], n);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compute),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_parse_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
