// SPDX-License-Identifier: MIT
/* The agent's HTTP endpoints (agent/handlers.c) served by the real HTTP
 * server on loopback and asked by the real client (util/http_get.h), over a
 * real SQLite history holding three windows: profiles from history and live
 * collections (a thread stands in for the agent loop and answers the live
 * queries), filters, the flame graph, group sums, deploy checks, health,
 * metrics, and the 400 of every bad query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent_state.h"
#include "agent/http_server.h"
#include "formats/pprof.h"
#include "util/clock.h"
#include "util/http_get.h"

static char dir[] = "/tmp/dynoprof-handlers-XXXXXX";
static struct agent_state st;
static struct http_server *server;
static int64_t t0; /* unix ns of the first stored window */
static pthread_t loop;
static volatile int loop_stop;

/* A window's profile: main;handle_X of pid 10 (/a) and 20 (/b). */
static struct profile *window_profile(void)
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

/* The agent loop's part in live queries: each gets one sample, then done. */
static void *fake_loop(void *arg)
{
	(void)arg;
	while (!loop_stop) {
		pthread_mutex_lock(&st.lock);
		for (struct live_query *q = st.queries; q; q = q->next) {
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
		pthread_cond_broadcast(&st.query_done);
		pthread_mutex_unlock(&st.lock);
		usleep(2000);
	}
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	char err[256], db[300];
	if (!mkdtemp(dir))
		return -1;
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.query_done, NULL);
	agent_config__defaults(&st.config);
	snprintf(db, sizeof(db), "%s/history.db", dir);
	st.store = store__open(db, NULL, err, sizeof(err));
	st.metrics = metrics__new(0);
	if (!st.store || !st.metrics)
		return -1;
	/* (the agent declares its families at start; the handler fills this one) */
	if (metrics__declare(st.metrics, "dynoprof_agent_http_connections_refused_total",
			     METRIC_COUNTER, "refused connections"))
		return -1;
	struct deploy_check_opts dopts = { 0 };
	st.deploys = deploy_checker__new(&dopts, st.store, st.metrics);
	if (!st.deploys)
		return -1;
	st.value_types[0][0] = "samples", st.value_types[0][1] = "count";
	st.value_types[1][0] = "cpu", st.value_types[1][1] = "nanoseconds";
	st.nvalue_types = 2;
	st.started_unix_ns = clock_ns(CLOCK_REALTIME);
	/* Three windows of 60 s, the last ending ten minutes ago. */
	t0 = (st.started_unix_ns / 1000000000 - 780) * 1000000000;
	struct profile *p = window_profile();
	char *blob = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&blob, &len);
	if (!mem || pprof__write(p, mem) || fclose(mem))
		return -1;
	struct store_group groups[] = {
		{ "shop", "abc", "/a", 3, 3000, 0, 10 },
		{ "shop", "abc", "/b", 3, 3000, 0, 5 },
	};
	for (int w = 0; w < 3; w++) {
		struct store_window sw = { .start_ns = t0 + w * 60000000000LL,
					   .end_ns = t0 + (w + 1) * 60000000000LL, .samples = 6,
					   .pprof_gz = blob, .pprof_len = len, .groups = groups,
					   .ngroups = 2 };
		if (store__put_window(st.store, &sw))
			return -1;
	}
	free(blob);
	profile__free(p);

	struct http_route routes[8];
	size_t n = agent_handlers__routes(&st, routes);
	struct http_server_opts o = { .address = "127.0.0.1", .port = 0 };
	server = http_server__start(&o, routes, n, err, sizeof(err));
	if (!server) {
		print_error("%s\n", err);
		return -1;
	}
	pthread_mutex_lock(&st.lock);
	st.http = server;
	pthread_mutex_unlock(&st.lock);
	return pthread_create(&loop, NULL, fake_loop, NULL) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	loop_stop = 1;
	pthread_join(loop, NULL);
	pthread_mutex_lock(&st.lock);
	st.stopping = true;
	st.http = NULL;
	pthread_mutex_unlock(&st.lock);
	http_server__stop(server);
	deploy_checker__free(st.deploys);
	metrics__free(st.metrics);
	store__close(st.store);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct strbuf body = STRBUF_INIT;

/* GETs path (with its query) from the agent; returns the status, the body
 * in `body`. */
static int get(const char *fmt, ...)
{
	char pathq[2048], url[2200], err[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pathq, sizeof(pathq), fmt, ap);
	va_end(ap);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", http_server__port(server), pathq);
	strbuf__release(&body);
	int status = http_get(url, NULL, 64 << 20, 20, &body, err, sizeof(err));
	if (status < 0)
		fail_msg("GET %s: %s", url, err);
	strbuf__puts(&body, ""); /* NUL-terminated */
	return status;
}

/* The pprof body as a profile. */
static struct profile *body_profile(void)
{
	struct profile *p = profile__new();
	char err[256];
	assert_non_null(p);
	if (pprof__read_buffer(p, body.data, body.len, err, sizeof(err)))
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

static void test_history_profiles(void **state)
{
	(void)state;
	long long from = SEC(t0), to = SEC(t0) + 180;
	assert_int_equal(get("/debug/pprof/profile?from=%lld&to=%lld", from, to), 200);
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
	assert_int_equal(get("/debug/pprof/profile?from=%lld&to=%lld&endpoint=/a", from, to), 200);
	p = body_profile();
	assert_int_equal(samples_of(p, NULL), 9);
	assert_int_equal(samples_of(p, "handle_b"), 0);
	profile__free(p);
	assert_int_equal(get("/debug/pprof/profile?from=%lld&to=%lld&tag.team=blue&service=shop",
			     from, from + 60), 200);
	p = body_profile();
	assert_int_equal(samples_of(p, "handle_b"), 3);
	assert_int_equal(samples_of(p, "handle_a"), 0);
	profile__free(p);
	assert_int_equal(get("/debug/pprof/profile?from=%lld&to=%lld&pid=10", from, to), 200);
	p = body_profile();
	assert_int_equal(samples_of(p, "handle_a"), 9);
	assert_int_equal(samples_of(p, "handle_b"), 0);
	profile__free(p);
	/* Nothing stored in the range: an empty profile with the value types. */
	assert_int_equal(get("/debug/pprof/profile?from=%lld&to=%lld", from - 600, from - 300), 200);
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
	assert_int_equal(get("/flamegraph?from=%s", iso), 200);
	if (strncmp(body.data, "<?xml", 5) || !strstr(body.data, "handle_a"))
		fail_msg("flame graph: %.200s", body.data);
}

static void test_live_profiles(void **state)
{
	(void)state;
	assert_int_equal(get("/debug/pprof/profile?seconds=0.1"), 200);
	struct profile *p = body_profile();
	assert_int_equal(samples_of(p, "live_fn"), 1);
	/* The exact CPU the query's samples carried, apportioned. */
	assert_int_equal(profile__sample(p, 0)->values[1], 700);
	profile__free(p);
	assert_int_equal(get("/flamegraph?seconds=0.1&endpoint=/a&pid=30"), 200);
	assert_non_null(strstr(body.data, "live_fn"));
}

static void test_groups_regressions_health_metrics(void **state)
{
	(void)state;
	long long from = SEC(t0), to = SEC(t0) + 180;
	assert_int_equal(get("/api/v1/groups?by=endpoint,commit&from=%lld&to=%lld&service=shop",
			     from, to), 200);
	if (!strstr(body.data, "/a") || !strstr(body.data, "abc"))
		fail_msg("groups: %s", body.data);
	assert_int_equal(get("/api/v1/groups?from=%lld", from), 200);
	assert_non_null(strstr(body.data, "/b"));
	assert_int_equal(get("/api/v1/regressions"), 200);
	assert_int_equal(body.data[0], '{');
	assert_int_equal(get("/healthz"), 200);
	/* Windows that cannot be stored: degraded. */
	pthread_mutex_lock(&st.lock);
	st.store_error = -ENOSPC;
	st.store_failing_since_ns = clock_ns(CLOCK_REALTIME) - 5000000000LL;
	st.store_failures = 2;
	pthread_mutex_unlock(&st.lock);
	assert_int_equal(get("/healthz"), 503);
	assert_non_null(strstr(body.data, "No space"));
	pthread_mutex_lock(&st.lock);
	st.store_error = 0;
	pthread_mutex_unlock(&st.lock);
	assert_int_equal(get("/metrics"), 200);
	assert_non_null(strstr(body.data, "dynoprof_agent_http_connections_refused_total{"
				"reason=\"busy\"} 0"));
	assert_int_equal(get("/metrics?x=1"), 400);
	assert_non_null(strstr(body.data, "takes no parameters"));
}

static void test_bad_queries(void **state)
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
		int status = get("%s", bad[i].query);
		if (status != 400 || !strstr(body.data, bad[i].says))
			fail_msg("%s: %d %s (want 400 %s)", bad[i].query, status, body.data,
				 bad[i].says);
	}
	/* Too many filters; a by list too long to be read whole. */
	char q[1024] = "/debug/pprof/profile?";
	for (int i = 0; i <= AGENT_MAX_FILTERS; i++)
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "%stag.k%d=x", i ? "&" : "", i);
	int status = get("%s", q);
	if (status != 400 || !strstr(body.data, "too many filters"))
		fail_msg("%d filters: %d %s", AGENT_MAX_FILTERS + 1, status, body.data);
	char by[300] = "/api/v1/groups?by=";
	for (int i = 0; i < 30; i++)
		strcat(by, "endpoint,");
	assert_int_equal(get("%s", by), 400);
	assert_non_null(strstr(body.data, "too long"));
	/* Shutting down: live queries end now. */
	pthread_mutex_lock(&st.lock);
	st.stopping = true;
	pthread_mutex_unlock(&st.lock);
	assert_int_equal(get("/debug/pprof/profile?seconds=1"), 503);
	pthread_mutex_lock(&st.lock);
	st.stopping = false;
	pthread_mutex_unlock(&st.lock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_history_profiles),
		cmocka_unit_test(test_live_profiles),
		cmocka_unit_test(test_groups_regressions_health_metrics),
		cmocka_unit_test(test_bad_queries),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);
	strbuf__release(&body);
	return rc;
}
