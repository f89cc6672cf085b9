// SPDX-License-Identifier: MIT
/* Automatic deploy checks against a real history store: a service switches
 * commit aaa -> bbb with +30% CPU per request on one endpoint; once the
 * check window has passed the checker reports a regression for that endpoint
 * only, in its JSON and as dynoprof_regression_ratio gauges; both commits in
 * the same windows make it a canary check. A check that cannot compare stores
 * "insufficient data" with its reason (a side without data, endpoints served
 * too thinly, no endpoint tags); a full table of commits forgets old ones;
 * late samples of an old commit, commits first seen together, one-window
 * commits and a restart report no switch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/deploy_check.h"
#include "agent/metrics.h"
#include "agent/store.h"
#include "util/strbuf.h"

#define S_NS 1000000000LL
#define MS 1000000.0
#define WINDOW_NS (10 * S_NS)

struct fixture {
	char dir[64];            /* temporary directory */
	char path[96];           /* dir/history.db */
	struct store *store;
	struct metrics *metrics;
	struct deploy_checker *checker;
	int64_t t0;              /* start of the first window: two hours ago */
	uint64_t rng;            /* noise state */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_deploy_check.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/history.db", f->dir);
	char err[256] = "";
	f->store = store__open(f->path, NULL, err, sizeof(err));
	if (!f->store)
		fail_msg("store__open: %s", err);
	f->metrics = metrics__new(0);
	assert_non_null(f->metrics);
	struct deploy_check_opts o = { .check_window_s = 300 };
	f->checker = deploy_checker__new(&o, f->store, f->metrics);
	assert_non_null(f->checker);
	f->t0 = ((int64_t)time(NULL) - 7200) * S_NS;
	f->rng = 0x2545f4914f6cdd1dULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *suffixes[] = { "", "-wal", "-shm" };
	char p[128];
	deploy_checker__free(f->checker);
	metrics__free(f->metrics);
	store__close(f->store);
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Deterministic noise in [-1, 1]. */
static double noise(struct fixture *f)
{
	f->rng ^= f->rng << 13;
	f->rng ^= f->rng >> 7;
	f->rng ^= f->rng << 17;
	return (double)(f->rng >> 11) / (double)(1ULL << 52) - 1.0;
}

/* One (commit, endpoint) group of a window: ~requests requests at ms_per_req
 * CPU each, 2% noise. */
static struct store_group group(struct fixture *f, const char *commit, const char *endpoint,
				double requests, double ms_per_req)
{
	double r = requests * (1 + 0.1 * noise(f));
	double cpu = r * ms_per_req * MS * (1 + 0.02 * noise(f));
	return (struct store_group){ .service = "shop", .commit = commit, .endpoint = endpoint,
				     .samples = (uint64_t)(cpu / (10 * MS)) + 1,
				     .cpu_ns = (uint64_t)cpu, .requests = (uint64_t)r };
}

/* Stores window w holding the n groups g, observes each of their commits
 * (in order of first appearance), and runs the due checks at the window's
 * end. Returns the checks run. */
static int put_groups(struct fixture *f, int w, const struct store_group *g, size_t n)
{
	uint64_t samples = 0;
	for (size_t i = 0; i < n; i++)
		samples += g[i].samples;
	int64_t start = f->t0 + w * WINDOW_NS, end = start + WINDOW_NS;
	struct store_window sw = { .start_ns = start, .end_ns = end, .samples = samples,
				   .groups = g, .ngroups = n };
	assert_int_equal(store__put_window(f->store, &sw), 0);
	for (size_t i = 0; i < n; i++) {
		size_t first = 0;
		while (strcmp(g[first].commit, g[i].commit))
			first++;
		if (first == i)
			assert_int_equal(deploy_checker__observe(f->checker, "shop", g[i].commit,
								 start, end), 0);
	}
	return deploy_checker__run_due(f->checker, end);
}

/* Stores window w with the commits given (one or two), each running /a
 * (10 ms per request, x 1.3 for bbb) and /b (8 ms), bbb also
 * only_new_endpoint when not NULL; see put_groups. */
static int put_window_ex(struct fixture *f, int w, const char *c1, const char *c2,
			 const char *only_new_endpoint)
{
	struct store_group g[6];
	size_t n = 0;
	const char *commits[2] = { c1, c2 };
	for (int i = 0; i < 2 && commits[i]; i++) {
		double a = !strcmp(commits[i], "bbb") ? 13 : 10;
		g[n++] = group(f, commits[i], "/a", 100, a);
		g[n++] = group(f, commits[i], "/b", 50, 8);
		if (only_new_endpoint && !strcmp(commits[i], "bbb"))
			g[n++] = group(f, commits[i], only_new_endpoint, 40, 5);
	}
	return put_groups(f, w, g, n);
}

static int put_window(struct fixture *f, int w, const char *c1, const char *c2)
{
	return put_window_ex(f, w, c1, c2, NULL);
}

/* The rendered metrics (caller releases). */
static void render(struct fixture *f, struct strbuf *m)
{
	assert_int_equal(metrics__render(f->metrics, m), 0);
}

/* The checks JSON (caller releases). */
static void checks_json(struct fixture *f, struct strbuf *json)
{
	assert_int_equal(deploy_checker__json(f->checker, json), 0);
}

/* Copies the JSON object of endpoint ep out of the checks JSON. */
static void check_object(const char *json, const char *ep, char *out, size_t len)
{
	char needle[64];
	snprintf(needle, sizeof(needle), "\"endpoint\": \"%s\"", ep);
	const char *at = strstr(json, needle);
	if (!at)
		fail_msg("no check for %s in %s", ep, json);
	const char *start = at;
	while (start > json && *start != '{')
		start--;
	const char *end = strchr(at, '}');
	assert_non_null(end);
	assert_true((size_t)(end - start + 1) < len);
	memcpy(out, start, (size_t)(end - start + 1));
	out[end - start + 1] = '\0';
	/* Only one check for this endpoint. */
	assert_null(strstr(at + 1, needle));
}

/* Fails unless the checks JSON has one check for endpoint ep with this
 * verdict and reason (NULL: no reason, "null" in the JSON). */
static void expect_verdict(const char *json, const char *ep, const char *verdict,
			   const char *reason)
{
	char obj[1024], want[256];
	check_object(json, ep, obj, sizeof(obj));
	snprintf(want, sizeof(want), "\"verdict\": \"%s\"", verdict);
	if (!strstr(obj, want))
		fail_msg("%s: want %s in %s", ep, want, obj);
	if (reason)
		snprintf(want, sizeof(want), "\"reason\": \"%s\"", reason);
	else
		snprintf(want, sizeof(want), "\"reason\": null");
	if (!strstr(obj, want))
		fail_msg("%s: want %s in %s", ep, want, obj);
}

/* The value of a rendered gauge series, or NaN when absent. */
static double series_value(const char *text, const char *series)
{
	const char *at = strstr(text, series);
	while (at && at != text && at[-1] != '\n')
		at = strstr(at + 1, series);
	if (!at)
		return NAN;
	return strtod(at + strlen(series), NULL);
}

static void test_rolling_deploy_regression(void **state)
{
	struct fixture *f = *state;
	int ran = 0;
	/* aaa for 30 windows, then bbb for 30: the check is due at the end of
	 * the 30th bbb window (300 s after the switch). */
	for (int w = 0; w < 30; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	for (int w = 30; w < 59; w++)
		assert_int_equal(put_window(f, w, "bbb", NULL), 0);
	ran = put_window(f, 59, "bbb", NULL);
	assert_int_equal(ran, 1);
	/* Done once. */
	assert_int_equal(deploy_checker__run_due(f->checker, f->t0 + 100 * WINDOW_NS), 0);

	struct strbuf json = STRBUF_INIT;
	assert_int_equal(deploy_checker__json(f->checker, &json), 0);
	const char *text = strbuf__str(&json);
	assert_non_null(strstr(text, "{\"checks\": ["));
	char a[1024], b[1024];
	check_object(text, "/a", a, sizeof(a));
	check_object(text, "/b", b, sizeof(b));
	assert_non_null(strstr(a, "\"service\": \"shop\""));
	assert_non_null(strstr(a, "\"base\": \"aaa\""));
	assert_non_null(strstr(a, "\"new\": \"bbb\""));
	assert_non_null(strstr(a, "\"metric\": \"cpu_per_request\""));
	assert_non_null(strstr(a, "\"verdict\": \"regression\""));
	assert_non_null(strstr(a, "\"canary\": false"));
	const char *ratio = strstr(a, "\"ratio\": ");
	assert_non_null(ratio);
	double r = strtod(ratio + 9, NULL);
	assert_true(r > 1.25 && r < 1.35);
	assert_non_null(strstr(b, "\"verdict\": \"no significant change\""));
	assert_null(strstr(b, "regression"));
	/* Rolling: the base range is the window before the switch. */
	char want[96];
	snprintf(want, sizeof(want), "\"base_range\": [%.3f, %.3f]", (double)f->t0 / 1e9,
		 (double)(f->t0 + 30 * WINDOW_NS) / 1e9);
	assert_non_null(strstr(a, want));
	snprintf(want, sizeof(want), "\"new_range\": [%.3f, %.3f]",
		 (double)(f->t0 + 30 * WINDOW_NS) / 1e9, (double)(f->t0 + 60 * WINDOW_NS) / 1e9);
	assert_non_null(strstr(a, want));
	strbuf__release(&json);

	/* The gauges. */
	struct strbuf m = STRBUF_INIT;
	assert_int_equal(metrics__render(f->metrics, &m), 0);
	const char *mt = strbuf__str(&m);
	double ga = series_value(mt, "dynoprof_regression_ratio{base=\"aaa\",endpoint=\"/a\","
				     "new=\"bbb\",service=\"shop\"} ");
	double gb = series_value(mt, "dynoprof_regression_ratio{base=\"aaa\",endpoint=\"/b\","
				     "new=\"bbb\",service=\"shop\"} ");
	double lo = series_value(mt, "dynoprof_regression_ratio_lower{base=\"aaa\",endpoint=\"/a\","
				     "new=\"bbb\",service=\"shop\"} ");
	double hi = series_value(mt, "dynoprof_regression_ratio_upper{base=\"aaa\",endpoint=\"/a\","
				     "new=\"bbb\",service=\"shop\"} ");
	double sig = series_value(mt, "dynoprof_regression_significant{base=\"aaa\","
				      "endpoint=\"/a\",new=\"bbb\",service=\"shop\"} ");
	double sigb = series_value(mt, "dynoprof_regression_significant{base=\"aaa\","
				       "endpoint=\"/b\",new=\"bbb\",service=\"shop\"} ");
	if (!(ga > 1.25 && ga < 1.35))
		fail_msg("ratio of /a %g in:\n%s", ga, mt);
	/* The verdict itself, what the alert rule reads. */
	assert_true(series_value(mt, "dynoprof_deploy_check_verdict{base=\"aaa\",endpoint=\"/a\","
				 "new=\"bbb\",service=\"shop\",verdict=\"regression\"} ") == 1);
	assert_true(series_value(mt, "dynoprof_deploy_check_verdict{base=\"aaa\",endpoint=\"/b\","
				 "new=\"bbb\",service=\"shop\",verdict=\"no significant "
				 "change\"} ") == 1);
	assert_null(strstr(mt, "endpoint=\"/b\",new=\"bbb\",service=\"shop\",verdict=\"regression"));
	assert_true(lo > 1.1 && lo < ga && hi > ga && hi < 1.5);
	assert_true(gb > 0.97 && gb < 1.03);
	assert_true(sig == 1);
	assert_true(sigb == 0);
	strbuf__release(&m);

	/* The results are kept in the history: a restarted agent lists them. */
	struct metrics *m2 = metrics__new(0);
	assert_non_null(m2);
	struct deploy_check_opts o = { 0 };
	struct deploy_checker *again = deploy_checker__new(&o, f->store, m2);
	assert_non_null(again);
	assert_int_equal(deploy_checker__json(again, &json), 0);
	check_object(strbuf__str(&json), "/a", a, sizeof(a));
	assert_non_null(strstr(a, "\"verdict\": \"regression\""));
	strbuf__release(&json);
	/* ... and exports them again: an alert on the verdict stays up. */
	assert_int_equal(metrics__render(m2, &m), 0);
	mt = strbuf__str(&m);
	assert_true(series_value(mt, "dynoprof_deploy_check_verdict{base=\"aaa\",endpoint=\"/a\","
				 "new=\"bbb\",service=\"shop\",verdict=\"regression\"} ") == 1);
	assert_true(series_value(mt, "dynoprof_deploy_check_verdict{base=\"aaa\",endpoint=\"/b\","
				 "new=\"bbb\",service=\"shop\",verdict=\"no significant "
				 "change\"} ") == 1);
	double again_ratio = series_value(mt, "dynoprof_regression_ratio{base=\"aaa\","
					  "endpoint=\"/a\",new=\"bbb\",service=\"shop\"} ");
	assert_true(fabs(again_ratio - ga) < 1e-5);
	assert_true(series_value(mt, "dynoprof_regression_significant{base=\"aaa\","
				 "endpoint=\"/a\",new=\"bbb\",service=\"shop\"} ") == 1);
	strbuf__release(&m);
	deploy_checker__free(again);
	metrics__free(m2);
}

static void test_canary(void **state)
{
	struct fixture *f = *state;
	for (int w = 0; w < 30; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	/* bbb starts beside aaa, which keeps running. */
	int ran = 0;
	for (int w = 30; w < 60; w++)
		ran += put_window(f, w, "aaa", "bbb");
	assert_int_equal(ran, 1);

	struct strbuf json = STRBUF_INIT;
	assert_int_equal(deploy_checker__json(f->checker, &json), 0);
	char a[1024], b[1024];
	check_object(strbuf__str(&json), "/a", a, sizeof(a));
	check_object(strbuf__str(&json), "/b", b, sizeof(b));
	assert_non_null(strstr(a, "\"canary\": true"));
	assert_non_null(strstr(a, "\"verdict\": \"regression\""));
	assert_non_null(strstr(b, "\"canary\": true"));
	assert_null(strstr(b, "regression"));
	/* A canary compares the same time range on both sides. */
	char want[128];
	double from = (double)(f->t0 + 30 * WINDOW_NS) / 1e9, to = (double)(f->t0 + 60 * WINDOW_NS) / 1e9;
	snprintf(want, sizeof(want), "\"base_range\": [%.3f, %.3f], \"new_range\": [%.3f, %.3f]",
		 from, to, from, to);
	assert_non_null(strstr(a, want));
	strbuf__release(&json);
}

static void test_no_switch_no_check(void **state)
{
	struct fixture *f = *state;
	/* One commit only, then untagged windows: nothing to check. */
	for (int w = 0; w < 40; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	assert_int_equal(deploy_checker__observe(f->checker, "", "ccc", 0, 1), 0);
	assert_int_equal(deploy_checker__observe(f->checker, "shop", "", 0, 1), 0);
	assert_int_equal(deploy_checker__run_due(f->checker, f->t0 + 1000 * WINDOW_NS), 0);
	struct strbuf json = STRBUF_INIT;
	assert_int_equal(deploy_checker__json(f->checker, &json), 0);
	assert_null(strstr(strbuf__str(&json), "\"endpoint\""));
	strbuf__release(&json);
	struct strbuf m = STRBUF_INIT;
	assert_int_equal(metrics__render(f->metrics, &m), 0);
	assert_null(strstr(strbuf__str(&m), "dynoprof_regression_ratio{"));
	strbuf__release(&m);
}


/* The old commit ran in too few windows before the switch: one result for
 * "(all)", insufficient data with the reason; not logged as done. */
static void test_side_without_data_is_insufficient(void **state)
{
	struct fixture *f = *state;
	struct strbuf json = STRBUF_INIT, m = STRBUF_INIT;
	/* Before any check, the list is there and empty. */
	checks_json(f, &json);
	assert_string_equal(strbuf__str(&json), "{\"checks\": [\n]}\n");
	strbuf__reset(&json);
	for (int w = 0; w < 3; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	int ran = 0;
	for (int w = 3; w < 40; w++)
		ran += put_window(f, w, "bbb", NULL);
	assert_int_equal(ran, 1);
	checks_json(f, &json);
	char all[1024];
	check_object(strbuf__str(&json), "(all)", all, sizeof(all));
	assert_non_null(strstr(all, "\"verdict\": \"insufficient data\""));
	assert_non_null(strstr(all, "\"reason\": \"aaa ran in 3 windows of its compared range "
				    "(5 needed)\""));
	assert_non_null(strstr(all, "\"base_windows\": 3"));
	assert_null(strstr(strbuf__str(&json), "\"/a\""));
	render(f, &m);
	assert_true(series_value(strbuf__str(&m), "dynoprof_deploy_check_verdict{base=\"aaa\","
				 "endpoint=\"(all)\",new=\"bbb\",service=\"shop\",verdict="
				 "\"insufficient data\"} ") == 1);
	assert_null(strstr(strbuf__str(&m), "dynoprof_regression_ratio{"));
	strbuf__release(&json);
	strbuf__release(&m);
}

/* An endpoint only the new commit serves cannot be compared: insufficient
 * data, saying so; the others are compared as usual. */
static void test_new_endpoint_is_insufficient(void **state)
{
	struct fixture *f = *state;
	for (int w = 0; w < 30; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	int ran = 0;
	for (int w = 30; w < 60; w++)
		ran += put_window_ex(f, w, "bbb", NULL, "/c");
	assert_int_equal(ran, 1);
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	expect_verdict(strbuf__str(&json), "/a", "regression", NULL);
	expect_verdict(strbuf__str(&json), "/c", "insufficient data",
		       "only bbb served it in the compared range");
	strbuf__release(&json);
}

/* During and after a rolling deploy aaa -> bbb, late samples of exiting aaa
 * workers are no switch back to aaa; the old commit's windows after the
 * switch belong to its side. */
static void test_late_old_samples_are_no_switch(void **state)
{
	struct fixture *f = *state;
	int ran = 0;
	for (int w = 0; w < 30; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	/* Both for three windows (the rollout), then bbb with a straggler. */
	for (int w = 30; w < 33; w++)
		ran += put_window(f, w, "aaa", "bbb");
	for (int w = 33; w < 80; w++)
		ran += put_window(f, w, "bbb", w == 45 || w == 70 ? "aaa" : NULL);
	assert_int_equal(ran, 1);
	assert_int_equal(deploy_checker__run_due(f->checker, f->t0 + 1000 * WINDOW_NS), 0);
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	const char *text = strbuf__str(&json);
	assert_null(strstr(text, "\"base\": \"bbb\""));
	char a[1024];
	check_object(text, "/a", a, sizeof(a));
	/* Rolling (aaa stopped before the new range's end, a straggler at 45
	 * aside): base = aaa's last W before the switch; its rollout windows
	 * and the straggler's are left out. */
	assert_non_null(strstr(a, "\"canary\": false"));
	assert_non_null(strstr(a, "\"base_windows\": 30"));
	assert_non_null(strstr(a, "\"new_windows\": 30"));
	char want[96];
	snprintf(want, sizeof(want), "\"base_range\": [%.3f, %.3f]", (double)f->t0 / 1e9,
		 (double)(f->t0 + 30 * WINDOW_NS) / 1e9);
	assert_non_null(strstr(a, want));
	strbuf__release(&json);
}

/* Commits first seen in the same window (an agent started mid-deploy) and a
 * commit seen in one window only are no switch. */
static void test_no_spurious_switch(void **state)
{
	struct fixture *f = *state;
	int ran = put_window(f, 0, "aaa", "bbb");
	for (int w = 1; w < 40; w++)
		ran += put_window(f, w, "bbb", w == 10 ? "zzz" : NULL);
	/* zzz (one window, never before): not a deploy either. */
	ran += deploy_checker__run_due(f->checker, f->t0 + 1000 * WINDOW_NS);
	assert_int_equal(ran, 0);
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	assert_null(strstr(strbuf__str(&json), "\"endpoint\""));
	strbuf__release(&json);
}

/* A restarted agent knows the commits of its history: the old commit's late
 * sample after the restart is no switch, and a real new commit is checked
 * against the history's last one. */
static void test_restart_remembers_commits(void **state)
{
	struct fixture *f = *state;
	for (int w = 0; w < 30; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	for (int w = 30; w < 70; w++)
		put_window(f, w, "bbb", NULL);
	/* Restart: a new checker on the same history. */
	deploy_checker__free(f->checker);
	struct deploy_check_opts o = { .check_window_s = 300 };
	f->checker = deploy_checker__new(&o, f->store, f->metrics);
	assert_non_null(f->checker);
	int ran = 0;
	for (int w = 70; w < 110; w++)
		ran += put_window(f, w, "bbb", w == 71 || w == 72 ? "aaa" : NULL);
	assert_int_equal(ran, 0);
	/* The check aaa -> bbb from before the restart is the only one. */
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	assert_null(strstr(strbuf__str(&json), "\"base\": \"bbb\""));
	strbuf__release(&json);
}

/* The new commit's first windows have CPU but no request counted at all (its
 * counters not found yet): left out, not read as expensive requests. */
static void test_windows_without_counts_left_out(void **state)
{
	struct fixture *f = *state;
	for (int w = 0; w < 30; w++)
		assert_int_equal(put_window(f, w, "aaa", NULL), 0);
	int ran = 0;
	for (int w = 30; w < 60; w++) {
		if (w >= 32) {
			ran += put_window(f, w, "bbb", NULL);
			continue;
		}
		struct store_group g[2] = { group(f, "bbb", "/a", 100, 13), group(f, "bbb", "/b", 50, 8) };
		g[0].requests = g[1].requests = 0;
		int64_t start = f->t0 + w * WINDOW_NS, end = start + WINDOW_NS;
		struct store_window sw = { .start_ns = start, .end_ns = end,
					   .samples = g[0].samples + g[1].samples, .groups = g,
					   .ngroups = 2 };
		assert_int_equal(store__put_window(f->store, &sw), 0);
		assert_int_equal(deploy_checker__observe(f->checker, "shop", "bbb", start, end), 0);
		ran += deploy_checker__run_due(f->checker, end);
	}
	assert_int_equal(ran, 1);
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	char a[1024], b[1024];
	check_object(strbuf__str(&json), "/a", a, sizeof(a));
	check_object(strbuf__str(&json), "/b", b, sizeof(b));
	assert_non_null(strstr(a, "\"new_windows\": 28"));
	assert_non_null(strstr(a, "\"verdict\": \"regression\""));
	double r = strtod(strstr(a, "\"ratio\": ") + 9, NULL);
	assert_true(r > 1.25 && r < 1.35);
	assert_non_null(strstr(b, "\"verdict\": \"no significant change\""));
	strbuf__release(&json);
}

/* Endpoints both commits served, but too thinly to compare: one the new
 * commit served in 3 of its windows, one with a request every few windows.
 * Each gets "insufficient data" saying which side lacked what; the others
 * are compared as usual. */
static void test_thin_endpoints_are_insufficient(void **state)
{
	struct fixture *f = *state;
	int ran = 0;
	for (int w = 0; w < 60; w++) {
		const char *c = w < 30 ? "aaa" : "bbb";
		struct store_group g[3];
		size_t n = 0;
		g[n++] = group(f, c, "/a", 100, w < 30 ? 10 : 13);
		if (w < 33)
			g[n++] = group(f, c, "/rare", 50, 8);
		if (w % 5 == 0) {
			g[n] = group(f, c, "/tiny", 1, 20);
			g[n++].requests = 1;
		}
		ran += put_groups(f, w, g, n);
	}
	assert_int_equal(ran, 1);
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	expect_verdict(strbuf__str(&json), "/a", "regression", NULL);
	expect_verdict(strbuf__str(&json), "/rare", "insufficient data",
		       "bbb: 3 windows with requests (5 needed)");
	expect_verdict(strbuf__str(&json), "/tiny", "insufficient data",
		       "aaa: 6 requests (30 needed)");
	strbuf__release(&json);
}

/* Windows without endpoint tags (a service that does not tag requests):
 * one "(all)" result, insufficient data, saying there were no endpoints. */
static void test_no_endpoint_tags(void **state)
{
	struct fixture *f = *state;
	int ran = 0;
	for (int w = 0; w < 60; w++) {
		struct store_group g = group(f, w < 30 ? "aaa" : "bbb", "", 100, 10);
		ran += put_groups(f, w, &g, 1);
	}
	assert_int_equal(ran, 1);
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	expect_verdict(strbuf__str(&json), "(all)", "insufficient data",
		       "no endpoint tags in either commit's range");
	char all[1024];
	check_object(strbuf__str(&json), "(all)", all, sizeof(all));
	assert_non_null(strstr(all, "\"base_windows\": 30"));
	assert_non_null(strstr(all, "\"new_windows\": 30"));
	strbuf__release(&json);
}

/* The table of commits seen is bounded (4096): when it is full, commits
 * not seen for forget_s are forgotten, and one that shows up again after
 * that is new, a switch from the service's recent commit (a rollback to a
 * build from long ago is checked). Its check finds no stored data of the
 * base, and says so. */
static void test_full_table_forgets_old_commits(void **state)
{
	struct fixture *f = *state;
	deploy_checker__free(f->checker);
	struct deploy_check_opts o = { .check_window_s = 300, .forget_s = 3600 };
	f->checker = deploy_checker__new(&o, f->store, f->metrics);
	assert_non_null(f->checker);
	int64_t s0 = f->t0, e0 = s0 + WINDOW_NS;
	assert_int_equal(deploy_checker__observe(f->checker, "shop", "old", s0, e0), 0);
	for (int i = 0; i < 4094; i++) {
		char service[32];
		snprintf(service, sizeof(service), "batch-%d", i);
		assert_int_equal(deploy_checker__observe(f->checker, service, "c1", s0, e0), 0);
	}
	/* An hour later: shop runs aaa (a switch from "old", which is past
	 * forget_s: no check), then the table (now full) meets a new commit. */
	int ran = 0;
	for (int w = 380; w <= 390; w++) {
		int64_t s = f->t0 + w * WINDOW_NS;
		assert_int_equal(deploy_checker__observe(f->checker, "shop", "aaa", s, s + WINDOW_NS),
				 0);
		ran += deploy_checker__run_due(f->checker, s + WINDOW_NS);
	}
	int64_t s = f->t0 + 390 * WINDOW_NS;
	assert_int_equal(deploy_checker__observe(f->checker, "other", "x", s, s + WINDOW_NS), 0);
	/* "old" again: forgotten, so new; aaa is its base. */
	for (int w = 391; w < 440; w++) {
		s = f->t0 + w * WINDOW_NS;
		assert_int_equal(deploy_checker__observe(f->checker, "shop", "old", s, s + WINDOW_NS),
				 0);
		ran += deploy_checker__run_due(f->checker, s + WINDOW_NS);
	}
	assert_int_equal(ran, 1);
	struct strbuf json = STRBUF_INIT;
	checks_json(f, &json);
	expect_verdict(strbuf__str(&json), "(all)", "insufficient data",
		       "no data of aaa in its compared range");
	char all[1024];
	check_object(strbuf__str(&json), "(all)", all, sizeof(all));
	assert_non_null(strstr(all, "\"base\": \"aaa\""));
	assert_non_null(strstr(all, "\"new\": \"old\""));
	strbuf__release(&json);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rolling_deploy_regression, setup, teardown),
		cmocka_unit_test_setup_teardown(test_canary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_switch_no_check, setup, teardown),
		cmocka_unit_test_setup_teardown(test_side_without_data_is_insufficient, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_new_endpoint_is_insufficient, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_old_samples_are_no_switch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_spurious_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_remembers_commits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_windows_without_counts_left_out, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_thin_endpoints_are_insufficient, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_endpoint_tags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_table_forgets_old_commits, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
