// SPDX-License-Identifier: MIT
/* Regressions between two hand-built profiles clustered by window: an
 * endpoint whose CPU per request grew 20% is a regression whose interval
 * holds +20% and whose driver is the one function that grew; an unchanged
 * endpoint is not; the "(all)" row; the share metric without request counts;
 * too few windows; an empty side; the per-function map of the flame graph;
 * samples of several hosts clustered nested in their hosts. */
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

#include "diff/diff.h"
#include "profile/profile.h"

#define MS 1000000ULL

/* Deterministic noise in [-1, 1]. */
static double noise(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (double)(*x >> 11) / (double)(1ULL << 52) - 1.0;
}

static struct profile *new_profile(int with_requests)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	if (with_requests)
		assert_int_equal(profile__add_value_type(p, "requests", "count"), 2);
	return p;
}

/* Adds a sample main;app:handle;LEAF of endpoint ep in window w with cpu ns
 * (samples: one per 10 ms) and requests. */
static void add(struct profile *p, const char *ep, int w, const char *leaf, double cpu,
		double requests)
{
	struct frame_desc d[3] = {
		{ .kind = FRAME_NATIVE, .name = "main" },
		{ .kind = FRAME_PYTHON, .name = "app:handle", .file = "/app/app.py", .line = 3 },
		{ .kind = FRAME_PYTHON, .name = leaf, .file = "/app/app.py", .line = 10 },
	};
	uint32_t ids[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(profile__add_frame(p, &d[i], &ids[i]), 0);
	char window[16];
	snprintf(window, sizeof(window), "%d", w);
	const char *keys[] = { "endpoint", "window" }, *vals[] = { ep, window };
	uint64_t v[3] = { (uint64_t)llround(cpu / (10.0 * MS)), (uint64_t)llround(cpu),
			  (uint64_t)llround(requests) };
	struct sample_desc s = { .frames = ids, .nframes = 3, .pid = 1000, .tid = 1000,
				 .comm = "python3", .label_keys = keys, .label_values = vals,
				 .nlabels = 2, .values = v };
	assert_int_equal(profile__add_sample(p, &s), 0);
}

/* nwin windows. /a: ~100 requests, app:parse 5 ms + app:render 5 ms per
 * request (render x render_growth); /b: ~50 requests, app:work 8 ms each.
 * 2% noise per window and function. */
static struct profile *make_side(int nwin, double render_growth, int with_requests,
				 uint64_t seed)
{
	struct profile *p = new_profile(with_requests);
	uint64_t x = seed;
	for (int w = 0; w < nwin; w++) {
		double ra = 100 * (1 + 0.1 * noise(&x)), rb = 50 * (1 + 0.1 * noise(&x));
		add(p, "/a", w, "app:parse", ra * 5 * MS * (1 + 0.02 * noise(&x)), ra);
		add(p, "/a", w, "app:render", ra * 5 * MS * render_growth * (1 + 0.02 * noise(&x)),
		    0);
		add(p, "/b", w, "app:work", rb * 8 * MS * (1 + 0.02 * noise(&x)), rb);
	}
	return p;
}

/* /a's CPU per request grows 14% in app:loop (5 -> 5.7 ms of 5.2 ms), and a
 * tiny kernel function grows 145% (0.02 -> 0.05 ms). */
static struct profile *make_tiny_side(int nwin, int grown, uint64_t seed)
{
	struct profile *p = new_profile(1);
	uint64_t x = seed;
	for (int w = 0; w < nwin; w++) {
		double ra = 100 * (1 + 0.1 * noise(&x));
		add(p, "/a", w, "app:loop", ra * (grown ? 5.7 : 5.0) * MS * (1 + 0.01 * noise(&x)),
		    ra);
		add(p, "/a", w, "app:setup", ra * 0.2 * MS * (1 + 0.01 * noise(&x)), 0);
		add(p, "/a", w, "irqentry_exit_to_user_mode",
		    ra * (grown ? 0.049 : 0.02) * MS * (1 + 0.01 * noise(&x)), 0);
	}
	return p;
}

static const struct diff_row *row_of(const struct diff_result *r, const char *endpoint)
{
	for (size_t i = 0; i < r->nrows; i++)
		if (!strcmp(r->rows[i].endpoint, endpoint))
			return &r->rows[i];
	return NULL;
}

static void test_drivers_are_the_absolute_change(void **state)
{
	(void)state;
	struct profile *base = make_tiny_side(40, 0, 21), *cur = make_tiny_side(40, 1, 22);
	struct diff_result r;
	assert_int_equal(diff__compute(base, cur, NULL, &r), 0);
	const struct diff_row *a = NULL;
	for (size_t i = 0; i < r.nrows; i++)
		if (!strcmp(r.rows[i].endpoint, "/a"))
			a = &r.rows[i];
	assert_non_null(a);
	assert_int_equal(a->verdict, VERDICT_REGRESSION);
	assert_int_equal(a->nfunctions, 1);
	assert_string_equal(a->functions[0].name, "app:loop");
	diff__free(&r);
	profile__free(base);
	profile__free(cur);
}

/* A side pooled from 3 hosts (`host` label, as diff over many agents
 * gives): 20 windows each of /a, ~100 requests of 10 ms x the host's level x
 * growth, 0.5% noise per window. */
static struct profile *make_hosts_side(const double level[3], double growth, uint64_t seed)
{
	struct profile *p = new_profile(1);
	struct frame_desc d = { .kind = FRAME_PYTHON, .name = "app:handle", .file = "/app/app.py",
				.line = 3 };
	uint32_t id;
	uint64_t x = seed;
	assert_int_equal(profile__add_frame(p, &d, &id), 0);
	for (int h = 0; h < 3; h++) {
		for (int w = 0; w < 20; w++) {
			char host[16], window[16];
			snprintf(host, sizeof(host), "h%d", h);
			snprintf(window, sizeof(window), "%d", w);
			const char *keys[] = { "endpoint", "window", "host" };
			const char *vals[] = { "/a", window, host };
			double req = 100 * (1 + 0.1 * noise(&x));
			double cpu = req * 10 * MS * level[h] * growth * (1 + 0.005 * noise(&x));
			uint64_t v[3] = { (uint64_t)llround(cpu / (10.0 * MS)), (uint64_t)llround(cpu),
					  (uint64_t)llround(req) };
			struct sample_desc sd = { .frames = &id, .nframes = 1, .pid = 1000 + h,
						  .tid = 1000 + h, .comm = "python3",
						  .label_keys = keys, .label_values = vals,
						  .nlabels = 3, .values = v };
			assert_int_equal(profile__add_sample(p, &sd), 0);
		}
	}
	return p;
}

static void test_hosts_nested(void **state)
{
	(void)state;
	/* Hosts 3% apart for good, the canaries' hosts others than the fleet's,
	 * the new side 2% dearer: nested in hosts (the default) the hosts'
	 * spread is in the interval and +2% is not a finding; host x window
	 * clusters as independent call it a regression. */
	const double fleet[3] = { 1.0, 1.03, 0.97 }, canaries[3] = { 0.97, 1.0, 1.03 };
	const double alike[3] = { 1, 1, 1 };
	struct profile *base = make_hosts_side(fleet, 1.0, 5), *cur = make_hosts_side(canaries, 1.02, 6);
	struct diff_opts o = { .min_effect = 0.01 };
	struct diff_result r;
	assert_int_equal(diff__compute(base, cur, &o, &r), 0);
	const struct diff_row *a = row_of(&r, "/a");
	assert_non_null(a);
	assert_int_equal(a->change.base_hosts, 3);
	assert_int_equal(a->change.new_hosts, 3);
	assert_int_equal(a->change.base_clusters, 60);
	assert_int_equal(a->verdict, VERDICT_NO_CHANGE);
	assert_true(a->change.lo < 0 && a->change.hi > 0.02);
	double nested_width = a->change.hi - a->change.lo;
	diff__free(&r);

	o.clusters = DIFF_CLUSTERS_HOST_WINDOW;
	assert_int_equal(diff__compute(base, cur, &o, &r), 0);
	a = row_of(&r, "/a");
	assert_int_equal(a->change.base_hosts, 0);
	assert_int_equal(a->verdict, VERDICT_REGRESSION);
	assert_true(a->change.hi - a->change.lo < nested_width / 3);
	diff__free(&r);

	o.clusters = DIFF_CLUSTERS_HOST; /* 3 clusters a side: too few for a verdict */
	assert_int_equal(diff__compute(base, cur, &o, &r), 0);
	a = row_of(&r, "/a");
	assert_int_equal(a->change.base_clusters, 3);
	assert_int_equal(a->verdict, VERDICT_INSUFFICIENT_DATA);
	diff__free(&r);
	profile__free(base);
	profile__free(cur);

	/* Hosts alike: nested finds the +2%. */
	base = make_hosts_side(alike, 1.0, 7);
	cur = make_hosts_side(alike, 1.02, 8);
	o.clusters = DIFF_CLUSTERS_NESTED;
	assert_int_equal(diff__compute(base, cur, &o, &r), 0);
	a = row_of(&r, "/a");
	assert_int_equal(a->verdict, VERDICT_REGRESSION);
	assert_true(a->change.lo > 0.01 && a->change.hi < 0.03);
	diff__free(&r);
	profile__free(base);
	profile__free(cur);
}

static void test_per_request_regression(void **state)
{
	(void)state;
	/* /a: 10 ms -> 5 + 5 * 1.4 = 12 ms per request: +20%. */
	struct profile *base = make_side(40, 1.0, 1, 11), *cur = make_side(40, 1.4, 1, 12);
	struct diff_result r;
	assert_int_equal(diff__compute(base, cur, NULL, &r), 0);
	assert_int_equal(r.nrows, 3);
	assert_int_equal(r.regressions, 1);
	assert_int_equal(r.improvements, 0);

	/* The overall row first. */
	assert_string_equal(r.rows[0].endpoint, "(all)");
	assert_int_equal(r.rows[0].metric, DIFF_CPU_PER_REQUEST);

	const struct diff_row *a = row_of(&r, "/a");
	assert_non_null(a);
	assert_ptr_equal(a, &r.rows[1]); /* largest change first */
	assert_int_equal(a->metric, DIFF_CPU_PER_REQUEST);
	assert_false(a->instructions);
	assert_int_equal(a->verdict, VERDICT_REGRESSION);
	assert_true(fabs(a->change.change - 0.20) < 0.03);
	assert_true(a->change.lo < 0.20 && a->change.hi > 0.20);
	assert_true(a->change.lo > 0.1);
	assert_true(fabs(a->change.base - 10.0 * MS) < 0.5 * MS);
	assert_true(fabs(a->change.current - 12.0 * MS) < 0.5 * MS);
	assert_true(a->min_effect == 0.02);
	assert_true(a->base_requests > 3500 && a->base_requests < 4500);
	assert_true(a->new_requests > 3500 && a->new_requests < 4500);
	assert_true(a->base_samples > 3500 && a->new_samples > a->base_samples);
	assert_int_equal(a->change.base_clusters, 40);
	assert_int_equal(a->change.new_clusters, 40);

	/* Its driver: app:render grew, app:parse did not. */
	assert_true(a->nfunctions >= 1);
	assert_non_null(a->functions);
	assert_string_equal(a->functions[0].name, "app:render");
	assert_int_equal(a->functions[0].verdict, VERDICT_REGRESSION);
	assert_true(fabs(a->functions[0].change.change - 0.40) < 0.05);
	for (size_t i = 0; i < a->nfunctions; i++) {
		assert_string_not_equal(a->functions[i].name, "app:parse");
		assert_string_not_equal(a->functions[i].name, "app:work");
	}

	const struct diff_row *b = row_of(&r, "/b");
	assert_non_null(b);
	assert_int_equal(b->metric, DIFF_CPU_PER_REQUEST);
	assert_int_equal(b->verdict, VERDICT_NO_CHANGE);
	assert_true(fabs(b->change.change) < 0.02);
	assert_true(b->change.lo < 0 && b->change.hi > 0);
	assert_int_equal(b->nfunctions, 0);

	/* The overall row: (0.4 * 12 + 0.4 * 0 ...) a mix of +20% and 0. */
	const struct diff_row *all = &r.rows[0];
	assert_true(all->change.change > 0.05 && all->change.change < 0.2);
	assert_true(all->base_requests > 5000);
	diff__free(&r);
	assert_null(r.rows);
	assert_int_equal(r.nrows, 0);

	/* A per-endpoint threshold above the change: no longer a regression. */
	struct diff_threshold th = { "/a", 0.5 };
	struct diff_opts o = { .thresholds = &th, .nthresholds = 1 };
	assert_int_equal(diff__compute(base, cur, &o, &r), 0);
	a = row_of(&r, "/a");
	assert_non_null(a);
	assert_true(a->min_effect == 0.5);
	assert_int_equal(a->verdict, VERDICT_NO_CHANGE);
	assert_int_equal(r.regressions, 0);
	diff__free(&r);

	/* Swapped sides: an improvement. */
	assert_int_equal(diff__compute(cur, base, NULL, &r), 0);
	a = row_of(&r, "/a");
	assert_non_null(a);
	assert_int_equal(a->verdict, VERDICT_IMPROVEMENT);
	assert_int_equal(r.improvements, 1);
	assert_int_equal(r.regressions, 0);
	diff__free(&r);
	profile__free(base);
	profile__free(cur);
}

static void test_share_without_requests(void **state)
{
	(void)state;
	/* No request counts: /a's share of samples 100/140 -> 150/190 (+10.5%). */
	struct profile *base = make_side(40, 1.0, 0, 21), *cur = make_side(40, 2.0, 0, 22);
	struct diff_result r;
	assert_int_equal(diff__compute(base, cur, NULL, &r), 0);
	assert_null(row_of(&r, "(all)"));
	assert_int_equal(r.nrows, 2);
	const struct diff_row *a = row_of(&r, "/a"), *b = row_of(&r, "/b");
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(a->metric, DIFF_SAMPLE_SHARE);
	assert_int_equal(b->metric, DIFF_SAMPLE_SHARE);
	assert_true(a->base_requests == 0 && a->new_requests == 0);
	assert_int_equal(a->verdict, VERDICT_REGRESSION);
	double want = (150.0 / 190.0) / (100.0 / 140.0) - 1;
	assert_true(fabs(a->change.change - want) < 0.02);
	assert_true(a->change.lo < want && a->change.hi > want);
	/* /b's share fell: the other side of the same change. */
	assert_int_equal(b->verdict, VERDICT_IMPROVEMENT);
	/* Functions are measured by their share of the endpoint: render's grew
	 * (parse's fell by as much, so it may be listed as an improvement). */
	int render = 0;
	for (size_t i = 0; i < a->nfunctions; i++) {
		if (!strcmp(a->functions[i].name, "app:render")) {
			render = 1;
			assert_int_equal(a->functions[i].verdict, VERDICT_REGRESSION);
		} else {
			assert_int_not_equal(a->functions[i].verdict, VERDICT_REGRESSION);
		}
	}
	assert_true(render);
	diff__free(&r);
	profile__free(base);
	profile__free(cur);
}

static void test_insufficient_and_empty(void **state)
{
	(void)state;
	/* 4 windows per side: fewer than the 8 clusters needed. */
	struct profile *base = make_side(4, 1.0, 1, 31), *cur = make_side(4, 1.4, 1, 32);
	struct diff_result r;
	assert_int_equal(diff__compute(base, cur, NULL, &r), 0);
	assert_true(r.nrows >= 2);
	for (size_t i = 0; i < r.nrows; i++)
		assert_int_equal(r.rows[i].verdict, VERDICT_INSUFFICIENT_DATA);
	assert_int_equal(r.regressions, 0);
	assert_int_equal(r.improvements, 0);
	diff__free(&r);

	/* Fewer clusters required: a verdict again. */
	struct diff_opts o = { .min_clusters = 3, .min_requests = 10 };
	assert_int_equal(diff__compute(base, cur, &o, &r), 0);
	assert_int_not_equal(row_of(&r, "/b")->verdict, VERDICT_INSUFFICIENT_DATA);
	diff__free(&r);
	profile__free(cur);

	/* An endpoint only one side has: insufficient data, not a crash. */
	cur = make_side(40, 1.0, 1, 33);
	add(cur, "/new", 0, "app:new", 50 * MS, 5);
	profile__free(base);
	base = make_side(40, 1.0, 1, 34);
	assert_int_equal(diff__compute(base, cur, NULL, &r), 0);
	const struct diff_row *n = row_of(&r, "/new");
	assert_non_null(n);
	assert_int_equal(n->verdict, VERDICT_INSUFFICIENT_DATA);
	assert_int_equal(n->base_samples, 0);
	assert_int_equal(n->new_samples, 5);
	assert_ptr_equal(n, &r.rows[r.nrows - 1]); /* insufficient data last */
	diff__free(&r);

	/* A side without samples. */
	struct profile *empty = new_profile(1);
	memset(&r, 0x5a, sizeof(r));
	assert_int_equal(diff__compute(empty, cur, NULL, &r), -ENODATA);
	assert_int_equal(r.nrows, 0);
	assert_int_equal(diff__compute(cur, empty, NULL, &r), -ENODATA);
	diff__free(&r);
	profile__free(empty);
	profile__free(base);
	profile__free(cur);
}

static void test_function_map(void **state)
{
	(void)state;
	struct profile *base = make_side(40, 1.0, 1, 41), *cur = make_side(40, 1.4, 1, 42);
	struct diff_function_map *m = diff__function_map(base, cur, NULL);
	assert_non_null(m);
	const struct diff_function *f = diff_function_map__get(m, "app:render");
	assert_non_null(f);
	assert_string_equal(f->name, "app:render");
	assert_int_equal(f->verdict, VERDICT_REGRESSION);
	/* render: 50 of 140 samples per window -> 70 of 160. */
	double want = (70.0 / 160.0) / (50.0 / 140.0) - 1;
	assert_true(fabs(f->change.change - want) < 0.03);
	assert_true(f->change.lo < want && f->change.hi > want);
	/* parse kept its cost, so its share fell. */
	f = diff_function_map__get(m, "app:parse");
	assert_non_null(f);
	assert_int_not_equal(f->verdict, VERDICT_REGRESSION);
	assert_null(diff_function_map__get(m, "app:nothing"));
	diff_function_map__free(m);
	diff_function_map__free(NULL);
	profile__free(base);
	profile__free(cur);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_drivers_are_the_absolute_change),
		cmocka_unit_test(test_per_request_regression),
		cmocka_unit_test(test_hosts_nested),
		cmocka_unit_test(test_share_without_requests),
		cmocka_unit_test(test_insufficient_and_empty),
		cmocka_unit_test(test_function_map),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
