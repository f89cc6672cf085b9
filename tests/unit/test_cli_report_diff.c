// SPDX-License-Identifier: MIT
/* `dynoprof report` and `dynoprof diff` run as a user runs them (cmd_report,
 * cmd_diff with an argv) on profile files written in a temporary directory:
 * the table and the conversions report prints and writes, diff's verdicts
 * (exit status 1 on a regression), its JSON and SVG, and the one-line
 * `dynoprof:` error of every bad argument. The profiles are two captures of
 * a service in 12 time windows whose /b endpoint costs twice the CPU per
 * request in the new one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cli/cli.h"
#include "cli_run.h"
#include "agent/http_server.h"
#include "formats/output.h"
#include "profile/profile.h"

static char dir[] = "/tmp/dynoprof-cli-XXXXXX";

static const char *path(const char *name)
{
	static char buf[4][256];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* What a capture holds besides samples and cpu. */
enum { WITH_REQUESTS = 1, WITH_INSTRUCTIONS = 2 };

/* Adds a sample main;fn of pid in window w with values (samples, cpu, then
 * instructions and requests as the profile has them). */
static void add(struct profile *p, uint32_t pid, const char *fn, const char *endpoint, int w,
		uint64_t samples, uint64_t cpu, uint64_t requests)
{
	uint32_t frames[2];
	struct frame_desc root = { .kind = FRAME_NATIVE, .name = "main", .module = "/srv/app" };
	struct frame_desc leaf = { .kind = FRAME_NATIVE, .name = fn, .module = "/srv/app" };
	assert_int_equal(profile__add_frame(p, &root, &frames[0]), 0);
	assert_int_equal(profile__add_frame(p, &leaf, &frames[1]), 0);
	char window[16];
	snprintf(window, sizeof(window), "%d", w);
	const char *keys[] = { "endpoint", "window" }, *values[] = { endpoint, window };
	uint64_t v[4] = { samples, cpu };
	int vi = profile__find_value(p, "instructions"), vr = profile__find_value(p, "requests");
	if (vi >= 0)
		v[vi] = cpu * 3;
	if (vr >= 0)
		v[vr] = requests;
	struct sample_desc s = { .frames = frames, .nframes = 2, .pid = pid, .tid = pid,
				 .comm = "app", .label_keys = keys, .label_values = values,
				 .nlabels = 2, .values = v };
	assert_int_equal(profile__add_sample(p, &s), 0);
}

/* A capture: /a and /b at 1 ms per request (b_cost x that for /b). */
static void write_capture(const char *name, enum output_format f, int b_cost, int with)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	if (with & WITH_INSTRUCTIONS)
		assert_true(profile__add_value_type(p, "instructions", "count") > 0);
	if (with & WITH_REQUESTS)
		assert_true(profile__add_value_type(p, "requests", "count") > 0);
	for (int w = 0; w < 12; w++) {
		uint64_t a = 100 + (uint64_t)(w % 3), b = (uint64_t)b_cost * (100 + (uint64_t)(w % 4));
		add(p, 10, "handle_a", "/a", w, a, a * 100000, 0);
		add(p, 10, "handle_b", "/b", w, b, b * 100000, 0);
		if (with & WITH_REQUESTS) {
			add(p, 10, "[requests]", "/a", w, 0, 0, 10);
			add(p, 10, "[requests]", "/b", w, 0, 0, 10);
		}
	}
	char err[256];
	struct output_opts o = { .label_frames = 1 };
	if (output__write(p, path(name), f, &o, err, sizeof(err)))
		fail_msg("writing %s: %s", name, err);
	profile__free(p);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	write_capture("base.pb.gz", FORMAT_PPROF, 1, WITH_REQUESTS);
	write_capture("new.pb.gz", FORMAT_PPROF, 2, WITH_REQUESTS);
	write_capture("base-share.pb.gz", FORMAT_PPROF, 1, 0);
	write_capture("new-share.pb.gz", FORMAT_PPROF, 2, 0);
	write_capture("base-instr.pb.gz", FORMAT_PPROF, 1, WITH_REQUESTS | WITH_INSTRUCTIONS);
	write_capture("new-instr.pb.gz", FORMAT_PPROF, 2, WITH_REQUESTS | WITH_INSTRUCTIONS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int (*const run)(int (*)(int, char **), ...) = cli_run;
static void (*const usage_error)(int, const char *) = cli_usage_error;

static void file_starts(const char *file, const char *prefix)
{
	char buf[256];
	FILE *f = fopen(file, "r");
	if (!f)
		fail_msg("%s: %s", file, strerror(errno));
	cli_run_slurp(f, buf, sizeof(buf));
	if (strncmp(buf, prefix, strlen(prefix)))
		fail_msg("%s starts %.40s, not %s", file, buf, prefix);
}

static void test_report_table_and_conversions(void **state)
{
	(void)state;
	assert_int_equal(run(cmd_report, "report", "-i", path("base.pb.gz"), NULL), 0);
	/* Top functions: handle_a and handle_b each about half the samples. */
	if (!strstr(out_text, "handle_a") || !strstr(out_text, "handle_b") ||
	    !strstr(out_text, "main"))
		fail_msg("table:\n%s", out_text);
	/* Per tag group, filtered, weighed by cpu, all rows. */
	assert_int_equal(run(cmd_report, "report", path("new.pb.gz"), "--by", "endpoint", NULL), 0);
	if (!strstr(out_text, "/a") || !strstr(out_text, "/b"))
		fail_msg("--by table:\n%s", out_text);
	assert_int_equal(run(cmd_report, "report", "-i", path("new.pb.gz"), "--tag", "endpoint=/a",
			     "--weight", "cpu", "-n", "0", NULL), 0);
	if (!strstr(out_text, "handle_a") || strstr(out_text, "handle_b"))
		fail_msg("--tag endpoint=/a table:\n%s", out_text);
	/* Conversions, by extension or --format. */
	assert_int_equal(run(cmd_report, "report", "-i", path("base.pb.gz"), "-o",
			     path("base.svg"), NULL), 0);
	assert_non_null(strstr(err_text, "dynoprof: wrote"));
	file_starts(path("base.svg"), "<?xml");
	assert_int_equal(run(cmd_report, "report", "-i", path("base.pb.gz"), "-q", "-o",
			     path("base.folded"), "--group-by", "endpoint", NULL), 0);
	assert_string_equal(out_text, "");
	file_starts(path("base.folded"), "[endpoint=");
	assert_int_equal(run(cmd_report, "report", "-i", path("base.folded"), "-q", "-o",
			     path("base.out"), "--format", "speedscope", NULL), 0);
	file_starts(path("base.out"), "{");
	/* A folded file reads back with its tags. */
	assert_int_equal(run(cmd_report, "report", path("base.folded"), "--by", "endpoint", NULL), 0);
	assert_non_null(strstr(out_text, "/b"));
}

static void test_report_errors(void **state)
{
	(void)state;
	usage_error(run(cmd_report, "report", NULL), "report needs a profile");
	usage_error(run(cmd_report, "report", "-i", path("base.pb.gz"), "-n", "x", NULL), "--top");
	usage_error(run(cmd_report, "report", "-i", path("base.pb.gz"), "--tag", "novalue", NULL),
		    "--tag");
	usage_error(run(cmd_report, "report", "-i", path("base.pb.gz"), "--by", "", NULL), "--by");
	usage_error(run(cmd_report, "report", "-i", path("base.pb.gz"), "-o", path("x.unknown"),
			NULL), "cannot tell the output format");
	int rc = run(cmd_report, "report", "-i", path("base.pb.gz"), "--weight", "joules", NULL);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(err_text, "dynoprof: --weight"));
	rc = run(cmd_report, "report", "-i", path("missing.pb.gz"), NULL);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(err_text, "dynoprof: "));
	assert_non_null(strstr(err_text, "missing.pb.gz"));
	/* Not writable: a directory where the output would go. */
	rc = run(cmd_report, "report", "-i", path("base.pb.gz"), "-q", "-o", dir, "--format",
		 "svg", NULL);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(err_text, "dynoprof: "));
}

/* Writes len bytes of data to name in the temporary directory. */
static void put_file(const char *name, const void *data, size_t len)
{
	FILE *f = fopen(path(name), "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static void test_report_rejects_what_is_not_a_profile(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *data;
		size_t len;
		const char *says;
	} bad[] = {
		{ "empty", "", 0, "is empty: not a profile" },
		{ "binary", "ab\x01\x02" "cd\n", 7, "binary data that is neither" },
		{ "badgzip", "\x1f\x8b\x08\x00junk", 8, "not a valid pprof profile" },
		{ "badutf8", "main;f \xff\xfe 3\n", 13, "binary data" },
		{ "badfolded", "main;f three\n", 13, "not a valid folded profile" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put_file(bad[i].name, bad[i].data, bad[i].len);
		int rc = run(cmd_report, "report", path(bad[i].name), NULL);
		if (rc == 0 || strncmp(err_text, "dynoprof: ", 10) || !strstr(err_text, bad[i].says))
			fail_msg("%s: rc %d, %s (want %s)", bad[i].name, rc, err_text, bad[i].says);
	}
	/* SVG grouped by a tag: the groups are the top frames. */
	assert_int_equal(run(cmd_report, "report", path("new.pb.gz"), "-q", "--group-by",
			     "endpoint", "-o", path("grouped.svg"), NULL), 0);
	FILE *f = fopen(path("grouped.svg"), "r");
	assert_non_null(f);
	static char svg[1 << 20];
	cli_run_slurp(f, svg, sizeof(svg));
	assert_non_null(strstr(svg, "endpoint=/b"));
}

static void test_diff_finds_the_regression(void **state)
{
	(void)state;
	int rc = run(cmd_diff, "diff", "--resamples", "200", path("base.pb.gz"),
		     path("new.pb.gz"), NULL);
	if (rc != 1 || !strstr(out_text, "/b"))
		fail_msg("rc %d\n%s%s", rc, out_text, err_text);
	/* JSON on stdout (no table), the differential flame graph. */
	rc = run(cmd_diff, "diff", "--resamples", "200", "--seed", "7", "--confidence", "0.9",
		 "--min-effect", "0.05", "--json", "-", "--svg", path("diff.svg"),
		 path("base.pb.gz"), path("new.pb.gz"), NULL);
	assert_int_equal(rc, 1);
	if (out_text[0] != '{' || !strstr(out_text, "\"/b\"") || !strstr(out_text, "0.9"))
		fail_msg("json:\n%s", out_text);
	file_starts(path("diff.svg"), "<?xml");
	/* The same capture on both sides: no regression. */
	rc = run(cmd_diff, "diff", "-q", "--resamples", "200", "--json", path("same.json"),
		 path("base.pb.gz"), path("base.pb.gz"), NULL);
	assert_int_equal(rc, 0);
	assert_string_equal(out_text, "");
	file_starts(path("same.json"), "{");
	/* A per-endpoint threshold above the change: not a regression. */
	FILE *t = fopen(path("thresholds"), "w");
	assert_non_null(t);
	fprintf(t, "# endpoint = min effect\n/b = 5   # 500%%\n\n  /a=0.1\n");
	fclose(t);
	rc = run(cmd_diff, "diff", "--resamples", "200", "--thresholds", path("thresholds"),
		 path("base.pb.gz"), path("new.pb.gz"), NULL);
	if (rc != 0)
		fail_msg("rc %d with a 500%% threshold on /b\n%s%s", rc, out_text, err_text);
	/* Selectors: both sides from one file, by tag. */
	rc = run(cmd_diff, "diff", "--resamples", "200", "--base-select", "endpoint=/a",
		 "--new-select", "endpoint=/a", "--by", "endpoint", path("new.pb.gz"),
		 path("new.pb.gz"), NULL);
	assert_int_equal(rc, 0);
}

static void test_diff_metrics(void **state)
{
	(void)state;
	/* Without request counts: each endpoint's share of the samples. */
	char b[256], n[256];
	snprintf(b, sizeof(b), "%s", path("base-share.pb.gz"));
	snprintf(n, sizeof(n), "%s", path("new-share.pb.gz"));
	int rc = run(cmd_diff, "diff", "--resamples", "200", b, n, NULL);
	if (rc != 1 || !strstr(out_text, "share"))
		fail_msg("share diff: rc %d\n%s%s", rc, out_text, err_text);
	/* Both sides counted instructions: instructions per request. */
	snprintf(b, sizeof(b), "%s", path("base-instr.pb.gz"));
	snprintf(n, sizeof(n), "%s", path("new-instr.pb.gz"));
	rc = run(cmd_diff, "diff", "--resamples", "200", b, n, NULL);
	if (rc != 1 || !strstr(out_text, "instr/req"))
		fail_msg("instructions diff: rc %d\n%s%s", rc, out_text, err_text);
}

/* A stand-in agent: /debug/pprof/profile answers the capture its selector
 * names (commit=base or commit=new), else 404; commit=empty: an empty body;
 * commit=junk: bytes that are no profile. */
static void serve_profile(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	const char *commit = http_query__get(q, "commit");
	if (!http_query__get(q, "from")) {
		http_response__error(r, 400, "no from");
		return;
	}
	if (commit && !strcmp(commit, "empty"))
		return;
	if (commit && !strcmp(commit, "junk")) {
		strbuf__puts(&r->body, "not a profile");
		return;
	}
	if (!commit || (strcmp(commit, "base") && strcmp(commit, "new"))) {
		http_response__error(r, 404, "no such commit");
		return;
	}
	char name[32];
	snprintf(name, sizeof(name), "%s.pb.gz", commit);
	FILE *f = fopen(path(name), "r");
	char buf[65536];
	size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (f)
		fclose(f);
	strbuf__append(&r->body, buf, len);
}

static void test_diff_from_an_agent(void **state)
{
	(void)state;
	struct http_route route = { "/debug/pprof/profile", serve_profile, NULL };
	struct http_server_opts o = { .address = "127.0.0.1", .port = 0 };
	char err[256], url[64], token[256];
	struct http_server *srv = http_server__start(&o, &route, 1, err, sizeof(err));
	if (!srv)
		fail_msg("%s", err);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", http_server__port(srv));
	snprintf(token, sizeof(token), "%s", path("token"));
	FILE *t = fopen(token, "w");
	assert_non_null(t);
	fprintf(t, "s3cret\n");
	fclose(t);
	int rc = run(cmd_diff, "diff", "--resamples", "200", "--agent", url, "--token-file",
		     token, "commit=base", "commit=new", NULL);
	if (rc != 1 || !strstr(out_text, "/b"))
		fail_msg("rc %d\n%s%s", rc, out_text, err_text);
	usage_error(run(cmd_diff, "diff", "--agent", url, "commit=gone", "commit=new", NULL),
		    "agent answered 404");
	usage_error(run(cmd_diff, "diff", "--agent", url, "commit=empty", "commit=new", NULL),
		    "is empty");
	usage_error(run(cmd_diff, "diff", "--agent", url, "commit=junk", "commit=new", NULL),
		    "is not a profile");
	usage_error(run(cmd_diff, "diff", "--agent", url, "commitbase", "commit=new", NULL),
		    "commitbase");
	http_server__stop(srv);
}

/* A stand-in agent that takes its time (for --agent-timeout). */
static void serve_slowly(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	(void)q;
	sleep(4);
	strbuf__puts(&r->body, "late");
}

/* Many agents: every one asked, those that do not answer (nothing listens,
 * garbage, too slow) named, the verdict standing on the rest; host sets per
 * side from files. */
static void test_diff_from_many_agents(void **state)
{
	(void)state;
	struct http_route route = { "/debug/pprof/profile", serve_profile, NULL };
	struct http_route slow = { "/debug/pprof/profile", serve_slowly, NULL };
	struct http_server_opts o = { .address = "127.0.0.1", .port = 0 };
	char err[256], a1[64], a2[64], a3[64], files[2][256];
	struct http_server *s1 = http_server__start(&o, &route, 1, err, sizeof(err));
	struct http_server *s2 = http_server__start(&o, &route, 1, err, sizeof(err));
	struct http_server *s3 = http_server__start(&o, &slow, 1, err, sizeof(err));
	if (!s1 || !s2 || !s3)
		fail_msg("%s", err);
	snprintf(a1, sizeof(a1), "http://127.0.0.1:%u", http_server__port(s1));
	snprintf(a2, sizeof(a2), "http://127.0.0.1:%u/", http_server__port(s2));
	snprintf(a3, sizeof(a3), "http://127.0.0.1:%u", http_server__port(s3));
	int rc = run(cmd_diff, "diff", "--resamples", "200", "--agent", a1, "--agent", a2,
		     "--agent", "http://127.0.0.1:1/", "--agent", a3, "--agent-timeout", "1",
		     "commit=base", "commit=new", NULL);
	if (rc != 1 || !strstr(out_text, "/b") || !strstr(out_text, "on 2 hosts: base 2 (2 of 4") ||
	    !strstr(out_text, "no answer from http://127.0.0.1:1/") ||
	    (!strstr(out_text, "timed out") && !strstr(out_text, "no answer within")) || !strstr(err_text, "left out"))
		fail_msg("rc %d\n%s%s", rc, out_text, err_text);
	/* --clusters host: two hosts a side are too few clusters for a verdict. */
	rc = run(cmd_diff, "diff", "--resamples", "200", "--agent", a1, "--agent", a2,
		 "--clusters", "host", "commit=base", "commit=new", NULL);
	if (rc != 0 || !strstr(out_text, "insufficient data") || strstr(out_text, "regression\n"))
		fail_msg("rc %d\n%s%s", rc, out_text, err_text);
	usage_error(run(cmd_diff, "diff", "--clusters", "pid", "commit=base", "commit=new",
			NULL), "--clusters");
	/* Host sets per side: base from one file, new from another. */
	for (int i = 0; i < 2; i++) {
		snprintf(files[i], sizeof(files[i]), "%s", path(i ? "new-agents" : "base-agents"));
		FILE *f = fopen(files[i], "w");
		assert_non_null(f);
		fprintf(f, "# %s side\n%s\n\n", i ? "new" : "base", i ? a2 : a1);
		fclose(f);
	}
	rc = run(cmd_diff, "diff", "--resamples", "200", "--base-agents", files[0], "--new-agents",
		 files[1], "--json", "-", "commit=base", "commit=new", NULL);
	if (rc != 1 || !strstr(out_text, "\"hosts\": {\"base\": 1, \"new\": 1, \"all\": 2}") ||
	    !strstr(out_text, "\"answered\": true"))
		fail_msg("rc %d\n%s%s", rc, out_text, err_text);
	/* No agent of a side answers: an input error naming them. */
	usage_error(run(cmd_diff, "diff", "--agent", a1, "--agent", "http://127.0.0.1:1",
			"commit=gone", "commit=new", NULL), "agent answered 404");
	usage_error(run(cmd_diff, "diff", "--agent", a1, "--agent", a2, "commit=junk",
			"commit=new", NULL), "is not a profile");
	usage_error(run(cmd_diff, "diff", "--base-agents", files[0], "commit=base", "commit=new",
			NULL), "no agents for the new side");
	FILE *f = fopen(files[0], "w");
	assert_non_null(f);
	fprintf(f, "127.0.0.1:9464\n");
	fclose(f);
	usage_error(run(cmd_diff, "diff", "--agents-file", files[0], "commit=base", "commit=new",
			NULL), "base-agents:1: expected one agent URL");
	http_server__stop(s1);
	http_server__stop(s2);
	http_server__stop(s3);
}

static void test_diff_errors(void **state)
{
	(void)state;
	char b[256], n[256]; /* path()'s buffers are reused */
	snprintf(b, sizeof(b), "%s", path("base.pb.gz"));
	snprintf(n, sizeof(n), "%s", path("new.pb.gz"));
	usage_error(run(cmd_diff, "diff", b, NULL), "diff needs two profiles");
	usage_error(run(cmd_diff, "diff", "--min-effect", "0", b, n, NULL), "--min-effect");
	usage_error(run(cmd_diff, "diff", "--confidence", "2", b, n, NULL), "--confidence");
	usage_error(run(cmd_diff, "diff", "--resamples", "5", b, n, NULL), "--resamples");
	usage_error(run(cmd_diff, "diff", "--seed", "0", b, n, NULL), "--seed");
	usage_error(run(cmd_diff, "diff", "--base-select", "novalue", b, n, NULL), "selector");
	usage_error(run(cmd_diff, "diff", "--thresholds", path("nothere"), b, n, NULL),
		    "cannot read");
	FILE *t = fopen(path("bad-thresholds"), "w");
	assert_non_null(t);
	fprintf(t, "/a = 0.1\n/b = lots\n");
	fclose(t);
	usage_error(run(cmd_diff, "diff", "--thresholds", path("bad-thresholds"), b, n, NULL),
		    "bad-thresholds:2: expected");
	usage_error(run(cmd_diff, "diff", "--token-file", path("nothere"), b, n, NULL),
		    "--token-file");
	usage_error(run(cmd_diff, "diff", "--json", dir, b, n, NULL), dir);
	usage_error(run(cmd_diff, "diff", path("missing.pb.gz"), n, NULL), "missing.pb.gz");
	/* Selectors that match nothing: that side has no samples. */
	usage_error(run(cmd_diff, "diff", "--new-select", "endpoint=/none", b, n, NULL),
		    "the new side has no samples");
	/* An agent that is not there (loopback, nothing listens on port 1). */
	usage_error(run(cmd_diff, "diff", "--agent", "http://127.0.0.1:1/", "commit=a",
			"commit=b", NULL), "127.0.0.1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_table_and_conversions),
		cmocka_unit_test(test_report_errors),
		cmocka_unit_test(test_report_rejects_what_is_not_a_profile),
		cmocka_unit_test(test_diff_finds_the_regression),
		cmocka_unit_test(test_diff_metrics),
		cmocka_unit_test(test_diff_from_an_agent),
		cmocka_unit_test(test_diff_from_many_agents),
		cmocka_unit_test(test_diff_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
