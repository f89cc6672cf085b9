// SPDX-License-Identifier: MIT
/* test_handlers.c - the agent's HTTP API (user/agent/handlers.c) served for
 * real: its route table (agent_handlers__routes) on the agent's HTTP server
 * on 127.0.0.1 (ephemeral port), over a struct agent_state holding a real
 * history (store__open on a temp SQLite file), a metrics registry and a
 * deploy checker, and no sampler. Two groups:
 *
 * "curl": requests are made with curl (curl_client.h); pprof bodies are read
 * by `go tool pprof`, /metrics by `promtool check metrics`, JSON by Python's
 * json module (scripts/deps.sh test installs them all). The history is two
 * windows stored with store__put_window(); every answer is checked against
 * what was stored. Live collection (?seconds=N) is answered by the agent
 * loop: a test thread plays its part (as agent.c's on_sample and
 * finish_queries do) to check the handler's side of that contract; the loop
 * itself is tested by the integration suite.
 *
 * "own_client": the agent's own HTTP client (util/http_get.h) over three
 * stored windows, with a thread standing in for the agent loop that answers
 * every live query: profiles from history and live, filters, the flame
 * graph, group sums, deploy checks, health, metrics, and the 400 of every
 * bad query.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/agent_state.h"
#include "agent/config.h"
#include "agent/deploy_check.h"
#include "agent/http_server.h"
#include "agent/metrics.h"
#include "agent/store.h"
#include "aggregate/apportion.h"
#include "formats/pprof.h"
#include "profile/profile.h"
#include "util/clock.h"
#include "util/http_get.h"
#include "util/strbuf.h"

#include "curl_client.h"

#define NS ((int64_t)1000000000)

/* ---- the agent state under test ---- */

struct fixture {
	char dir[64];                 /* temp dir of the database */
	struct agent_state st;        /* what the handlers see */
	struct http_server *server;   /* serving agent_handlers__routes() */
	char base[64];                /* "http://127.0.0.1:PORT" */
	int64_t t0;                   /* start of the first stored window, unix ns
				       * (whole seconds) */
	struct store *saved_store;    /* the fixture's history while a test serves
				       * another (use_other_store), else NULL */
};

static struct fixture fx;

/* curl with args (shell words); fails the test when curl did. */
static struct reply curl_ok(const char *args)
{
	struct reply r = finish_curl(start_curl(args));
	if (r.status < 0)
		fail_msg("curl %s failed", args);
	return r;
}

/* GET base + path_and_query; the URL is shell-quoted. */
static struct reply get(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct reply get(const char *fmt, ...)
{
	char path[1500], args[1700];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	snprintf(args, sizeof(args), "'%s%s'", fx.base, path);
	return curl_ok(args);
}

/* Expects status and exactly body (a one-line error message). */
static void expect_error(const char *path, int status, const char *body)
{
	struct reply r = get("%s", path);
	if (r.status != status || strcmp(r.body, body))
		fail_msg("GET %s: got %d '%s', want %d '%s'", path, r.status, r.body, status, body);
	expect_header(&r, "Content-Type", "text/plain; charset=utf-8");
	reply_free(&r);
}

/* One sample of a stored window. */
struct wsample {
	const char *leaf;       /* main -> leaf */
	const char *service, *commit, *endpoint; /* NULL: untagged */
	uint32_t pid;
	uint64_t samples, cpu_ns;
};

/* Stores the window [start, start + 60 s) holding samples, with its group
 * rows (requests = samples where an endpoint is known, else 0), the way the agent loop stores one. */
static void put_window(struct store *store, int64_t start, const struct wsample *ws, size_t n)
{
	struct profile *p = profile__new();
	struct store_group groups[8];
	uint64_t total = 0;
	assert_non_null(p);
	assert_true(n <= 8);
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	assert_true(profile__add_value_type(p, "cpu", "nanoseconds") >= 0);
	for (size_t i = 0; i < n; i++) {
		struct frame_desc root = { .kind = FRAME_NATIVE, .name = "main", .module = "/srv/app" };
		struct frame_desc leaf = { .kind = FRAME_NATIVE, .name = ws[i].leaf,
					   .module = "/srv/app" };
		uint32_t frames[2];
		assert_int_equal(profile__add_frame(p, &root, &frames[0]), 0);
		assert_int_equal(profile__add_frame(p, &leaf, &frames[1]), 0);
		const char *keys[3], *values[3];
		uint32_t nl = 0;
		if (ws[i].service)
			keys[nl] = "service", values[nl++] = ws[i].service;
		if (ws[i].commit)
			keys[nl] = "commit", values[nl++] = ws[i].commit;
		if (ws[i].endpoint)
			keys[nl] = "endpoint", values[nl++] = ws[i].endpoint;
		uint64_t v[2] = { ws[i].samples, ws[i].cpu_ns };
		struct sample_desc d = { .frames = frames, .nframes = 2, .pid = ws[i].pid,
					 .tid = ws[i].pid, .comm = "app", .label_keys = keys,
					 .label_values = values, .nlabels = nl, .values = v };
		assert_int_equal(profile__add_sample(p, &d), 0);
		groups[i] = (struct store_group){ ws[i].service, ws[i].commit, ws[i].endpoint,
						  ws[i].samples, ws[i].cpu_ns, 0,
						  ws[i].endpoint ? ws[i].samples : 0, NULL };
		total += ws[i].samples;
	}
	profile__set_time(p, start, 60 * NS);
	char *blob = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&blob, &len);
	assert_non_null(mem);
	assert_int_equal(pprof__write(p, mem), 0);
	assert_int_equal(fclose(mem), 0);
	profile__free(p);
	struct store_window w = { .start_ns = start, .end_ns = start + 60 * NS, .samples = total,
				  .pprof_gz = blob, .pprof_len = len, .groups = groups,
				  .ngroups = n };
	assert_int_equal(store__put_window(store, &w), 0);
	free(blob);
}

static int setup(void **state)
{
	char err[256] = "", path[128];
	(void)state;
	if (system("command -v curl go promtool >/dev/null 2>&1")) {
		fprintf(stderr, "curl, go and promtool are needed (scripts/deps.sh test)\n");
		return -1;
	}
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/dynoprof-handlers-XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(path, sizeof(path), "%s/history.db", fx.dir);
	struct agent_state *st = &fx.st;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->query_done, NULL);
	agent_config__defaults(&st->config);
	st->store = store__open(path, NULL, err, sizeof(err));
	st->metrics = metrics__new(0);
	if (!st->store || !st->metrics) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	struct deploy_check_opts dopts = { 0 };
	st->deploys = deploy_checker__new(&dopts, st->store, st->metrics);
	if (!st->deploys)
		return -1;
	metrics__declare(st->metrics, "dynoprof_agent_windows_total", METRIC_COUNTER,
			 "History windows stored.");
	metrics__declare(st->metrics, "dynoprof_agent_http_connections_refused_total",
			 METRIC_COUNTER, "HTTP connections refused, by reason.");
	st->value_types[0][0] = "samples", st->value_types[0][1] = "count";
	st->value_types[1][0] = "cpu", st->value_types[1][1] = "nanoseconds";
	st->nvalue_types = 2;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	st->started_unix_ns = (int64_t)now.tv_sec * NS + now.tv_nsec;

	/* Two windows, 20 and 19 minutes ago. */
	fx.t0 = ((int64_t)now.tv_sec - 1200) * NS;
	const struct wsample w1[] = {
		{ "handle_checkout", "shop", "c1", "/checkout", 100, 3, 3000000 },
		{ "handle_search", "shop", "c1", "/search", 200, 1, 1000000 },
	};
	const struct wsample w2[] = {
		{ "handle_checkout", "shop", "c2", "/checkout", 100, 5, 5000000 },
		{ "idle_loop", NULL, NULL, NULL, 300, 2, 2000000 },
	};
	put_window(st->store, fx.t0, w1, 2);
	put_window(st->store, fx.t0 + 60 * NS, w2, 2);
	metrics__add(st->metrics, "dynoprof_agent_windows_total", NULL, 0, 2);

	struct http_route routes[AGENT_MAX_ROUTES];
	size_t n = agent_handlers__routes(st, routes);
	struct http_server_opts opts = { .address = "127.0.0.1", .port = 0 };
	fx.server = http_server__start(&opts, routes, n, err, sizeof(err));
	if (!fx.server) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	pthread_mutex_lock(&st->lock);
	st->http = fx.server;
	pthread_mutex_unlock(&st->lock);
	snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", http_server__port(fx.server));
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	http_server__stop(fx.server);
	deploy_checker__free(fx.st.deploys);
	metrics__free(fx.st.metrics);
	store__close(fx.st.store);
	pthread_mutex_destroy(&fx.st.lock);
	pthread_cond_destroy(&fx.st.query_done);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers for the answers ---- */

/* Unix seconds of t0 + off_s, as text. */
static const char *unix_s(int64_t off_s, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRId64, fx.t0 / NS + off_s);
	return buf;
}

/* RFC 3339 of t0 + off_s: plus2 0 in UTC ("Z"), 1 at +02:00 URL-encoded
 * ("%2B02:00"), 2 at +02:00 with a raw '+' (a space once decoded, which the
 * agent takes too). */
static const char *rfc3339(int64_t off_s, int plus2, char *buf, size_t len)
{
	time_t t = (time_t)(fx.t0 / NS + off_s + (plus2 ? 7200 : 0));
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	strncat(buf, plus2 == 2 ? "+02:00" : plus2 ? "%2B02:00" : "Z", len - strlen(buf) - 1);
	return buf;
}

/* Per leaf function, the cpu and samples of a pprof body, as `go tool
 * pprof -traces` prints them (a real pprof client reads our bytes). */
struct by_leaf {
	uint64_t checkout, search, idle;   /* cpu ns whose leaf is handle_checkout, ... */
	int windows_labelled;              /* traces carrying a window label */
};

static struct by_leaf go_pprof(const struct reply *r)
{
	char file[] = "/tmp/dynoprof-handlers-pb-XXXXXX", cmd[256], line[512];
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r->body, r->body_len), (ssize_t)r->body_len);
	close(fd);
	/* -traces: each sample, its value (sample_index cpu) then its frames,
	 * leaf first, with labels. */
	snprintf(cmd, sizeof(cmd), "go tool pprof -traces -sample_index=cpu '%s' 2>&1", file);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	struct by_leaf out = { 0 };
	uint64_t value = 0;
	while (fgets(line, sizeof(line), f)) {
		char unit[16], fn[128];
		double v;
		if (strstr(line, "window:"))
			out.windows_labelled++;
		/* "       3ms   handle_checkout": the value, then the leaf */
		if (sscanf(line, " %lf%15s %127s", &v, unit, fn) == 3 && unit[0] &&
		    strchr("nmus", unit[0]) && !strstr(line, ":")) {
			double scale = !strcmp(unit, "ns") ? 1 : !strcmp(unit, "us") ? 1e3 :
				       !strcmp(unit, "ms") ? 1e6 : !strcmp(unit, "s") ? 1e9 : 0;
			assert_true(scale > 0);
			value = (uint64_t)(v * scale + 0.5);
			if (!strcmp(fn, "handle_checkout"))
				out.checkout += value;
			else if (!strcmp(fn, "handle_search"))
				out.search += value;
			else if (!strcmp(fn, "idle_loop"))
				out.idle += value;
			else
				fail_msg("unexpected leaf in: %s", line);
		}
	}
	assert_int_equal(pclose(f), 0);
	unlink(file);
	return out;
}

/* The body is valid JSON (Python's json module reads it). */
static void expect_json(const struct reply *r)
{
	char file[] = "/tmp/dynoprof-handlers-json-XXXXXX", cmd[256];
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r->body, r->body_len), (ssize_t)r->body_len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "
		 "'%s'", file);
	int rc = system(cmd);
	unlink(file);
	if (rc)
		fail_msg("not JSON:\n%s", r->body);
}

/* ---- /debug/pprof/profile and /flamegraph from history ---- */

static void test_history_profile(void **state)
{
	(void)state;
	char from[64], to[64];
	struct reply r = get("/debug/pprof/profile?from=%s&to=%s", unix_s(0, from, 64),
			     unix_s(120, to, 64));
	assert_int_equal(r.status, 200);
	expect_header(&r, "Content-Type", "application/octet-stream");
	expect_header(&r, "Content-Disposition", "attachment; filename=\"profile.pb.gz\"");
	struct by_leaf b = go_pprof(&r);
	assert_int_equal(b.checkout, 8000000);
	assert_int_equal(b.search, 1000000);
	assert_int_equal(b.idle, 2000000);
	/* Each stored window stays a cluster: its samples carry window=START. */
	assert_true(b.windows_labelled >= 4);
	reply_free(&r);

	/* Our own reader agrees, and sees the window labels' values. */
	r = get("/debug/pprof/profile?from=%s&to=%s", unix_s(0, from, 64), unix_s(120, to, 64));
	struct profile *p = profile__new();
	char err[128] = "";
	assert_int_equal(pprof__read_buffer(p, r.body, r.body_len, err, sizeof(err)), 0);
	int cpu = profile__find_value(p, "cpu");
	assert_true(cpu >= 0);
	assert_int_equal(profile__total(p, (size_t)cpu), 11000000);
	char w1[32], w2[32];
	unix_s(0, w1, sizeof(w1));
	unix_s(60, w2, sizeof(w2));
	int seen1 = 0, seen2 = 0;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const char *w = profile__sample_label(p, profile__sample(p, i), "window");
		assert_non_null(w);
		seen1 |= !strcmp(w, w1);
		seen2 |= !strcmp(w, w2);
	}
	assert_true(seen1 && seen2);
	profile__free(p);
	reply_free(&r);

	/* RFC 3339, UTC and with an offset: the second window only. */
	r = get("/debug/pprof/profile?from=%s&to=%s", rfc3339(60, 0, from, 64),
		rfc3339(120, 1, to, 64));
	assert_int_equal(r.status, 200);
	b = go_pprof(&r);
	assert_int_equal(b.checkout, 5000000);
	assert_int_equal(b.search, 0);
	assert_int_equal(b.idle, 2000000);
	reply_free(&r);

	/* An unencoded '+' arrives as a space: still the offset. */
	r = get("/debug/pprof/profile?from=%s&to=%s", rfc3339(60, 2, from, 64),
		rfc3339(120, 2, to, 64));
	assert_int_equal(r.status, 200);
	b = go_pprof(&r);
	assert_int_equal(b.checkout + b.search + b.idle, 7000000);
	reply_free(&r);

	/* from alone: up to now. */
	r = get("/debug/pprof/profile?from=%s", unix_s(0, from, 64));
	assert_int_equal(r.status, 200);
	b = go_pprof(&r);
	assert_int_equal(b.checkout + b.search + b.idle, 11000000);
	reply_free(&r);
	/* to alone: the hour before it. */
	r = get("/debug/pprof/profile?to=%s", unix_s(60, to, 64));
	assert_int_equal(r.status, 200);
	b = go_pprof(&r);
	assert_int_equal(b.checkout + b.search + b.idle, 4000000);
	reply_free(&r);
}

static void test_history_selectors(void **state)
{
	(void)state;
	char from[64], to[64];
	unix_s(0, from, 64);
	unix_s(120, to, 64);
	const struct {
		const char *selector;
		uint64_t checkout, search, idle;
	} cases[] = {
		{ "endpoint=/checkout", 8000000, 0, 0 },
		{ "service=shop&commit=c1", 3000000, 1000000, 0 },
		{ "tag.commit=c2", 5000000, 0, 0 },
		{ "pid=300", 0, 0, 2000000 },
		{ "pid=100&endpoint=/search", 0, 0, 0 },
		{ "endpoint=/nowhere", 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct reply r = get("/debug/pprof/profile?from=%s&to=%s&%s", from, to,
				     cases[i].selector);
		assert_int_equal(r.status, 200);
		struct by_leaf b = go_pprof(&r);
		if (b.checkout != cases[i].checkout || b.search != cases[i].search ||
		    b.idle != cases[i].idle)
			fail_msg("%s: checkout %" PRIu64 " search %" PRIu64 " idle %" PRIu64,
				 cases[i].selector, b.checkout, b.search, b.idle);
		reply_free(&r);
	}

	/* An empty range still answers a profile, with the value types. */
	struct reply r = get("/debug/pprof/profile?from=%s&to=%s", unix_s(-600, from, 64),
			     unix_s(-300, to, 64));
	assert_int_equal(r.status, 200);
	struct profile *p = profile__new();
	char err[128];
	assert_int_equal(pprof__read_buffer(p, r.body, r.body_len, err, sizeof(err)), 0);
	assert_int_equal(profile__sample_count(p), 0);
	assert_true(profile__find_value(p, "cpu") >= 0);
	assert_int_equal(profile__start_ns(p), fx.t0 - 600 * NS);
	assert_int_equal(profile__duration_ns(p), 300 * NS);
	profile__free(p);
	reply_free(&r);
}

static void test_flamegraph(void **state)
{
	(void)state;
	char from[64], to[64];
	struct reply r = get("/flamegraph?from=%s&to=%s&endpoint=/checkout", unix_s(0, from, 64),
			     unix_s(120, to, 64));
	assert_int_equal(r.status, 200);
	expect_header(&r, "Content-Type", "image/svg+xml");
	assert_non_null(strstr(r.body, "<svg"));
	assert_non_null(strstr(r.body, "handle_checkout"));
	assert_null(strstr(r.body, "handle_search"));
	reply_free(&r);

	expect_error("/flamegraph?from=x", 400,
		     "bad time 'x': use unix seconds or RFC 3339 (2026-11-22T01:00:00Z)\n");
}

/* ---- parameter errors of the profile routes ---- */

static void test_profile_parameter_errors(void **state)
{
	(void)state;
	char from[64], to[64], path[512];
	unix_s(0, from, 64);
	unix_s(120, to, 64);

	expect_error("/debug/pprof/profile?foo=1", 400,
		     "unknown parameter 'foo': use seconds, from, to, pid, service, endpoint, "
		     "commit or tag.KEY\n");
	expect_error("/debug/pprof/profile?tag.=x", 400,
		     "unknown parameter 'tag.': use seconds, from, to, pid, service, endpoint, "
		     "commit or tag.KEY\n");
	const char *bad_pids[] = { "abc", "0", "-1", "12x", "2147483648", "" };
	for (size_t i = 0; i < sizeof(bad_pids) / sizeof(bad_pids[0]); i++) {
		char want[128];
		snprintf(path, sizeof(path), "/debug/pprof/profile?from=%s&pid=%s", from,
			 bad_pids[i]);
		snprintf(want, sizeof(want), "bad pid '%s': a positive process id\n", bad_pids[i]);
		expect_error(path, 400, want);
	}
	snprintf(path, sizeof(path), "/debug/pprof/profile?seconds=5&from=%s", from);
	expect_error(path, 400, "seconds and from/to exclude each other\n");
	snprintf(path, sizeof(path), "/debug/pprof/profile?to=%s&seconds=5", to);
	expect_error(path, 400, "seconds and from/to exclude each other\n");

	const char *bad_seconds[] = { "abc", "0", "-1", "301", "1e2", "nan", "" };
	for (size_t i = 0; i < sizeof(bad_seconds) / sizeof(bad_seconds[0]); i++) {
		char want[128];
		snprintf(path, sizeof(path), "/debug/pprof/profile?seconds=%s", bad_seconds[i]);
		snprintf(want, sizeof(want), "bad seconds '%s': a number > 0 and <= 300\n",
			 bad_seconds[i]);
		expect_error(path, 400, want);
	}

	const char *bad_times[] = { "yesterday", "2026-13-01T00:00:00Z", "1700000000x", "-5",
				    "2262-04-12T00:00:00Z" };
	for (size_t i = 0; i < sizeof(bad_times) / sizeof(bad_times[0]); i++) {
		char want[160];
		snprintf(want, sizeof(want), "bad time '%s': use unix seconds or RFC 3339 "
			 "(2026-11-22T01:00:00Z)\n", bad_times[i]);
		snprintf(path, sizeof(path), "/debug/pprof/profile?from=%s&to=%s", bad_times[i], to);
		expect_error(path, 400, want);
		/* A bad to is named, not the good from. */
		snprintf(path, sizeof(path), "/debug/pprof/profile?from=%s&to=%s", from, bad_times[i]);
		expect_error(path, 400, want);
	}

	snprintf(path, sizeof(path), "/debug/pprof/profile?from=%s&to=%s", to, from);
	expect_error(path, 400, "from must be before to\n");
	snprintf(path, sizeof(path), "/debug/pprof/profile?from=%s&to=%s", from, from);
	expect_error(path, 400, "from must be before to\n");
	/* Longer than max_query_range (7 days by default). */
	snprintf(path, sizeof(path), "/debug/pprof/profile?from=%" PRId64 "&to=%s",
		 fx.t0 / NS - 8 * 86400, from);
	expect_error(path, 400, "range of 691200 s is longer than max_query_range (604800 s)\n");

	/* At most 16 filters. */
	struct strbuf url = STRBUF_INIT;
	strbuf__printf(&url, "/debug/pprof/profile?from=%s", from);
	for (int i = 0; i < 17; i++)
		strbuf__printf(&url, "&tag.k%d=v", i);
	expect_error(strbuf__str(&url), 400, "too many filters (at most 16)\n");
	/* A tag key over 127 bytes is refused for what it is. */
	strbuf__reset(&url);
	strbuf__printf(&url, "/debug/pprof/profile?from=%s&tag.", from);
	for (int i = 0; i < 128; i++)
		strbuf__putc(&url, 'k');
	strbuf__puts(&url, "=v");
	expect_error(strbuf__str(&url), 400, "tag key 'kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk...' is "
		     "too long (at most 127 bytes)\n");
	/* 127 bytes is a key like any other. */
	strbuf__reset(&url);
	strbuf__printf(&url, "/debug/pprof/profile?from=%s&tag.", from);
	for (int i = 0; i < 127; i++)
		strbuf__putc(&url, 'k');
	strbuf__puts(&url, "=v");
	struct reply r = get("%s", strbuf__str(&url));
	assert_int_equal(r.status, 200);
	reply_free(&r);
	strbuf__release(&url);
}

/* What the agent's server itself refuses before a handler runs, on these
 * routes. */
static void test_server_level_errors(void **state)
{
	(void)state;
	char from[64], path[256];
	unix_s(0, from, 64);
	snprintf(path, sizeof(path), "/debug/pprof/profile?from=%s&from=%s", from, from);
	expect_error(path, 400, "query parameter 'from' is given twice\n");
	expect_error("/api/v1/groups?by=endpoint&by=commit", 400,
		     "query parameter 'by' is given twice\n");
	expect_error("/nope", 404, "not found: /nope; try /metrics, /debug/pprof/profile, "
		     "/flamegraph, /api/v1/groups, /api/v1/regressions, /healthz, /, /ui/web.js, "
		     "/ui/web.css, /api/v1/flamegraph, /api/v1/timeseries, /api/v1/compare\n");

	/* A value over 4096 bytes. */
	struct strbuf url = STRBUF_INIT;
	strbuf__puts(&url, "/api/v1/groups?endpoint=");
	for (int i = 0; i < 4097; i++)
		strbuf__putc(&url, 'e');
	char config[] = "/tmp/dynoprof-handlers-curl-XXXXXX";
	int fd = mkstemp(config);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "url = \"%s%s\"\n", fx.base, strbuf__str(&url));
	fclose(f);
	char args[128];
	snprintf(args, sizeof(args), "-K %s", config);
	struct reply r = curl_ok(args);
	unlink(config);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body,
			    "query parameter 'endpoint' is too long (at most 4096 bytes)\n");
	reply_free(&r);
	strbuf__release(&url);
}

/* Live collection needs the agent loop; while the agent shuts down it
 * answers at once. */
static void test_live_while_stopping(void **state)
{
	(void)state;
	pthread_mutex_lock(&fx.st.lock);
	fx.st.stopping = true;
	pthread_mutex_unlock(&fx.st.lock);
	expect_error("/debug/pprof/profile?seconds=1", 503, "the agent is shutting down\n");
	/* No parameter: the default 30 s live collection. */
	expect_error("/debug/pprof/profile", 503, "the agent is shutting down\n");
	expect_error("/flamegraph?seconds=0.5&endpoint=/checkout", 503,
		     "the agent is shutting down\n");
	pthread_mutex_lock(&fx.st.lock);
	fx.st.stopping = false;
	assert_null(fx.st.queries);
	pthread_mutex_unlock(&fx.st.lock);
}

/* What the stand-in for the agent loop saw of a live query, and does. */
struct loop_standin {
	pthread_t thread;
	int fail;                  /* end the query with -EIO instead of a sample */
	uint32_t pid;              /* the query's pid filter */
	size_t nfilters;           /* its label filters */
	char filter[64];           /* the first one, "key=value" */
	double seconds;            /* its end, seconds from when it was seen */
	int seen;                  /* a query was registered within 10 s */
};

/* Plays the agent loop's part in a live query (agent.c's on_sample and
 * finish_queries): waits for the handler to register it, adds one sample of
 * pid 4242 weighing 3 ms whose process ran 7 ms (exact CPU), ends it. */
static void *loop_standin(void *arg)
{
	struct loop_standin *ls = arg;
	struct agent_state *st = &fx.st;
	for (int i = 0; i < 10000 && !ls->seen; i++) {
		pthread_mutex_lock(&st->lock);
		struct live_query *q = st->queries;
		if (q) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			ls->seen = 1;
			ls->pid = q->pid;
			ls->nfilters = q->nfilters;
			if (q->nfilters)
				snprintf(ls->filter, sizeof(ls->filter), "%s=%s", q->filters[0].key,
					 q->filters[0].value);
			ls->seconds = (q->end_mono_ns - ((int64_t)now.tv_sec * NS + now.tv_nsec)) / 1e9;
			if (ls->fail) {
				q->error = -EIO;
			} else {
				struct frame_desc d = { .kind = FRAME_NATIVE, .name = "live_work",
							.module = "/srv/app" };
				uint32_t frame;
				uint64_t v[2] = { 1, 3000000 };
				const char *k[] = { "endpoint" }, *val[] = { "/live" };
				q->error = profile__add_frame(q->profile, &d, &frame);
				struct sample_desc sd = { .frames = &frame, .nframes = 1, .pid = 4242,
							  .tid = 4242, .comm = "app", .label_keys = k,
							  .label_values = val, .nlabels = 1, .values = v };
				if (!q->error)
					q->error = profile__add_sample(q->profile, &sd);
				if (!q->error)
					q->error = cpu_totals__add_sample(q->exact_cpu, 4242, 7000000);
			}
			q->done = true;
			pthread_cond_broadcast(&st->query_done);
		}
		pthread_mutex_unlock(&st->lock);
		usleep(1000);
	}
	return NULL;
}

static void start_standin(struct loop_standin *ls, int fail)
{
	memset(ls, 0, sizeof(*ls));
	ls->fail = fail;
	assert_int_equal(pthread_create(&ls->thread, NULL, loop_standin, ls), 0);
}

/* Live collection: the handler registers its query with the loop, waits for
 * it, and answers what the loop gathered, each process's CPU apportioned to
 * its exact total. */
static void test_live_collection(void **state)
{
	(void)state;
	struct loop_standin ls;
	start_standin(&ls, 0);
	struct reply r = get("/debug/pprof/profile?seconds=120&pid=4242&endpoint=/live");
	pthread_join(ls.thread, NULL);
	assert_true(ls.seen);
	assert_int_equal(r.status, 200);
	assert_int_equal(ls.pid, 4242);
	assert_int_equal(ls.nfilters, 1);
	assert_string_equal(ls.filter, "endpoint=/live");
	assert_true(ls.seconds > 100 && ls.seconds <= 120);
	/* The sample weighed 3 ms; its process ran 7 ms: the answer says 7 ms. */
	char file[] = "/tmp/dynoprof-handlers-live-XXXXXX", cmd[256], line[256];
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r.body, r.body_len), (ssize_t)r.body_len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "go tool pprof -top -sample_index=cpu '%s' 2>&1", file);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	int found = 0;
	while (fgets(line, sizeof(line), f))
		found |= strstr(line, "live_work") && strstr(line, "7ms");
	assert_int_equal(pclose(f), 0);
	unlink(file);
	assert_true(found);
	reply_free(&r);
	/* The query is gone from the loop's list. */
	pthread_mutex_lock(&fx.st.lock);
	assert_null(fx.st.queries);
	pthread_mutex_unlock(&fx.st.lock);

	/* The default is 30 s; a failed collection is a 500 with the reason. */
	start_standin(&ls, 1);
	r = get("/flamegraph");
	pthread_join(ls.thread, NULL);
	assert_true(ls.seen);
	assert_true(ls.seconds > 20 && ls.seconds <= 30);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.body, "collecting failed: Input/output error\n");
	reply_free(&r);
}

/* `agent --help` lists every route, from the route table. */
static void test_describe_routes(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	agent__describe_routes(out);
	assert_int_equal(fclose(out), 0);
	struct http_route routes[AGENT_MAX_ROUTES];
	size_t n = agent_handlers__routes(&fx.st, routes);
	assert_int_equal(n, 12);
	for (size_t i = 0; i < n; i++) {
		char want[64];
		snprintf(want, sizeof(want), "  GET %-24s ", routes[i].path);
		if (!strstr(text, want))
			fail_msg("no '%s' in:\n%s", want, text);
	}
	/* Continuation lines are indented under the description. */
	assert_non_null(strstr(text, "\n                               "));
	free(text);
}

/* ---- /api/v1/groups ---- */

static void test_groups(void **state)
{
	(void)state;
	char from[64], to[64];
	unix_s(0, from, 64);
	unix_s(120, to, 64);
	struct reply r = get("/api/v1/groups?from=%s&to=%s", from, to);
	assert_int_equal(r.status, 200);
	expect_header(&r, "Content-Type", "application/json");
	expect_json(&r);
	char head[192];
	snprintf(head, sizeof(head), "{\"from\": %s.000, \"to\": %s.000, \"groups\": [", from, to);
	assert_true(!strncmp(r.body, head, strlen(head)));
	assert_non_null(strstr(r.body, "{\"endpoint\": \"/checkout\", \"samples\": 8, \"cpu_ns\": "
				       "8000000, \"instructions\": 0, \"requests\": 8, "
				       "\"cpu_ns_per_request\": 1000000.0}"));
	assert_non_null(strstr(r.body, "{\"endpoint\": \"/search\", \"samples\": 1, \"cpu_ns\": "
				       "1000000, \"instructions\": 0, \"requests\": 1, "
				       "\"cpu_ns_per_request\": 1000000.0}"));
	/* Untagged reads "-"; no requests, no per-request figure. */
	assert_non_null(strstr(r.body, "{\"endpoint\": \"-\", \"samples\": 2, \"cpu_ns\": "
				       "2000000, \"instructions\": 0, \"requests\": 0}"));
	reply_free(&r);

	/* by= in the order asked. */
	r = get("/api/v1/groups?by=commit,endpoint&from=%s&to=%s", from, to);
	assert_int_equal(r.status, 200);
	expect_json(&r);
	assert_non_null(strstr(r.body, "{\"commit\": \"c1\", \"endpoint\": \"/checkout\", "
				       "\"samples\": 3,"));
	assert_non_null(strstr(r.body, "{\"commit\": \"c2\", \"endpoint\": \"/checkout\", "
				       "\"samples\": 5,"));
	reply_free(&r);

	/* Filters; "-" selects the untagged. */
	r = get("/api/v1/groups?by=service&service=-&from=%s&to=%s", from, to);
	assert_int_equal(r.status, 200);
	expect_json(&r);
	assert_non_null(strstr(r.body, "{\"service\": \"-\", \"samples\": 2,"));
	assert_null(strstr(r.body, "shop"));
	reply_free(&r);
	r = get("/api/v1/groups?by=service&commit=c2&from=%s&to=%s", from, to);
	assert_non_null(strstr(r.body, "{\"service\": \"shop\", \"samples\": 5,"));
	reply_free(&r);

	/* RFC 3339 and the default range (the hour up to now): both windows. */
	r = get("/api/v1/groups?by=service&from=%s", rfc3339(0, 1, from, 64));
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "{\"service\": \"shop\", \"samples\": 9,"));
	reply_free(&r);
	r = get("/api/v1/groups?by=service");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "{\"service\": \"shop\", \"samples\": 9,"));
	reply_free(&r);

	/* Nothing in range: an empty list. */
	r = get("/api/v1/groups?from=%s&to=%s", unix_s(-600, from, 64), unix_s(-300, to, 64));
	assert_int_equal(r.status, 200);
	expect_json(&r);
	assert_non_null(strstr(r.body, "\"groups\": [\n]}\n"));
	reply_free(&r);
}

static void test_groups_errors(void **state)
{
	(void)state;
	char from[64], to[64], path[512];
	unix_s(0, from, 64);
	unix_s(120, to, 64);
	expect_error("/api/v1/groups?pid=1", 400,
		     "unknown parameter 'pid': use by, from, to, service, commit, endpoint, "
		     "tag.KEY\n");
	expect_error("/api/v1/groups?tag.commit=c1", 400,
		     "bad parameter 'tag.commit': service, commit and endpoint are filtered with "
		     "service=, commit=, endpoint= (window is no tag)\n");

	struct strbuf many = STRBUF_INIT;
	strbuf__puts(&many, "/api/v1/groups?by=service");
	for (int i = 0; i <= AGENT_MAX_FILTERS; i++)
		strbuf__printf(&many, "&tag.k%d=v", i);
	expect_error(strbuf__str(&many), 400, "too many filters (at most 16)\n");
	strbuf__release(&many);
	const char *bad_by[] = { "host", "endpoint,commit,service,endpoint", "endpoint,endpoint",
				 "commit,service,commit", "", ",", "endpoint,,host" };
	for (size_t i = 0; i < sizeof(bad_by) / sizeof(bad_by[0]); i++) {
		char want[160];
		snprintf(path, sizeof(path), "/api/v1/groups?by=%s", bad_by[i]);
		snprintf(want, sizeof(want), "bad by '%s': a list of service, commit, endpoint, "
			 "each at most once\n", bad_by[i]);
		expect_error(path, 400, want);
	}
	/* Refused, not cut, when over 127 bytes. */
	struct strbuf url = STRBUF_INIT;
	strbuf__puts(&url, "/api/v1/groups?by=endpoint");
	while (url.len < 200)
		strbuf__puts(&url, ",endpoint");
	expect_error(strbuf__str(&url), 400,
		     "by is too long (at most 127 bytes): a list of service, commit, endpoint\n");
	strbuf__release(&url);
	expect_error("/api/v1/groups?from=soon", 400, "bad time: use unix seconds or RFC 3339\n");
	expect_error("/api/v1/groups?to=later", 400, "bad time: use unix seconds or RFC 3339\n");
	snprintf(path, sizeof(path), "/api/v1/groups?from=%s&to=%s", to, from);
	expect_error(path, 400, "bad range: from must be before to, and the range at most "
		     "max_query_range (604800 s)\n");
	snprintf(path, sizeof(path), "/api/v1/groups?from=%" PRId64 "&to=%s",
		 fx.t0 / NS - 8 * 86400, from);
	expect_error(path, 400, "bad range: from must be before to, and the range at most "
		     "max_query_range (604800 s)\n");
}

/* ---- /api/v1/regressions, /metrics, /healthz ---- */

static void test_regressions(void **state)
{
	(void)state;
	struct reply r = get("/api/v1/regressions");
	assert_int_equal(r.status, 200);
	expect_header(&r, "Content-Type", "application/json");
	assert_string_equal(r.body, "{\"checks\": [\n]}\n");
	expect_json(&r);
	reply_free(&r);

	/* Results stored by the deploy checker are listed, newest first. */
	int64_t now = fx.st.started_unix_ns;
	assert_int_equal(store__put_check(fx.st.store, now - NS,
					  "{\"service\": \"shop\", \"verdict\": \"regression\"}"), 0);
	assert_int_equal(store__put_check(fx.st.store, now,
					  "{\"service\": \"shop\", \"verdict\": \"improvement\"}"), 0);
	r = get("/api/v1/regressions");
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{\"checks\": [\n"
				    "  {\"service\": \"shop\", \"verdict\": \"improvement\"},\n"
				    "  {\"service\": \"shop\", \"verdict\": \"regression\"}\n]}\n");
	expect_json(&r);
	reply_free(&r);

	expect_error("/api/v1/regressions?service=shop", 400,
		     "/api/v1/regressions takes no parameters\n");
}

static void test_metrics(void **state)
{
	(void)state;
	struct reply r = get("/metrics");
	assert_int_equal(r.status, 200);
	expect_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	assert_non_null(strstr(r.body, "\ndynoprof_agent_windows_total 2\n"));
	/* The server's refusal counts are copied in at each scrape. */
	const char *reasons[] = { "head_timeout", "head_too_large", "evicted", "busy", "fd_limit" };
	for (size_t i = 0; i < 5; i++) {
		char want[128];
		snprintf(want, sizeof(want),
			 "\ndynoprof_agent_http_connections_refused_total{reason=\"%s\"} 0\n",
			 reasons[i]);
		if (!strstr(r.body, want))
			fail_msg("no %s in:\n%s", want + 1, r.body);
	}
	/* Prometheus's own checker reads it. */
	char file[] = "/tmp/dynoprof-handlers-metrics-XXXXXX", cmd[128];
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, r.body, r.body_len), (ssize_t)r.body_len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", file);
	int rc = system(cmd);
	unlink(file);
	assert_int_equal(rc, 0);
	reply_free(&r);

	expect_error("/metrics?format=json", 400, "/metrics takes no parameters\n");
}

static void test_healthz(void **state)
{
	(void)state;
	struct reply r = get("/healthz");
	assert_int_equal(r.status, 200);
	expect_header(&r, "Content-Type", "application/json");
	expect_json(&r);
	assert_true(!strncmp(r.body, "{\"status\": \"ok\", \"uptime_s\": ", 29));
	assert_non_null(strstr(r.body, "\"windows\": 2, \"database_bytes\": "));
	assert_non_null(strstr(r.body, "\"store_failures\": 0}\n"));
	reply_free(&r);

	/* Windows cannot be stored (disk full): degraded, with the reason. */
	pthread_mutex_lock(&fx.st.lock);
	fx.st.store_error = -ENOSPC;
	fx.st.store_failing_since_ns = fx.st.started_unix_ns - 90 * NS;
	fx.st.store_failures = 3;
	pthread_mutex_unlock(&fx.st.lock);
	r = get("/healthz");
	assert_int_equal(r.status, 503);
	expect_json(&r);
	assert_true(!strncmp(r.body, "{\"status\": \"degraded\", \"reason\": \"storing history "
				     "windows fails since ", 70));
	assert_non_null(strstr(r.body, " s ago: No space left on device\", \"uptime_s\": "));
	assert_non_null(strstr(r.body, "\"store_failures\": 3}\n"));
	reply_free(&r);

	/* Stored again: ok. */
	pthread_mutex_lock(&fx.st.lock);
	fx.st.store_error = 0;
	pthread_mutex_unlock(&fx.st.lock);
	r = get("/healthz");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"status\": \"ok\""));
	reply_free(&r);
}

/* Serves another history, in the fixture's dir, for a test that needs its
 * own windows (no request is in flight); restore_store() puts the fixture's
 * back, even when the test failed. */
static struct store *use_other_store(const char *name)
{
	char path[128], err[256] = "";
	snprintf(path, sizeof(path), "%s/%s", fx.dir, name);
	struct store *s = store__open(path, NULL, err, sizeof(err));
	if (!s)
		fail_msg("%s", err);
	fx.saved_store = fx.st.store;
	fx.st.store = s;
	return s;
}

static int restore_store(void **state)
{
	(void)state;
	if (fx.saved_store) {
		store__close(fx.st.store);
		fx.st.store = fx.saved_store;
		fx.saved_store = NULL;
	}
	return 0;
}

/* Tag values are kept up to 1023 bytes each (TAG_TEXT_MAX): a group whose
 * three values are long is listed like any other, not left out. */
static void test_groups_long_values(void **state)
{
	(void)state;
	char service[1024], commit[1024], endpoint[1024];
	memset(service, 's', sizeof(service) - 1);
	memset(commit, 'c', sizeof(commit) - 1);
	memset(endpoint, 'e', sizeof(endpoint) - 1);
	service[1023] = commit[1023] = endpoint[1023] = '\0';
	endpoint[0] = '/';
	struct store *other = use_other_store("long.db");
	const struct wsample w[] = {
		{ "handle_checkout", service, commit, endpoint, 100, 4, 4000000 },
		{ "handle_search", "shop", "c1", "/search", 200, 1, 1000000 },
	};
	put_window(other, fx.t0, w, 2);

	char from[32], to[32];
	struct reply r = get("/api/v1/groups?by=service,commit,endpoint&from=%s&to=%s",
			     unix_s(0, from, sizeof(from)), unix_s(60, to, sizeof(to)));
	assert_int_equal(r.status, 200);
	expect_json(&r);
	struct strbuf want = STRBUF_INIT;
	strbuf__printf(&want, "{\"service\": \"%s\", \"commit\": \"%s\", \"endpoint\": \"%s\", "
		       "\"samples\": 4,", service, commit, endpoint);
	if (!strstr(r.body, strbuf__str(&want)))
		fail_msg("the long group is missing:\n%.300s", r.body);
	assert_non_null(strstr(r.body, "{\"service\": \"shop\", \"commit\": \"c1\", "
				       "\"endpoint\": \"/search\", \"samples\": 1,"));
	strbuf__release(&want);
	reply_free(&r);
}

/* tag.KEY filters /api/v1/groups and /api/v1/timeseries by the groups'
 * other tags: the CPU and the requests of the matching groups only; "-"
 * selects the groups without the tag. */
static void test_groups_tag_filter(void **state)
{
	(void)state;
	struct store *other = use_other_store("tagged.db");
	struct store_group g[] = {
		{ "shop", "c1", "/a", 4, 4000000, 0, 4, "{\"flag\":\"on\",\"region\":\"eu\"}" },
		{ "shop", "c1", "/a", 6, 3000000, 0, 3, "{\"flag\":\"off\",\"region\":\"eu\"}" },
		{ "shop", "c1", "/b", 2, 1000000, 0, 2, NULL },
	};
	struct store_window w = { .start_ns = fx.t0, .end_ns = fx.t0 + 60 * NS, .samples = 12,
				  .groups = g, .ngroups = 3 };
	assert_int_equal(store__put_window(other, &w), 0);
	char from[32], to[32];
	unix_s(0, from, sizeof(from));
	unix_s(60, to, sizeof(to));

	struct reply r = get("/api/v1/groups?by=endpoint&tag.flag=on&from=%s&to=%s", from, to);
	assert_int_equal(r.status, 200);
	expect_json(&r);
	assert_non_null(strstr(r.body, "[\n  {\"endpoint\": \"/a\", \"samples\": 4, \"cpu_ns\": "
				       "4000000, \"instructions\": 0, \"requests\": 4, "
				       "\"cpu_ns_per_request\": 1000000.0}\n]"));
	reply_free(&r);
	/* Both tags must hold; the other tags are summed away without a filter. */
	r = get("/api/v1/groups?by=endpoint&tag.region=eu&tag.flag=off&from=%s&to=%s", from, to);
	assert_non_null(strstr(r.body, "[\n  {\"endpoint\": \"/a\", \"samples\": 6,"));
	reply_free(&r);
	r = get("/api/v1/groups?by=endpoint&from=%s&to=%s", from, to);
	assert_non_null(strstr(r.body, "{\"endpoint\": \"/a\", \"samples\": 10,"));
	reply_free(&r);
	r = get("/api/v1/groups?by=endpoint&tag.region=-&from=%s&to=%s", from, to);
	assert_non_null(strstr(r.body, "[\n  {\"endpoint\": \"/b\", \"samples\": 2,"));
	assert_null(strstr(r.body, "/a"));
	reply_free(&r);
	r = get("/api/v1/groups?by=endpoint&tag.flag=maybe&from=%s&to=%s", from, to);
	assert_non_null(strstr(r.body, "\"groups\": [\n]"));
	reply_free(&r);
	/* Timeseries: the same selection. */
	r = get("/api/v1/timeseries?by=endpoint&buckets=1&tag.flag=on&from=%s&to=%s", from, to);
	assert_int_equal(r.status, 200);
	expect_json(&r);
	assert_non_null(strstr(r.body, "{\"endpoint\": \"/a\", \"samples\": [4], "
				       "\"cpu_ns\": [4000000]"));
	assert_null(strstr(r.body, "/b"));
	reply_free(&r);
}

/* A stored window that does not decode is left out of a history answer;
 * the others are still merged. */
static void test_damaged_window_is_skipped(void **state)
{
	(void)state;
	struct store *other = use_other_store("damaged.db");
	const struct wsample w[] = {
		{ "handle_search", "shop", "c1", "/search", 200, 1, 1000000 },
	};
	put_window(other, fx.t0, w, 1);
	static const char junk[] = "\x1f\x8b this is not a gzipped pprof";
	struct store_window bad = { .start_ns = fx.t0 + 60 * NS, .end_ns = fx.t0 + 120 * NS,
				    .samples = 5, .pprof_gz = junk, .pprof_len = sizeof(junk) };
	assert_int_equal(store__put_window(other, &bad), 0);
	char from[32], to[32];
	struct reply r = get("/debug/pprof/profile?from=%s&to=%s", unix_s(0, from, sizeof(from)),
			     unix_s(120, to, sizeof(to)));
	assert_int_equal(r.status, 200);
	struct by_leaf b = go_pprof(&r);
	assert_int_equal(b.search, 1000000);
	assert_int_equal(b.checkout + b.idle, 0);
	reply_free(&r);
}

/* A history whose profile pages are damaged on disk (a disk fault): a
 * history profile is refused with a 500 saying reading failed, never
 * answered with part of the windows; the group sums (other pages) still
 * answer. */
static void test_unreadable_history_is_500(void **state)
{
	(void)state;
	char path[128], err[256] = "";
	snprintf(path, sizeof(path), "%s/unreadable.db", fx.dir);
	struct store *s = store__open(path, NULL, err, sizeof(err));
	if (!s)
		fail_msg("%s", err);
	static unsigned char blob[200 << 10];
	for (size_t i = 0; i < sizeof(blob); i++)
		blob[i] = (unsigned char)(i * 2654435761u >> 13);
	struct store_group g = { "shop", "c1", "/search", 1, 1000000, 0, 1, NULL };
	for (int i = 0; i < 6; i++) {
		struct store_window w = { .start_ns = fx.t0 + i * 10 * NS,
					  .end_ns = fx.t0 + (i + 1) * 10 * NS, .samples = 1,
					  .pprof_gz = blob, .pprof_len = sizeof(blob), .groups = &g,
					  .ngroups = 1 };
		assert_int_equal(store__put_window(s, &w), 0);
	}
	store__close(s);
	/* Junk over the second half of the file: later windows' profile bytes. */
	FILE *f = fopen(path, "r+");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	static char junk[4096];
	memset(junk, 0xa5, sizeof(junk));
	for (long off = size / 2 / 4096 * 4096; off < size; off += 4096) {
		assert_int_equal(fseek(f, off, SEEK_SET), 0);
		assert_int_equal(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	}
	assert_int_equal(fclose(f), 0);

	use_other_store("unreadable.db");
	char from[32], to[32];
	unix_s(0, from, sizeof(from));
	unix_s(60, to, sizeof(to));
	char path_q[128];
	snprintf(path_q, sizeof(path_q), "/debug/pprof/profile?from=%s&to=%s", from, to);
	expect_error(path_q, 500, "reading history failed: Input/output error\n");
	snprintf(path_q, sizeof(path_q), "/flamegraph?from=%s&to=%s", from, to);
	expect_error(path_q, 500, "reading history failed: Input/output error\n");
	struct reply r = get("/api/v1/groups?from=%s&to=%s", from, to);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"endpoint\": \"/search\""));
	reply_free(&r);
}

/* A range holding more windows than one query merges (20000) is refused
 * with the count, not answered in part. */
static void test_query_over_window_limit(void **state)
{
	(void)state;
	char path[128];
	struct store *many = use_other_store("many.db");
	/* One-second windows over the last 6 hours (within the 7-day retention). */
	int64_t first = fx.t0 - 6 * 3600 * NS;
	for (int64_t i = 0; i < 20001; i++) {
		struct store_window w = { .start_ns = first + i * NS, .end_ns = first + (i + 1) * NS,
					  .samples = 1 };
		assert_int_equal(store__put_window(many, &w), 0);
	}
	char from[32], to[32], want[256];
	snprintf(from, sizeof(from), "%" PRId64, first / NS);
	snprintf(to, sizeof(to), "%" PRId64, first / NS + 20001);
	snprintf(path, sizeof(path), "/debug/pprof/profile?from=%s&to=%s", from, to);
	snprintf(want, sizeof(want), "the range holds 20001 windows, more than the 20000 one "
		 "query merges: ask for a shorter from/to (or several)\n");
	expect_error(path, 400, want);
	snprintf(path, sizeof(path), "/flamegraph?from=%s&to=%s", from, to);
	expect_error(path, 400, want);
	/* 20000 are merged. */
	struct reply r = get("/debug/pprof/profile?from=%s&to=%" PRId64, from, first / NS + 20000);
	assert_int_equal(r.status, 200);
	reply_free(&r);
}

/* ---- the agent's own client (util/http_get.h), a loop answering every query ---- */

static char own_dir[] = "/tmp/dynoprof-handlers-XXXXXX";
static struct agent_state own_st;
static struct http_server *own_server;
static int64_t own_t0; /* unix ns of the first stored window */
static pthread_t own_loop;
static volatile int own_loop_stop;

/* A window's profile: main;handle_X of pid 10 (/a) and 20 (/b). */
static struct profile *own_window_profile(void)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	const char *eps[] = { "/a", "/b" };
	for (int i = 0; i < 2; i++) {
		uint32_t f[2];
		struct frame_desc root = { .kind = FRAME_NATIVE, .name = "main" };
		struct frame_desc leaf = { .kind = FRAME_NATIVE, .name = i ? "handle_b" : "handle_a" };
		assert_int_equal(profile__add_frame(p, &root, &f[0]), 0);
		assert_int_equal(profile__add_frame(p, &leaf, &f[1]), 0);
		const char *keys[] = { "service", "commit", "endpoint", "team" };
		const char *vals[] = { "shop", "abc", eps[i], i ? "blue" : "red" };
		uint64_t v[2] = { 3, 3000 };
		struct sample_desc s = { .frames = f, .nframes = 2, .pid = 10 + 10 * (uint32_t)i,
					 .tid = 10, .comm = "app", .label_keys = keys,
					 .label_values = vals, .nlabels = 4, .values = v };
		assert_int_equal(profile__add_sample(p, &s), 0);
	}
	return p;
}

/* The agent loop's part in live queries (own_client group): each gets one
 * sample, then done. */
static void *answer_every_query(void *arg)
{
	(void)arg;
	while (!own_loop_stop) {
		pthread_mutex_lock(&own_st.lock);
		for (struct live_query *q = own_st.queries; q; q = q->next) {
			if (q->done)
				continue;
			uint32_t f;
			struct frame_desc d = { .kind = FRAME_NATIVE, .name = "live_fn" };
			uint64_t v[2] = { 1, 500 };
			struct sample_desc s = { .frames = &f, .nframes = 1, .pid = 30, .tid = 30,
						 .comm = "live", .values = v };
			q->error = profile__add_frame(q->profile, &d, &f);
			if (!q->error)
				q->error = profile__add_sample(q->profile, &s);
			if (!q->error)
				q->error = cpu_totals__add_sample(q->exact_cpu, 30, 700);
			q->done = true;
		}
		pthread_cond_broadcast(&own_st.query_done);
		pthread_mutex_unlock(&own_st.lock);
		usleep(2000);
	}
	return NULL;
}

static int own_setup(void **state)
{
	(void)state;
	char err[256], db[300];
	if (!mkdtemp(own_dir))
		return -1;
	pthread_mutex_init(&own_st.lock, NULL);
	pthread_cond_init(&own_st.query_done, NULL);
	agent_config__defaults(&own_st.config);
	snprintf(db, sizeof(db), "%s/history.db", own_dir);
	own_st.store = store__open(db, NULL, err, sizeof(err));
	own_st.metrics = metrics__new(0);
	if (!own_st.store || !own_st.metrics)
		return -1;
	/* (the agent declares its families at start; the handler fills this one) */
	if (metrics__declare(own_st.metrics, "dynoprof_agent_http_connections_refused_total",
			     METRIC_COUNTER, "refused connections"))
		return -1;
	struct deploy_check_opts dopts = { 0 };
	own_st.deploys = deploy_checker__new(&dopts, own_st.store, own_st.metrics);
	if (!own_st.deploys)
		return -1;
	own_st.value_types[0][0] = "samples", own_st.value_types[0][1] = "count";
	own_st.value_types[1][0] = "cpu", own_st.value_types[1][1] = "nanoseconds";
	own_st.nvalue_types = 2;
	own_st.started_unix_ns = clock_ns(CLOCK_REALTIME);
	/* Three windows of 60 s, the last ending ten minutes ago. */
	own_t0 = (own_st.started_unix_ns / 1000000000 - 780) * 1000000000;
	struct profile *p = own_window_profile();
	char *blob = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&blob, &len);
	if (!mem || pprof__write(p, mem) || fclose(mem))
		return -1;
	struct store_group groups[] = {
		{ "shop", "abc", "/a", 3, 3000, 0, 10, NULL },
		{ "shop", "abc", "/b", 3, 3000, 0, 5, NULL },
	};
	for (int w = 0; w < 3; w++) {
		struct store_window sw = { .start_ns = own_t0 + w * 60000000000LL,
					   .end_ns = own_t0 + (w + 1) * 60000000000LL, .samples = 6,
					   .pprof_gz = blob, .pprof_len = len, .groups = groups,
					   .ngroups = 2 };
		if (store__put_window(own_st.store, &sw))
			return -1;
	}
	free(blob);
	profile__free(p);

	struct http_route routes[AGENT_MAX_ROUTES];
	size_t n = agent_handlers__routes(&own_st, routes);
	struct http_server_opts o = { .address = "127.0.0.1", .port = 0 };
	own_server = http_server__start(&o, routes, n, err, sizeof(err));
	if (!own_server) {
		print_error("%s\n", err);
		return -1;
	}
	pthread_mutex_lock(&own_st.lock);
	own_st.http = own_server;
	pthread_mutex_unlock(&own_st.lock);
	return pthread_create(&own_loop, NULL, answer_every_query, NULL) ? -1 : 0;
}

static int own_teardown(void **state)
{
	(void)state;
	own_loop_stop = 1;
	pthread_join(own_loop, NULL);
	pthread_mutex_lock(&own_st.lock);
	own_st.stopping = true;
	own_st.http = NULL;
	pthread_mutex_unlock(&own_st.lock);
	http_server__stop(own_server);
	deploy_checker__free(own_st.deploys);
	metrics__free(own_st.metrics);
	store__close(own_st.store);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", own_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct strbuf own_body = STRBUF_INIT;

/* GETs path (with its query) from the agent with util/http_get.h; returns
 * the status, the body in own_body. */
static int own_get(const char *fmt, ...)
{
	char pathq[2048], url[2200], err[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pathq, sizeof(pathq), fmt, ap);
	va_end(ap);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", http_server__port(own_server), pathq);
	strbuf__release(&own_body);
	int status = http_get(url, NULL, 64 << 20, 20, &own_body, err, sizeof(err));
	if (status < 0)
		fail_msg("GET %s: %s", url, err);
	strbuf__puts(&own_body, ""); /* NUL-terminated */
	return status;
}

/* The pprof body as a profile. */
static struct profile *body_profile(void)
{
	struct profile *p = profile__new();
	char err[256];
	assert_non_null(p);
	if (pprof__read_buffer(p, own_body.data, own_body.len, err, sizeof(err)))
		fail_msg("not a profile: %s", err);
	return p;
}

static uint64_t samples_of(const struct profile *p, const char *leaf)
{
	uint64_t n = 0;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		const struct profile_frame *f = profile__frame(p, s->frames[s->nframes - 1]);
		if (!leaf || !strcmp(profile__str(p, f->name), leaf))
			n += s->values[0];
	}
	return n;
}

#define SEC(ns) ((long long)((ns) / 1000000000))

static void test_own_client_history(void **state)
{
	(void)state;
	long long from = SEC(own_t0), to = SEC(own_t0) + 180;
	assert_int_equal(own_get("/debug/pprof/profile?from=%lld&to=%lld", from, to), 200);
	struct profile *p = body_profile();
	assert_int_equal(samples_of(p, "handle_a"), 9);
	assert_int_equal(samples_of(p, "handle_b"), 9);
	/* Each stored window stays a cluster: labelled with its start. */
	char w0[24];
	snprintf(w0, sizeof(w0), "%lld", from);
	int seen_w0 = 0;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const char *w = profile__sample_label(p, profile__sample(p, i), "window");
		assert_non_null(w);
		seen_w0 |= !strcmp(w, w0);
	}
	assert_true(seen_w0);
	profile__free(p);
	/* Filters: label parameters, tag.K, pid; a range with one window. */
	assert_int_equal(own_get("/debug/pprof/profile?from=%lld&to=%lld&endpoint=/a", from, to), 200);
	p = body_profile();
	assert_int_equal(samples_of(p, NULL), 9);
	assert_int_equal(samples_of(p, "handle_b"), 0);
	profile__free(p);
	assert_int_equal(own_get("/debug/pprof/profile?from=%lld&to=%lld&tag.team=blue&service=shop",
			     from, from + 60), 200);
	p = body_profile();
	assert_int_equal(samples_of(p, "handle_b"), 3);
	assert_int_equal(samples_of(p, "handle_a"), 0);
	profile__free(p);
	assert_int_equal(own_get("/debug/pprof/profile?from=%lld&to=%lld&pid=10", from, to), 200);
	p = body_profile();
	assert_int_equal(samples_of(p, "handle_a"), 9);
	assert_int_equal(samples_of(p, "handle_b"), 0);
	profile__free(p);
	/* Nothing stored in the range: an empty profile with the value types. */
	assert_int_equal(own_get("/debug/pprof/profile?from=%lld&to=%lld", from - 600, from - 300), 200);
	p = body_profile();
	assert_int_equal(profile__sample_count(p), 0);
	assert_int_equal(profile__value_count(p), 2);
	profile__free(p);
	/* The flame graph of the same selection; RFC 3339 times. */
	char iso[64];
	time_t tf = (time_t)from;
	struct tm tm;
	gmtime_r(&tf, &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	assert_int_equal(own_get("/flamegraph?from=%s", iso), 200);
	if (strncmp(own_body.data, "<?xml", 5) || !strstr(own_body.data, "handle_a"))
		fail_msg("flame graph: %.200s", own_body.data);
}

static void test_own_client_live(void **state)
{
	(void)state;
	assert_int_equal(own_get("/debug/pprof/profile?seconds=0.1"), 200);
	struct profile *p = body_profile();
	assert_int_equal(samples_of(p, "live_fn"), 1);
	/* The exact CPU the query's samples carried, apportioned. */
	assert_int_equal(profile__sample(p, 0)->values[1], 700);
	profile__free(p);
	assert_int_equal(own_get("/flamegraph?seconds=0.1&endpoint=/a&pid=30"), 200);
	assert_non_null(strstr(own_body.data, "live_fn"));
}

static void test_own_client_groups_health_metrics(void **state)
{
	(void)state;
	long long from = SEC(own_t0), to = SEC(own_t0) + 180;
	assert_int_equal(own_get("/api/v1/groups?by=endpoint,commit&from=%lld&to=%lld&service=shop",
			     from, to), 200);
	if (!strstr(own_body.data, "/a") || !strstr(own_body.data, "abc"))
		fail_msg("groups: %s", own_body.data);
	assert_int_equal(own_get("/api/v1/groups?from=%lld", from), 200);
	assert_non_null(strstr(own_body.data, "/b"));
	assert_int_equal(own_get("/api/v1/regressions"), 200);
	assert_int_equal(own_body.data[0], '{');
	assert_int_equal(own_get("/healthz"), 200);
	/* Windows that cannot be stored: degraded. */
	pthread_mutex_lock(&own_st.lock);
	own_st.store_error = -ENOSPC;
	own_st.store_failing_since_ns = clock_ns(CLOCK_REALTIME) - 5000000000LL;
	own_st.store_failures = 2;
	pthread_mutex_unlock(&own_st.lock);
	assert_int_equal(own_get("/healthz"), 503);
	assert_non_null(strstr(own_body.data, "No space"));
	pthread_mutex_lock(&own_st.lock);
	own_st.store_error = 0;
	pthread_mutex_unlock(&own_st.lock);
	assert_int_equal(own_get("/metrics"), 200);
	assert_non_null(strstr(own_body.data, "dynoprof_agent_http_connections_refused_total{"
				"reason=\"busy\"} 0"));
	assert_int_equal(own_get("/metrics?x=1"), 400);
	assert_non_null(strstr(own_body.data, "takes no parameters"));
}

static void test_own_client_bad_queries(void **state)
{
	(void)state;
	static const struct {
		const char *query;
		const char *says;
	} bad[] = {
		{ "/debug/pprof/profile?color=red", "unknown parameter 'color'" },
		{ "/debug/pprof/profile?pid=0", "bad pid" },
		{ "/debug/pprof/profile?pid=12x", "bad pid" },
		{ "/debug/pprof/profile?seconds=1&from=1", "exclude each other" },
		{ "/debug/pprof/profile?seconds=-1", "bad seconds" },
		{ "/debug/pprof/profile?seconds=100000", "bad seconds" },
		{ "/debug/pprof/profile?from=yesterday", "bad time 'yesterday'" },
		{ "/debug/pprof/profile?to=tomorrow", "bad time 'tomorrow'" },
		{ "/debug/pprof/profile?from=2000&to=1000", "from must be before to" },
		{ "/debug/pprof/profile?from=1000&to=100000000", "longer than max_query_range" },
		{ "/flamegraph?tag.=x", "unknown parameter" },
		{ "/api/v1/groups?color=red", "unknown parameter 'color'" },
		{ "/api/v1/groups?by=pid", "bad by 'pid'" },
		{ "/api/v1/groups?by=endpoint,commit,service,endpoint", "bad by" },
		{ "/api/v1/groups?from=noon", "bad time" },
		{ "/api/v1/groups?from=2000&to=1000", "bad range" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int status = own_get("%s", bad[i].query);
		if (status != 400 || !strstr(own_body.data, bad[i].says))
			fail_msg("%s: %d %s (want 400 %s)", bad[i].query, status, own_body.data,
				 bad[i].says);
	}
	/* Too many filters; a by list too long to be read whole. */
	char q[1024] = "/debug/pprof/profile?";
	for (int i = 0; i <= AGENT_MAX_FILTERS; i++)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "%stag.k%d=x", i ? "&" : "", i);
	int status = own_get("%s", q);
	if (status != 400 || !strstr(own_body.data, "too many filters"))
		fail_msg("%d filters: %d %s", AGENT_MAX_FILTERS + 1, status, own_body.data);
	char by[300] = "/api/v1/groups?by=";
	for (int i = 0; i < 30; i++)
		strcat(by, "endpoint,");
	assert_int_equal(own_get("%s", by), 400);
	assert_non_null(strstr(own_body.data, "too long"));
	/* Shutting down: live queries end now. */
	pthread_mutex_lock(&own_st.lock);
	own_st.stopping = true;
	pthread_mutex_unlock(&own_st.lock);
	assert_int_equal(own_get("/debug/pprof/profile?seconds=1"), 503);
	pthread_mutex_lock(&own_st.lock);
	own_st.stopping = false;
	pthread_mutex_unlock(&own_st.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_history_profile),
		cmocka_unit_test(test_history_selectors),
		cmocka_unit_test(test_flamegraph),
		cmocka_unit_test(test_profile_parameter_errors),
		cmocka_unit_test(test_server_level_errors),
		cmocka_unit_test(test_live_while_stopping),
		cmocka_unit_test(test_live_collection),
		cmocka_unit_test(test_describe_routes),
		cmocka_unit_test(test_groups),
		cmocka_unit_test_teardown(test_groups_long_values, restore_store),
		cmocka_unit_test(test_groups_errors),
		cmocka_unit_test_teardown(test_groups_tag_filter, restore_store),
		cmocka_unit_test(test_regressions),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_healthz),
		cmocka_unit_test_teardown(test_damaged_window_is_skipped, restore_store),
		cmocka_unit_test_teardown(test_unreadable_history_is_500, restore_store),
		cmocka_unit_test_teardown(test_query_over_window_limit, restore_store),
	};
	const struct CMUnitTest own_client[] = {
		cmocka_unit_test(test_own_client_history),
		cmocka_unit_test(test_own_client_live),
		cmocka_unit_test(test_own_client_groups_health_metrics),
		cmocka_unit_test(test_own_client_bad_queries),
	};
	int rc = cmocka_run_group_tests_name("curl", tests, setup, teardown);
	rc |= cmocka_run_group_tests_name("own_client", own_client, own_setup, own_teardown);
	strbuf__release(&own_body);
	return rc;
}
