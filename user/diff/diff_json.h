/* diff_json.h - a diff result as JSON: the one writer behind
 * `dynoprof diff --json` (cli/diff.c) and the agent's /api/v1/compare
 * (agent/web_api.c), so both name and format every field alike. */
#ifndef DYNOPROF_DIFF_JSON_H
#define DYNOPROF_DIFF_JSON_H

#include "diff/diff.h"
#include "util/strbuf.h"

/* A row's metric as the CLI and the JSON name it: "share", "instr/req" or
 * "cpu-ms/req". */
const char *diff_row__unit(const struct diff_row *row);

/* Appends the members "confidence", "regressions", "improvements" and
 * "endpoints": [...] (rows, their change with its interval and clusters, and
 * their driving functions) to sb, without the enclosing braces: the caller
 * opens the object and may add members before and after. Errors show in
 * strbuf__error(sb). */
void diff__write_json(const struct diff_result *r, double confidence, struct strbuf *sb);

#endif
