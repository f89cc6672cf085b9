// SPDX-License-Identifier: MIT
#include "agent/deploy_check.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats/ratio_ci.h"
#include "util/hashmap.h"
#include "util/clock.h"

#define MAX_COMMITS 4096
#define MAX_PENDING 256
#define MAX_SERIES_WINDOWS 100000
/* Endpoints compared per check (the first ones, by name, beyond that). */
#define MAX_CHECK_ENDPOINTS 1024
/* Regressions named in a check's log line. */
#define LOG_NAMED 5
#define ALL_ENDPOINTS "(all)"

/* When a (service, commit) was seen. */
struct commit_seen {
	int64_t first_ns;        /* start of the first window it ran in */
	int64_t last_ns;         /* end of the last window it ran in */
	int64_t last_start_ns;   /* start of that window (tells windows apart) */
	unsigned windows;        /* windows it ran in (saturates) */
};

/* A check waiting for its new-commit window to pass. */
struct pending_check {
	char *service;
	char *base;              /* the commit before */
	char *current;           /* the new commit */
	int64_t switch_ns;       /* first window of the new commit */
	bool announced;          /* "switched commit" said: the new commit ran in
				  * DEPLOY_CHECK_CONFIRM_WINDOWS windows */
};

struct deploy_checker {
	struct deploy_check_opts opts;
	struct store *store;                  /* history (borrowed) */
	struct metrics *metrics;              /* gauges (borrowed) */
	struct hashmap *seen;                 /* "service\0commit\0" -> struct commit_seen* */
	struct pending_check pending[MAX_PENDING];
	size_t npending;
	struct hashmap *restored;             /* during new(): results re-exported */
};

/* Builds the "service\0commit\0" key; NULL on ENOMEM. */
static char *seen_key(const char *service, const char *commit, size_t *len)
{
	size_t ls = strlen(service), lc = strlen(commit);
	char *key = malloc(ls + lc + 2);
	if (!key)
		return NULL;
	memcpy(key, service, ls + 1);
	memcpy(key + ls + 1, commit, lc + 1);
	*len = ls + lc + 2;
	return key;
}

static struct commit_seen *seen_get(struct deploy_checker *d, const char *service,
				    const char *commit)
{
	size_t len;
	char *key = seen_key(service, commit, &len);
	struct commit_seen *cs = key ? hashmap__get(d->seen, key, len) : NULL;
	free(key);
	return cs;
}

/* Adds a (service, commit) never seen; NULL on ENOMEM. */
static struct commit_seen *seen_add(struct deploy_checker *d, const char *service,
				    const char *commit)
{
	size_t len;
	char *key = seen_key(service, commit, &len);
	struct commit_seen *cs = calloc(1, sizeof(*cs));
	if (!key || !cs || hashmap__put(d->seen, key, len, cs, NULL)) {
		free(key);
		free(cs);
		return NULL;
	}
	free(key);
	return cs;
}

static int seed_commit(void *ctx, const char *service, const char *commit, int64_t first_ns,
		       int64_t last_ns)
{
	struct deploy_checker *d = ctx;
	if (hashmap__size(d->seen) >= MAX_COMMITS)
		return 0;
	struct commit_seen *cs = seen_add(d, service, commit);
	if (!cs)
		return -ENOMEM;
	cs->first_ns = first_ns;
	cs->last_ns = last_ns;
	cs->windows = DEPLOY_CHECK_CONFIRM_WINDOWS;
	return 0;
}

static int restore_result(void *ctx, int64_t checked_ns, const char *json);

struct deploy_checker *deploy_checker__new(const struct deploy_check_opts *opts,
					   struct store *store, struct metrics *metrics)
{
	struct deploy_checker *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->opts = *opts;
	if (d->opts.check_window_s <= 0)
		d->opts.check_window_s = 300;
	if (d->opts.min_effect <= 0)
		d->opts.min_effect = 0.02;
	if (!(d->opts.confidence > 0 && d->opts.confidence < 1))
		d->opts.confidence = 0.95;
	if (d->opts.forget_s <= 0)
		d->opts.forget_s = 86400;
	d->store = store;
	d->metrics = metrics;
	d->seen = hashmap__new();
	if (!d->seen) {
		free(d);
		errno = ENOMEM;
		return NULL;
	}
	/* The commits that ran before a restart are not new. */
	int64_t now = clock_ns(CLOCK_REALTIME);
	if (store__commit_spans(store, now - (int64_t)(d->opts.forget_s * 1e9), seed_commit, d) ==
	    -ENOMEM) {
		deploy_checker__free(d);
		errno = ENOMEM;
		return NULL;
	}
	metrics__declare(metrics, "dynoprof_deploy_check_verdict", METRIC_GAUGE,
			 "1 for the verdict of the agent's deploy check of an endpoint (label "
			 "verdict: regression, improvement, no significant change, insufficient "
			 "data; endpoint (all) when a whole side lacked data).");
	metrics__declare(metrics, "dynoprof_regression_ratio", METRIC_GAUGE,
			 "CPU per request (or CPU share) of the new commit over the base commit, "
			 "from the agent's automatic deploy check.");
	char help[128];
	snprintf(help, sizeof(help), "Lower bound of the %g%% confidence interval of "
		 "dynoprof_regression_ratio.", d->opts.confidence * 100);
	metrics__declare(metrics, "dynoprof_regression_ratio_lower", METRIC_GAUGE, help);
	snprintf(help, sizeof(help), "Upper bound of the %g%% confidence interval of "
		 "dynoprof_regression_ratio.", d->opts.confidence * 100);
	metrics__declare(metrics, "dynoprof_regression_ratio_upper", METRIC_GAUGE, help);
	metrics__declare(metrics, "dynoprof_regression_significant", METRIC_GAUGE,
			 "1 when the deploy check's verdict is a regression, -1 an improvement, "
			 "0 otherwise.");
	d->restored = hashmap__new();
	int err = d->restored ? store__foreach_check(store, DEPLOY_CHECK_MAX_RESULTS,
						     restore_result, d) : -ENOMEM;
	hashmap__free(d->restored);
	d->restored = NULL;
	if (err == -ENOMEM) {
		deploy_checker__free(d);
		errno = ENOMEM;
		return NULL;
	}
	return d;
}

static void pending_free(struct pending_check *p)
{
	free(p->service);
	free(p->base);
	free(p->current);
	memset(p, 0, sizeof(*p));
}

void deploy_checker__free(struct deploy_checker *d)
{
	if (!d)
		return;
	size_t cur = 0;
	void *v;
	while (hashmap__next(d->seen, &cur, NULL, NULL, &v))
		free(v);
	hashmap__free(d->seen);
	for (size_t i = 0; i < d->npending; i++)
		pending_free(&d->pending[i]);
	free(d);
}

/* The base of a switch to commit in the window starting at start_ns: the
 * other commit of service seen most recently that was first seen in an
 * earlier window. */
static const char *previous_commit(struct deploy_checker *d, const char *service,
				   const char *commit, int64_t start_ns)
{
	size_t cur = 0, ls = strlen(service);
	const void *k;
	size_t klen;
	void *v;
	const char *best = NULL;
	int64_t best_last = 0;
	while (hashmap__next(d->seen, &cur, &k, &klen, &v)) {
		const char *key = k;
		if (klen <= ls + 1 || memcmp(key, service, ls) || key[ls] != '\0')
			continue;
		const char *c = key + ls + 1;
		const struct commit_seen *cs = v;
		if (!strcmp(c, commit) || cs->first_ns >= start_ns)
			continue;
		if (!best || cs->last_ns > best_last) {
			best_last = cs->last_ns;
			best = c;
		}
	}
	return best;
}

/* Forgets commits not seen for forget_s when the table is full. */
static void forget_old(struct deploy_checker *d, int64_t now_ns)
{
	size_t cur = 0, n = 0, size = hashmap__size(d->seen);
	const void *k;
	size_t klen;
	void *v;
	char **old = calloc(size, sizeof(*old));
	size_t *lens = calloc(size, sizeof(*lens));
	int64_t cutoff = now_ns - (int64_t)(d->opts.forget_s * 1e9);
	while (old && lens && hashmap__next(d->seen, &cur, &k, &klen, &v))
		if (((struct commit_seen *)v)->last_ns < cutoff) {
			old[n] = malloc(klen);
			if (old[n]) {
				memcpy(old[n], k, klen);
				lens[n++] = klen;
			}
		}
	for (size_t i = 0; i < n; i++) {
		free(hashmap__remove(d->seen, old[i], lens[i]));
		free(old[i]);
	}
	free(old);
	free(lens);
}

int deploy_checker__observe(struct deploy_checker *d, const char *service, const char *commit,
			    int64_t start_ns, int64_t end_ns)
{
	if (!d || !service || !*service || !commit || !*commit)
		return 0;
	struct commit_seen *cs = seen_get(d, service, commit);
	if (cs) {
		if (start_ns != cs->last_start_ns && cs->windows < 1000000)
			cs->windows++;
		if (start_ns > cs->last_start_ns)
			cs->last_start_ns = start_ns;
		if (end_ns > cs->last_ns)
			cs->last_ns = end_ns;
		/* A pending switch to this commit is confirmed by its second window. */
		for (size_t i = 0; i < d->npending; i++) {
			struct pending_check *p = &d->pending[i];
			if (p->announced || cs->windows < DEPLOY_CHECK_CONFIRM_WINDOWS ||
			    strcmp(p->service, service) || strcmp(p->current, commit))
				continue;
			p->announced = true;
			fprintf(stderr, "dynoprof agent: %s switched commit %s -> %s; checking its "
				"endpoints in %.0f s\n", service, p->base, commit,
				d->opts.check_window_s - (double)(end_ns - p->switch_ns) / 1e9);
		}
		return 0;
	}
	/* Never seen for this service: a deploy to check when an earlier commit
	 * ran recently. */
	const char *base = previous_commit(d, service, commit, start_ns);
	const struct commit_seen *bs = base ? seen_get(d, service, base) : NULL;
	if (bs && bs->last_ns > end_ns - (int64_t)(d->opts.forget_s * 1e9) &&
	    d->npending < MAX_PENDING) {
		struct pending_check *p = &d->pending[d->npending];
		p->service = strdup(service);
		p->base = strdup(base);
		p->current = strdup(commit);
		p->switch_ns = start_ns;
		p->announced = DEPLOY_CHECK_CONFIRM_WINDOWS <= 1;
		if (p->service && p->base && p->current)
			d->npending++;
		else
			pending_free(p);
	}
	if (hashmap__size(d->seen) >= MAX_COMMITS)
		forget_old(d, end_ns);
	cs = seen_add(d, service, commit);
	if (!cs)
		return -ENOMEM;
	cs->first_ns = start_ns;
	cs->last_ns = end_ns;
	cs->last_start_ns = start_ns;
	cs->windows = 1;
	return 0;
}

/* Per-window figures of one (service, commit[, endpoint]). */
struct series {
	int64_t *start;          /* window starts */
	struct cluster_obs *obs; /* per window: (cpu_ns, requests) */
	uint64_t *samples;       /* per window */
	size_t n, cap;           /* windows used, allocated */
	int error;               /* -ENOMEM */
};

static int on_series(void *ctx, int64_t start_ns, const struct store_group *g)
{
	struct series *s = ctx;
	if (s->n == s->cap) {
		if (s->cap >= MAX_SERIES_WINDOWS)
			return 0;
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct cluster_obs *o = realloc(s->obs, cap * sizeof(*o));
		if (o)
			s->obs = o;
		int64_t *st = o ? realloc(s->start, cap * sizeof(*st)) : NULL;
		if (st)
			s->start = st;
		uint64_t *sm = st ? realloc(s->samples, cap * sizeof(*sm)) : NULL;
		if (!sm)
			return s->error = -ENOMEM;
		s->samples = sm;
		s->cap = cap;
	}
	s->start[s->n] = start_ns;
	s->obs[s->n].num = (double)g->cpu_ns;
	s->obs[s->n].den = (double)g->requests;
	s->samples[s->n] = g->samples;
	s->n++;
	return 0;
}

static void series_release(struct series *s)
{
	free(s->start);
	free(s->obs);
	free(s->samples);
	memset(s, 0, sizeof(*s));
}

/* Keeps the windows of s whose start is in ran (sorted; the windows in which
 * the commit had samples), and with_requests: only those in which the commit
 * counted requests (on any endpoint). */
static void keep_windows(struct series *s, const struct series *ran, bool with_requests)
{
	size_t out = 0, j = 0;
	for (size_t i = 0; i < s->n; i++) {
		while (j < ran->n && ran->start[j] < s->start[i])
			j++;
		if (j < ran->n && ran->start[j] == s->start[i] &&
		    (!with_requests || ran->obs[j].den > 0)) {
			s->start[out] = s->start[i];
			s->obs[out] = s->obs[i];
			s->samples[out] = s->samples[i];
			out++;
		}
	}
	s->n = out;
}

/* The windows of (service, commit) in [from, to) in which it had samples. */
static int ran_windows(struct deploy_checker *d, const char *service, const char *commit,
		       int64_t from, int64_t to, struct series *ran)
{
	int err = store__group_series(d->store, from, to, service, commit, NULL, NULL, on_series,
					 ran);
	if (!err && ran->error)
		err = ran->error;
	size_t out = 0;
	for (size_t i = 0; !err && i < ran->n; i++)
		if (ran->samples[i]) {
			ran->start[out] = ran->start[i];
			ran->obs[out] = ran->obs[i];
			ran->samples[out] = ran->samples[i];
			out++;
		}
	ran->n = out;
	return err;
}

/* Endpoints either side served, sorted, unique. */
struct endpoint_set {
	char **names;
	size_t n, cap;
	int error;
};

static int on_endpoint(void *ctx, const struct store_group *g)
{
	struct endpoint_set *es = ctx;
	if (!g->endpoint || !*g->endpoint || !g->samples)
		return 0;
	for (size_t i = 0; i < es->n; i++)
		if (!strcmp(es->names[i], g->endpoint))
			return 0;
	if (es->n >= MAX_CHECK_ENDPOINTS)
		return 0;
	if (es->n == es->cap) {
		size_t cap = es->cap ? es->cap * 2 : 16;
		char **names = realloc(es->names, cap * sizeof(*names));
		if (!names)
			return es->error = -ENOMEM;
		es->names = names;
		es->cap = cap;
	}
	es->names[es->n] = strdup(g->endpoint);
	if (!es->names[es->n])
		return es->error = -ENOMEM;
	es->n++;
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One endpoint's outcome. */
struct check_result {
	const char *endpoint;
	const char *metric;      /* "cpu_per_request", "cpu_per_window", NULL: none */
	struct ratio_change change;
	enum verdict verdict;
	char reason[192];        /* why insufficient data ("" otherwise) */
	size_t base_windows, new_windows; /* windows each side ran in */
	double base_requests, new_requests;
};

/* The compared ranges of a check. */
struct check_ranges {
	int64_t bf, bt, nf, nt;  /* base [bf, bt), new [nf, nt) */
	bool canary;             /* both commits ran through the new range */
};

/* Appends one result as a JSON object. */
static void result_json(const struct pending_check *p, const struct check_result *r,
			const struct check_ranges *cr, int64_t now, struct strbuf *out)
{
	strbuf__puts(out, "{\"service\": ");
	strbuf__json_string(out, p->service);
	strbuf__puts(out, ", \"endpoint\": ");
	strbuf__json_string(out, r->endpoint);
	strbuf__puts(out, ", \"base\": ");
	strbuf__json_string(out, p->base);
	strbuf__puts(out, ", \"new\": ");
	strbuf__json_string(out, p->current);
	strbuf__puts(out, ", \"metric\": ");
	if (r->metric)
		strbuf__json_string(out, r->metric);
	else
		strbuf__puts(out, "null");
	strbuf__printf(out, ", \"verdict\": \"%s\", \"reason\": ", verdict__name(r->verdict));
	if (r->reason[0])
		strbuf__json_string(out, r->reason);
	else
		strbuf__puts(out, "null");
	strbuf__printf(out, ", \"canary\": %s, \"ratio\": ", cr->canary ? "true" : "false");
	strbuf__json_number(out, 1 + r->change.change);
	strbuf__puts(out, ", \"change\": ");
	strbuf__json_number(out, r->change.change);
	strbuf__puts(out, ", \"ci_low\": ");
	strbuf__json_number(out, r->change.lo);
	strbuf__puts(out, ", \"ci_high\": ");
	strbuf__json_number(out, r->change.hi);
	strbuf__printf(out, ", \"base_windows\": %zu, \"new_windows\": %zu, \"base_requests\": "
		       "%.0f, \"new_requests\": %.0f", r->base_windows, r->new_windows,
		       r->base_requests, r->new_requests);
	strbuf__printf(out, ", \"checked\": %.3f, \"base_range\": [%.3f, %.3f], "
		       "\"new_range\": [%.3f, %.3f]}", now / 1e9, cr->bf / 1e9, cr->bt / 1e9,
		       cr->nf / 1e9, cr->nt / 1e9);
}

/* Exports one result's gauges. */
static void export_result(struct deploy_checker *d, const char *service, const char *endpoint,
			  const char *base, const char *current, const char *verdict,
			  double change, double lo, double hi)
{
	struct metric_label l[5] = { { "service", service }, { "endpoint", endpoint },
				     { "base", base }, { "new", current }, { "verdict", verdict } };
	metrics__set(d->metrics, "dynoprof_deploy_check_verdict", l, 5, 1);
	if (!isfinite(change))
		return;
	metrics__set(d->metrics, "dynoprof_regression_ratio", l, 4, 1 + change);
	metrics__set(d->metrics, "dynoprof_regression_ratio_lower", l, 4, 1 + lo);
	metrics__set(d->metrics, "dynoprof_regression_ratio_upper", l, 4, 1 + hi);
	metrics__set(d->metrics, "dynoprof_regression_significant", l, 4,
		     !strcmp(verdict, verdict__name(VERDICT_REGRESSION)) ? 1 :
		     !strcmp(verdict, verdict__name(VERDICT_IMPROVEMENT)) ? -1 : 0);
}

/* Reads the JSON string after `, "key": ` (or `{"key": `) of a stored result
 * (written by result_json: escapes \", \\, \n..., \u00XX) into out. 0 or -ENOENT. */
static int stored_string(const char *json, const char *key, char *out, size_t len)
{
	char pat[40];
	snprintf(pat, sizeof(pat), "\"%s\": \"", key);
	const char *p = strstr(json, pat);
	if (!p || len == 0)
		return -ENOENT;
	p += strlen(pat);
	size_t n = 0;
	for (; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			c = *++p;
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
			else if (c == 'r')
				c = '\r';
			else if (c == 'u' && p[1] && p[2] && p[3] && p[4]) {
				char hex[5] = { p[1], p[2], p[3], p[4], 0 };
				long v = strtol(hex, NULL, 16);
				c = v > 0 && v < 0x80 ? (char)v : '?';
				p += 4;
			} else if (!c) {
				break;
			}
		}
		if (n + 1 < len)
			out[n++] = c;
	}
	out[n] = '\0';
	return *p == '"' ? 0 : -ENOENT;
}

/* The number after `"key": ` of a stored result; NaN for null or absent. */
static double stored_number(const char *json, const char *key)
{
	char pat[40];
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	const char *p = strstr(json, pat);
	if (!p || !strncmp(p + strlen(pat), "null", 4))
		return NAN;
	return strtod(p + strlen(pat), NULL);
}

/* A restarted agent exports the stored verdicts again, so an alert on them
 * does not resolve because the agent restarted. Newest first: an older
 * result never overwrites a newer one's ratios. */
static int restore_result(void *ctx, int64_t checked_ns, const char *json)
{
	struct deploy_checker *d = ctx;
	char service[256], endpoint[256], base[256], current[256], verdict[32], key[1100];
	(void)checked_ns;
	if (!json || stored_string(json, "service", service, sizeof(service)) ||
	    stored_string(json, "endpoint", endpoint, sizeof(endpoint)) ||
	    stored_string(json, "base", base, sizeof(base)) ||
	    stored_string(json, "new", current, sizeof(current)) ||
	    stored_string(json, "verdict", verdict, sizeof(verdict)))
		return 0; /* not ours or damaged: skipped */
	int n = snprintf(key, sizeof(key), "%s%c%s%c%s%c%s", service, 0, endpoint, 0, base, 0,
			 current);
	if (n < 0 || (size_t)n >= sizeof(key) || hashmap__get(d->restored, key, (size_t)n))
		return 0;
	if (hashmap__put(d->restored, key, (size_t)n, (void *)1, NULL))
		return -ENOMEM;
	double ratio = stored_number(json, "ratio");
	export_result(d, service, endpoint, base, current, verdict, ratio - 1,
		      stored_number(json, "ci_low"), stored_number(json, "ci_high"));
	return 0;
}

/* Stores r in the history and exports its gauges. */
static void store_result(struct deploy_checker *d, const struct pending_check *p,
			 const struct check_result *r, const struct check_ranges *cr, int64_t now)
{
	struct strbuf json = STRBUF_INIT;
	result_json(p, r, cr, now, &json);
	if (!strbuf__error(&json) && store__put_check(d->store, now, strbuf__str(&json)))
		fprintf(stderr, "dynoprof agent: storing the deploy check of %s %s failed\n",
			p->service, r->endpoint);
	strbuf__release(&json);

	export_result(d, p->service, r->endpoint, p->base, p->current, verdict__name(r->verdict),
		      r->change.change, r->change.lo, r->change.hi);
}

/* Why verdict__decide found too little data, in words. */
static void insufficient_reason(const struct pending_check *p, const struct ratio_change *c,
				const struct verdict_opts *vo, bool per_request, char *out,
				size_t len)
{
	const char *unit = per_request ? "windows with requests" : "windows";
	if (!(c->base > 0))
		snprintf(out, len, "%s used no CPU on it in the compared range", p->base);
	else if (!(c->current > 0))
		snprintf(out, len, "%s used no CPU on it in the compared range", p->current);
	else if (c->base_clusters < vo->min_clusters)
		snprintf(out, len, "%s: %zu %s (%zu needed)", p->base, c->base_clusters, unit,
			 vo->min_clusters);
	else if (c->new_clusters < vo->min_clusters)
		snprintf(out, len, "%s: %zu %s (%zu needed)", p->current, c->new_clusters, unit,
			 vo->min_clusters);
	else if (!(c->base_den >= vo->min_den))
		snprintf(out, len, "%s: %.0f %s (%.0f needed)", p->base, c->base_den,
			 per_request ? "requests" : "windows", vo->min_den);
	else
		snprintf(out, len, "%s: %.0f %s (%.0f needed)", p->current, c->new_den,
			 per_request ? "requests" : "windows", vo->min_den);
}

/* Compares one endpoint over the windows each side ran in. */
static int check_endpoint(struct deploy_checker *d, const struct pending_check *p,
			  const struct check_ranges *cr, const struct series *bran,
			  const struct series *nran, const char *endpoint, struct check_result *r)
{
	struct series b = { 0 }, n = { 0 };
	int err = store__group_series(d->store, cr->bf, cr->bt, p->service, p->base, endpoint,
				      NULL, on_series, &b);
	if (!err)
		err = store__group_series(d->store, cr->nf, cr->nt, p->service, p->current,
					  endpoint, NULL, on_series, &n);
	if (!err && (b.error || n.error))
		err = -ENOMEM;
	if (err)
		goto out;
	/* With request counts, a window in which the commit counted none at all
	 * (a process's first moments, before its counters are found) has no
	 * count rather than zero requests: it is left out. */
	bool base_counted = false, new_counted = false;
	for (size_t k = 0; k < b.n; k++)
		base_counted |= b.obs[k].den > 0;
	for (size_t k = 0; k < n.n; k++)
		new_counted |= n.obs[k].den > 0;
	bool counted = base_counted && new_counted;
	keep_windows(&b, bran, counted);
	keep_windows(&n, nran, counted);
	memset(r, 0, sizeof(*r));
	r->endpoint = endpoint;
	r->base_windows = b.n;
	r->new_windows = n.n;
	double bcpu = 0, ncpu = 0;
	for (size_t k = 0; k < b.n; k++) {
		r->base_requests += b.obs[k].den;
		bcpu += b.obs[k].num;
	}
	for (size_t k = 0; k < n.n; k++) {
		r->new_requests += n.obs[k].den;
		ncpu += n.obs[k].num;
	}
	struct verdict_opts vo = { .min_effect = d->opts.min_effect,
				   .min_clusters = DEPLOY_CHECK_MIN_WINDOWS, .min_den = 30 };
	bool per_request = r->base_requests > 0 && r->new_requests > 0;
	r->metric = "cpu_per_request";
	if (!per_request) {
		/* No request counts: compare CPU per window, which assumes the
		 * same load on both sides (said in the README). */
		r->metric = "cpu_per_window";
		for (size_t k = 0; k < b.n; k++)
			b.obs[k].den = 1;
		for (size_t k = 0; k < n.n; k++)
			n.obs[k].den = 1;
		vo.min_den = DEPLOY_CHECK_MIN_WINDOWS;
	}
	if (!(bcpu > 0) || !(ncpu > 0)) {
		r->change = (struct ratio_change){ .change = NAN, .lo = NAN, .hi = NAN,
						   .base = NAN, .current = NAN };
		r->verdict = VERDICT_INSUFFICIENT_DATA;
		snprintf(r->reason, sizeof(r->reason), "only %s served it in the compared range",
			 bcpu > 0 ? p->base : p->current);
		goto out;
	}
	err = ratio_change__estimate(b.obs, b.n, n.obs, n.n, 2000, d->opts.confidence, 1,
				     &r->change);
	if (err)
		goto out;
	r->verdict = verdict__decide(&r->change, &vo);
	if (r->verdict == VERDICT_INSUFFICIENT_DATA)
		insufficient_reason(p, &r->change, &vo, per_request, r->reason, sizeof(r->reason));
out:
	series_release(&b);
	series_release(&n);
	return err;
}

/* Runs one check: stores its results and says what it found. */
static int run_check(struct deploy_checker *d, const struct pending_check *p, int64_t now)
{
	int64_t win = (int64_t)(d->opts.check_window_s * 1e9);
	const struct commit_seen *bs = seen_get(d, p->service, p->base);
	int64_t base_last = bs ? bs->last_ns : p->switch_ns;
	struct check_ranges cr = { .nf = p->switch_ns, .nt = p->switch_ns + win };
	/* Canary: the base still ran at the end of the new range. */
	cr.canary = base_last >= cr.nt;
	if (cr.canary) {
		cr.bf = cr.nf;
		cr.bt = cr.nt;
	} else {
		/* Rolling: the old commit's last W before the switch. Its windows
		 * during the rollout (workers draining, exiting) are left out. */
		cr.bt = base_last < p->switch_ns ? base_last : p->switch_ns;
		cr.bf = cr.bt - win;
	}
	struct series bran = { 0 }, nran = { 0 };
	struct endpoint_set eps = { 0 };
	size_t regressions = 0, improvements = 0, insufficient = 0;
	struct strbuf named = STRBUF_INIT;
	int err = ran_windows(d, p->service, p->base, cr.bf, cr.bt, &bran);
	if (!err)
		err = ran_windows(d, p->service, p->current, cr.nf, cr.nt, &nran);
	if (err)
		goto out;
	if (bran.n < DEPLOY_CHECK_MIN_WINDOWS || nran.n < DEPLOY_CHECK_MIN_WINDOWS) {
		/* A side without enough windows: nothing to compare. */
		struct check_result r = { .endpoint = ALL_ENDPOINTS,
					  .verdict = VERDICT_INSUFFICIENT_DATA,
					  .base_windows = bran.n, .new_windows = nran.n,
					  .change = { .change = NAN, .lo = NAN, .hi = NAN } };
		const char *who = bran.n < DEPLOY_CHECK_MIN_WINDOWS ? p->base : p->current;
		size_t got = bran.n < DEPLOY_CHECK_MIN_WINDOWS ? bran.n : nran.n;
		if (got)
			snprintf(r.reason, sizeof(r.reason), "%s ran in %zu windows of its compared "
				 "range (%d needed)", who, got, DEPLOY_CHECK_MIN_WINDOWS);
		else
			snprintf(r.reason, sizeof(r.reason), "no data of %s in its compared range",
				 who);
		store_result(d, p, &r, &cr, now);
		fprintf(stderr, "dynoprof agent: deploy check %s %s -> %s: insufficient data: %s\n",
			p->service, p->base, p->current, r.reason);
		goto out;
	}
	err = store__groups(d->store, cr.nf, cr.nt, p->service, p->current, NULL, NULL,
			    on_endpoint, &eps);
	if (!err)
		err = store__groups(d->store, cr.bf, cr.bt, p->service, p->base, NULL, NULL,
				    on_endpoint, &eps);
	if (!err && eps.error)
		err = eps.error;
	if (err)
		goto out;
	if (eps.n) /* names is NULL when no window had an endpoint tag */
		qsort(eps.names, eps.n, sizeof(*eps.names), cmp_name);
	for (size_t i = 0; !err && i < eps.n; i++) {
		struct check_result r;
		err = check_endpoint(d, p, &cr, &bran, &nran, eps.names[i], &r);
		if (err)
			break;
		store_result(d, p, &r, &cr, now);
		if (r.verdict == VERDICT_REGRESSION && regressions++ < LOG_NAMED)
			strbuf__printf(&named, "%s%s %+.1f%%", regressions > 1 ? ", " : " (",
				       r.endpoint, r.change.change * 100);
		improvements += r.verdict == VERDICT_IMPROVEMENT;
		insufficient += r.verdict == VERDICT_INSUFFICIENT_DATA;
	}
	if (!err && eps.n == 0) {
		struct check_result r = { .endpoint = ALL_ENDPOINTS,
					  .verdict = VERDICT_INSUFFICIENT_DATA,
					  .base_windows = bran.n, .new_windows = nran.n,
					  .change = { .change = NAN, .lo = NAN, .hi = NAN } };
		snprintf(r.reason, sizeof(r.reason), "no endpoint tags in either commit's range");
		store_result(d, p, &r, &cr, now);
		fprintf(stderr, "dynoprof agent: deploy check %s %s -> %s: insufficient data: %s\n",
			p->service, p->base, p->current, r.reason);
	} else if (!err) {
		fprintf(stderr, "dynoprof agent: deploy check %s %s -> %s done (%s, %zu and %zu "
			"windows): %zu endpoint%s, %zu regression%s%s%s, %zu improvement%s, %zu with "
			"insufficient data\n", p->service, p->base, p->current,
			cr.canary ? "canary" : "rolling", bran.n, nran.n, eps.n, eps.n == 1 ? "" : "s",
			regressions, regressions == 1 ? "" : "s", strbuf__str(&named),
			regressions ? (regressions > LOG_NAMED ? ", ...)" : ")") : "", improvements,
			improvements == 1 ? "" : "s", insufficient);
	}
out:
	if (err)
		fprintf(stderr, "dynoprof agent: deploy check %s %s -> %s failed: %s\n", p->service,
			p->base, p->current, strerror(-err));
	for (size_t i = 0; i < eps.n; i++)
		free(eps.names[i]);
	free(eps.names);
	series_release(&bran);
	series_release(&nran);
	strbuf__release(&named);
	return err;
}

int deploy_checker__run_due(struct deploy_checker *d, int64_t now_ns)
{
	int64_t win = (int64_t)(d->opts.check_window_s * 1e9);
	int ran = 0;
	for (size_t i = 0; i < d->npending;) {
		struct pending_check *p = &d->pending[i];
		if (now_ns < p->switch_ns + win) {
			i++;
			continue;
		}
		/* A commit seen in fewer windows than a switch needs was no deploy. */
		if (p->announced) {
			run_check(d, p, now_ns);
			ran++;
		}
		pending_free(p);
		d->pending[i] = d->pending[--d->npending];
		memset(&d->pending[d->npending], 0, sizeof(d->pending[0]));
	}
	return ran;
}

static int append_check(void *ctx, int64_t checked_ns, const char *json)
{
	struct strbuf *out = ctx;
	(void)checked_ns;
	if (out->len && out->data[out->len - 1] == '}')
		strbuf__putc(out, ',');
	strbuf__puts(out, "\n  ");
	strbuf__puts(out, json ? json : "{}");
	return 0;
}

int deploy_checker__json(struct deploy_checker *d, struct strbuf *out)
{
	/* The history holds every result (also from before a restart). */
	strbuf__puts(out, "{\"checks\": [");
	int err = store__foreach_check(d->store, DEPLOY_CHECK_MAX_RESULTS, append_check, out);
	strbuf__puts(out, "\n]}\n");
	return err ? err : strbuf__error(out);
}
