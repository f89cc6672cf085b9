/* Layer cli: the command line: one file per subcommand, its options and help.
 * (Layers and their order: scripts/check-layers.sh.) */
/* cli.h - the subcommands of the dynoprof command line. Each takes the
 * arguments after its name (argv[0] is the subcommand) and returns the process
 * exit code. Each parses them with its option table (cli/options.h), which
 * also makes its --help. */
#ifndef DYNOPROF_CLI_H
#define DYNOPROF_CLI_H

#include <stddef.h>
#include <stdint.h>

struct profile;

int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_diff(int argc, char **argv);

/* Prints "dynoprof: MESSAGE" on stderr. */
__attribute__((format(printf, 1, 2)))
void cli_error(const char *fmt, ...);
/* Notes on stderr that profile p (read from what) had counts clamped
 * (profile__saturated); nothing when it had none. */
void cli_note_saturated(const struct profile *p, const char *what);

/* Parses a comma-separated list of positive ids ("12,34") into a newly
 * allocated array. Returns 0 or -EINVAL (bad syntax, zero, or > INT32_MAX). */
int parse_id_list(const char *text, uint32_t **ids, size_t *count);

#endif
