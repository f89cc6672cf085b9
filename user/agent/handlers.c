// SPDX-License-Identifier: MIT
/* The agent's HTTP endpoints: /metrics, /debug/pprof/profile, /flamegraph,
 * /api/v1/groups, /healthz. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/agent_state.h"
#include "agent/http_server.h"
#include "agent/query.h"
#include "agent/web.h"
#include "formats/pprof.h"
#include "formats/svg.h"
#include "profile/transform.h"
#include "util/hashmap.h"
#include "util/clock.h"

/* Parses the parameters shared by /debug/pprof/profile and /flamegraph.
 * extra: additional allowed parameter names (NULL-terminated) or NULL.
 * Returns 0, or sets a 400 on r and returns -EINVAL. */
static int parse_selection(struct agent_state *st, const struct http_query *q,
			   const char *const *extra, struct selection *sel, struct http_response *r)
{
	static const char *const label_params[] = { "service", "endpoint", "commit" };
	double max_s, default_s = 30;
	int64_t max_range_s;
	pthread_mutex_lock(&st->lock);
	max_s = st->config.max_query_s;
	max_range_s = st->config.max_range_s;
	pthread_mutex_unlock(&st->lock);
	memset(sel, 0, sizeof(*sel));

	for (size_t i = 0; i < http_query__count(q); i++) {
		const char *name = http_query__name(q, i), *value = http_query__value(q, i);
		int known = !strcmp(name, "seconds") || !strcmp(name, "from") || !strcmp(name, "to") ||
			    !strcmp(name, "pid");
		for (size_t k = 0; extra && extra[k] && !known; k++)
			known = !strcmp(name, extra[k]);
		for (size_t k = 0; k < 3 && !known; k++)
			if (!strcmp(name, label_params[k])) {
				known = 1;
				if (agent_query__add_filter(sel, name, value, r))
					return -EINVAL;
			}
		if (!known && !strncmp(name, "tag.", 4) && name[4]) {
			known = 1;
			if (agent_query__add_filter(sel, name + 4, value, r))
				return -EINVAL;
		}
		if (!known) {
			http_response__error(r, 400, "unknown parameter '%s': use seconds, from, to, "
					     "pid, service, endpoint, commit or tag.KEY", name);
			return -EINVAL;
		}
	}
	const char *seconds = http_query__get(q, "seconds"), *from = http_query__get(q, "from");
	const char *to = http_query__get(q, "to"), *pid = http_query__get(q, "pid");
	if (pid) {
		char *end;
		errno = 0;
		long v = strtol(pid, &end, 10);
		if (errno || *end || end == pid || v <= 0 || v > INT32_MAX) {
			http_response__error(r, 400, "bad pid '%s': a positive process id", pid);
			return -EINVAL;
		}
		sel->pid = (uint32_t)v;
	}
	if (seconds && (from || to)) {
		http_response__error(r, 400, "seconds and from/to exclude each other");
		return -EINVAL;
	}
	if (!from && !to) {
		if (seconds && http_parse_seconds(seconds, max_s, &sel->seconds)) {
			http_response__error(r, 400, "bad seconds '%s': a number > 0 and <= %g",
					     seconds, max_s);
			return -EINVAL;
		}
		if (!seconds)
			sel->seconds = default_s < max_s ? default_s : max_s;
		return 0;
	}
	if ((from && http_parse_time(from, &sel->from_ns)) ||
	    (to && http_parse_time(to, &sel->to_ns))) {
		http_response__error(r, 400, "bad time '%s': use unix seconds or RFC 3339 "
				     "(2026-11-22T01:00:00Z)", from && http_parse_time(from, &sel->from_ns)
				     ? from : to);
		return -EINVAL;
	}
	if (!to)
		sel->to_ns = clock_ns(CLOCK_REALTIME);
	if (!from)
		sel->from_ns = sel->to_ns - (int64_t)DEFAULT_RANGE_S * 1000000000;
	if (sel->from_ns >= sel->to_ns) {
		http_response__error(r, 400, "from must be before to");
		return -EINVAL;
	}
	if ((sel->to_ns - sel->from_ns) / 1000000000 > max_range_s) {
		http_response__error(r, 400, "range of %" PRId64 " s is longer than max_query_range "
				     "(%" PRId64 " s)", (sel->to_ns - sel->from_ns) / 1000000000,
				     max_range_s);
		return -EINVAL;
	}
	return 0;
}

/* Collects a live profile: registers a query and waits for the loop. */
static struct profile *collect_live(struct agent_state *st, const struct selection *sel,
				    struct http_response *r)
{
	struct live_query *q = calloc(1, sizeof(*q));
	if (!q || !(q->profile = profile__new()) || !(q->exact_cpu = cpu_totals__new())) {
		if (q)
			profile__free(q->profile);
		free(q);
		http_response__error(r, 500, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < st->nvalue_types; i++)
		profile__add_value_type(q->profile, st->value_types[i][0], st->value_types[i][1]);
	memcpy(q->filters, sel->filters, sizeof(q->filters));
	q->nfilters = sel->nfilters;
	q->pid = sel->pid;
	int64_t start = clock_ns(CLOCK_REALTIME);
	q->end_mono_ns = clock_ns(CLOCK_MONOTONIC) + (int64_t)(sel->seconds * 1e9);

	pthread_mutex_lock(&st->lock);
	if (st->stopping) {
		pthread_mutex_unlock(&st->lock);
		profile__free(q->profile);
		cpu_totals__free(q->exact_cpu);
		free(q);
		http_response__error(r, 503, "the agent is shutting down");
		return NULL;
	}
	q->next = st->queries;
	st->queries = q;
	while (!q->done)
		pthread_cond_wait(&st->query_done, &st->lock);
	for (struct live_query **pp = &st->queries; *pp; pp = &(*pp)->next)
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	pthread_mutex_unlock(&st->lock);

	struct profile *p = q->profile;
	int err = q->error;
	if (!err) /* the query's value types are the windows': "cpu" among them */
		err = cpu_totals__apportion(q->exact_cpu, p);
	cpu_totals__free(q->exact_cpu);
	free(q);
	if (err) {
		profile__free(p);
		http_response__error(r, 500, "collecting failed: %s", strerror(-err));
		return NULL;
	}
	profile__set_time(p, start, clock_ns(CLOCK_REALTIME) - start);
	return p;
}

struct history_ctx {
	struct profile *result;          /* merged profile */
	const struct selection *sel;
	int error;
};

static int merge_window(void *ctx, int64_t start_ns, int64_t end_ns, const void *blob,
			size_t len)
{
	struct history_ctx *hc = ctx;
	(void)end_ns;
	/* Each stored window stays a cluster for `dynoprof diff`. */
	char window[24];
	snprintf(window, sizeof(window), "%" PRId64, start_ns / 1000000000);
	struct label_filter extra = { "window", window };
	struct profile *w = profile__new();
	char err[128];
	if (!w)
		return hc->error = -ENOMEM;
	/* Stored windows are gzipped pprof: read them like a file. */
	FILE *f = fmemopen((void *)blob, len, "rb");
	int e = f ? pprof__read(w, f, err, sizeof(err)) : -errno;
	if (f)
		fclose(f);
	if (!e)
		e = profile__merge(hc->result, w, hc->sel->filters, hc->sel->nfilters, hc->sel->pid,
				   &extra);
	profile__free(w);
	if (e == -ENOMEM)
		return hc->error = e;
	return 0; /* a damaged window is skipped, not fatal */
}

static struct profile *collect_history(struct agent_state *st, const struct selection *sel,
				       struct http_response *r)
{
	struct history_ctx hc = { .result = profile__new(), .sel = sel };
	if (!hc.result) {
		http_response__error(r, 500, "out of memory");
		return NULL;
	}
	int e = store__foreach_window(st->store, sel->from_ns, sel->to_ns, MAX_QUERY_WINDOWS,
				      merge_window, &hc);
	if (e == -E2BIG) {
		int64_t n = 0;
		store__count_range(st->store, sel->from_ns, sel->to_ns, &n);
		profile__free(hc.result);
		http_response__error(r, 400, "the range holds %" PRId64 " windows, more than the "
				     "%d one query merges: ask for a shorter from/to (or "
				     "several)", n, MAX_QUERY_WINDOWS);
		return NULL;
	}
	if (e < 0 || hc.error) {
		profile__free(hc.result);
		http_response__error(r, 500, "reading history failed: %s",
				     strerror(-(hc.error ? hc.error : e)));
		return NULL;
	}
	if (profile__value_count(hc.result) == 0)
		for (size_t i = 0; i < st->nvalue_types; i++)
			profile__add_value_type(hc.result, st->value_types[i][0],
						st->value_types[i][1]);
	profile__set_time(hc.result, sel->from_ns, sel->to_ns - sel->from_ns);
	return hc.result;
}

static struct profile *select_profile(struct agent_state *st, const struct http_query *q,
				      const char *const *extra, struct http_response *r)
{
	struct selection sel;
	if (parse_selection(st, q, extra, &sel, r))
		return NULL;
	return sel.seconds > 0 ? collect_live(st, &sel, r) : collect_history(st, &sel, r);
}

static void handle_profile(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct agent_state *st = ctx;
	struct profile *p = select_profile(ctx, q, NULL, r);
	if (!p)
		return;
	/* Who answered: `dynoprof diff` over many agents clusters by host x
	 * window and names hosts by it (config `host`, fixed at start). */
	char host_comment[96];
	snprintf(host_comment, sizeof(host_comment), "dynoprof.host=%s", st->config.host);
	if (profile__add_comment(p, host_comment)) {
		profile__free(p);
		http_response__error(r, 500, "out of memory");
		return;
	}
	char *blob = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&blob, &len);
	int e = mem ? pprof__write(p, mem) : -errno;
	if (mem && fclose(mem) && !e)
		e = -EIO;
	profile__free(p);
	if (e) {
		free(blob);
		http_response__error(r, 500, "encoding pprof failed: %s", strerror(-e));
		return;
	}
	strbuf__append(&r->body, blob, len);
	free(blob);
	r->content_type = "application/octet-stream";
	r->content_disposition = "attachment; filename=\"profile.pb.gz\"";
}

static void handle_flamegraph(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct profile *p = select_profile(ctx, q, NULL, r);
	if (!p)
		return;
	char *svg = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&svg, &len);
	struct svg_opts so = { .title = "dynoprof agent" };
	int e = mem ? svg__write(p, mem, &so) : -errno;
	if (mem && fclose(mem) && !e)
		e = -EIO;
	profile__free(p);
	if (e) {
		free(svg);
		http_response__error(r, 500, "rendering failed: %s", strerror(-e));
		return;
	}
	strbuf__append(&r->body, svg, len);
	free(svg);
	r->content_type = "image/svg+xml";
}

struct profile *agent_query__profile(struct agent_state *st, const struct http_query *q,
				     const char *const *extra, struct http_response *r)
{
	return select_profile(st, q, extra, r);
}

struct profile *agent_query__history(struct agent_state *st, const struct selection *sel,
				     struct http_response *r)
{
	return collect_history(st, sel, r);
}

/* The server counts its refusals itself; they are copied in at each scrape. */
static void export_http_refusals(struct agent_state *st)
{
	struct http_server_stats hs;
	pthread_mutex_lock(&st->lock);
	http_server__stats(st->http, &hs); /* zeros until the server is known */
	pthread_mutex_unlock(&st->lock);
	const struct {
		const char *reason;
		uint64_t n;
	} counts[] = { { "head_timeout", hs.head_timeout }, { "head_too_large", hs.head_too_large },
		       { "evicted", hs.evicted }, { "busy", hs.busy }, { "fd_limit", hs.fd_limit } };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct metric_label l = { "reason", counts[i].reason };
		metrics__set(st->metrics, "dynoprof_agent_http_connections_refused_total", &l, 1,
			     (double)counts[i].n);
	}
}

static void handle_metrics(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct agent_state *st = ctx;
	if (http_query__count(q)) {
		http_response__error(r, 400, "/metrics takes no parameters");
		return;
	}
	export_http_refusals(st);
	if (metrics__render(st->metrics, &r->body)) {
		http_response__error(r, 500, "rendering metrics failed");
		return;
	}
	r->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void handle_healthz(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct agent_state *st = ctx;
	(void)q;
	int64_t bytes = 0, windows = 0, oldest = 0, since;
	uint64_t failures;
	int store_error;
	store__stats(st->store, &bytes, &windows, &oldest);
	pthread_mutex_lock(&st->lock);
	store_error = st->store_error;
	since = st->store_failing_since_ns;
	failures = st->store_failures;
	pthread_mutex_unlock(&st->lock);
	/* Degraded while windows cannot be stored: history is being lost. */
	if (store_error) {
		char reason[256];
		snprintf(reason, sizeof(reason), "storing history windows fails since %.0f s ago: %s",
			 (clock_ns(CLOCK_REALTIME) - since) / 1e9, strerror(-store_error));
		r->status = 503;
		strbuf__puts(&r->body, "{\"status\": \"degraded\", \"reason\": ");
		strbuf__json_string(&r->body, reason);
		strbuf__puts(&r->body, ", ");
	} else {
		strbuf__puts(&r->body, "{\"status\": \"ok\", ");
	}
	strbuf__printf(&r->body, "\"uptime_s\": %.0f, \"host\": ",
		       (clock_ns(CLOCK_REALTIME) - st->started_unix_ns) / 1e9);
	strbuf__json_string(&r->body, st->config.host);
	strbuf__printf(&r->body, ", \"windows\": %" PRId64 ", \"database_bytes\": %" PRId64
		       ", \"store_failures\": %" PRIu64 "}\n", windows, bytes, failures);
	r->content_type = "application/json";
}

/* /api/v1/groups: sums per requested keys over the stored windows. */
struct group_acc {
	uint64_t samples, cpu_ns, instructions, requests;
	char *values[3];
};

struct groups_ctx {
	struct hashmap *acc;      /* joined key -> struct group_acc* */
	struct group_query gq;    /* what is selected */
	int error;                /* -ENOMEM */
};

static int on_group(void *ctx, const struct store_group *g)
{
	struct groups_ctx *gc = ctx;
	const char *vals[3];
	struct strbuf key = STRBUF_INIT;
	struct group_acc *a = NULL;
	if (!agent_query__group_key(&gc->gq, g, vals, &key) &&
	    !(a = hashmap__get(gc->acc, strbuf__str(&key), key.len))) {
		a = calloc(1, sizeof(*a));
		if (a && hashmap__put(gc->acc, strbuf__str(&key), key.len, a, NULL)) {
			free(a);
			a = NULL;
		}
		for (size_t i = 0; a && i < gc->gq.nby; i++)
			a->values[i] = strdup(vals[gc->gq.by[i]]);
	}
	strbuf__release(&key);
	if (!a)
		return gc->error = -ENOMEM;
	a->samples += g->samples;
	a->cpu_ns += g->cpu_ns;
	a->instructions += g->instructions;
	a->requests += g->requests;
	return 0;
}

static void handle_groups(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct agent_state *st = ctx;
	struct groups_ctx gc = { 0 };
	if (agent_query__parse_groups(st, q, NULL, &gc.gq, r))
		return;
	gc.acc = hashmap__new();
	if (!gc.acc) {
		http_response__error(r, 500, "out of memory");
		return;
	}
	const struct group_query *gq = &gc.gq;
	int e = store__groups(st->store, gq->from_ns, gq->to_ns, gq->filter[0], gq->filter[1],
			      gq->filter[2], gq->tags, on_group, &gc);
	strbuf__printf(&r->body, "{\"from\": %.3f, \"to\": %.3f, \"groups\": [", gq->from_ns / 1e9,
		       gq->to_ns / 1e9);
	size_t cur = 0, n = 0;
	void *v;
	while (hashmap__next(gc.acc, &cur, NULL, NULL, &v)) {
		struct group_acc *a = v;
		strbuf__puts(&r->body, n++ ? ",\n  {" : "\n  {");
		for (size_t i = 0; i < gq->nby; i++) {
			strbuf__json_string(&r->body, agent_query__group_keys[gq->by[i]]);
			strbuf__puts(&r->body, ": ");
			strbuf__json_string(&r->body, a->values[i]);
			strbuf__puts(&r->body, ", ");
			free(a->values[i]);
		}
		strbuf__printf(&r->body, "\"samples\": %" PRIu64 ", \"cpu_ns\": %" PRIu64
			       ", \"instructions\": %" PRIu64 ", \"requests\": %" PRIu64,
			       a->samples, a->cpu_ns, a->instructions, a->requests);
		if (a->requests)
			strbuf__printf(&r->body, ", \"cpu_ns_per_request\": %.1f",
				       (double)a->cpu_ns / (double)a->requests);
		strbuf__puts(&r->body, "}");
		free(a);
	}
	strbuf__puts(&r->body, "\n]}\n");
	hashmap__free(gc.acc);
	if (e < 0 || gc.error) {
		strbuf__reset(&r->body);
		http_response__error(r, 500, "reading history failed");
		return;
	}
	r->content_type = "application/json";
}

static void handle_regressions(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct agent_state *st = ctx;
	if (http_query__count(q)) {
		http_response__error(r, 400, "/api/v1/regressions takes no parameters");
		return;
	}
	int e = deploy_checker__json(st->deploys, &r->body);
	if (e) {
		http_response__error(r, 500, "reading the deploy checks failed: %s", strerror(-e));
		return;
	}
	r->content_type = "application/json";
}

/* Every route, its handler and what it answers (--help): the one list. */
static const struct {
	const char *path;        /* exact path */
	http_handler_fn handler; /* called with the agent's state */
	const char *help;        /* for --help; '\n' continues on an indented line */
} route_table[] = {
	{ "/metrics", handle_metrics, "Prometheus: samples, CPU seconds (or\ninstructions) "
	  "and requests by service, commit,\nendpoint, comm (untagged: \"-\"); deploy-check\n"
	  "verdicts; the agent's health" },
	{ "/debug/pprof/profile", handle_profile, "gzipped pprof, Go convention: ?seconds=N\n"
	  "collects now; ?from=&to= (unix seconds or\nRFC 3339) reads history; filters pid=,\n"
	  "service=, endpoint=, commit=, tag.K=V" },
	{ "/flamegraph", handle_flamegraph, "the same selection as an interactive SVG" },
	{ "/api/v1/groups", handle_groups, "JSON sums per group: ?by=endpoint,commit\n"
	  "&from=&to=" },
	{ "/api/v1/regressions", handle_regressions, "JSON: the automatic deploy checks and "
	  "their\nverdicts" },
	{ "/healthz", handle_healthz, "liveness; 503 while history windows cannot\nbe stored" },
	{ "/", web__handle_page, "the web page: overview, flame graphs,\ncompare, "
	  "regressions (no token needed for\nthe page itself; its data needs it)" },
	{ WEB_SCRIPT_PATH, web__handle_script, "the page's script" },
	{ WEB_STYLE_PATH, web__handle_style, "the page's style" },
	{ "/api/v1/flamegraph", web__handle_flamegraph, "JSON call tree of a selection (as\n"
	  "/flamegraph); format=folded|speedscope" },
	{ "/api/v1/timeseries", web__handle_timeseries, "JSON sums per group per time bucket" },
	{ "/api/v1/compare", web__handle_compare, "JSON: `dynoprof diff` of two commits or\n"
	  "ranges, with a differential call tree" },
};

_Static_assert(sizeof(route_table) / sizeof(route_table[0]) <= AGENT_MAX_ROUTES,
	       "agent_handlers__routes fills at most AGENT_MAX_ROUTES routes");

size_t agent_handlers__routes(struct agent_state *st, struct http_route *routes)
{
	size_t n = 0;
	for (; n < sizeof(route_table) / sizeof(route_table[0]); n++)
		routes[n] = (struct http_route){ route_table[n].path, route_table[n].handler, st };
	return n;
}

void agent__describe_routes(FILE *out)
{
	for (size_t i = 0; i < sizeof(route_table) / sizeof(route_table[0]); i++) {
		fprintf(out, "  GET %-24s ", route_table[i].path);
		for (const char *c = route_table[i].help; *c; c++)
			if (*c == '\n')
				fprintf(out, "\n%31s", "");
			else
				fputc(*c, out);
		fputc('\n', out);
	}
}
