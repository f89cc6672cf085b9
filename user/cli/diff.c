// SPDX-License-Identifier: MIT
/* dynoprof diff: did the new profile get more expensive than the base, per
 * endpoint, with confidence intervals? Exit 0 no regression, 1 regression,
 * 2 usage or input error — so it can gate a deploy pipeline. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "diff/diff.h"
#include "formats/format.h"
#include "formats/output.h"
#include "formats/pprof.h"
#include "formats/svg.h"
#include "profile/profile.h"
#include "profile/transform.h"
#include "util/http_get.h"
#include "util/outfile.h"
#include "util/strbuf.h"
#include "util/textfile.h"

#define MAX_SELECT 16
#define MAX_THRESHOLDS 256
/* A thresholds file: MAX_THRESHOLDS short lines; far larger is not one. */
#define THRESHOLDS_MAX_BYTES (1 << 20)
#define THRESHOLDS_MAX_LINE 65536
#define AGENT_MAX_BYTES (512u << 20)

/* Reads one side into a new profile. */
/* The start of an answer's body as one line of an error message (an agent's
 * error ends in a newline, a proxy's page has many): control characters
 * become spaces, at most len - 1 bytes, trailing spaces dropped. */
static const char *body_line(const struct strbuf *body, char *out, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < body->len && n + 1 < len; i++) {
		unsigned char c = (unsigned char)body->data[i];
		out[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return out;
}

static struct profile *load_side(const char *what, const char *agent, const char *token,
				 const char *const *selects, size_t nselects)
{
	struct profile *p = profile__new();
	char err[512];
	if (!p) {
		cli_error("out of memory");
		return NULL;
	}
	if (agent) {
		/* The agent answers gzipped pprof (raw pprof is read too). The
		 * side's selectors are KEY=VALUE pairs joined by '&', encoded here. */
		struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
		size_t alen = strlen(agent);
		while (alen && agent[alen - 1] == '/')
			alen--;
		strbuf__printf(&url, "%.*s/debug/pprof/profile", (int)alen, agent);
		int e = http_get__append_query(&url, what, err, sizeof(err));
		if (!e && !strstr(what, "from=") && !strstr(what, "to=") &&
		    !strstr(what, "seconds="))
			strbuf__printf(&url, "%cfrom=%lld", strchr(strbuf__str(&url), '?') ? '&' : '?',
				       (long long)time(NULL) - 3600);
		int status = e ? e : http_get(strbuf__str(&url), token, AGENT_MAX_BYTES, 120, &body,
					      err, sizeof(err));
		if (status < 0)
			cli_error("%s", err);
		else if (status != 200)
			cli_error("agent answered %d for %s: %s", status, strbuf__str(&url),
				  body_line(&body, err, 201));
		else if (body.len == 0 && (e = -EINVAL))
			cli_error("agent's answer for %s is empty", what);
		else if ((e = pprof__read_buffer(p, body.data, body.len, err, sizeof(err))))
			cli_error("agent's answer for %s is not a profile: %s", what, err);
		strbuf__release(&url);
		strbuf__release(&body);
		if (status != 200 || e) {
			profile__free(p);
			return NULL;
		}
	} else if (output__read(p, what, err, sizeof(err))) {
		cli_error("%s", err);
		profile__free(p);
		return NULL;
	}
	cli_note_saturated(p, what);
	if (nselects) {
		struct label_filter f[MAX_SELECT];
		char copies[MAX_SELECT][256];
		for (size_t i = 0; i < nselects; i++) {
			snprintf(copies[i], sizeof(copies[i]), "%s", selects[i]);
			if (label_filter__parse(copies[i], &f[i])) {
				cli_error("bad selector '%s': expected KEY=VALUE", selects[i]);
				profile__free(p);
				return NULL;
			}
		}
		struct profile *sel = profile__filtered_copy(p, f, nselects);
		profile__free(p);
		p = sel;
		if (!p)
			cli_error("out of memory");
	}
	return p;
}

static int load_thresholds(const char *path, struct diff_threshold *t, size_t *n,
			   char (*names)[256])
{
	struct textfile tf;
	char msg[512];
	char *line;
	if (textfile__read(&tf, path, THRESHOLDS_MAX_BYTES, THRESHOLDS_MAX_LINE, msg,
			   sizeof(msg))) {
		cli_error("cannot read %s", msg);
		return -EINVAL;
	}
	*n = 0;
	while ((line = textfile__next_line(&tf))) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *eq = strrchr(line, '=');
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			continue;
		char *end = NULL;
		double v = eq ? strtod(eq + 1, &end) : -1;
		while (end && (*end == ' ' || *end == '\t'))
			end++;
		if (!eq || (end && *end) || !(v > 0 && v < 10) || *n >= MAX_THRESHOLDS ||
		    (size_t)(eq - s) >= 256) {
			cli_error("%s:%d: expected `ENDPOINT = MIN_EFFECT` (e.g. /checkout = 0.05)",
				  path, tf.lineno);
			textfile__free(&tf);
			return -EINVAL;
		}
		*eq = '\0';
		size_t len = strlen(s);
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			s[--len] = '\0';
		snprintf(names[*n], 256, "%.255s", s);
		t[*n].endpoint = names[*n];
		t[*n].min_effect = v;
		(*n)++;
	}
	textfile__free(&tf);
	return 0;
}

static const char *metric_unit(const struct diff_row *r)
{
	if (r->metric == DIFF_SAMPLE_SHARE)
		return "share";
	return r->instructions ? "instr/req" : "cpu-ms/req";
}

static double metric_value(const struct diff_row *r, double v)
{
	if (r->metric == DIFF_SAMPLE_SHARE)
		return v * 100.0;        /* percent */
	return r->instructions ? v : v / 1e6; /* ms */
}

static void pct(char *buf, size_t len, double x)
{
	if (!isfinite(x))
		snprintf(buf, len, "%s", isnan(x) ? "n/a" : x > 0 ? "+inf" : "-inf");
	else
		snprintf(buf, len, "%+.1f%%", x * 100.0);
}

static void print_table(const struct diff_result *r, FILE *out)
{
	fprintf(out, "%-28s %-11s %10s %10s %8s  %-20s %s\n", "ENDPOINT", "METRIC", "BASE", "NEW",
		"CHANGE", "95% CI", "VERDICT");
	for (size_t i = 0; i < r->nrows; i++) {
		const struct diff_row *row = &r->rows[i];
		char ch[24], lo[24], hi[24], ci[64];
		pct(ch, sizeof(ch), row->change.change);
		pct(lo, sizeof(lo), row->change.lo);
		pct(hi, sizeof(hi), row->change.hi);
		snprintf(ci, sizeof(ci), "[%s, %s]", lo, hi);
		fprintf(out, "%-28.28s %-11s %10.3f %10.3f %8s  %-20s %s\n", row->endpoint,
			metric_unit(row), metric_value(row, row->change.base),
			metric_value(row, row->change.current), ch, ci, verdict__name(row->verdict));
		for (size_t f = 0; f < row->nfunctions && f < 5; f++) {
			const struct diff_function *fn = &row->functions[f];
			pct(ch, sizeof(ch), fn->change.change);
			pct(lo, sizeof(lo), fn->change.lo);
			pct(hi, sizeof(hi), fn->change.hi);
			fprintf(out, "    %s by %s %s [%s, %s]\n",
				f ? "and" : "driven", fn->name, ch, lo, hi);
		}
	}
	fprintf(out, "%zu regression%s, %zu improvement%s\n", r->regressions,
		r->regressions == 1 ? "" : "s", r->improvements, r->improvements == 1 ? "" : "s");
}

/* "name": v (null when not finite). */
static void json_field(struct strbuf *sb, const char *name, double v)
{
	strbuf__printf(sb, "\"%s\": ", name);
	strbuf__json_number(sb, v);
}

static void json_change(struct strbuf *sb, const struct ratio_change *c)
{
	json_field(sb, "base", c->base);
	strbuf__puts(sb, ", ");
	json_field(sb, "new", c->current);
	strbuf__puts(sb, ", ");
	json_field(sb, "change", c->change);
	strbuf__puts(sb, ", ");
	json_field(sb, "ci_low", c->lo);
	strbuf__puts(sb, ", ");
	json_field(sb, "ci_high", c->hi);
	strbuf__printf(sb, ", \"base_clusters\": %zu, \"new_clusters\": %zu", c->base_clusters,
		       c->new_clusters);
}

static int write_json(const struct diff_result *r, double confidence, FILE *out)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf__printf(&sb, "{\"confidence\": %g, \"regressions\": %zu, \"improvements\": %zu, "
		       "\"endpoints\": [", confidence, r->regressions, r->improvements);
	for (size_t i = 0; i < r->nrows; i++) {
		const struct diff_row *row = &r->rows[i];
		strbuf__puts(&sb, i ? ",\n  {\"endpoint\": \"" : "\n  {\"endpoint\": \"");
		strbuf__json_escape(&sb, row->endpoint);
		strbuf__printf(&sb, "\", \"metric\": \"%s\", \"verdict\": \"%s\", ",
			       metric_unit(row), verdict__name(row->verdict));
		json_change(&sb, &row->change);
		strbuf__printf(&sb, ", \"min_effect\": %g, \"base_samples\": %" PRIu64
			       ", \"new_samples\": %" PRIu64 ", \"base_requests\": %.0f"
			       ", \"new_requests\": %.0f, \"functions\": [", row->min_effect,
			       row->base_samples, row->new_samples, row->base_requests,
			       row->new_requests);
		for (size_t f = 0; f < row->nfunctions; f++) {
			strbuf__puts(&sb, f ? ", {\"name\": \"" : "{\"name\": \"");
			strbuf__json_escape(&sb, row->functions[f].name);
			strbuf__printf(&sb, "\", \"verdict\": \"%s\", ",
				       verdict__name(row->functions[f].verdict));
			json_change(&sb, &row->functions[f].change);
			strbuf__puts(&sb, "}");
		}
		strbuf__puts(&sb, "]}");
	}
	strbuf__puts(&sb, "\n]}\n");
	int e = strbuf__error(&sb);
	if (!e && fwrite(sb.data, 1, sb.len, out) != sb.len)
		e = -EIO;
	strbuf__release(&sb);
	return e;
}

/* Differential flame graph colours: significant growth red, shrink blue. */
static int diff_fill(void *ctx, const struct profile *p, const struct profile_frame *f,
		     int rgb[3])
{
	const struct diff_function_map *m = ctx;
	if (!f || f->kind == FRAME_SPECIAL) {
		rgb[0] = rgb[1] = rgb[2] = 200;
		return 1;
	}
	const struct diff_function *df = diff_function_map__get(m, profile__str(p, f->name));
	if (!df || (df->verdict != VERDICT_REGRESSION && df->verdict != VERDICT_IMPROVEMENT)) {
		rgb[0] = rgb[1] = rgb[2] = 215; /* not significant: grey */
		return 1;
	}
	double mag = fabs(df->change.change);
	int shade = (int)(200 - 160 * (mag > 1 ? 1 : mag));
	if (df->verdict == VERDICT_REGRESSION) {
		rgb[0] = 250;
		rgb[1] = rgb[2] = shade;
	} else {
		rgb[0] = rgb[1] = shade;
		rgb[2] = 250;
	}
	return 1;
}

enum { OPT_BASE_SELECT = CLI_LONG_ONLY, OPT_NEW_SELECT, OPT_AGENT, OPT_TOKEN, OPT_BY,
       OPT_MIN_EFFECT, OPT_THRESHOLDS, OPT_CONFIDENCE, OPT_RESAMPLES, OPT_SEED, OPT_JSON,
       OPT_SVG };

/* The options, their help and defaults: what cmd_diff takes and --help shows. */
static const struct cli_option diff_options[] = {
	{ .operand = "BASE NEW", .help = "profile files, or with --agent the agent's history "
	  "selections" },
	CLI_OPTION(OPT_BASE_SELECT, "base-select", "K=V", "keep only base samples with this "
		   "tag (repeatable), e.g. to compare two commits recorded in one file"),
	CLI_OPTION(OPT_NEW_SELECT, "new-select", "K=V", "likewise for the new side"),
	CLI_OPTION(OPT_AGENT, "agent", "URL", "BASE and NEW are agent queries "
		   "(http://host:9464)"),
	CLI_OPTION(OPT_TOKEN, "token-file", "FILE", "bearer token for the agent"),
	CLI_OPTION_DEF(OPT_BY, "by", "KEY", "the tag that names endpoints", "endpoint"),
	CLI_OPTION_DEF(OPT_MIN_EFFECT, "min-effect", "X", "smallest change that counts",
		       "0.02 = 2%"),
	CLI_OPTION(OPT_THRESHOLDS, "thresholds", "FILE", "per-endpoint minimum effects: "
		   "`ENDPOINT = 0.05` lines"),
	CLI_OPTION_DEF(OPT_CONFIDENCE, "confidence", "C", "interval level, 0.5..1", "0.95"),
	CLI_OPTION_DEF(OPT_RESAMPLES, "resamples", "N", "bootstrap resamples, 100..100000",
		       "2000"),
	CLI_OPTION_DEF(OPT_SEED, "seed", "N", "bootstrap seed (results are deterministic)",
		       "1"),
	CLI_OPTION(OPT_JSON, "json", "FILE", "also write the result as JSON (- for stdout, "
		   "then no table)"),
	CLI_OPTION(OPT_SVG, "svg", "FILE", "differential flame graph of NEW: functions whose "
		   "share grew significantly in red, shrank in blue, else grey"),
	CLI_OPTION('q', "quiet", NULL, "no table"),
	{ 0 },
};

const struct cli_command diff_command = {
	.name = "diff",
	.synopsis = "[OPTIONS] BASE NEW",
	.doc =
"Compares the CPU cost of NEW against BASE per endpoint (and overall, and per\n"
"function within an endpoint that changed): CPU per request where both sides\n"
"counted requests (libdynotag), else the endpoint's share of all samples. Each\n"
"change comes with a 95% confidence interval from a cluster bootstrap over\n"
"time windows and processes (see README, \"How dynoprof decides\"). A change\n"
"is a regression only when the interval excludes zero AND it is at least\n"
"--min-effect; endpoints with too little data say \"insufficient data\".\n"
"\n"
"BASE and NEW are profile files (pprof, or folded with [key=value] tags) —\n"
"recorded with `dynoprof record` (which labels windows and counts requests)\n"
"— or, with --agent, queries of a dynoprof agent's history\n"
"(`commit=abc123&from=2026-11-22T10:00:00Z&to=...`: KEY=VALUE selectors of\n"
"/debug/pprof/profile joined by '&' — service, commit, endpoint, tag.K, pid,\n"
"from, to — one or several per side; without from/to: the last hour).\n",
	.options = diff_options,
	.epilog =
"exit status: 0 no regression, 1 regression found, 2 usage or input error\n"
"\n"
"examples:\n"
"  dynoprof diff before.pb.gz after.pb.gz\n"
"  dynoprof diff --base-select commit=aaa --new-select commit=bbb both.pb.gz both.pb.gz\n"
"  dynoprof diff --agent http://127.0.0.1:9464 'commit=aaa' 'commit=bbb' --json -\n"
"  dynoprof diff --agent http://127.0.0.1:9464 'service=shop&commit=aaa' \\\n"
"      'service=shop&commit=bbb&from=2026-11-22T10:00:00Z'\n",
};

int cmd_diff(int argc, char **argv)
{
	const char *base_sel[MAX_SELECT], *new_sel[MAX_SELECT];
	size_t nbase_sel = 0, nnew_sel = 0, nthr = 0;
	const char *agent = NULL, *token_file = NULL, *json = NULL, *svg = NULL;
	static struct diff_threshold thr[MAX_THRESHOLDS];
	static char thr_names[MAX_THRESHOLDS][256];
	struct diff_opts o = { 0 };
	char token[256] = "", *end;
	int quiet = 0, c, rc = 2;
	struct profile *base = NULL, *cur = NULL;
	struct diff_result result = { 0 };

	struct cli_parser cp = CLI_PARSER_INIT(&diff_command, argc, argv);
	while ((c = cli_parser__next(&cp)) > 0) {
		char *arg = cp.arg;
		switch (c) {
		case OPT_BASE_SELECT:
		case OPT_NEW_SELECT:
			if ((c == OPT_BASE_SELECT ? nbase_sel : nnew_sel) >= MAX_SELECT ||
			    !strchr(arg, '=')) {
				cli_error("bad selector '%s': expected KEY=VALUE", arg);
				return 2;
			}
			if (c == OPT_BASE_SELECT)
				base_sel[nbase_sel++] = arg;
			else
				new_sel[nnew_sel++] = arg;
			break;
		case OPT_AGENT: agent = arg; break;
		case OPT_TOKEN: token_file = arg; break;
		case OPT_BY: o.group_key = arg; break;
		case OPT_MIN_EFFECT:
			o.min_effect = strtod(arg, &end);
			if (*end || !(o.min_effect > 0 && o.min_effect < 10)) {
				cli_error("bad --min-effect '%s': a fraction like 0.02", arg);
				return 2;
			}
			break;
		case OPT_THRESHOLDS:
			if (load_thresholds(arg, thr, &nthr, thr_names))
				return 2;
			o.thresholds = thr;
			o.nthresholds = nthr;
			break;
		case OPT_CONFIDENCE:
			o.confidence = strtod(arg, &end);
			if (*end || !(o.confidence >= 0.5 && o.confidence < 1)) {
				cli_error("bad --confidence '%s': between 0.5 and 1, e.g. 0.95", arg);
				return 2;
			}
			break;
		case OPT_RESAMPLES: {
			long v = strtol(arg, &end, 10);
			if (*end || v < 100 || v > 100000) {
				cli_error("bad --resamples '%s': 100..100000", arg);
				return 2;
			}
			o.resamples = (unsigned)v;
			break;
		}
		case OPT_SEED:
			o.seed = strtoull(arg, &end, 10);
			if (*end || !o.seed) {
				cli_error("bad --seed '%s': a positive integer", arg);
				return 2;
			}
			break;
		case OPT_JSON: json = arg; break;
		case OPT_SVG: svg = arg; break;
		case 'q': quiet = 1; break;
		}
	}
	if (c == CLI_STOP)
		return cp.exit_code;
	int first = cp.operand;
	if (argc - first != 2) {
		cli_error("diff needs two profiles: dynoprof diff BASE NEW (see --help)");
		return 2;
	}
	if (token_file) {
		char msg[512];
		if (textfile__read_token(token_file, token, sizeof(token), msg, sizeof(msg))) {
			cli_error("cannot read --token-file %s", msg);
			return 2;
		}
	}
	/* Outputs are checked before the (maybe remote) inputs are read. */
	for (int i = 0; i < 2; i++) {
		const char *out_path = i ? svg : json;
		char msg[512];
		if (out_path && strcmp(out_path, "-") && outfile__check(out_path, 0, msg, sizeof(msg))) {
			cli_error("%s", msg);
			return 2;
		}
	}
	base = load_side(argv[first], agent, token, base_sel, nbase_sel);
	cur = base ? load_side(argv[first + 1], agent, token, new_sel, nnew_sel) : NULL;
	if (!base || !cur)
		goto out;
	int e = diff__compute(base, cur, &o, &result);
	if (e == -ENODATA) {
		cli_error("%s side has no samples (empty profile, or selectors that match "
			  "nothing)", profile__total(base, 0) ? "the new" : "the base");
		goto out;
	}
	if (e) {
		cli_error("comparing failed: %s", strerror(-e));
		goto out;
	}
	int json_stdout = json && !strcmp(json, "-");
	if (!quiet && !json_stdout)
		print_table(&result, stdout);
	if (json) {
		char werr[512];
		struct outfile *of = outfile__open(json, werr, sizeof(werr));
		e = of ? write_json(&result, o.confidence ? o.confidence : 0.95,
				    outfile__stream(of)) : -errno;
		if (of && e) {
			outfile__abort(of);
			snprintf(werr, sizeof(werr), "cannot write %s: %s", json, strerror(-e));
		} else if (of) {
			e = outfile__commit(of, werr, sizeof(werr));
		}
		if (e) {
			cli_error("%s", werr);
			goto out;
		}
	}
	if (svg) {
		struct diff_function_map *m = diff__function_map(base, cur, &o);
		char err[512];
		if (!m) {
			cli_error("differential flame graph failed: %s", strerror(errno));
			goto out;
		}
		struct svg_opts so = { .title = "dynoprof diff",
				       .subtitle = "red: significantly more; blue: less; grey: no "
						   "significant change",
				       .fill = diff_fill, .fill_ctx = m };
		struct outfile *of = outfile__open(svg, err, sizeof(err));
		e = of ? svg__write(cur, outfile__stream(of), &so) : -errno;
		if (of && e) {
			outfile__abort(of);
			snprintf(err, sizeof(err), "cannot write %s: %s", svg, strerror(-e));
		} else if (of) {
			e = outfile__commit(of, err, sizeof(err));
		}
		diff_function_map__free(m);
		if (e) {
			cli_error("%s", err);
			goto out;
		}
	}
	rc = result.regressions ? 1 : 0;
out:
	diff__free(&result);
	profile__free(base);
	profile__free(cur);
	return rc;
}
