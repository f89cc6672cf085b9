/* top.h - the "top functions" table of `dynoprof report`.
 *
 *   total: 1234 samples, 12.3 s cpu
 *     SELF%  TOTAL%  SAMPLES  FUNCTION
 *     42.0%   61.5%      518  json.loads (json/__init__.py:346)
 *
 * A function is a frame display text (frame__display()), so rows match the
 * names in flame graphs. SELF is the weight of samples whose leaf it is, TOTAL
 * the weight of samples whose stack contains it anywhere (once per stack, so
 * recursion does not count twice). SAMPLES is the self sample count.
 */
#ifndef DYNOPROF_TOP_H
#define DYNOPROF_TOP_H

#include <stddef.h>
#include <stdio.h>

#include "profile/profile.h"

/* Default number of rows. */
#define TOP_DEFAULT_ROWS 20

/* Options; TOP_OPTS_INIT gives the defaults. */
struct top_opts {
	size_t value_index; /* value the percentages are shares of (default 0) */
	size_t max_rows;    /* rows to print; 0 means TOP_DEFAULT_ROWS, SIZE_MAX all */
};

#define TOP_OPTS_INIT { .value_index = 0, .max_rows = TOP_DEFAULT_ROWS }

/* Prints the table of p to out: a "total: ..." line naming the sum of every
 * value type (counts as "N <type>", nanoseconds as seconds, bytes scaled), the
 * header, then functions sorted by self weight, then total weight (both
 * descending), then name. opts may be NULL (defaults). The SAMPLES column
 * counts the "samples" value when p has one, else the weight. Functions with
 * no weight under value_index are not listed. Returns 0, -EINVAL for a
 * value_index beyond p's value types, -ENOMEM, or -EIO when writing failed. */
int top__print(const struct profile *p, FILE *out, const struct top_opts *opts);

#endif
