// SPDX-License-Identifier: MIT
#include "diff/diff.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

/* Growable array of doubles indexed by cluster. */
struct darr {
	double *v;   /* values */
	size_t n;    /* allocated */
};

static int darr_add(struct darr *a, size_t i, double x)
{
	if (i >= a->n) {
		size_t n = a->n ? a->n : 16;
		while (n <= i)
			n *= 2;
		double *v = realloc(a->v, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memset(v + a->n, 0, (n - a->n) * sizeof(*v));
		a->v = v;
		a->n = n;
	}
	a->v[i] += x;
	return 0;
}

static double darr_get(const struct darr *a, size_t i)
{
	return i < a->n ? a->v[i] : 0;
}

/* What one side knows of an endpoint. */
struct ep_acc {
	struct darr cpu;       /* CPU (ns or instructions) per cluster */
	struct darr samples;   /* samples per cluster */
	struct darr requests;  /* requests per cluster */
	uint64_t total_samples;
	double total_requests;
};

/* One side of the comparison. */
struct side {
	const struct profile *p;
	int vs, vc, vr;           /* value indexes: samples, cpu measure, requests (-1 none) */
	struct hashmap *clusters; /* "window\0pid" -> index + 1 */
	size_t nclusters;
	struct darr all_samples;  /* every sample per cluster (share denominator) */
	struct hashmap *eps;      /* endpoint -> struct ep_acc* */
	uint64_t total_samples;
	enum diff_clusters mode;  /* how samples with a `host` label cluster */
	struct hashmap *hosts;    /* host label -> index + 1 */
	uint32_t *host_of;        /* per cluster: its host's index (0: no label) */
	size_t host_cap;          /* entries allocated in host_of */
	bool any_host;            /* some sample carries a `host` label */
};

static void ep_free(struct ep_acc *e)
{
	if (!e)
		return;
	free(e->cpu.v);
	free(e->samples.v);
	free(e->requests.v);
	free(e);
}

static void side_free(struct side *s)
{
	size_t cur = 0;
	void *v;
	if (s->eps) {
		while (hashmap__next(s->eps, &cur, NULL, NULL, &v))
			ep_free(v);
		hashmap__free(s->eps);
	}
	hashmap__free(s->clusters);
	hashmap__free(s->hosts);
	free(s->host_of);
	free(s->all_samples.v);
}

/* A sample's cluster: its time window (all processes together: slowness a
 * host shares across processes in a window must not count as independent
 * evidence — calibration showed window x process clusters under-cover
 * badly), or its process when samples carry no window label. Samples pooled
 * from several hosts (`diff --agent` with many agents labels each with
 * `host`) cluster by host x window: hosts are independent of each other, and
 * host-to-host variation is then part of the interval. */
static int cluster_key(const struct side *s, const struct profile_sample *smp, char *key,
		       size_t len)
{
	const struct profile *p = s->p;
	const char *h = profile__sample_label(p, smp, "host");
	/* --clusters host: a host's windows are one cluster (its lasting
	 * differences are then fully in the interval). */
	bool by_host = s->mode == DIFF_CLUSTERS_HOST && h;
	const char *w = by_host ? NULL : profile__sample_label(p, smp, "window");
	if (by_host) {
		int n = snprintf(key, len, "h\x1f%s", h);
		return n < 0 ? 0 : (size_t)n >= len ? (int)len - 1 : n;
	}
	int n = w ? snprintf(key, len, "w%s\x1f%s", w, h ? h : "")
		  : snprintf(key, len, "p%u\x1f%s", smp->pid, h ? h : "");
	return n < 0 ? 0 : (size_t)n >= len ? (int)len - 1 : n;
}

/* Records the host of new cluster c (the sample's `host` label; samples
 * without one share host 0 ""), numbering hosts in order of first sight, so
 * a host's number is at most its first cluster's. */
static int note_host(struct side *s, const struct profile_sample *smp, size_t c)
{
	const char *h = profile__sample_label(s->p, smp, "host");
	size_t hlen = h ? strlen(h) : 0;

	if (c >= s->host_cap) {
		size_t cap = s->host_cap ? 2 * s->host_cap : 64;
		uint32_t *v = realloc(s->host_of, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		s->host_of = v;
		s->host_cap = cap;
	}
	s->any_host |= h != NULL;
	uintptr_t found = (uintptr_t)hashmap__get(s->hosts, h ? h : "", hlen);
	if (!found) {
		found = hashmap__size(s->hosts) + 1;
		if (hashmap__put(s->hosts, h ? h : "", hlen, (void *)found, NULL))
			return -ENOMEM;
	}
	s->host_of[c] = (uint32_t)(found - 1);
	return 0;
}

/* Returns the sample's cluster index in s (created on first sight). */
static int cluster_of(struct side *s, const struct profile_sample *smp, size_t *idx)
{
	char key[320];
	int len = cluster_key(s, smp, key, sizeof(key));
	uintptr_t found = (uintptr_t)hashmap__get(s->clusters, key, (size_t)len);
	if (!found) {
		int err = note_host(s, smp, s->nclusters);
		if (err)
			return err;
		found = ++s->nclusters;
		if (hashmap__put(s->clusters, key, (size_t)len, (void *)found, NULL))
			return -ENOMEM;
	}
	*idx = found - 1;
	return 0;
}

static int side_build(struct side *s, const struct profile *p, const char *cpu_type,
		      const char *group_key, enum diff_clusters mode)
{
	memset(s, 0, sizeof(*s));
	s->p = p;
	s->mode = mode;
	s->vs = profile__find_value(p, "samples");
	s->vc = profile__find_value(p, cpu_type);
	s->vr = profile__find_value(p, "requests");
	s->clusters = hashmap__new();
	s->eps = hashmap__new();
	s->hosts = hashmap__new();
	if (!s->clusters || !s->eps || !s->hosts)
		return -ENOMEM;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *smp = profile__sample(p, i);
		size_t c;
		int err = cluster_of(s, smp, &c);
		if (err)
			return err;
		double n = s->vs >= 0 ? (double)smp->values[s->vs] : 0;
		double cpu = s->vc >= 0 ? (double)smp->values[s->vc] : 0;
		double req = s->vr >= 0 ? (double)smp->values[s->vr] : 0;
		if ((err = darr_add(&s->all_samples, c, n)))
			return err;
		s->total_samples += (uint64_t)n;
		const char *ep = profile__sample_label(p, smp, group_key);
		if (!ep)
			continue;
		struct ep_acc *e = hashmap__get(s->eps, ep, strlen(ep));
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e || hashmap__put(s->eps, ep, strlen(ep), e, NULL)) {
				free(e);
				return -ENOMEM;
			}
		}
		if ((err = darr_add(&e->cpu, c, cpu)) || (err = darr_add(&e->samples, c, n)) ||
		    (err = darr_add(&e->requests, c, req)))
			return err;
		e->total_samples += (uint64_t)n;
		e->total_requests += req;
	}
	return 0;
}

static double threshold_for(const struct diff_opts *o, const char *endpoint)
{
	for (size_t i = 0; i < o->nthresholds; i++)
		if (!strcmp(o->thresholds[i].endpoint, endpoint))
			return o->thresholds[i].min_effect;
	return o->min_effect;
}

static void defaults(struct diff_opts *o, const struct diff_opts *given)
{
	if (given)
		*o = *given;
	else
		memset(o, 0, sizeof(*o));
	if (!o->group_key)
		o->group_key = "endpoint";
	if (o->min_effect <= 0)
		o->min_effect = 0.02;
	if (o->confidence <= 0 || o->confidence >= 1)
		o->confidence = 0.95;
	if (!o->resamples)
		o->resamples = 2000;
	if (!o->seed)
		o->seed = 1;
	if (!o->min_clusters)
		o->min_clusters = 8;
	if (o->min_requests <= 0)
		o->min_requests = 30;
	if (o->min_samples <= 0)
		o->min_samples = 100;
	if (!o->max_functions)
		o->max_functions = 30;
}

/* Whether the sides' clusters are estimated nested in their hosts. */
static bool nested(const struct side *b, const struct side *n)
{
	return b->mode == DIFF_CLUSTERS_NESTED && (b->any_host || n->any_host);
}

/* Builds cluster observations (num, den) of both sides' clusters and
 * estimates (nested in hosts when samples came from many hosts). */
static int estimate(const struct darr *bnum, const struct darr *bden, const struct side *bs,
		    const struct darr *nnum, const struct darr *nden, const struct side *ns,
		    const struct diff_opts *o, double min_den, double min_effect,
		    struct ratio_change *out, enum verdict *verdict)
{
	size_t bn = bs->nclusters, nn = ns->nclusters;
	struct cluster_obs *b = calloc(bn ? bn : 1, sizeof(*b));
	struct cluster_obs *c = calloc(nn ? nn : 1, sizeof(*c));
	int err = 0;
	if (!b || !c) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < bn; i++)
		b[i] = (struct cluster_obs){ darr_get(bnum, i), darr_get(bden, i) };
	for (size_t i = 0; i < nn; i++)
		c[i] = (struct cluster_obs){ darr_get(nnum, i), darr_get(nden, i) };
	if (nested(bs, ns))
		err = ratio_change__estimate_nested(b, bs->host_of, bn, c, ns->host_of, nn,
						    o->resamples, o->confidence, o->seed, out);
	else
		err = ratio_change__estimate(b, bn, c, nn, o->resamples, o->confidence,
					     o->seed, out);
	if (!err) {
		struct verdict_opts vo = { .min_effect = min_effect, .min_clusters = o->min_clusters,
					   .min_den = min_den };
		*verdict = verdict__decide(out, &vo);
	}
out:
	free(b);
	free(c);
	return err;
}

/* The function a frame stands for, for per-function analysis; NULL to skip. */
static const char *function_name(const struct profile *p, uint32_t id)
{
	const struct profile_frame *f = profile__frame(p, id);
	if (!f || f->kind == FRAME_SPECIAL)
		return NULL;
	return profile__str(p, f->name);
}

/* Per-function self cost per cluster of one side (the innermost non-special
 * frame of each sample), for samples whose `key` label is `value` (all
 * samples when key is NULL). Self cost names where extra CPU went; inclusive
 * cost would flag every caller above it too. */
static int function_costs(const struct side *s, const char *key, const char *value,
			  int use_cpu, struct hashmap *out /* name -> struct darr* */)
{
	for (size_t i = 0; i < profile__sample_count(s->p); i++) {
		const struct profile_sample *smp = profile__sample(s->p, i);
		if (key) {
			const char *v = profile__sample_label(s->p, smp, key);
			if (!v || strcmp(v, value))
				continue;
		}
		double amount = use_cpu ? (s->vc >= 0 ? (double)smp->values[s->vc] : 0)
					: (s->vs >= 0 ? (double)smp->values[s->vs] : 0);
		if (amount <= 0)
			continue;
		/* Self cost: the innermost real frame, where the CPU was spent. */
		const char *name = NULL;
		for (uint32_t f = smp->nframes; f > 0 && !name; f--)
			name = function_name(s->p, smp->frames[f - 1]);
		if (!name)
			continue;
		char ckey[320];
		int len = cluster_key(s, smp, ckey, sizeof(ckey));
		size_t c = (uintptr_t)hashmap__get(s->clusters, ckey, (size_t)len) - 1;
		struct darr *d = hashmap__get(out, name, strlen(name));
		if (!d) {
			d = calloc(1, sizeof(*d));
			if (!d || hashmap__put(out, name, strlen(name), d, NULL)) {
				free(d);
				return -ENOMEM;
			}
		}
		int err = darr_add(d, c, amount);
		if (err)
			return err;
	}
	return 0;
}

static void free_darr_map(struct hashmap *m)
{
	size_t cur = 0;
	void *v;
	if (!m)
		return;
	while (hashmap__next(m, &cur, NULL, NULL, &v)) {
		free(((struct darr *)v)->v);
		free(v);
	}
	hashmap__free(m);
}

static double darr_sum(const struct darr *a)
{
	double s = 0;
	for (size_t i = 0; a && i < a->n; i++)
		s += a->v[i];
	return s;
}

/* A function to analyse: its name as a map key (not NUL-terminated). */
struct fn_rank {
	const char *name;
	size_t len;
	double weight;
};

static int fn_rank_cmp(const void *a, const void *b)
{
	const struct fn_rank *x = a, *y = b;
	if (x->weight != y->weight)
		return x->weight < y->weight ? 1 : -1;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int function_cmp(const void *a, const void *b)
{
	const struct diff_function *x = a, *y = b;
	double dx = fabs(x->change.current - x->change.base);
	double dy = fabs(y->change.current - y->change.base);
	return dx < dy ? 1 : dx > dy ? -1 : strcmp(x->name, y->name);
}

/* Which functions drove an endpoint's change: those whose own cost (per
 * request, or share) changed significantly by at least DIFF_DRIVER_MIN_SHARE
 * of the endpoint's change in absolute terms, largest absolute change first. */
static int analyse_functions(struct side *b, struct side *n, const char *endpoint,
			     const struct ep_acc *be, const struct ep_acc *ne,
			     const struct diff_opts *o, struct diff_row *row)
{
	struct hashmap *bf = hashmap__new(), *nf = hashmap__new();
	int per_request = row->metric == DIFF_CPU_PER_REQUEST;
	int err = bf && nf ? 0 : -ENOMEM;
	if (!err)
		err = function_costs(b, o->group_key, endpoint, per_request, bf);
	if (!err)
		err = function_costs(n, o->group_key, endpoint, per_request, nf);
	/* Rank by cost on either side, analyse the top ones. */
	size_t cap = hashmap__size(nf) + hashmap__size(bf), nr = 0;
	struct fn_rank *ranks = calloc(cap ? cap : 1, sizeof(*ranks));
	if (!ranks)
		err = -ENOMEM;
	size_t cur = 0;
	const void *k;
	size_t klen;
	void *v;
	while (!err && hashmap__next(nf, &cur, &k, &klen, &v))
		ranks[nr++] = (struct fn_rank){ k, klen,
						darr_sum(v) + darr_sum(hashmap__get(bf, k, klen)) };
	cur = 0;
	while (!err && hashmap__next(bf, &cur, &k, &klen, &v))
		if (!hashmap__get(nf, k, klen))
			ranks[nr++] = (struct fn_rank){ k, klen, darr_sum(v) };
	if (!err) {
		if (nr > 1) /* qsort's base must not be NULL, even for 0 items */
			qsort(ranks, nr, sizeof(*ranks), fn_rank_cmp);
		row->functions = calloc(o->max_functions, sizeof(*row->functions));
		if (!row->functions)
			err = -ENOMEM;
	}
	struct darr empty = { 0 };
	for (size_t i = 0; !err && i < nr && i < o->max_functions; i++) {
		const void *key = ranks[i].name;
		size_t len = ranks[i].len;
		const struct darr *bnum = hashmap__get(bf, key, len);
		const struct darr *nnum = hashmap__get(nf, key, len);
		struct ratio_change rc;
		enum verdict vd;
		err = estimate(bnum ? bnum : &empty, per_request ? &be->requests : &be->samples,
			       b, nnum ? nnum : &empty,
			       per_request ? &ne->requests : &ne->samples, n, o,
			       per_request ? o->min_requests : o->min_samples, row->min_effect,
			       &rc, &vd);
		if (err)
			break;
		if (vd != VERDICT_REGRESSION && vd != VERDICT_IMPROVEMENT)
			continue;
		/* A driver accounts for a real part of the endpoint's change in
		 * absolute cost: a tiny function's large relative change is not. */
		double moved = fabs(rc.current - rc.base);
		double endpoint_moved = fabs(row->change.current - row->change.base);
		if (!isfinite(moved) || (isfinite(endpoint_moved) &&
					 moved < DIFF_DRIVER_MIN_SHARE * endpoint_moved))
			continue;
		struct diff_function *df = &row->functions[row->nfunctions];
		df->name = strndup(key, len);
		if (!df->name) {
			err = -ENOMEM;
			break;
		}
		df->change = rc;
		df->verdict = vd;
		row->nfunctions++;
	}
	if (!err && row->nfunctions)
		qsort(row->functions, row->nfunctions, sizeof(*row->functions), function_cmp);
	free(ranks);
	free_darr_map(bf);
	free_darr_map(nf);
	return err;
}

static int row_cmp(const void *a, const void *b)
{
	const struct diff_row *x = a, *y = b;
	int xo = !strcmp(x->endpoint, "(all)"), yo = !strcmp(y->endpoint, "(all)");
	if (xo != yo)
		return yo - xo;
	int xi = x->verdict == VERDICT_INSUFFICIENT_DATA, yi = y->verdict == VERDICT_INSUFFICIENT_DATA;
	if (xi != yi)
		return xi - yi;
	double cx = isfinite(x->change.change) ? x->change.change : 1e300;
	double cy = isfinite(y->change.change) ? y->change.change : 1e300;
	if (cx != cy)
		return cx < cy ? 1 : -1;
	return strcmp(x->endpoint, y->endpoint);
}

int diff__compute(const struct profile *base, const struct profile *cur,
		  const struct diff_opts *given, struct diff_result *out)
{
	struct diff_opts o;
	struct side b, n;
	int err;

	memset(out, 0, sizeof(*out));
	/* Both sides zeroed: side_free runs on them whichever side_build failed. */
	memset(&b, 0, sizeof(b));
	memset(&n, 0, sizeof(n));
	defaults(&o, given);
	/* Instructions when both sides counted them, else CPU time. */
	int instr = profile__find_value(base, "instructions") >= 0 &&
		    profile__find_value(cur, "instructions") >= 0;
	const char *cpu_type = instr ? "instructions" : "cpu";
	err = side_build(&b, base, cpu_type, o.group_key, o.clusters);
	if (!err)
		err = side_build(&n, cur, cpu_type, o.group_key, o.clusters);
	if (err)
		goto done;
	if (!b.total_samples || !n.total_samples) {
		err = -ENODATA;
		goto done;
	}

	/* Endpoints of either side. */
	size_t cap = hashmap__size(b.eps) + hashmap__size(n.eps) + 1;
	out->rows = calloc(cap, sizeof(*out->rows));
	if (!out->rows) {
		err = -ENOMEM;
		goto done;
	}
	struct ep_acc none = { 0 };
	struct darr bcpu_all = { 0 }, breq_all = { 0 }, ncpu_all = { 0 }, nreq_all = { 0 };
	double breq_total = 0, nreq_total = 0;
	for (int pass = 0; pass < 2 && !err; pass++) {
		struct side *from = pass ? &b : &n;
		size_t c = 0;
		const void *k;
		size_t klen;
		void *v;
		while (!err && hashmap__next(from->eps, &c, &k, &klen, &v)) {
			if (pass && hashmap__get(n.eps, k, klen))
				continue; /* done in pass 0 */
			struct ep_acc *be = pass ? v : hashmap__get(b.eps, k, klen);
			struct ep_acc *ne = pass ? &none : v;
			if (!be)
				be = &none;
			struct diff_row *row = &out->rows[out->nrows];
			row->endpoint = strndup(k, klen);
			if (!row->endpoint) {
				err = -ENOMEM;
				break;
			}
			out->nrows++;
			row->instructions = instr;
			row->min_effect = threshold_for(&o, row->endpoint);
			row->base_samples = be->total_samples;
			row->new_samples = ne->total_samples;
			row->base_requests = be->total_requests;
			row->new_requests = ne->total_requests;
			row->metric = be->total_requests > 0 && ne->total_requests > 0 ?
				      DIFF_CPU_PER_REQUEST : DIFF_SAMPLE_SHARE;
			if (row->metric == DIFF_CPU_PER_REQUEST)
				err = estimate(&be->cpu, &be->requests, &b, &ne->cpu,
					       &ne->requests, &n, &o, o.min_requests,
					       row->min_effect, &row->change, &row->verdict);
			else
				err = estimate(&be->samples, &b.all_samples, &b,
					       &ne->samples, &n.all_samples, &n, &o,
					       o.min_samples, row->min_effect, &row->change,
					       &row->verdict);
			if (!err && (row->verdict == VERDICT_REGRESSION ||
				     row->verdict == VERDICT_IMPROVEMENT))
				err = analyse_functions(&b, &n, row->endpoint, be, ne, &o, row);
			/* The overall row sums endpoints that counted requests. */
			if (!err && row->metric == DIFF_CPU_PER_REQUEST) {
				for (size_t i = 0; i < b.nclusters && !err; i++)
					err = darr_add(&bcpu_all, i, darr_get(&be->cpu, i)) ?:
					      darr_add(&breq_all, i, darr_get(&be->requests, i));
				for (size_t i = 0; i < n.nclusters && !err; i++)
					err = darr_add(&ncpu_all, i, darr_get(&ne->cpu, i)) ?:
					      darr_add(&nreq_all, i, darr_get(&ne->requests, i));
				breq_total += be->total_requests;
				nreq_total += ne->total_requests;
			}
		}
	}
	if (!err && breq_total > 0 && nreq_total > 0) {
		struct diff_row *row = &out->rows[out->nrows];
		row->endpoint = strdup("(all)");
		if (!row->endpoint) {
			err = -ENOMEM;
		} else {
			out->nrows++;
			row->metric = DIFF_CPU_PER_REQUEST;
			row->instructions = instr;
			row->min_effect = o.min_effect;
			row->base_requests = breq_total;
			row->new_requests = nreq_total;
			err = estimate(&bcpu_all, &breq_all, &b, &ncpu_all, &nreq_all,
				       &n, &o, o.min_requests, o.min_effect, &row->change,
				       &row->verdict);
		}
	}
	free(bcpu_all.v);
	free(breq_all.v);
	free(ncpu_all.v);
	free(nreq_all.v);
	if (!err) {
		if (out->nrows > 1) /* qsort's base must not be NULL, even for 0 items */
			qsort(out->rows, out->nrows, sizeof(*out->rows), row_cmp);
		for (size_t i = 0; i < out->nrows; i++) {
			/* The overall row is a summary, not a separate regression. */
			if (!strcmp(out->rows[i].endpoint, "(all)"))
				continue;
			out->regressions += out->rows[i].verdict == VERDICT_REGRESSION;
			out->improvements += out->rows[i].verdict == VERDICT_IMPROVEMENT;
		}
	}
done:
	side_free(&b);
	side_free(&n);
	if (err)
		diff__free(out);
	return err;
}

void diff__free(struct diff_result *r)
{
	for (size_t i = 0; r->rows && i < r->nrows; i++) {
		free(r->rows[i].endpoint);
		for (size_t f = 0; f < r->rows[i].nfunctions; f++)
			free(r->rows[i].functions[f].name);
		free(r->rows[i].functions);
	}
	free(r->rows);
	memset(r, 0, sizeof(*r));
}

struct diff_function_map {
	struct hashmap *fns; /* name -> struct diff_function* */
};

struct diff_function_map *diff__function_map(const struct profile *base,
					     const struct profile *cur,
					     const struct diff_opts *given)
{
	struct diff_opts o;
	struct side b, n;
	struct hashmap *bf = hashmap__new(), *nf = hashmap__new();
	struct diff_function_map *m = calloc(1, sizeof(*m));
	int err = bf && nf && m ? 0 : -ENOMEM;

	defaults(&o, given);
	memset(&b, 0, sizeof(b));
	memset(&n, 0, sizeof(n));
	if (!err)
		err = side_build(&b, base, "cpu", o.group_key, o.clusters);
	if (!err)
		err = side_build(&n, cur, "cpu", o.group_key, o.clusters);
	if (!err)
		err = function_costs(&b, NULL, NULL, 0, bf);
	if (!err)
		err = function_costs(&n, NULL, NULL, 0, nf);
	if (!err && !(m->fns = hashmap__new()))
		err = -ENOMEM;
	/* Functions with at least 0.5% of the new side's samples. */
	size_t c = 0;
	const void *k;
	size_t klen;
	void *v;
	struct darr empty = { 0 };
	while (!err && hashmap__next(nf, &c, &k, &klen, &v)) {
		if (darr_sum(v) < 0.005 * (double)n.total_samples)
			continue;
		const struct darr *bn = hashmap__get(bf, k, klen);
		struct diff_function *df = calloc(1, sizeof(*df));
		if (!df) {
			err = -ENOMEM;
			break;
		}
		err = estimate(bn ? bn : &empty, &b.all_samples, &b, v, &n.all_samples,
			       &n, &o, o.min_samples, o.min_effect, &df->change,
			       &df->verdict);
		df->name = strndup(k, klen);
		if (err || !df->name || hashmap__put(m->fns, k, klen, df, NULL)) {
			free(df->name);
			free(df);
			err = err ? err : -ENOMEM;
		}
	}
	free_darr_map(bf);
	free_darr_map(nf);
	side_free(&b);
	side_free(&n);
	if (err) {
		diff_function_map__free(m);
		errno = -err;
		return NULL;
	}
	return m;
}

const struct diff_function *diff_function_map__get(const struct diff_function_map *m,
						   const char *name)
{
	return hashmap__get(m->fns, name, strlen(name));
}

void diff_function_map__free(struct diff_function_map *m)
{
	if (!m)
		return;
	if (m->fns) {
		size_t c = 0;
		void *v;
		while (hashmap__next(m->fns, &c, NULL, NULL, &v)) {
			free(((struct diff_function *)v)->name);
			free(v);
		}
		hashmap__free(m->fns);
	}
	free(m);
}
