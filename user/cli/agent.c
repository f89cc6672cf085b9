// SPDX-License-Identifier: MIT
/* dynoprof agent: command line of the always-on daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "util/privileges.h"
#include "cli/cli.h"

#define MAX_FLAG_SETTINGS 32

/* Settings given as flags, re-applied over the config file on every reload. */
struct flag_settings {
	const char *keys[MAX_FLAG_SETTINGS];
	const char *values[MAX_FLAG_SETTINGS];
	size_t n;
};

static int apply_flags(struct agent_config *c, void *ctx)
{
	struct flag_settings *f = ctx;
	char err[256];
	for (size_t i = 0; i < f->n; i++)
		if (agent_config__set(c, f->keys[i], f->values[i], err, sizeof(err))) {
			cli_error("%s", err);
			return -EINVAL;
		}
	return 0;
}

static void agent_usage(FILE *out)
{
	fprintf(out,
"usage: dynoprof agent [--config FILE] [OPTIONS]\n"
"\n"
"The always-on profiler for a fleet host: samples every CPU (kernel, native and\n"
"Python frames, tags, exact CPU time per process and tag) at a low rate, keeps\n"
"10-second windows in a SQLite history, and serves:\n"
"  GET /metrics                 Prometheus: dynoprof_samples_total,\n"
"                               dynoprof_cpu_seconds_total (or _instructions_total),\n"
"                               dynoprof_requests_total by service, commit, endpoint,\n"
"                               comm (untagged: \"-\"); deploy-check verdicts\n"
"                               (dynoprof_deploy_check_verdict); the agent's health\n"
"  GET /debug/pprof/profile     gzipped pprof, Go convention: ?seconds=N collects now;\n"
"                               ?from=&to= (unix seconds or RFC 3339) reads history;\n"
"                               filters pid=, service=, endpoint=, commit=, tag.K=V\n"
"  GET /flamegraph              the same selection as an interactive SVG\n"
"  GET /api/v1/groups           ?by=endpoint,commit&from=&to= JSON sums per group\n"
"  GET /api/v1/regressions      JSON: the automatic deploy checks and their verdicts\n"
"  GET /healthz                 liveness\n"
"Runs as root (or with the capabilities README, \"Without root\", lists). SIGHUP\n"
"re-reads the config file; SIGTERM stores the open window and exits 0.\n"
"\n"
"options (each overrides the config key of the same name):\n"
"  -c, --config FILE         `key = value` lines, # comments\n"
"      --listen ADDR:PORT    listen\n"
"      --listen-remote       listen_remote = true (needed for a non-loopback address)\n"
"      --token-file FILE     token_file\n"
"  -F, --frequency HZ        frequency\n"
"      --window SECONDS      window\n"
"      --database PATH       database\n"
"      --retention-age AGE   retention_age\n"
"      --retention-size SIZE retention_size\n"
"      --endpoint-from RULE  endpoint_from\n"
"      --max-series N        max_series\n"
"      --no-python           python = false\n"
"      --no-tags             tags = false\n"
"      --no-kernel           kernel = false\n"
"\n"
"config keys and defaults:\n");
	agent_config__describe(out);
	fprintf(out,
"\n"
"examples:\n"
"  sudo dynoprof agent\n"
"  sudo dynoprof agent --config /etc/dynoprof/agent.conf\n"
"  go tool pprof -top 'http://127.0.0.1:9464/debug/pprof/profile?seconds=10'\n"
"  curl 'http://127.0.0.1:9464/api/v1/groups?by=endpoint,commit'\n");
}

int cmd_agent(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'L' },
		{ "listen-remote", no_argument, NULL, 'R' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "frequency", required_argument, NULL, 'F' },
		{ "window", required_argument, NULL, 'W' },
		{ "database", required_argument, NULL, 'D' },
		{ "retention-age", required_argument, NULL, 'A' },
		{ "retention-size", required_argument, NULL, 'S' },
		{ "endpoint-from", required_argument, NULL, 'E' },
		{ "max-series", required_argument, NULL, 'M' },
		{ "no-python", no_argument, NULL, 'P' },
		{ "no-tags", no_argument, NULL, 'G' },
		{ "no-kernel", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	static const struct { int opt; const char *key; const char *value; } map[] = {
		{ 'L', "listen", NULL }, { 'R', "listen_remote", "true" },
		{ 'T', "token_file", NULL }, { 'F', "frequency", NULL }, { 'W', "window", NULL },
		{ 'D', "database", NULL }, { 'A', "retention_age", NULL },
		{ 'S', "retention_size", NULL }, { 'E', "endpoint_from", NULL },
		{ 'M', "max_series", NULL }, { 'P', "python", "false" }, { 'G', "tags", "false" },
		{ 'K', "kernel", "false" },
	};
	struct flag_settings flags = { .n = 0 };
	const char *config_path = NULL;
	struct agent_config c;
	char err[512];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:F:h", longopts, NULL)) != -1) {
		if (opt == 'c') {
			config_path = optarg;
			continue;
		}
		if (opt == 'h') {
			agent_usage(stdout);
			return 0;
		}
		size_t i;
		for (i = 0; i < sizeof(map) / sizeof(map[0]) && map[i].opt != opt; i++)
			;
		if (i == sizeof(map) / sizeof(map[0]) || flags.n >= MAX_FLAG_SETTINGS) {
			fprintf(stderr, "(see `dynoprof agent --help`)\n");
			return 2;
		}
		flags.keys[flags.n] = map[i].key;
		flags.values[flags.n++] = map[i].value ? map[i].value : optarg;
	}
	if (optind < argc) {
		cli_error("agent takes no arguments ('%s'): see `dynoprof agent --help`",
			  argv[optind]);
		return 2;
	}
	agent_config__defaults(&c);
	if (config_path && agent_config__load(&c, config_path, err, sizeof(err))) {
		cli_error("%s", err);
		return 2;
	}
	if (apply_flags(&c, &flags))
		return 2;
	if (privileges__check(err, sizeof(err))) {
		cli_error("%s", err);
		return 1;
	}
	privileges__warn("dynoprof agent:");
	return agent__run(&c, config_path, apply_flags, &flags);
}
