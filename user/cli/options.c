// SPDX-License-Identifier: MIT
#include "cli/options.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

/* Help layout: option column, then the help text from HELP_COLUMN, wrapped
 * before HELP_WIDTH. */
#define HELP_COLUMN 28
#define HELP_WIDTH 80

static bool is_option(const struct cli_option *o)
{
	return o->key != 0;
}

static bool is_end(const struct cli_option *o)
{
	return !o->key && !o->header && !o->operand;
}

int cli_command__check(const struct cli_command *cmd, char *err, size_t errlen)
{
	size_t n = 0;
	for (const struct cli_option *o = cmd->options; o && !is_end(o); o++) {
		if (!is_option(o))
			continue;
		if (++n > CLI_MAX_OPTIONS) {
			snprintf(err, errlen, "more than %d options", CLI_MAX_OPTIONS);
			return -E2BIG;
		}
		bool letter = o->key > 0 && o->key < 128 && o->key != ':' && o->key != '?' &&
			      o->key != '+' && o->key != '-';
		if (!letter && o->key < CLI_LONG_ONLY) {
			snprintf(err, errlen, "key %d is neither a letter nor >= %d", o->key,
				 CLI_LONG_ONLY);
			return -EINVAL;
		}
		if ((!letter && !o->name) || o->key == 'h' ||
		    (o->name && !strcmp(o->name, "help"))) {
			snprintf(err, errlen, "option %d: no name, or -h/--help (built in)",
				 o->key);
			return -EINVAL;
		}
		for (const struct cli_option *q = cmd->options; q != o; q++)
			if (is_option(q) && (q->key == o->key ||
					     (q->name && o->name && !strcmp(q->name, o->name)))) {
				snprintf(err, errlen, "option %s given twice",
					 o->name ? o->name : "(short)");
				return -EINVAL;
			}
	}
	return 0;
}

/* Builds getopt_long's arrays from the table. */
static int build(struct cli_parser *p, char *err, size_t errlen)
{
	int e = cli_command__check(p->cmd, err, errlen);
	if (e)
		return e;
	size_t nl = 0, ns = 0;
	if (p->cmd->operands_end_options)
		p->shortopts[ns++] = '+';
	p->shortopts[ns++] = ':'; /* a missing argument is ':', not '?' */
	for (const struct cli_option *o = p->cmd->options; o && !is_end(o); o++) {
		if (!is_option(o))
			continue;
		if (o->name)
			p->longopts[nl++] = (struct option){ o->name, o->arg ? required_argument
									      : no_argument,
							     NULL, o->key };
		if (o->key < CLI_LONG_ONLY) {
			p->shortopts[ns++] = (char)o->key;
			if (o->arg)
				p->shortopts[ns++] = ':';
		}
	}
	p->longopts[nl++] = (struct option){ "help", no_argument, NULL, 'h' };
	p->longopts[nl] = (struct option){ 0 };
	p->shortopts[ns++] = 'h';
	p->shortopts[ns] = '\0';
	p->ready = true;
	return 0;
}

static const struct cli_option *find_key(const struct cli_command *cmd, int key)
{
	for (const struct cli_option *o = cmd->options; o && !is_end(o); o++)
		if (is_option(o) && o->key == key)
			return o;
	return NULL;
}

void cli_command__usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "dynoprof: %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see dynoprof %s --help)\n", cmd->name);
	va_end(ap);
}

/* getopt_long's '?' for a "--name..." argument: unknown, or a prefix of
 * several options. */
static void long_option_error(const struct cli_parser *p, const char *typed)
{
	const char *name = typed + 2;
	size_t len = strcspn(name, "=");
	char list[256] = "";
	size_t used = 0, matches = 0;
	for (const struct option *lo = p->longopts; lo->name; lo++)
		if (!strncmp(lo->name, name, len)) {
			matches++;
			int n = snprintf(list + used, sizeof(list) - used, "%s--%s",
					 used ? ", " : "", lo->name);
			if (n > 0 && (size_t)n < sizeof(list) - used)
				used += (size_t)n;
		}
	if (matches > 1 && len)
		cli_command__usage_error(p->cmd, "option '--%.*s' is ambiguous: %s", (int)len, name,
					 list);
	else
		cli_command__usage_error(p->cmd, "unrecognized option '%.*s'", (int)(len + 2),
					 typed);
}

int cli_parser__next(struct cli_parser *p)
{
	char err[128];
	if (!p->ready) {
		if (build(p, err, sizeof(err))) {
			fprintf(stderr, "dynoprof: %s: bad option table: %s\n", p->cmd->name, err);
			p->exit_code = 2;
			return CLI_STOP;
		}
		optind = 0; /* a full restart of getopt, also after another table */
		opterr = 0; /* its messages are two lines without our prefix: ours below */
	}
	int c = getopt_long(p->argc, p->argv, p->shortopts, p->longopts, NULL);
	const char *typed = optind > 0 && optind <= p->argc ? p->argv[optind - 1] : "";
	p->option = NULL;
	p->arg = NULL;
	switch (c) {
	case -1:
		p->operand = optind;
		return 0;
	case 'h':
		cli_command__help(p->cmd, stdout);
		p->exit_code = 0;
		return CLI_STOP;
	case ':': {
		const struct cli_option *o = find_key(p->cmd, optopt);
		if (o && o->name && !strncmp(typed, "--", 2))
			cli_command__usage_error(p->cmd, "option '--%s' needs an argument (%s)",
						 o->name, o->arg);
		else
			cli_command__usage_error(p->cmd, "option '-%c' needs an argument (%s)",
						 optopt, o ? o->arg : "?");
		p->exit_code = 2;
		return CLI_STOP;
	}
	case '?': {
		const struct cli_option *o = optopt ? find_key(p->cmd, optopt) : NULL;
		if (o || optopt == 'h')
			/* Known: so it was --name=VALUE for a flag. */
			cli_command__usage_error(p->cmd, "option '--%s' takes no argument",
						 o && o->name ? o->name : "help");
		else if (!optopt && !strncmp(typed, "--", 2))
			long_option_error(p, typed);
		else if (optopt > ' ' && optopt < 127)
			cli_command__usage_error(p->cmd, "unrecognized option '-%c'", optopt);
		else
			cli_command__usage_error(p->cmd, "unrecognized option '%s'", typed);
		p->exit_code = 2;
		return CLI_STOP;
	}
	default:
		p->option = find_key(p->cmd, c);
		p->arg = p->option && p->option->arg ? optarg : NULL;
		return c;
	}
}

/* Prints text from column col, wrapping words before HELP_WIDTH onto lines
 * indented to indent; '\n' in text starts a new line. Ends with a newline. */
static void wrap(FILE *out, const char *text, int col, int indent)
{
	const char *s = text;
	while (*s) {
		if (*s == '\n') {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
			s++;
			continue;
		}
		if (*s == ' ') {
			s++;
			continue;
		}
		int len = (int)strcspn(s, " \n");
		bool first = col == indent;
		if (!first && col + 1 + len >= HELP_WIDTH) {
			fprintf(out, "\n%*s", indent, "");
			col = indent;
			first = true;
		}
		if (!first) {
			fputc(' ', out);
			col++;
		}
		fprintf(out, "%.*s", len, s);
		col += len;
		s += len;
	}
	fputc('\n', out);
}

/* One row of the option list: the left column, then its text from
 * HELP_COLUMN (on the next line when the left column is too wide). */
static void print_row(FILE *out, const char *left, const char *text)
{
	int col = fprintf(out, "  %s", left);
	if (col > HELP_COLUMN - 2)
		col = fprintf(out, "\n") - 1;
	fprintf(out, "%*s", HELP_COLUMN - col, "");
	wrap(out, text, HELP_COLUMN, HELP_COLUMN);
}

static void print_option(FILE *out, const struct cli_command *cmd, const struct cli_option *o)
{
	char left[128], text[1024];
	const char *help = o->help, *def = o->def;
	if (o->key < CLI_LONG_ONLY && o->name)
		snprintf(left, sizeof(left), "-%c, --%s%s%s", o->key, o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	else if (o->name)
		snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	else
		snprintf(left, sizeof(left), "-%c%s%s", o->key, o->arg ? " " : "",
			 o->arg ? o->arg : "");
	if (o->setting && cmd->setting_help && !help) {
		const char *setting_def;
		help = cmd->setting_help(o->setting, &setting_def);
		if (!def && !o->value)
			def = setting_def;
	}
	size_t n = (size_t)snprintf(text, sizeof(text), "%s", help ? help : "");
	if (o->setting && n < sizeof(text))
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s(config: %s%s%s%s",
				      n ? " " : "", o->setting, o->value ? " = " : "",
				      o->value ? o->value : "", def ? "; " : ")");
	if (def && n < sizeof(text))
		snprintf(text + n, sizeof(text) - n, "%sdefault: %s)",
			 o->setting ? "" : n ? " (" : "(", def);
	print_row(out, left, text);
}

void cli_command__help(const struct cli_command *cmd, FILE *out)
{
	fprintf(out, "usage: dynoprof %s %s\n", cmd->name, cmd->synopsis);
	if (cmd->doc)
		fprintf(out, "\n%s", cmd->doc);
	if (cmd->more_doc)
		cmd->more_doc(out);
	const struct cli_option *o = cmd->options;
	if (!o || is_end(o) || !o->header)
		fputs("\noptions:\n", out);
	for (; o && !is_end(o); o++) {
		if (o->header)
			fprintf(out, "\n%s\n", o->header);
		else if (o->operand)
			print_row(out, o->operand, o->help ? o->help : "");
		else
			print_option(out, cmd, o);
	}
	print_row(out, "-h, --help", "this help");
	if (cmd->more_options)
		cmd->more_options(out);
	if (cmd->epilog)
		fprintf(out, "\n%s", cmd->epilog);
}
