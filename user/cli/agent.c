// SPDX-License-Identifier: MIT
/* dynoprof agent: command line of the always-on daemon. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "util/privileges.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "util/duration.h"

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

enum { OPT_LISTEN = CLI_LONG_ONLY, OPT_LISTEN_REMOTE, OPT_TOKEN_FILE, OPT_WINDOW,
       OPT_DATABASE, OPT_RETENTION_AGE, OPT_RETENTION_SIZE, OPT_ENDPOINT_FROM, OPT_MAX_SERIES,
       OPT_NO_PYTHON, OPT_NO_TAGS, OPT_NO_KERNEL, OPT_HOST, OPT_CGROUP, OPT_UNWIND_TABLE_MB,
       OPT_NO_EH_FRAME };

/* The flags: each but --config stands for a config key (and a flag without
 * argument for a fixed value), which cmd_agent sets and --help names. */
static const struct cli_option agent_options[] = {
	CLI_OPTION('c', "config", "FILE", "`key = value` lines, # comments"),
	{ .key = OPT_LISTEN, .name = "listen", .arg = "ADDR:PORT", .setting = "listen" },
	{ .key = OPT_LISTEN_REMOTE, .name = "listen-remote", .setting = "listen_remote",
	  .value = "true", .help = "allow a non-loopback listen address" },
	{ .key = OPT_TOKEN_FILE, .name = "token-file", .arg = "FILE",
	  .setting = "token_file" },
	{ .key = 'F', .name = "frequency", .arg = "HZ", .setting = "frequency" },
	{ .key = OPT_WINDOW, .name = "window", .arg = "DURATION", .setting = "window" },
	{ .key = OPT_DATABASE, .name = "database", .arg = "PATH", .setting = "database" },
	{ .key = OPT_RETENTION_AGE, .name = "retention-age", .arg = "DURATION",
	  .setting = "retention_age" },
	{ .key = OPT_RETENTION_SIZE, .name = "retention-size", .arg = "SIZE",
	  .setting = "retention_size" },
	{ .key = OPT_ENDPOINT_FROM, .name = "endpoint-from", .arg = "RULE",
	  .setting = "endpoint_from" },
	{ .key = OPT_MAX_SERIES, .name = "max-series", .arg = "N", .setting = "max_series" },
	{ .key = OPT_NO_PYTHON, .name = "no-python", .setting = "python", .value = "false",
	  .help = "do not walk CPython frames" },
	{ .key = OPT_NO_TAGS, .name = "no-tags", .setting = "tags", .value = "false",
	  .help = "no libdynotag or environment tags" },
	{ .key = OPT_NO_KERNEL, .name = "no-kernel", .setting = "kernel", .value = "false",
	  .help = "leave out kernel frames" },
	{ .key = OPT_HOST, .name = "host", .arg = "NAME", .setting = "host" },
	{ .key = OPT_CGROUP, .name = "cgroup", .arg = "PATH", .setting = "cgroup" },
	{ .key = OPT_UNWIND_TABLE_MB, .name = "unwind-table-mb", .arg = "MB",
	  .setting = "unwind_table_mb" },
	{ .key = OPT_NO_EH_FRAME, .name = "no-eh-frame", .setting = "unwind_table_mb", .value = "0",
	  .help = "walk native stacks by frame pointers only (no .eh_frame CFI)" },
	{ 0 },
};

static void agent_routes(FILE *out)
{
	fputs("\nIt serves:\n", out);
	agent__describe_routes(out);
	fputs("Runs as root (or with the capabilities README, \"Without root\", lists). SIGHUP\n"
	      "re-reads the config file; SIGTERM stores the open window and exits 0.\n"
	      "Flags override the config key of the same name, also after a reload.\n", out);
}

static void agent_keys(FILE *out)
{
	fputs("\nconfig keys and defaults (durations: plain seconds or with a unit, "
	      DURATION_UNITS "):\n", out);
	agent_config__describe(out);
}

const struct cli_command agent_command = {
	.name = "agent",
	.synopsis = "[--config FILE] [OPTIONS]",
	.doc =
"The always-on profiler for a fleet host: samples every CPU (kernel, native and\n"
"Python frames, tags, exact CPU time per process and tag) at a low rate, keeps\n"
"10-second windows in a SQLite history, and serves them over HTTP.\n",
	.more_doc = agent_routes,
	.options = agent_options,
	.more_options = agent_keys,
	.setting_help = agent_config__key_help,
	.epilog =
"examples:\n"
"  sudo dynoprof agent\n"
"  sudo dynoprof agent --config /etc/dynoprof/agent.conf --window 30s\n"
"  go tool pprof -top 'http://127.0.0.1:9464/debug/pprof/profile?seconds=10'\n"
"  curl 'http://127.0.0.1:9464/api/v1/groups?by=endpoint,commit'\n",
};

int cmd_agent(int argc, char **argv)
{
	struct flag_settings flags = { .n = 0 };
	const char *config_path = NULL;
	struct agent_config c;
	char err[512];
	int opt;

	struct cli_parser p = CLI_PARSER_INIT(&agent_command, argc, argv);
	while ((opt = cli_parser__next(&p)) > 0) {
		if (opt == 'c') {
			config_path = p.arg;
			continue;
		}
		if (!p.option->setting || flags.n >= MAX_FLAG_SETTINGS) {
			cli_command__usage_error(&agent_command, "too many flags (at most %d)",
						 MAX_FLAG_SETTINGS);
			return 2;
		}
		flags.keys[flags.n] = p.option->setting;
		flags.values[flags.n++] = p.option->value ? p.option->value : p.arg;
	}
	if (opt == CLI_STOP)
		return p.exit_code;
	if (p.operand < argc) {
		cli_error("agent takes no arguments ('%s'): see `dynoprof agent --help`",
			  argv[p.operand]);
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
