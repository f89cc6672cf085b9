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

#include "stats/ratio_ci.h"
#include "util/hashmap.h"

#define MAX_COMMITS 4096
#define MAX_PENDING 256
#define MAX_SERIES_WINDOWS 100000

/* When a (service, commit) was seen. */
struct commit_seen {
	int64_t first_ns;        /* start of the first window it ran in */
	int64_t last_ns;         /* end of the last window it ran in */
};

/* A check waiting for its new-commit window to pass. */
struct pending_check {
	char *service;
	char *base;              /* the commit before */
	char *current;           /* the new commit */
	int64_t switch_ns;       /* first window of the new commit */
	int64_t base_last_ns;    /* last time the base ran, at the switch */
};

/* One endpoint's outcome. */
struct check_result {
	char *service, *base, *current, *endpoint;
	char *metric;            /* "cpu_per_request" or "cpu_per_window" */
	struct ratio_change change;
	enum verdict verdict;
	int64_t checked_ns;      /* when the check ran */
	int64_t base_from, base_to, new_from, new_to; /* compared ranges */
	bool canary;             /* both commits ran side by side */
};

struct deploy_checker {
	pthread_mutex_t lock;                 /* guards results (HTTP reads them) */
	struct deploy_check_opts opts;
	struct store *store;                  /* history (borrowed) */
	struct metrics *metrics;              /* gauges (borrowed) */
	struct hashmap *seen;                 /* "service\0commit" -> struct commit_seen* */
	struct pending_check pending[MAX_PENDING];
	size_t npending;
	struct check_result results[DEPLOY_CHECK_MAX_RESULTS]; /* ring */
	size_t nresults, next_result;
};

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
		return NULL;
	}
	pthread_mutex_init(&d->lock, NULL);
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
	return d;
}

static void result_free(struct check_result *r)
{
	free(r->service);
	free(r->base);
	free(r->current);
	free(r->endpoint);
	free(r->metric);
	memset(r, 0, sizeof(*r));
}

static void pending_free(struct pending_check *p)
{
	free(p->service);
	free(p->base);
	free(p->current);
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
	for (size_t i = 0; i < DEPLOY_CHECK_MAX_RESULTS; i++)
		result_free(&d->results[i]);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* The most recently seen other commit of service (the base of a switch). */
static const char *previous_commit(struct deploy_checker *d, const char *service,
				   const char *commit, int64_t *last_ns)
{
	size_t cur = 0, ls = strlen(service);
	const void *k;
	size_t klen;
	void *v;
	const char *best = NULL;
	*last_ns = 0;
	while (hashmap__next(d->seen, &cur, &k, &klen, &v)) {
		const char *key = k;
		if (klen <= ls + 1 || memcmp(key, service, ls) || key[ls] != '\0')
			continue;
		const char *c = key + ls + 1;
		if (!strcmp(c, commit))
			continue;
		const struct commit_seen *cs = v;
		if (cs->last_ns > *last_ns) {
			*last_ns = cs->last_ns;
			best = c;
		}
	}
	return best;
}

int deploy_checker__observe(struct deploy_checker *d, const char *service, const char *commit,
			    int64_t start_ns, int64_t end_ns)
{
	if (!service || !*service || !commit || !*commit)
		return 0;
	size_t ls = strlen(service), lc = strlen(commit);
	char *key = malloc(ls + lc + 2);
	if (!key)
		return -ENOMEM;
	memcpy(key, service, ls + 1);
	memcpy(key + ls + 1, commit, lc + 1);
	/* Keys keep their final NUL, so commits read from keys are C strings. */
	struct commit_seen *cs = hashmap__get(d->seen, key, ls + lc + 2);
	if (cs) {
		if (end_ns > cs->last_ns)
			cs->last_ns = end_ns;
		free(key);
		return 0;
	}
	/* A new commit of a known service: a deploy to check. */
	int64_t base_last = 0;
	const char *base = previous_commit(d, service, commit, &base_last);
	if (base && base_last > end_ns - (int64_t)(d->opts.forget_s * 1e9) &&
	    d->npending < MAX_PENDING) {
		struct pending_check *p = &d->pending[d->npending];
		p->service = strdup(service);
		p->base = strdup(base);
		p->current = strdup(commit);
		p->switch_ns = start_ns;
		p->base_last_ns = base_last;
		if (p->service && p->base && p->current) {
			d->npending++;
			fprintf(stderr, "dynoprof agent: %s switched commit %s -> %s; checking its "
				"endpoints in %.0f s\n", service, base, commit, d->opts.check_window_s);
		} else {
			pending_free(p);
		}
	}
	if (hashmap__size(d->seen) >= MAX_COMMITS) {
		/* Forget commits not seen for forget_s. */
		size_t cur = 0, n = 0;
		const void *k;
		size_t klen;
		void *v;
		char **old = calloc(hashmap__size(d->seen), sizeof(*old));
		size_t *lens = calloc(hashmap__size(d->seen), sizeof(*lens));
		while (old && lens && hashmap__next(d->seen, &cur, &k, &klen, &v))
			if (((struct commit_seen *)v)->last_ns < end_ns - (int64_t)(d->opts.forget_s * 1e9)) {
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
	cs = calloc(1, sizeof(*cs));
	if (!cs || hashmap__put(d->seen, key, ls + lc + 2, cs, NULL)) {
		free(cs);
		free(key);
		return -ENOMEM;
	}
	free(key);
	cs->first_ns = start_ns;
	cs->last_ns = end_ns;
	return 0;
}

/* Per-window figures of one (service, commit, endpoint). */
struct series {
	struct cluster_obs *obs; /* per window: (cpu_ns, requests) */
	size_t n, cap;           /* windows used, allocated */
	int error;               /* -ENOMEM */
};

static int on_series(void *ctx, int64_t start_ns, const struct store_group *g)
{
	struct series *s = ctx;
	(void)start_ns;
	if (s->n == s->cap) {
		if (s->cap >= MAX_SERIES_WINDOWS)
			return 0;
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct cluster_obs *o = realloc(s->obs, cap * sizeof(*o));
		if (!o)
			return s->error = -ENOMEM;
		s->obs = o;
		s->cap = cap;
	}
	s->obs[s->n].num = (double)g->cpu_ns;
	s->obs[s->n].den = (double)g->requests;
	s->n++;
	return 0;
}

/* Endpoints a commit ran, collected from store__groups. */
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

static void json_num(struct strbuf *sb, double v)
{
	if (isfinite(v))
		strbuf__printf(sb, "%.6g", v);
	else
		strbuf__puts(sb, "null");
}

/* Appends one result as a JSON object. */
static void result_json(const struct check_result *r, struct strbuf *out)
{
	strbuf__puts(out, "{\"service\": ");
	strbuf__json_string(out, r->service);
	strbuf__puts(out, ", \"endpoint\": ");
	strbuf__json_string(out, r->endpoint);
	strbuf__puts(out, ", \"base\": ");
	strbuf__json_string(out, r->base);
	strbuf__puts(out, ", \"new\": ");
	strbuf__json_string(out, r->current);
	strbuf__puts(out, ", \"metric\": ");
	strbuf__json_string(out, r->metric);
	strbuf__printf(out, ", \"verdict\": \"%s\", \"canary\": %s, \"ratio\": ",
		       verdict__name(r->verdict), r->canary ? "true" : "false");
	json_num(out, 1 + r->change.change);
	strbuf__puts(out, ", \"change\": ");
	json_num(out, r->change.change);
	strbuf__puts(out, ", \"ci_low\": ");
	json_num(out, r->change.lo);
	strbuf__puts(out, ", \"ci_high\": ");
	json_num(out, r->change.hi);
	strbuf__printf(out, ", \"checked\": %.3f, \"base_range\": [%.3f, %.3f], "
		       "\"new_range\": [%.3f, %.3f]}", r->checked_ns / 1e9, r->base_from / 1e9,
		       r->base_to / 1e9, r->new_from / 1e9, r->new_to / 1e9);
}

static void store_result(struct deploy_checker *d, const struct pending_check *p,
			 const char *endpoint, const char *metric, const struct ratio_change *c,
			 enum verdict v, int64_t now, int64_t bf, int64_t bt, int64_t nf, int64_t nt,
			 bool canary)
{
	pthread_mutex_lock(&d->lock);
	struct check_result *r = &d->results[d->next_result];
	result_free(r);
	r->service = strdup(p->service);
	r->base = strdup(p->base);
	r->current = strdup(p->current);
	r->endpoint = strdup(endpoint);
	r->metric = strdup(metric);
	r->change = *c;
	r->verdict = v;
	r->checked_ns = now;
	r->base_from = bf;
	r->base_to = bt;
	r->new_from = nf;
	r->new_to = nt;
	r->canary = canary;
	d->next_result = (d->next_result + 1) % DEPLOY_CHECK_MAX_RESULTS;
	if (d->nresults < DEPLOY_CHECK_MAX_RESULTS)
		d->nresults++;
	pthread_mutex_unlock(&d->lock);

	/* Kept in the history too, so results survive a restart. */
	struct strbuf json = STRBUF_INIT;
	result_json(r, &json);
	if (!strbuf__error(&json))
		store__put_check(d->store, now, strbuf__str(&json));
	strbuf__release(&json);

	if (!isfinite(c->change))
		return;
	struct metric_label l[4] = { { "service", p->service }, { "endpoint", endpoint },
				     { "base", p->base }, { "new", p->current } };
	metrics__set(d->metrics, "dynoprof_regression_ratio", l, 4, 1 + c->change);
	metrics__set(d->metrics, "dynoprof_regression_ratio_lower", l, 4, 1 + c->lo);
	metrics__set(d->metrics, "dynoprof_regression_ratio_upper", l, 4, 1 + c->hi);
	metrics__set(d->metrics, "dynoprof_regression_significant", l, 4,
		     v == VERDICT_REGRESSION ? 1 : v == VERDICT_IMPROVEMENT ? -1 : 0);
}

static int run_check(struct deploy_checker *d, const struct pending_check *p, int64_t now)
{
	int64_t win = (int64_t)(d->opts.check_window_s * 1e9);
	/* Canary: the base still ran after the new commit's window started. */
	bool canary = p->base_last_ns > p->switch_ns + win / 2;
	int64_t nf = p->switch_ns, nt = p->switch_ns + win;
	int64_t bf = canary ? nf : p->switch_ns - win, bt = canary ? nt : p->switch_ns;
	struct endpoint_set eps = { 0 };
	int err = store__groups(d->store, nf, nt, p->service, p->current, NULL, on_endpoint, &eps);
	if (!err && eps.error)
		err = eps.error;
	for (size_t i = 0; !err && i < eps.n; i++) {
		struct series b = { 0 }, n = { 0 };
		err = store__group_series(d->store, bf, bt, p->service, p->base, eps.names[i],
					  on_series, &b);
		if (!err)
			err = store__group_series(d->store, nf, nt, p->service, p->current,
						  eps.names[i], on_series, &n);
		if (!err && (b.error || n.error))
			err = -ENOMEM;
		double breq = 0, nreq = 0, bcpu = 0;
		for (size_t k = 0; k < b.n; k++) {
			breq += b.obs[k].den;
			bcpu += b.obs[k].num;
		}
		for (size_t k = 0; k < n.n; k++)
			nreq += n.obs[k].den;
		struct ratio_change c;
		struct verdict_opts vo = { .min_effect = d->opts.min_effect, .min_clusters = 5 };
		const char *metric = "cpu_per_request";
		if (!err && bcpu > 0) {
			if (!(breq > 0 && nreq > 0)) {
				/* No request counts: compare CPU per window, which assumes
				 * the same load on both sides (said in the README). */
				metric = "cpu_per_window";
				for (size_t k = 0; k < b.n; k++)
					b.obs[k].den = 1;
				for (size_t k = 0; k < n.n; k++)
					n.obs[k].den = 1;
				vo.min_den = 5;
			} else {
				vo.min_den = 30;
			}
			err = ratio_change__estimate(b.obs, b.n, n.obs, n.n, 2000,
						     d->opts.confidence, 1, &c);
			if (!err)
				store_result(d, p, eps.names[i], metric, &c, verdict__decide(&c, &vo),
					     now, bf, bt, nf, nt, canary);
		}
		free(b.obs);
		free(n.obs);
	}
	for (size_t i = 0; i < eps.n; i++)
		free(eps.names[i]);
	free(eps.names);
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
		/* The base's last sighting may have moved on (canary): refresh it. */
		char key[1024];
		int len = snprintf(key, sizeof(key), "%s%c%s", p->service, 0, p->base);
		const struct commit_seen *cs = len > 0 && (size_t)len < sizeof(key) ?
			hashmap__get(d->seen, key, (size_t)len + 1) : NULL;
		if (cs)
			p->base_last_ns = cs->last_ns;
		int err = run_check(d, p, now_ns);
		fprintf(stderr, "dynoprof agent: deploy check %s %s -> %s %s%s\n", p->service,
			p->base, p->current, err ? "failed: " : "done",
			err ? strerror(-err) : "");
		ran++;
		pending_free(p);
		d->pending[i] = d->pending[--d->npending];
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
