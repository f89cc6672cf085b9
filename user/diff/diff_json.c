// SPDX-License-Identifier: MIT
/* diff_json.c - a diff result as JSON (see diff_json.h). */
#include <inttypes.h>

#include "diff/diff_json.h"

const char *diff_row__unit(const struct diff_row *row)
{
	if (row->metric == DIFF_SAMPLE_SHARE)
		return "share";
	return row->instructions ? "instr/req" : "cpu-ms/req";
}

/* "name": v (null when not finite). */
static void json_field(struct strbuf *sb, const char *name, double v)
{
	strbuf__printf(sb, "\"%s\": ", name);
	strbuf__json_number(sb, v);
}

/* The fields of a change: both values, the change and its interval, the
 * clusters behind each side. */
static void json_change(struct strbuf *sb, const struct ratio_change *c)
{
	json_field(sb, "base", c->base);
	strbuf__puts(sb, ", ");
	json_field(sb, "new", c->current);
	strbuf__puts(sb, ", ");
	json_field(sb, "change", c->change);
	strbuf__puts(sb, ", ");
	json_field(sb, "ci_low", c->lo);
	strbuf__puts(sb, ", ");
	json_field(sb, "ci_high", c->hi);
	strbuf__printf(sb, ", \"base_clusters\": %zu, \"new_clusters\": %zu", c->base_clusters,
		       c->new_clusters);
}

void diff__write_json(const struct diff_result *r, double confidence, struct strbuf *sb)
{
	strbuf__printf(sb, "\"confidence\": %g, \"regressions\": %zu, \"improvements\": %zu, "
		       "\"endpoints\": [", confidence, r->regressions, r->improvements);
	for (size_t i = 0; i < r->nrows; i++) {
		const struct diff_row *row = &r->rows[i];
		strbuf__puts(sb, i ? ",\n  {\"endpoint\": " : "\n  {\"endpoint\": ");
		strbuf__json_string(sb, row->endpoint);
		strbuf__printf(sb, ", \"metric\": \"%s\", \"verdict\": \"%s\", ",
			       diff_row__unit(row), verdict__name(row->verdict));
		json_change(sb, &row->change);
		strbuf__printf(sb, ", \"min_effect\": %g, \"base_samples\": %" PRIu64
			       ", \"new_samples\": %" PRIu64 ", \"base_requests\": %.0f"
			       ", \"new_requests\": %.0f, \"functions\": [", row->min_effect,
			       row->base_samples, row->new_samples, row->base_requests,
			       row->new_requests);
		for (size_t f = 0; f < row->nfunctions; f++) {
			strbuf__puts(sb, f ? ", {\"name\": " : "{\"name\": ");
			strbuf__json_string(sb, row->functions[f].name);
			strbuf__printf(sb, ", \"verdict\": \"%s\", ",
				       verdict__name(row->functions[f].verdict));
			json_change(sb, &row->functions[f].change);
			strbuf__putc(sb, '}');
		}
		strbuf__puts(sb, "]}");
	}
	strbuf__puts(sb, "\n]");
}
