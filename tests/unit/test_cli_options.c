// SPDX-License-Identifier: MIT
/* cli/options: each subcommand's table is valid and its --help lists every
 * option; parsing returns the table's keys and arguments, stops at a COMMAND
 * where the table says so, and refuses bad options with one line and exit 2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/options.h"

static const struct cli_command *const commands[] = {
	&record_command, &report_command, &agent_command, &diff_command,
};

/* cmd's help as a string (caller frees). */
static char *help_text(const struct cli_command *cmd)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	cli_command__help(cmd, f);
	fclose(f);
	return buf;
}

/* text with every run of spaces and newlines made one space (what wrapping
 * changes), in a new string. */
static char *flatten(const char *text)
{
	char *flat = malloc(strlen(text) + 1), *d = flat;
	assert_non_null(flat);
	for (const char *s = text; *s; s++)
		if ((*s != ' ' && *s != '\n') || (d > flat && d[-1] != ' '))
			*d++ = *s == '\n' ? ' ' : *s;
	*d = '\0';
	return flat;
}

static void test_tables_are_valid(void **state)
{
	(void)state;
	char err[128];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (cli_command__check(commands[i], err, sizeof(err)))
			fail_msg("%s: %s", commands[i]->name, err);
}

static void test_check_refuses_bad_tables(void **state)
{
	(void)state;
	char err[128];
	static const struct cli_option dup_key[] = {
		CLI_OPTION('a', "all", NULL, "x"), CLI_OPTION('a', "also", NULL, "y"), { 0 } };
	static const struct cli_option dup_name[] = {
		CLI_OPTION('a', "all", NULL, "x"), CLI_OPTION(CLI_LONG_ONLY, "all", NULL, "y"),
		{ 0 } };
	static const struct cli_option help[] = { CLI_OPTION('h', "hello", NULL, "x"), { 0 } };
	static const struct cli_option help_name[] = {
		CLI_OPTION(CLI_LONG_ONLY, "help", NULL, "x"), { 0 } };
	static const struct cli_option nameless[] = {
		CLI_OPTION(CLI_LONG_ONLY, NULL, NULL, "x"), { 0 } };
	static const struct cli_option colon[] = { CLI_OPTION(':', "colon", NULL, "x"), { 0 } };
	static struct cli_option many[CLI_MAX_OPTIONS + 2];
	static char names[CLI_MAX_OPTIONS + 1][16];
	for (int i = 0; i <= CLI_MAX_OPTIONS; i++) {
		snprintf(names[i], sizeof(names[i]), "o%d", i);
		many[i] = (struct cli_option)CLI_OPTION(CLI_LONG_ONLY + i, names[i], NULL, "x");
	}
	struct cli_command too_many = { .name = "t", .synopsis = "", .options = many };
	assert_int_equal(cli_command__check(&too_many, err, sizeof(err)), -E2BIG);
	many[CLI_MAX_OPTIONS] = (struct cli_option){ 0 };
	assert_int_equal(cli_command__check(&too_many, err, sizeof(err)), 0); /* just fits */
	many[CLI_MAX_OPTIONS] = (struct cli_option)CLI_OPTION(CLI_LONG_ONLY + CLI_MAX_OPTIONS,
							    names[CLI_MAX_OPTIONS], NULL, "x");
	const struct cli_option *bad[] = { dup_key, dup_name, help, help_name, nameless, colon,
					   many };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cli_command cmd = { .name = "t", .synopsis = "", .options = bad[i] };
		err[0] = '\0';
		if (!cli_command__check(&cmd, err, sizeof(err)))
			fail_msg("bad table %zu accepted", i);
		assert_true(err[0] != '\0');
		/* The parser refuses it too, with one line and exit 2. */
		char *args[] = { "t", NULL };
		struct cli_parser p = CLI_PARSER_INIT(&cmd, 1, args);
		fflush(stderr);
		int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 2);
		int key = cli_parser__next(&p);
		dup2(saved, 2);
		close(saved);
		close(devnull);
		assert_int_equal(key, CLI_STOP);
		assert_int_equal(p.exit_code, 2);
	}
}

static void test_help_lists_every_option(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char *help = help_text(commands[i]);
		char *flat = flatten(help);
		char want[96];
		snprintf(want, sizeof(want), "usage: dynoprof %s ", commands[i]->name);
		assert_non_null(strstr(help, want));
		assert_non_null(strstr(help, "  -h, --help "));
		for (const struct cli_option *o = commands[i]->options; o->key || o->header ||
		     o->operand; o++) {
			if (!o->key)
				continue;
			if (o->name)
				snprintf(want, sizeof(want), "--%s%s%s", o->name, o->arg ? " " : "",
					 o->arg ? o->arg : "");
			else
				snprintf(want, sizeof(want), "-%c", o->key);
			if (!strstr(help, want))
				fail_msg("%s --help lacks %s", commands[i]->name, want);
			if (o->def) {
				snprintf(want, sizeof(want), "default: %s)", o->def);
				if (!strstr(flat, want))
					fail_msg("%s --help lacks '%s'", commands[i]->name, want);
			}
		}
		/* Wrapped to the terminal: no line of the generated part is wider than 80
		 * (the agent's config key table is printed by the config module). */
		char *keys = strstr(help, "\nconfig keys");
		if (keys)
			*keys = '\0';
		for (char *line = strtok(help, "\n"); line; line = strtok(NULL, "\n"))
			if (strlen(line) > 80 && !strstr(line, "  dynoprof "))
				fail_msg("%s --help: line wider than 80: %s", commands[i]->name, line);
		free(help);
		free(flat);
	}
}

static void test_agent_help_lists_every_route(void **state)
{
	(void)state;
	char *help = help_text(&agent_command);
	static const char *const routes[] = { "/metrics", "/debug/pprof/profile", "/flamegraph",
					      "/api/v1/groups", "/api/v1/regressions", "/healthz" };
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		char want[64];
		snprintf(want, sizeof(want), "GET %s ", routes[i]);
		if (!strstr(help, want))
			fail_msg("agent --help lacks %s", want);
	}
	free(help);
}

/* Runs the parser over args (NULL-terminated, args[0] the subcommand) with
 * stderr captured into err; returns the keys seen as a string "d=5s,q,". */
static int parse(const struct cli_command *cmd, char **args, char *seen, size_t seenlen,
		 char *err, size_t errlen, int *operand)
{
	int argc = 0;
	while (args[argc])
		argc++;
	fflush(stderr);
	int saved = dup(2);
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	dup2(fileno(tmp), 2);
	struct cli_parser p = CLI_PARSER_INIT(cmd, argc, args);
	int key;
	size_t n = 0;
	seen[0] = '\0';
	while ((key = cli_parser__next(&p)) > 0) {
		assert_non_null(p.option);
		assert_int_equal(p.option->key, key);
		const char *name = p.option->name ? p.option->name : "";
		n += (size_t)snprintf(seen + n, seenlen - n, "%s%s%s,", name, p.arg ? "=" : "",
				      p.arg ? p.arg : "");
	}
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	rewind(tmp);
	size_t got = fread(err, 1, errlen - 1, tmp);
	err[got] = '\0';
	fclose(tmp);
	*operand = p.operand;
	return key == CLI_STOP ? p.exit_code : 0;
}

static void test_parse(void **state)
{
	(void)state;
	char seen[256], err[512];
	int operand;
	char *a1[] = { "record", "-d", "5s", "--quiet", "--dur=2m", "-qF99", "--", "python3",
		       "-d", "x", NULL };
	assert_int_equal(parse(&record_command, a1, seen, sizeof(seen), err, sizeof(err),
			       &operand), 0);
	assert_string_equal(seen, "duration=5s,quiet,duration=2m,quiet,freq=99,");
	assert_int_equal(operand, 7);
	assert_string_equal(err, "");

	/* record: options end at COMMAND (its -d is its own) */
	char *a2[] = { "record", "python3", "-d", "x", NULL };
	assert_int_equal(parse(&record_command, a2, seen, sizeof(seen), err, sizeof(err),
			       &operand), 0);
	assert_string_equal(seen, "");
	assert_int_equal(operand, 1);

	/* diff: options after the operands too */
	char *a3[] = { "diff", "a.pb.gz", "b.pb.gz", "--json", "-", NULL };
	assert_int_equal(parse(&diff_command, a3, seen, sizeof(seen), err, sizeof(err),
			       &operand), 0);
	assert_string_equal(seen, "json=-,");
	assert_string_equal(a3[operand], "a.pb.gz");

	/* agent: a flag standing for a setting */
	char *a4[] = { "agent", "--no-python", "--window", "30s", NULL };
	assert_int_equal(parse(&agent_command, a4, seen, sizeof(seen), err, sizeof(err),
			       &operand), 0);
	assert_string_equal(seen, "no-python,window=30s,");
}

static void test_errors_are_one_line(void **state)
{
	(void)state;
	static const struct { const char *arg; const char *want; } cases[] = {
		{ "--bogus", "dynoprof: record: unrecognized option '--bogus' (see dynoprof "
			     "record --help)\n" },
		{ "--bogus=1", "dynoprof: record: unrecognized option '--bogus' (see dynoprof "
			       "record --help)\n" },
		{ "-x", "dynoprof: record: unrecognized option '-x' (see dynoprof record "
			"--help)\n" },
		{ "--no", "dynoprof: record: option '--no' is ambiguous: " },
		{ "--quiet=yes", "dynoprof: record: option '--quiet' takes no argument (see " },
		{ "-d", "dynoprof: record: option '-d' needs an argument (DURATION) (see " },
		{ "--duration", "dynoprof: record: option '--duration' needs an argument " },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char seen[256], err[512];
		int operand;
		char *args[] = { "record", (char *)cases[i].arg, NULL };
		assert_int_equal(parse(&record_command, args, seen, sizeof(seen), err, sizeof(err),
				       &operand), 2);
		if (strncmp(err, cases[i].want, strlen(cases[i].want)))
			fail_msg("%s: got %s", cases[i].arg, err);
		assert_non_null(strchr(err, '\n'));
		assert_string_equal(strchr(err, '\n'), "\n"); /* one line */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tables_are_valid),
		cmocka_unit_test(test_check_refuses_bad_tables),
		cmocka_unit_test(test_help_lists_every_option),
		cmocka_unit_test(test_agent_help_lists_every_route),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors_are_one_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
