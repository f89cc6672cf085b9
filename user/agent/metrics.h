/* metrics.h - Prometheus metrics of the agent: counters and gauges with
 * labels, rendered in the text exposition format (version 0.0.4).
 *
 * Label cardinality is capped per metric family: once a family holds
 * max_series series, new label sets are folded into one series whose
 * `endpoint` label (or, if the family has none, every label) is "__other__",
 * and dynoprof_metrics_overflow_total{family=...} counts the folded updates.
 * Endpoint-folded series may take a family up to 2 * max_series; past that
 * every label folds, so a family never holds more than 2 * max_series + 1.
 * Thread-safe (one mutex): the agent loop updates, HTTP threads render.
 */
#ifndef DYNOPROF_METRICS_H
#define DYNOPROF_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

enum metric_type {
	METRIC_COUNTER = 0,
	METRIC_GAUGE = 1,
};

/* The value exported for a NULL or empty label value: dynoprof's spelling of
 * "without this tag" everywhere (report's tables, --tag/selectors KEY=-), so
 * untagged samples read the same in metrics and in profiles, and every series
 * carries all its labels (Prometheus drops a label whose value is ""). */
#define METRICS_UNSET_VALUE "-"

/* One label; label values are escaped on output (\\, \", \n); NULL or ""
 * is exported as METRICS_UNSET_VALUE. */
struct metric_label {
	const char *name;
	const char *value;
};

struct metrics;

/* max_series per family (0: default 1000). NULL + errno. */
struct metrics *metrics__new(size_t max_series);
void metrics__free(struct metrics *m);

/* Declares a family (idempotent). Names must match [a-zA-Z_:][a-zA-Z0-9_:]*,
 * and end in "_total" exactly when the type is a counter (Prometheus naming).
 * Returns 0, -EINVAL (bad name), -EEXIST (declared with another type). */
int metrics__declare(struct metrics *m, const char *family, enum metric_type type,
		     const char *help);
/* Adds delta (>= 0) to a counter series. 0 or -errno (-ENOENT undeclared).
 * -EINVAL: negative or non-finite delta on a counter, bad or repeated label
 * name, more than 16 labels. Labels are a set: their order does not matter.
 * On a gauge, delta may be negative. A series updated only by non-negative
 * integers keeps its exact 64-bit value (beyond a double's 2^53). */
int metrics__add(struct metrics *m, const char *family, const struct metric_label *labels,
		 size_t nlabels, double delta);
/* Sets a gauge series. On a counter, sets a cumulative total kept elsewhere:
 * -EINVAL if it goes backwards. Folded (over the cap) gauge sets are summed
 * into the __other__ series, which so holds the total of the cut-off series
 * since the last metrics__clear(). */
int metrics__set(struct metrics *m, const char *family, const struct metric_label *labels,
		 size_t nlabels, double value);
/* Removes every series of a gauge family (before re-setting a snapshot).
 * -EINVAL on a counter, -ENOENT undeclared. */
int metrics__clear(struct metrics *m, const char *family);
/* Renders all families, sorted by name, series sorted by labels (labels
 * within a series sorted by name), appending to out. Families without any
 * series are left out. 0, -ENOMEM. */
int metrics__render(struct metrics *m, struct strbuf *out);

/* Appends a sample value as the exposition format writes it: integral values
 * without exponent (below 1e21), others in the shortest round-trip form,
 * "NaN", "+Inf", "-Inf". */
void metrics__format_value(struct strbuf *out, double v);

#endif
