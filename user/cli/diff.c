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
#include <unistd.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "cli/diff_agents.h"
#include "diff/diff.h"
#include "diff/diff_json.h"
#include "formats/format.h"
#include "formats/output.h"
#include "formats/pprof.h"
#include "formats/svg.h"
#include "profile/profile.h"
#include "profile/transform.h"
#include "util/hashmap.h"
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
/* One agent's answer when several are asked: the sides stay bounded. */
#define FLEET_AGENT_MAX_BYTES (64u << 20)
/* An agents file: DIFF_MAX_AGENTS short lines. */
#define AGENTS_FILE_MAX_BYTES (1 << 20)
#define AGENTS_FILE_MAX_LINE 4096
#define AGENT_TIMEOUT_DEFAULT_S 10

/* The agents of a diff: URLs per side, and what each answered. */
struct fleet {
	const char *urls[2][DIFF_MAX_AGENTS]; /* per side (0 base, 1 new), borrowed */
	size_t nurls[2];
	struct agent_job *jobs;               /* one per side x URL (owned) */
	size_t njobs;
	size_t hosts[2];                      /* distinct hosts with samples per side,
					       * after the selectors */
	struct hashmap *all_hosts;            /* hosts with samples on either side */
	size_t nall_hosts;
};

static struct profile *select_side(struct profile *p, const char *what,
				   const char *const *selects, size_t nselects);

/* Reads one side into a new profile. */
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
				  http_get__body_line(&body, err, 201));
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
	return select_side(p, what, selects, nselects);
}

/* Notes a side's saturation and keeps the samples its selectors choose. */
static struct profile *select_side(struct profile *p, const char *what,
				   const char *const *selects, size_t nselects)
{
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
			diff_row__unit(row), metric_value(row, row->change.base),
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

static void json_fleet(struct strbuf *sb, const struct fleet *f);

static int write_json(const struct diff_result *r, double confidence, const struct fleet *fleet,
		      FILE *out)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf__putc(&sb, '{');
	diff__write_json(r, confidence, &sb);
	if (fleet)
		json_fleet(&sb, fleet);
	strbuf__puts(&sb, "}\n");
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

/* Reads an agents file: one URL per line, `#` comments, blank lines skipped.
 * The URLs are kept in *keep (freed by the caller). */
static int load_agents_file(const char *path, const char **urls, size_t *n,
			    struct textfile *keep)
{
	char msg[512];
	char *line;
	if (textfile__read(keep, path, AGENTS_FILE_MAX_BYTES, AGENTS_FILE_MAX_LINE, msg,
			   sizeof(msg))) {
		cli_error("cannot read %s", msg);
		return -EINVAL;
	}
	while ((line = textfile__next_line(keep))) {
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = line;
		while (*s == ' ' || *s == '\t')
			s++;
		size_t len = strlen(s);
		while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			s[--len] = '\0';
		if (!*s)
			continue;
		if (strncmp(s, "http://", 7) || strpbrk(s, " \t")) {
			cli_error("%s:%d: expected one agent URL (http://host:port) per line", path,
				  keep->lineno);
			return -EINVAL;
		}
		if (*n >= DIFF_MAX_AGENTS) {
			cli_error("%s:%d: more than %d agents", path, keep->lineno, DIFF_MAX_AGENTS);
			return -E2BIG;
		}
		urls[(*n)++] = s;
	}
	return 0;
}

/* Asks every agent of both sides (in parallel) for its side's selection.
 * Returns 0 when each side has at least one answer; else names every agent
 * of a side that has none (exit 2). Agents that did not answer while others
 * did are named as a warning and left out. */
static int fleet_fetch(struct fleet *f, const char *base_q, const char *new_q,
		       const char *token, int timeout_s)
{
	size_t n = f->nurls[0] + f->nurls[1];
	f->jobs = calloc(n ? n : 1, sizeof(*f->jobs));
	if (!f->jobs) {
		cli_error("out of memory");
		return -ENOMEM;
	}
	for (int side = 0; side < 2; side++)
		for (size_t i = 0; i < f->nurls[side]; i++) {
			struct agent_job *j = &f->jobs[f->njobs++];
			j->url = f->urls[side][i];
			j->query = side ? new_q : base_q;
			j->side = side;
		}
	struct agent_fetch_opts o = { .token = token[0] ? token : NULL, .timeout_s = timeout_s,
				      .max_bytes = FLEET_AGENT_MAX_BYTES };
	agent_jobs__run(f->jobs, f->njobs, &o);
	for (size_t i = 0; i < f->njobs; i++)
		if (f->jobs[i].usage_error) {
			cli_error("%s", f->jobs[i].error);
			return -EINVAL;
		}
	size_t answered[2] = { 0, 0 };
	for (size_t i = 0; i < f->njobs; i++)
		answered[f->jobs[i].side] += f->jobs[i].answered;
	for (int side = 0; side < 2; side++) {
		if (answered[side])
			continue;
		/* One line: the first agent's reason, and how many more failed. */
		for (size_t i = 0; i < f->njobs; i++)
			if (f->jobs[i].side == side) {
				if (f->nurls[side] > 1)
					cli_error("no agent answered for the %s side (%s: %s; and %zu "
						  "more)", side ? "new" : "base", f->jobs[i].url,
						  f->jobs[i].error, f->nurls[side] - 1);
				else
					cli_error("%s", f->jobs[i].error);
				break;
			}
		return -ENODATA;
	}
	for (size_t i = 0; i < f->njobs; i++)
		if (!f->jobs[i].answered)
			fprintf(stderr, "dynoprof: warning: %s side: agent %s (%s) left out: %s\n",
				f->jobs[i].side ? "new" : "base", f->jobs[i].url, f->jobs[i].host,
				f->jobs[i].error);
	return 0;
}

/* Pools a side's answers, every sample labelled with its host (two agents
 * naming the same host are told apart by their URL), then applies the
 * side's selectors (which may select a host). */
static struct profile *fleet_side(struct fleet *f, int side, const char *what,
				  const char *const *selects, size_t nselects)
{
	struct profile *p = profile__new();
	if (!p) {
		cli_error("out of memory");
		return NULL;
	}
	for (size_t i = 0; i < f->njobs; i++) {
		struct agent_job *j = &f->jobs[i];
		if (j->side != side || !j->answered)
			continue;
		for (size_t k = 0; k < i; k++)
			if (f->jobs[k].answered && f->jobs[k].side == side &&
			    !strcmp(f->jobs[k].host, j->host)) {
				char both[sizeof(j->host)];
				snprintf(both, sizeof(both), "%.40s@%.50s", j->host, j->url);
				fprintf(stderr, "dynoprof: warning: agents %s and %s both call themselves "
					"%s: the second is %s here\n", f->jobs[k].url, j->url, j->host,
					both);
				memcpy(j->host, both, sizeof(both));
				break;
			}
		struct label_filter extra = { "host", j->host };
		int e = profile__merge(p, j->profile, NULL, 0, 0, &extra);
		if (e) {
			cli_error("pooling the agents' answers failed: %s", strerror(-e));
			profile__free(p);
			return NULL;
		}
	}
	p = select_side(p, what, selects, nselects);
	if (!p)
		return NULL;
	/* The hosts the side's figures stand on: those with samples left. */
	struct hashmap *seen = hashmap__new();
	if (!f->all_hosts)
		f->all_hosts = hashmap__new();
	for (size_t i = 0; seen && f->all_hosts && i < profile__sample_count(p); i++) {
		const char *h = profile__sample_label(p, profile__sample(p, i), "host");
		if (h && !hashmap__get(seen, h, strlen(h)) &&
		    !hashmap__put(seen, h, strlen(h), (void *)1, NULL))
			f->hosts[side]++;
		if (h && !hashmap__get(f->all_hosts, h, strlen(h)) &&
		    !hashmap__put(f->all_hosts, h, strlen(h), (void *)1, NULL))
			f->nall_hosts++;
	}
	hashmap__free(seen);
	return p;
}

static void fleet_free(struct fleet *f)
{
	for (size_t i = 0; f->jobs && i < f->njobs; i++)
		profile__free(f->jobs[i].profile);
	free(f->jobs);
	hashmap__free(f->all_hosts);
}

/* The fleet lines under the table: on how many hosts the verdict stands,
 * and every agent left out. */
static void print_fleet(const struct fleet *f, FILE *out)
{
	size_t answered[2] = { 0, 0 };
	for (size_t i = 0; i < f->njobs; i++)
		answered[f->jobs[i].side] += f->jobs[i].answered;
	fprintf(out, "on %zu host%s: base %zu (%zu of %zu agents answered), new %zu (%zu of %zu)\n",
		f->nall_hosts, f->nall_hosts == 1 ? "" : "s", f->hosts[0],
		answered[0], f->nurls[0], f->hosts[1], answered[1], f->nurls[1]);
	for (size_t i = 0; i < f->njobs; i++)
		if (!f->jobs[i].answered)
			fprintf(out, "no answer from %s (%s, %s side): %s\n", f->jobs[i].url,
				f->jobs[i].host, f->jobs[i].side ? "new" : "base", f->jobs[i].error);
}

static void json_fleet(struct strbuf *sb, const struct fleet *f)
{
	strbuf__printf(sb, ", \"hosts\": {\"base\": %zu, \"new\": %zu, \"all\": %zu}, "
		       "\"agents\": [", f->hosts[0], f->hosts[1], f->nall_hosts);
	for (size_t i = 0; i < f->njobs; i++) {
		const struct agent_job *j = &f->jobs[i];
		strbuf__puts(sb, i ? ", {\"url\": " : "{\"url\": ");
		strbuf__json_string(sb, j->url);
		strbuf__printf(sb, ", \"side\": \"%s\", \"host\": ", j->side ? "new" : "base");
		strbuf__json_string(sb, j->host);
		strbuf__printf(sb, ", \"answered\": %s", j->answered ? "true" : "false");
		if (!j->answered) {
			strbuf__puts(sb, ", \"error\": ");
			strbuf__json_string(sb, j->error);
		}
		strbuf__puts(sb, "}");
	}
	strbuf__puts(sb, "]");
}

enum { OPT_BASE_SELECT = CLI_LONG_ONLY, OPT_NEW_SELECT, OPT_AGENT, OPT_TOKEN, OPT_BY,
       OPT_MIN_EFFECT, OPT_THRESHOLDS, OPT_CONFIDENCE, OPT_RESAMPLES, OPT_SEED, OPT_JSON,
       OPT_SVG, OPT_AGENTS_FILE, OPT_BASE_AGENTS, OPT_NEW_AGENTS, OPT_AGENT_TIMEOUT,
       OPT_CLUSTERS };

/* The options, their help and defaults: what cmd_diff takes and --help shows. */
static const struct cli_option diff_options[] = {
	{ .operand = "BASE NEW", .help = "profile files, or with --agent the agent's history "
	  "selections" },
	CLI_OPTION(OPT_BASE_SELECT, "base-select", "K=V", "keep only base samples with this "
		   "tag (repeatable), e.g. to compare two commits recorded in one file"),
	CLI_OPTION(OPT_NEW_SELECT, "new-select", "K=V", "likewise for the new side"),
	CLI_OPTION(OPT_AGENT, "agent", "URL", "BASE and NEW are agent queries "
		   "(http://host:9464); repeatable: every agent is asked, in parallel, and "
		   "their hosts pooled (see --clusters)"),
	CLI_OPTION(OPT_AGENTS_FILE, "agents-file", "FILE", "more agents: one URL per line, "
		   "# comments"),
	CLI_OPTION(OPT_BASE_AGENTS, "base-agents", "FILE", "BASE is asked of these agents "
		   "only (e.g. the fleet), instead of --agent/--agents-file"),
	CLI_OPTION(OPT_NEW_AGENTS, "new-agents", "FILE", "NEW is asked of these agents only "
		   "(e.g. the canaries)"),
	CLI_OPTION_DEF(OPT_AGENT_TIMEOUT, "agent-timeout", "SECONDS", "longest wait for one "
		       "agent (an agent slower than that is named and left out)", "10"),
	CLI_OPTION_DEF(OPT_CLUSTERS, "clusters", "nested|host-window|host", "with many "
		       "agents: host x window clusters nested in their hosts (hosts resampled, "
		       "then their windows: lasting host differences stay in the interval), "
		       "host x window clusters as independent (the same hosts on both sides), "
		       "or each host one cluster (needs 8 hosts a side)", "nested"),
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
	/* Agents: --agent and --agents-file (both sides), --base-agents and
	 * --new-agents (one side each). */
	struct fleet fleet = { .njobs = 0 };
	const char *any_urls[DIFF_MAX_AGENTS];
	size_t nany = 0;
	struct textfile files[3] = { 0 };
	int nfiles = 0, side_files[2] = { 0, 0 }, timeout_s = AGENT_TIMEOUT_DEFAULT_S;
	const char *file_args[3][2] = { { 0 } };
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
		case OPT_AGENT:
			if (nany >= DIFF_MAX_AGENTS) {
				cli_error("more than %d agents", DIFF_MAX_AGENTS);
				return 2;
			}
			agent = any_urls[nany++] = arg;
			break;
		case OPT_AGENTS_FILE:
		case OPT_BASE_AGENTS:
		case OPT_NEW_AGENTS:
			if (nfiles >= 3) {
				cli_error("at most one --agents-file, --base-agents and --new-agents");
				return 2;
			}
			file_args[nfiles][0] = c == OPT_AGENTS_FILE ? "any" :
					       c == OPT_BASE_AGENTS ? "base" : "new";
			file_args[nfiles++][1] = arg;
			break;
		case OPT_CLUSTERS:
			if (strcmp(arg, "nested") && strcmp(arg, "host") && strcmp(arg, "host-window")) {
				cli_error("bad --clusters '%s': nested, host-window or host", arg);
				return 2;
			}
			o.clusters = !strcmp(arg, "host") ? DIFF_CLUSTERS_HOST :
				     !strcmp(arg, "nested") ? DIFF_CLUSTERS_NESTED :
				     DIFF_CLUSTERS_HOST_WINDOW;
			break;
		case OPT_AGENT_TIMEOUT: {
			long v = strtol(arg, &end, 10);
			if (*end || v < 1 || v > 3600) {
				cli_error("bad --agent-timeout '%s': whole seconds, 1..3600", arg);
				return 2;
			}
			timeout_s = (int)v;
			break;
		}
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
	/* The agents of each side. */
	for (int i = 0; i < nfiles; i++) {
		const char *kind = file_args[i][0];
		int e;
		if (!strcmp(kind, "any")) {
			e = load_agents_file(file_args[i][1], any_urls, &nany, &files[i]);
		} else {
			int side = !strcmp(kind, "new");
			if (side_files[side]++) {
				cli_error("--%s-agents given twice", kind);
				goto out;
			}
			e = load_agents_file(file_args[i][1], fleet.urls[side], &fleet.nurls[side],
					     &files[i]);
		}
		if (e)
			goto out;
	}
	int fleet_mode = nany > 1 || nfiles > 0;
	if (fleet_mode) {
		for (int side = 0; side < 2; side++)
			if (!side_files[side])
				for (size_t i = 0; i < nany; i++)
					fleet.urls[side][fleet.nurls[side]++] = any_urls[i];
		if (!fleet.nurls[0] || !fleet.nurls[1]) {
			cli_error("no agents for the %s side: give --agent, --agents-file or --%s-agents",
				  fleet.nurls[0] ? "new" : "base", fleet.nurls[0] ? "new" : "base");
			goto out;
		}
	}
	/* Outputs are checked before the (maybe remote) inputs are read. */
	for (int i = 0; i < 2; i++) {
		const char *out_path = i ? svg : json;
		char msg[512];
		if (out_path && strcmp(out_path, "-") && outfile__check(out_path, 0, msg, sizeof(msg))) {
			cli_error("%s", msg);
			goto out;
		}
	}
	if (fleet_mode) {
		if (fleet_fetch(&fleet, argv[first], argv[first + 1], token, timeout_s))
			goto out;
		base = fleet_side(&fleet, 0, argv[first], base_sel, nbase_sel);
		cur = base ? fleet_side(&fleet, 1, argv[first + 1], new_sel, nnew_sel) : NULL;
	} else {
		base = load_side(argv[first], agent, token, base_sel, nbase_sel);
		cur = base ? load_side(argv[first + 1], agent, token, new_sel, nnew_sel) : NULL;
	}
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
	if (!quiet && !json_stdout) {
		print_table(&result, stdout);
		if (fleet_mode)
			print_fleet(&fleet, stdout);
	}
	if (json) {
		char werr[512];
		struct outfile *of = outfile__open(json, werr, sizeof(werr));
		e = of ? write_json(&result, o.confidence ? o.confidence : 0.95,
				    fleet_mode ? &fleet : NULL, outfile__stream(of)) : -errno;
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
	fleet_free(&fleet);
	for (int i = 0; i < 3; i++)
		textfile__free(&files[i]);
	return rc;
}
