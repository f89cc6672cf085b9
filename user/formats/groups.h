/* groups.h - a profile summarised by tag values ("by endpoint,commit"): per
 * group, its samples, its share of all samples, its CPU time, and its top
 * function (most self samples). */
#ifndef DYNOPROF_GROUPS_H
#define DYNOPROF_GROUPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "profile/profile.h"

/* One group's figures. */
struct group_row {
	char *key;            /* the group's label values joined by ", " ("-" when absent) */
	uint64_t samples;     /* samples in the group */
	uint64_t cpu_ns;      /* CPU nanoseconds (0 when the profile has no cpu value) */
	uint64_t instructions;/* instructions (0 when not counted) */
	uint64_t requests;    /* requests begun (0 when unknown) */
	double share;         /* samples / all samples, 0..1 */
	char *top_function;   /* display text of the frame with most self samples */
	uint64_t top_samples; /* its self samples */
};

/* Computes the groups of p by the label keys, largest first. *rows is a new
 * array of *nrows rows; free with groups__free. Returns 0 or -errno. */
int groups__compute(const struct profile *p, const char *const *keys, size_t nkeys,
		    struct group_row **rows, size_t *nrows);
void groups__free(struct group_row *rows, size_t nrows);

/* Prints the table: header, then one row per group. */
int groups__print(const struct profile *p, FILE *out, const char *const *keys, size_t nkeys);

/* Splits "a,b,c" (modified in place) into at most max keys. Returns the count,
 * or -EINVAL for an empty key or too many. */
int groups__parse_keys(char *text, const char **keys, size_t max);

#endif
