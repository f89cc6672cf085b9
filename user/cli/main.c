// SPDX-License-Identifier: MIT
/* dynoprof - system-wide eBPF profiler for production Python services. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#ifndef DYNOPROF_VERSION
#define DYNOPROF_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
	fprintf(out,
"usage: dynoprof COMMAND [OPTIONS]\n"
"\n"
"Where does the CPU go — by function, process and thread — on this machine,\n"
"sampled with eBPF at near-zero cost, without touching the profiled programs.\n"
"\n"
"commands:\n"
"  record   capture stacks (kernel + native) system-wide, of some processes, or\n"
"           of a command, into a flamegraph SVG, folded stacks, pprof or speedscope\n"
"  report   print the top functions of a profile file, or convert it\n"
"  agent    the always-on daemon: history, Prometheus /metrics, pprof pull\n"
"  diff     CPU regressions between two profiles or commits, per endpoint,\n"
"           with confidence intervals (exit 1 on regression)\n"
"  help     this text; `dynoprof COMMAND --help` explains a command\n"
"  version  print the version\n"
"\n"
"examples:\n"
"  sudo dynoprof record -a -d 10 -o profile.svg     # whole machine, 10 s\n"
"  sudo dynoprof record -p 1234 -o app.pb.gz         # one process, until Ctrl-C\n"
"  sudo dynoprof record -o run.folded -- ./bench     # a command, until it exits\n"
"  dynoprof report -i app.pb.gz                      # top functions\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "record") == 0)
		return cmd_record(argc - 1, argv + 1);
	if (strcmp(cmd, "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	if (strcmp(cmd, "agent") == 0)
		return cmd_agent(argc - 1, argv + 1);
	if (strcmp(cmd, "diff") == 0)
		return cmd_diff(argc - 1, argv + 1);
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("dynoprof %s\n", DYNOPROF_VERSION);
		return 0;
	}
	cli_error("unknown command '%s' (try `dynoprof help`)", cmd);
	return 2;
}
