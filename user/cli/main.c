// SPDX-License-Identifier: MIT
/* dynoprof - system-wide eBPF profiler for production Python services. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef DYNOPROF_VERSION
#define DYNOPROF_VERSION "0.1.0"
#endif

/* The subcommands: what main dispatches to and `dynoprof help` lists. */
static const struct {
	const char *name;                  /* as typed */
	int (*run)(int argc, char **argv); /* argv[0] is the name */
	const char *summary;               /* for `dynoprof help`; '\n' continues it */
} commands[] = {
	{ "record", cmd_record, "capture stacks (kernel + native) system-wide, of some "
	  "processes, or\nof a command, into a flamegraph SVG, folded stacks, pprof or "
	  "speedscope" },
	{ "report", cmd_report, "print the top functions of a profile file, or convert it" },
	{ "agent", cmd_agent, "the always-on daemon: history, Prometheus /metrics, pprof pull" },
	{ "diff", cmd_diff, "CPU regressions between two profiles or commits, per endpoint,\n"
	  "with confidence intervals (exit 1 on regression)" },
};

static void usage(FILE *out)
{
	fputs("usage: dynoprof COMMAND [OPTIONS]\n"
	      "\n"
	      "Where does the CPU go — by function, process and thread — on this machine,\n"
	      "sampled with eBPF at near-zero cost, without touching the profiled programs.\n"
	      "\n"
	      "commands:\n", out);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		fprintf(out, "  %-8s ", commands[i].name);
		for (const char *c = commands[i].summary; *c; c++)
			if (*c == '\n')
				fprintf(out, "\n%11s", "");
			else
				fputc(*c, out);
		fputc('\n', out);
	}
	fputs("  help     this text; `dynoprof COMMAND --help` explains a command\n"
	      "  version  print the version\n"
	      "\n"
	      "examples:\n"
	      "  sudo dynoprof record -a -d 10 -o profile.svg     # whole machine, 10 s\n"
	      "  sudo dynoprof record -p 1234 -o app.pb.gz         # one process, until Ctrl-C\n"
	      "  sudo dynoprof record -o run.folded -- ./bench     # a command, until it exits\n"
	      "  dynoprof report -i app.pb.gz                      # top functions\n", out);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		cli_error("which command? record, report, agent or diff (see dynoprof help)");
		return 2;
	}
	const char *cmd = argv[1];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("dynoprof %s\n", DYNOPROF_VERSION);
		return 0;
	}
	cli_error("unknown command '%s': record, report, agent or diff (see dynoprof help)", cmd);
	return 2;
}
