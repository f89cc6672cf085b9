/* options.h - one option table per subcommand: it both parses the command line
 * (getopt_long underneath: long options, their unambiguous prefixes, -xVALUE,
 * --long=VALUE) and generates the subcommand's --help, so the help cannot
 * drift from what is parsed.
 *
 * Every subcommand gets -h/--help for free. Parse errors (an unknown or
 * ambiguous option, a missing or unexpected argument) are one line on stderr,
 * "dynoprof: CMD: unrecognized option '--x' (see dynoprof CMD --help)", and
 * exit status 2.
 *
 *	struct cli_parser p = CLI_PARSER_INIT(&record_command, argc, argv);
 *	int key;
 *	while ((key = cli_parser__next(&p)) > 0)
 *		switch (key) { case 'd': ... p.arg ... }
 *	if (key == CLI_STOP)
 *		return p.exit_code;    (help printed: 0; an error printed: 2)
 *	operands: argv[p.operand .. argc-1]
 */
#ifndef DYNOPROF_CLI_OPTIONS_H
#define DYNOPROF_CLI_OPTIONS_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Options in one table, at most (the parser's arrays are fixed; a larger
 * table is refused with a message, never overrun). */
#define CLI_MAX_OPTIONS 40

/* Keys of long-only options start here (below are short option letters). */
#define CLI_LONG_ONLY 256

/* cli_parser__next's answer when parsing must stop: see exit_code. */
#define CLI_STOP (-1)

#define CLI_STR_(x) #x
/* A numeric macro as a string, for help text and defaults. */
#define CLI_STR(x) CLI_STR_(x)

/* One row of a table. A table ends with a row of all zeros. A row is one of:
 * an option (key set), a group header (header set) or an operand shown in the
 * option list without being parsed (operand set). */
struct cli_option {
	int key;              /* what cli_parser__next returns for this option: a
			       * letter is also its short option (-d), a value
			       * >= CLI_LONG_ONLY makes it long-only */
	const char *name;     /* long option without "--" (NULL: short only) */
	const char *arg;      /* argument's name in help ("SECONDS"); NULL: a flag
			       * without argument */
	const char *help;     /* one paragraph, wrapped to the terminal width;
			       * '\n' starts a new line */
	const char *def;      /* default shown as "(default: DEF)"; NULL: none */
	const char *setting;  /* for flags that stand for a config file's
			       * `key = value` (agent): the key; help and default
			       * then come from the command's setting_help */
	const char *value;    /* with setting, for a flag without argument: the
			       * value it sets */
	const char *header;   /* a group header row: this text on its own line */
	const char *operand;  /* an operand row ("-- COMMAND [ARGS...]"), help only */
};

/* A subcommand: its name, help text around the generated option list, and
 * how it takes operands. */
struct cli_command {
	const char *name;             /* "record" */
	const char *synopsis;         /* after "usage: dynoprof NAME " */
	const char *doc;              /* paragraphs before the options */
	void (*more_doc)(FILE *out);  /* NULL, or prints text computed at run time
				       * after doc (the agent's routes) */
	const struct cli_option *options;
	void (*more_options)(FILE *out); /* NULL, or prints after the options
					  * (the agent's config keys) */
	const char *(*setting_help)(const char *key, const char **def);
				      /* NULL, or the meaning and default (*def) of
				       * a setting, for options with setting */
	const char *epilog;           /* after the options: notes, examples */
	bool operands_end_options;    /* options stop at the first operand (record's
				       * COMMAND keeps its own options); else they
				       * may come before and after operands */
};

struct cli_parser {
	const struct cli_command *cmd;  /* the table */
	int argc;                       /* the subcommand's arguments: argv[0] is */
	char **argv;                    /* its name */
	const struct cli_option *option;/* the option next() returned last */
	char *arg;                      /* its argument (NULL for a flag): argv's
					 * string, which parsers may cut up */
	int operand;                    /* after next() returned 0: the index of the
					 * first operand in argv (argc: none) */
	int exit_code;                  /* after CLI_STOP: 0 (help printed) or 2
					 * (a one-line error printed) */
	bool ready;                     /* longopts and shortopts are built */
	struct option longopts[CLI_MAX_OPTIONS + 2];    /* + --help, terminator */
	char shortopts[3 + 2 * CLI_MAX_OPTIONS + 2];    /* "+:" letters ':' "h" NUL */
};

/* Table rows: an option with its help, and one with a default too. */
#define CLI_OPTION(k, n, a, h) { .key = (k), .name = (n), .arg = (a), .help = (h) }
#define CLI_OPTION_DEF(k, n, a, h, d) \
	{ .key = (k), .name = (n), .arg = (a), .help = (h), .def = (d) }

#define CLI_PARSER_INIT(command, count, vector) \
	{ .cmd = (command), .argc = (count), .argv = (vector) }

/* The next option's key (> 0) with p->option and p->arg set; 0 when the
 * options end (p->operand set); CLI_STOP after printing --help (exit_code 0)
 * or a one-line error (exit_code 2). Uses getopt_long's global state: one
 * parser at a time. */
int cli_parser__next(struct cli_parser *p);

/* Checks cmd's table: at most CLI_MAX_OPTIONS options, keys and names unique,
 * keys letters or >= CLI_LONG_ONLY, no -h/--help (built in). Returns 0, or
 * -E2BIG / -EINVAL with a message in err. */
int cli_command__check(const struct cli_command *cmd, char *err, size_t errlen);

/* Prints cmd's help: usage, doc, the option table, epilog. */
void cli_command__help(const struct cli_command *cmd, FILE *out);

/* Prints "dynoprof: CMD: MESSAGE (see dynoprof CMD --help)" on stderr. */
__attribute__((format(printf, 2, 3)))
void cli_command__usage_error(const struct cli_command *cmd, const char *fmt, ...);

/* The subcommands' tables (cli/record.c, report.c, agent.c, diff.c), for
 * tests that check each one. */
extern const struct cli_command record_command;
extern const struct cli_command report_command;
extern const struct cli_command agent_command;
extern const struct cli_command diff_command;

#endif
