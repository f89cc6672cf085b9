// SPDX-License-Identifier: MIT
/* dynoprof report: top table of a profile file, and format conversion. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/options.h"
#include "formats/groups.h"
#include "formats/output.h"
#include "formats/top.h"
#include "profile/profile.h"
#include "profile/transform.h"

#define MAX_GROUP_KEYS 8
#define MAX_FILTERS 16

enum { OPT_FORMAT = CLI_LONG_ONLY, OPT_BY, OPT_TAG, OPT_GROUP_BY, OPT_WEIGHT };

/* The options, their help and defaults: what cmd_report takes and --help shows. */
static const struct cli_option report_options[] = {
	CLI_OPTION('i', "input", "FILE", "profile to read (- for stdin); also the first "
		   "operand"),
	CLI_OPTION('o', "output", "FILE", "convert into FILE"),
	CLI_OPTION(OPT_FORMAT, "format", "FORMAT", "format of -o when its extension does not "
		   "tell: svg, folded, pprof, speedscope"),
	CLI_OPTION_DEF('n', "top", "N", "rows in the table (0 for all)", "20"),
	CLI_OPTION(OPT_BY, "by", "KEYS", "instead, a table per tag group: samples, share, CPU "
		   "and top function for each value of KEYS (e.g. endpoint,commit)"),
	CLI_OPTION(OPT_TAG, "tag", "KEY=VALUE", "only samples with this tag (repeatable; "
		   "VALUE - means \"without that tag\")"),
	CLI_OPTION(OPT_GROUP_BY, "group-by", "KEYS", "with -o (folded, SVG): lead stacks with "
		   "[key=value] frames"),
	CLI_OPTION_DEF(OPT_WEIGHT, "weight", "VALUE", "what the table's percentages and "
		       "converted folded/SVG weigh: samples, cpu, instructions, cycles",
		       "samples"),
	CLI_OPTION('q', "quiet", NULL, "no table (with -o: convert only)"),
	{ 0 },
};

const struct cli_command report_command = {
	.name = "report",
	.synopsis = "-i FILE [-o FILE] [--format FORMAT] [--top N] [OPTIONS]",
	.doc =
"Reads a profile (pprof, gzipped or not, or folded stacks; detected from the\n"
"content) and prints its top functions: SELF% is the share of samples whose\n"
"innermost frame is the function, TOTAL% the share whose stack contains it.\n"
"With -o, also writes the profile in another format (svg, folded, pprof,\n"
"speedscope; from the extension or --format).\n",
	.options = report_options,
	.epilog =
"examples:\n"
"  dynoprof report -i profile.pb.gz\n"
"  dynoprof report -i profile.folded -o profile.svg -q\n"
"  dynoprof report -i web.pb.gz --by endpoint,commit\n"
"  dynoprof report -i web.pb.gz --tag endpoint=/checkout\n",
};

int cmd_report(int argc, char **argv)
{
	const char *by_keys[MAX_GROUP_KEYS], *group_keys[MAX_GROUP_KEYS];
	int nby = 0, ngroup = 0;
	struct label_filter filters[MAX_FILTERS];
	size_t nfilters = 0;
	struct profile *filtered = NULL;
	const char *weight = NULL;
	size_t weight_index = 0;
	const char *input = NULL, *output = NULL, *format_name = NULL;
	size_t top_rows = 20;
	int quiet = 0, c, rc = 2;
	char err[512] = "", *end;
	struct profile *p = NULL;

	struct cli_parser cp = CLI_PARSER_INIT(&report_command, argc, argv);
	while ((c = cli_parser__next(&cp)) > 0) {
		char *arg = cp.arg;
		switch (c) {
		case 'i': input = arg; break;
		case 'o': output = arg; break;
		case OPT_FORMAT: format_name = arg; break;
		case 'q': quiet = 1; break;
		case OPT_BY:
		case OPT_GROUP_BY: {
			int n = groups__parse_keys(arg, c == OPT_BY ? by_keys : group_keys,
						   MAX_GROUP_KEYS);
			if (n < 0) {
				cli_error("bad %s: expected KEY[,KEY...] (at most %d), e.g. "
					  "endpoint,commit", c == OPT_BY ? "--by" : "--group-by",
					  MAX_GROUP_KEYS);
				return 2;
			}
			*(c == OPT_BY ? &nby : &ngroup) = n;
			break;
		}
		case OPT_WEIGHT:
			weight = arg;
			break;
		case OPT_TAG:
			if (nfilters >= MAX_FILTERS || label_filter__parse(arg, &filters[nfilters])) {
				cli_error("bad --tag '%s': expected KEY=VALUE, e.g. --tag "
					  "endpoint=/checkout", arg);
				return 2;
			}
			nfilters++;
			break;
		case 'n': {
			errno = 0;
			long v = strtol(arg, &end, 10);
			if (errno || *end || end == arg || v < 0) {
				cli_error("bad --top '%s': a number of rows, 0 for all", arg);
				return 2;
			}
			top_rows = v == 0 ? SIZE_MAX : (size_t)v;
			break;
		}
		}
	}
	if (c == CLI_STOP)
		return cp.exit_code;
	if (!input) {
		if (cp.operand < argc) {
			input = argv[cp.operand];
		} else {
			cli_error("report needs a profile: dynoprof report -i FILE");
			return 2;
		}
	}
	enum output_format fmt = FORMAT_FOLDED;
	if (output && (format_name ? format__from_name(format_name, &fmt)
				   : format__from_path(output, &fmt))) {
		cli_error("cannot tell the output format of '%s': use .svg, .folded, .pb.gz or "
			  ".json, or --format", format_name ? format_name : output);
		return 2;
	}
	p = profile__new();
	if (!p) {
		cli_error("out of memory");
		return 1;
	}
	if (output__read(p, input, err, sizeof(err))) {
		cli_error("%s", err);
		goto out;
	}
	cli_note_saturated(p, input);
	if (weight && output__weight_index(p, weight, &weight_index, err, sizeof(err))) {
		cli_error("--weight: %s", err);
		goto out;
	}
	if (nfilters) {
		filtered = profile__filtered_copy(p, filters, nfilters);
		if (!filtered) {
			cli_error("filtering samples failed: %s", strerror(errno));
			rc = 1;
			goto out;
		}
		profile__free(p);
		p = filtered;
		filtered = NULL;
	}
	if (!quiet && nby) {
		if (groups__print(p, stdout, by_keys, (size_t)nby)) {
			cli_error("printing the table failed");
			rc = 1;
			goto out;
		}
	} else if (!quiet) {
		struct top_opts to = { .value_index = weight_index, .max_rows = top_rows };
		if (top__print(p, stdout, &to)) {
			cli_error("printing the table failed");
			rc = 1;
			goto out;
		}
	}
	if (output) {
		struct output_opts oo = { .title = "dynoprof", .subtitle = input,
					  .value_index = weight_index,
					  .group_keys = ngroup ? group_keys : NULL,
					  .ngroup_keys = (size_t)ngroup };
		if (output__write(p, output, fmt, &oo, err, sizeof(err))) {
			cli_error("%s", err);
			rc = 1;
			goto out;
		}
		if (!quiet)
			fprintf(stderr, "dynoprof: wrote %s (%s)\n", output, format__name(fmt));
	}
	rc = 0;
out:
	profile__free(p);
	return rc;
}
