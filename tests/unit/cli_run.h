/* cli_run.h - runs a subcommand (cmd_report, cmd_diff, cmd_record, ...) as
 * the command line would, with its standard output and error captured, for
 * the unit tests that check what a user sees. */
#ifndef DYNOPROF_TESTS_CLI_RUN_H
#define DYNOPROF_TESTS_CLI_RUN_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What the last cli_run printed (NUL-terminated, cut at the size). */
static char out_text[1 << 20], err_text[1 << 16];

static void cli_run_slurp(FILE *f, char *buf, size_t len)
{
	rewind(f);
	size_t n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Runs cmd with the NULL-terminated arguments (argv[0] the subcommand);
 * its stdout lands in out_text, its stderr in err_text. Returns its exit
 * code (-1 when the capture could not be set up). */
static int cli_run(int (*cmd)(int, char **), ...)
{
	char *argv[40];
	int argc = 0;
	va_list ap;
	va_start(ap, cmd);
	for (const char *a; (a = va_arg(ap, const char *)) && argc < 39;)
		argv[argc++] = strdup(a);
	va_end(ap);
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	FILE *o = tmpfile(), *e = tmpfile();
	int so = dup(1), se = dup(2);
	if (!o || !e || so < 0 || se < 0)
		return -1;
	dup2(fileno(o), 1);
	dup2(fileno(e), 2);
	int rc = cmd(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	cli_run_slurp(o, out_text, sizeof(out_text));
	cli_run_slurp(e, err_text, sizeof(err_text));
	for (int i = 0; i < argc; i++)
		free(argv[i]);
	return rc;
}

/* Fails unless rc is 2 (a usage or input error) and stderr is one line
 * `dynoprof: ...` (or `dynoprof agent: ...`) that says want. */
static inline void cli_usage_error(int rc, const char *want)
{
	if (rc != 2 || strncmp(err_text, "dynoprof", 8) || !strstr(err_text, want) ||
	    strchr(err_text, '\n') != err_text + strlen(err_text) - 1)
		fail_msg("rc %d, stderr: %s (want: %s)", rc, err_text, want);
}

#endif
