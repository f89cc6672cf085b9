// SPDX-License-Identifier: MIT
/* web_api.c - the JSON APIs of the web page (see web.h and README):
 *
 *   /api/v1/flamegraph  a selection's call tree (formats/flame_json.h), or the
 *                       same selection as folded text or speedscope JSON
 *   /api/v1/timeseries  per group sums in time buckets (sparklines)
 *   /api/v1/compare     `dynoprof diff` (diff__compute, the same code and
 *                       defaults) of two history selections, with the new
 *                       side's call tree coloured by its function verdicts
 *
 * Every parameter is checked (an unknown, malformed or out-of-range one is a
 * 400 naming it) and every answer is bounded (nodes, groups, buckets).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_state.h"
#include "agent/query.h"
#include "agent/web.h"
#include "diff/diff.h"
#include "diff/diff_json.h"
#include "formats/flame_json.h"
#include "formats/folded.h"
#include "formats/speedscope.h"
#include "util/hashmap.h"

/* Sparkline buckets: default and most. */
#define TS_DEFAULT_BUCKETS 60
#define TS_MAX_BUCKETS 240
/* Most groups one timeseries answer holds (then "truncated": true). */
#define TS_MAX_GROUPS 5000

/* Parses a whole decimal integer in [lo, hi]. 0 or -EINVAL. */
static int parse_count(const char *text, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < lo || v > hi || text[0] == '+' || text[0] == ' ')
		return -EINVAL;
	*out = v;
	return 0;
}

/* The value that sizes frames: CPU when the profile has it, else samples. */
static size_t sizing_value(const struct profile *p)
{
	int cpu = profile__find_value(p, "cpu");
	if (cpu < 0)
		cpu = profile__find_value(p, "instructions");
	return cpu >= 0 ? (size_t)cpu : 0;
}

/* ---- /api/v1/flamegraph ---- */

void web__handle_flamegraph(void *ctx, const struct http_query *q, struct http_response *r)
{
	static const char *const extra[] = { "format", "max_nodes", NULL };
	const char *format = http_query__get(q, "format"), *mn = http_query__get(q, "max_nodes");
	long max_nodes = FLAME_JSON_DEFAULT_NODES;
	if (format && strcmp(format, "tree") && strcmp(format, "folded") &&
	    strcmp(format, "speedscope")) {
		http_response__error(r, 400, "bad format: use tree (default), folded or speedscope "
				     "(pprof: /debug/pprof/profile)");
		return;
	}
	if (mn && parse_count(mn, 1, FLAME_JSON_MAX_NODES, &max_nodes)) {
		http_response__error(r, 400, "bad max_nodes: a whole number from 1 to %d",
				     FLAME_JSON_MAX_NODES);
		return;
	}
	struct profile *p = agent_query__profile(ctx, q, extra, r);
	if (!p)
		return;
	int e;
	if (!format || !strcmp(format, "tree")) {
		struct flame_json_opts o = { .value_index = sizing_value(p),
					     .max_nodes = (size_t)max_nodes };
		e = flame_json__write(p, &r->body, &o);
		strbuf__putc(&r->body, '\n');
		r->content_type = "application/json";
	} else {
		char *text = NULL;
		size_t len = 0;
		FILE *mem = open_memstream(&text, &len);
		int folded = !strcmp(format, "folded");
		struct folded_opts fo = FOLDED_OPTS_INIT;
		fo.value_index = sizing_value(p);
		e = !mem ? -errno : folded ? folded__write(p, mem, &fo)
					   : speedscope__write(p, mem, sizing_value(p));
		if (mem && fclose(mem) && !e)
			e = -EIO;
		if (!e)
			strbuf__append(&r->body, text, len);
		free(text);
		r->content_type = folded ? "text/plain; charset=utf-8" : "application/json";
		r->content_disposition = folded ? "attachment; filename=\"profile.folded\""
						: "attachment; filename=\"profile.speedscope.json\"";
	}
	profile__free(p);
	if (e) {
		strbuf__reset(&r->body);
		r->content_disposition = NULL;
		http_response__error(r, 500, "writing the profile failed: %s", strerror(-e));
	}
}

/* ---- /api/v1/timeseries ---- */

/* One group's buckets. */
struct ts_series {
	char *values[3];      /* its by= values, in request order */
	uint64_t *cells;      /* nbuckets x 4: samples, cpu_ns, instructions, requests */
};

struct ts_ctx {
	struct hashmap *series; /* joined by= values -> struct ts_series* */
	struct group_query gq;  /* what is selected */
	size_t nbuckets;        /* buckets per series */
	size_t nseries;         /* series created */
	int truncated;          /* a group past TS_MAX_GROUPS was left out */
	int error;              /* -ENOMEM */
};

static int on_bucket(void *ctx, int64_t bucket, const struct store_group *g)
{
	struct ts_ctx *tc = ctx;
	const char *vals[3];
	struct strbuf key = STRBUF_INIT;
	if (agent_query__group_key(&tc->gq, g, vals, &key)) {
		strbuf__release(&key);
		return tc->error = -ENOMEM;
	}
	struct ts_series *s = hashmap__get(tc->series, key.data, key.len);
	if (!s && tc->nseries >= TS_MAX_GROUPS) {
		tc->truncated = 1;
		strbuf__release(&key);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (s)
			s->cells = calloc(tc->nbuckets * 4, sizeof(*s->cells));
		for (size_t i = 0; s && s->cells && i < tc->gq.nby; i++)
			if (!(s->values[i] = strdup(vals[tc->gq.by[i]]))) {
				free(s->cells);
				s->cells = NULL;
			}
		if (!s || !s->cells || hashmap__put(tc->series, key.data, key.len, s, NULL)) {
			if (s)
				for (size_t i = 0; i < 3; i++)
					free(s->values[i]);
			free(s ? s->cells : NULL);
			free(s);
			strbuf__release(&key);
			return tc->error = -ENOMEM;
		}
		tc->nseries++;
	}
	strbuf__release(&key);
	size_t b = bucket < 0 ? 0 : (size_t)bucket >= tc->nbuckets ? tc->nbuckets - 1
								    : (size_t)bucket;
	uint64_t *c = &s->cells[b * 4];
	c[0] += g->samples;
	c[1] += g->cpu_ns;
	c[2] += g->instructions;
	c[3] += g->requests;
	return 0;
}

static void put_cells(struct strbuf *sb, const char *name, const struct ts_series *s,
		      size_t nbuckets, size_t col)
{
	strbuf__printf(sb, ", \"%s\": [", name);
	for (size_t b = 0; b < nbuckets; b++)
		strbuf__printf(sb, "%s%" PRIu64, b ? "," : "", s->cells[b * 4 + col]);
	strbuf__putc(sb, ']');
}

void web__handle_timeseries(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct agent_state *st = ctx;
	struct ts_ctx tc = { .nbuckets = TS_DEFAULT_BUCKETS };
	const struct group_query *gq = &tc.gq;
	if (agent_query__parse_groups(st, q, "buckets", &tc.gq, r))
		return;
	const char *bk = http_query__get(q, "buckets");
	long nb;
	if (bk) {
		if (parse_count(bk, 1, TS_MAX_BUCKETS, &nb)) {
			http_response__error(r, 400, "bad buckets: a whole number from 1 to %d",
					     TS_MAX_BUCKETS);
			return;
		}
		tc.nbuckets = (size_t)nb;
	}
	int64_t from = gq->from_ns, to = gq->to_ns;
	/* Buckets of whole milliseconds, covering the range. */
	int64_t step = (to - from + (int64_t)tc.nbuckets - 1) / (int64_t)tc.nbuckets;
	step = (step + 999999) / 1000000 * 1000000;
	tc.series = hashmap__new();
	if (!tc.series) {
		http_response__error(r, 500, "out of memory");
		return;
	}
	int e = store__group_buckets(st->store, from, to, step, gq->filter[0], gq->filter[1],
				     gq->filter[2], gq->tags, on_bucket, &tc);
	strbuf__printf(&r->body, "{\"from\": %.3f, \"to\": %.3f, \"step\": %.3f, \"buckets\": %zu, "
		       "\"truncated\": %s, \"series\": [", from / 1e9, to / 1e9, step / 1e9,
		       tc.nbuckets, tc.truncated ? "true" : "false");
	size_t cur = 0, n = 0;
	void *v;
	while (hashmap__next(tc.series, &cur, NULL, NULL, &v)) {
		struct ts_series *s = v;
		strbuf__puts(&r->body, n++ ? ",\n  {" : "\n  {");
		for (size_t i = 0; i < gq->nby; i++) {
			strbuf__json_string(&r->body, agent_query__group_keys[gq->by[i]]);
			strbuf__puts(&r->body, ": ");
			strbuf__json_string(&r->body, s->values[i]);
			strbuf__puts(&r->body, i + 1 < gq->nby ? ", " : "");
			free(s->values[i]);
		}
		put_cells(&r->body, "samples", s, tc.nbuckets, 0);
		put_cells(&r->body, "cpu_ns", s, tc.nbuckets, 1);
		put_cells(&r->body, "instructions", s, tc.nbuckets, 2);
		put_cells(&r->body, "requests", s, tc.nbuckets, 3);
		strbuf__putc(&r->body, '}');
		free(s->cells);
		free(s);
	}
	strbuf__puts(&r->body, "\n]}\n");
	hashmap__free(tc.series);
	if (e < 0 || tc.error) {
		strbuf__reset(&r->body);
		http_response__error(r, 500, "reading history failed: %s",
				     strerror(-(tc.error ? tc.error : e)));
		return;
	}
	r->content_type = "application/json";
}

/* ---- /api/v1/compare ---- */

/* Reads the compare parameters into the two sides. 0, or a 400 set on r. */
static int parse_compare(struct agent_state *st, const struct http_query *q,
			 struct selection sides[2], struct diff_opts *o, long *max_nodes,
			 struct http_response *r)
{
	static const char *const side_names[2] = { "base", "new" };
	int64_t max_range_s = agent_query__max_range_s(st);
	memset(sides, 0, 2 * sizeof(*sides));

	for (size_t i = 0; i < http_query__count(q); i++) {
		const char *n = http_query__name(q, i), *v = http_query__value(q, i);
		int e = 0, known = 1;
		if (!strcmp(n, "service") || !strcmp(n, "endpoint") || !strcmp(n, "commit")) {
			for (int s = 0; s < 2 && !e; s++)
				e = agent_query__add_filter(&sides[s], n, v, r);
		} else if (!strncmp(n, "tag.", 4) && n[4]) {
			for (int s = 0; s < 2 && !e; s++)
				e = agent_query__add_filter(&sides[s], n + 4, v, r);
		} else if (!strcmp(n, "base.commit") || !strcmp(n, "new.commit")) {
			e = agent_query__add_filter(&sides[n[0] == 'n'], "commit", v, r);
		} else if (strcmp(n, "from") && strcmp(n, "to") && strcmp(n, "base.from") &&
			   strcmp(n, "base.to") && strcmp(n, "new.from") && strcmp(n, "new.to") &&
			   strcmp(n, "confidence") && strcmp(n, "min_effect") &&
			   strcmp(n, "max_nodes") && strcmp(n, "flame.endpoint")) {
			known = 0;
		}
		if (!known) {
			http_response__error(r, 400, "unknown parameter '%s': use base.commit, "
					     "new.commit, base.from, base.to, new.from, new.to, from, "
					     "to, service, endpoint, tag.KEY, confidence, min_effect, "
					     "max_nodes, flame.endpoint", n);
			return -EINVAL;
		}
		if (e)
			return -EINVAL;
	}
	if (!http_query__get(q, "base.commit") && !http_query__get(q, "base.from") &&
	    !http_query__get(q, "base.to")) {
		http_response__error(r, 400, "say what to compare: base.commit and new.commit, "
				     "or base.from/base.to and new.from/new.to");
		return -EINVAL;
	}
	for (int s = 0; s < 2; s++) {
		char name[16];
		const char *from, *to;
		snprintf(name, sizeof(name), "%s.from", side_names[s]);
		from = http_query__get(q, name);
		if (!from)
			from = http_query__get(q, "from");
		snprintf(name, sizeof(name), "%s.to", side_names[s]);
		to = http_query__get(q, name);
		if (!to)
			to = http_query__get(q, "to");
		int e = agent_query__range(from, to, max_range_s, &sides[s].from_ns,
					   &sides[s].to_ns);
		if (e == -EINVAL) {
			http_response__error(r, 400, "bad time for the %s side: use unix seconds or "
					     "RFC 3339", side_names[s]);
			return -EINVAL;
		}
		if (e) {
			http_response__error(r, 400, "bad range for the %s side: from must be before "
					     "to, and the range at most max_query_range (%" PRId64
					     " s)", side_names[s], max_range_s);
			return -EINVAL;
		}
	}
	const char *c = http_query__get(q, "confidence"), *m = http_query__get(q, "min_effect");
	const char *mn = http_query__get(q, "max_nodes");
	char *end;
	if (c) {
		o->confidence = strtod(c, &end);
		if (end == c || *end || !(o->confidence >= 0.5 && o->confidence <= 0.9999)) {
			http_response__error(r, 400, "bad confidence: from 0.5 to 0.9999, e.g. 0.95");
			return -EINVAL;
		}
	}
	if (m) {
		o->min_effect = strtod(m, &end);
		if (end == m || *end || !(o->min_effect > 0 && o->min_effect < 10)) {
			http_response__error(r, 400, "bad min_effect: a fraction like 0.02");
			return -EINVAL;
		}
	}
	if (mn && parse_count(mn, 1, FLAME_JSON_MAX_NODES, max_nodes)) {
		http_response__error(r, 400, "bad max_nodes: a whole number from 1 to %d",
				     FLAME_JSON_MAX_NODES);
		return -EINVAL;
	}
	return 0;
}

/* "name": v (null when not finite). */
static void json_field(struct strbuf *sb, const char *name, double v)
{
	strbuf__printf(sb, "\"%s\": ", name);
	strbuf__json_number(sb, v);
}

/* What colours the differential call tree. */
struct diff_colours {
	struct hashmap *drivers;            /* function name -> struct diff_function* that
					     * drove a flagged endpoint's change (per
					     * request: what `dynoprof diff` names) */
	const struct diff_function_map *map; /* else: its self share of all samples */
};

/* A frame's differential verdict: "dv" (regression, improvement, or absent:
 * not significant), "dc" its change and "dl", "dh" its interval. */
static void annotate_diff(void *ctx, const struct profile *p, const struct profile_frame *f,
			  struct strbuf *sb)
{
	const struct diff_colours *dc = ctx;
	const char *name = profile__str(p, f->name);
	const struct diff_function *df = hashmap__get(dc->drivers, name, strlen(name));
	if (!df)
		df = diff_function_map__get(dc->map, name);
	if (!df || (df->verdict != VERDICT_REGRESSION && df->verdict != VERDICT_IMPROVEMENT))
		return;
	strbuf__printf(sb, ", \"dv\": \"%s\", ", verdict__name(df->verdict));
	json_field(sb, "dc", df->change.change);
	strbuf__puts(sb, ", ");
	json_field(sb, "dl", df->change.lo);
	strbuf__puts(sb, ", ");
	json_field(sb, "dh", df->change.hi);
}

static void put_side(struct strbuf *sb, const char *name, const struct selection *s)
{
	strbuf__printf(sb, "\"%s\": {\"from\": %.3f, \"to\": %.3f", name, s->from_ns / 1e9,
		       s->to_ns / 1e9);
	for (size_t i = 0; i < s->nfilters; i++) {
		strbuf__puts(sb, ", ");
		strbuf__json_string(sb, s->filters[i].key);
		strbuf__puts(sb, ": ");
		strbuf__json_string(sb, s->filters[i].value);
	}
	strbuf__puts(sb, "}, ");
}

void web__handle_compare(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct agent_state *st = ctx;
	struct selection sides[2];
	struct diff_opts o = { 0 };
	struct diff_result res = { 0 };
	struct profile *base = NULL, *cur = NULL;
	struct diff_function_map *m = NULL;
	struct diff_colours colours = { 0 };
	struct profile *flame = NULL;
	long max_nodes = FLAME_JSON_DEFAULT_NODES;
	int e;

	if (parse_compare(st, q, sides, &o, &max_nodes, r))
		return;
	base = agent_query__history(st, &sides[0], r);
	cur = base ? agent_query__history(st, &sides[1], r) : NULL;
	if (!base || !cur)
		goto out;
	e = diff__compute(base, cur, &o, &res);
	if (e == -ENODATA) {
		http_response__error(r, 404, "the %s side has no samples in its range (nothing "
				     "matched its commit, filters and times)",
				     profile__total(base, 0) ? "new" : "base");
		goto out;
	}
	if (e) {
		http_response__error(r, 500, "comparing failed: %s", strerror(-e));
		goto out;
	}
	m = diff__function_map(base, cur, &o);
	if (!m) {
		http_response__error(r, 500, "comparing functions failed: %s", strerror(errno));
		goto out;
	}
	struct strbuf *sb = &r->body;
	strbuf__puts(sb, "{");
	put_side(sb, "base_selection", &sides[0]);
	put_side(sb, "new_selection", &sides[1]);
	diff__write_json(&res, o.confidence ? o.confidence : 0.95, sb);
	/* The tree: the new side (flame.endpoint: that endpoint's samples), its
	 * frames coloured by the functions that drove the flagged endpoints
	 * (that endpoint's), else by their self share of all samples. */
	const char *fe = http_query__get(q, "flame.endpoint");
	colours.map = m;
	colours.drivers = hashmap__new();
	e = colours.drivers ? 0 : -ENOMEM;
	for (size_t i = 0; !e && i < res.nrows; i++) {
		const struct diff_row *row = &res.rows[i];
		if ((row->verdict != VERDICT_REGRESSION && row->verdict != VERDICT_IMPROVEMENT) ||
		    (fe ? strcmp(row->endpoint, fe) : !strcmp(row->endpoint, "(all)")))
			continue;
		for (size_t f = 0; !e && f < row->nfunctions; f++)
			if (!hashmap__get(colours.drivers, row->functions[f].name,
					  strlen(row->functions[f].name)))
				e = hashmap__put(colours.drivers, row->functions[f].name,
						 strlen(row->functions[f].name),
						 (void *)&row->functions[f], NULL);
	}
	if (!e && fe && strcmp(fe, "(all)")) {
		struct label_filter lf = { o.group_key ? o.group_key : "endpoint", fe };
		flame = profile__filtered_copy(cur, &lf, 1);
		e = flame ? 0 : -ENOMEM;
	}
	strbuf__puts(sb, ",\n\"flame_endpoint\": ");
	strbuf__json_string(sb, fe ? fe : "(all)");
	strbuf__puts(sb, ",\n\"flame\": ");
	struct flame_json_opts fo = { .value_index = sizing_value(cur),
				      .max_nodes = (size_t)max_nodes,
				      .annotate = annotate_diff, .annotate_ctx = &colours };
	if (!e)
		e = flame_json__write(flame ? flame : cur, sb, &fo);
	strbuf__puts(sb, "}\n");
	if (e) {
		strbuf__reset(sb);
		http_response__error(r, 500, "writing the call tree failed: %s", strerror(-e));
		goto out;
	}
	r->content_type = "application/json";
out:
	hashmap__free(colours.drivers);
	profile__free(flame);
	diff_function_map__free(m);
	diff__free(&res);
	profile__free(base);
	profile__free(cur);
}
