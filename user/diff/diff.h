/* Layer diff: two profiles compared per endpoint and function, with confidence
 * intervals.
 * (Layers and their order: scripts/check-layers.sh.) */
/* diff.h - CPU regressions between two profiles (a base and a new one), per
 * endpoint, overall, and per function within an endpoint, each with a
 * confidence interval that accounts for clustering.
 *
 * Clusters are time windows, from the samples' `window` label (set by
 * `record --window`, and by the agent per stored window); samples without
 * one are clustered by process. Samples of many hosts (a `host` label) are
 * clustered by host x window, nested in their hosts by default (see
 * enum diff_clusters). For each
 * endpoint the metric is CPU per request when both sides counted requests
 * for it (libdynotag request counters), else the endpoint's share of all
 * samples. See stats/ratio_ci.h for the interval and verdict rule.
 */
#ifndef DYNOPROF_DIFF_H
#define DYNOPROF_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"
#include "stats/ratio_ci.h"

/* What a row measures. */
enum diff_metric {
	DIFF_CPU_PER_REQUEST = 0,   /* CPU ns (or instructions) per request */
	DIFF_SAMPLE_SHARE = 1,      /* share of all samples */
};

/* A function's part in an endpoint's change. */
/* Smallest part of an endpoint's absolute change (CPU per request, or share)
 * a function's own change must make up to be named as a driver. */
#define DIFF_DRIVER_MIN_SHARE 0.1

struct diff_function {
	char *name;                 /* function (frame name, without line) */
	struct ratio_change change; /* its cost per request (or share of the endpoint) */
	enum verdict verdict;
};

/* One endpoint (or the overall row). */
struct diff_row {
	char *endpoint;             /* label value; "(all)" for the overall row */
	enum diff_metric metric;
	bool instructions;          /* the CPU measure is instructions, not ns */
	struct ratio_change change;
	enum verdict verdict;
	double min_effect;          /* threshold applied */
	uint64_t base_samples, new_samples;   /* samples of the endpoint per side */
	double base_requests, new_requests;   /* requests per side (0: unknown) */
	struct diff_function *functions;      /* flagged rows only: the functions
					       * that drove the change (significant, and
					       * at least DIFF_DRIVER_MIN_SHARE of it in
					       * absolute cost), largest absolute change
					       * of cost per request first */
	size_t nfunctions;
};

/* A per-endpoint threshold override. */
struct diff_threshold {
	const char *endpoint;
	double min_effect;
};

/* Clusters of samples pooled from many hosts (`dynoprof diff --clusters`).
 * Samples without a `host` label are clustered by window (or process) in
 * every mode, as from one host. */
enum diff_clusters {
	DIFF_CLUSTERS_NESTED = 0,      /* host x window clusters nested in their hosts:
					* hosts resampled, then their windows
					* (ratio_change__estimate_nested) */
	DIFF_CLUSTERS_HOST_WINDOW = 1, /* host x window clusters as independent */
	DIFF_CLUSTERS_HOST = 2,        /* each host one cluster */
};

struct diff_opts {
	const char *group_key;      /* label that names endpoints (default "endpoint") */
	double min_effect;          /* default 0.02 */
	const struct diff_threshold *thresholds; /* per-endpoint overrides */
	size_t nthresholds;
	double confidence;          /* default 0.95 */
	unsigned resamples;         /* default 2000 */
	uint64_t seed;              /* default 1 */
	size_t min_clusters;        /* per side (default 8) */
	double min_requests;        /* per side for the per-request metric (default 30) */
	double min_samples;         /* per side for the share metric (default 100) */
	size_t max_functions;       /* functions analysed per flagged endpoint (default 30) */
	enum diff_clusters clusters; /* how samples with a `host` label (diff over many
				      * agents) are clustered; DIFF_CLUSTERS_NESTED
				      * (0) is the default */
};

struct diff_result {
	struct diff_row *rows;      /* endpoints sorted by change (largest first), then
				     * insufficient data; the overall row first when
				     * requests were counted */
	size_t nrows;
	size_t regressions;         /* rows with VERDICT_REGRESSION */
	size_t improvements;
};

/* Compares new against base. opts may be NULL (defaults). Returns 0, -ENODATA
 * when a side has no samples, -EINVAL, -ENOMEM. */
int diff__compute(const struct profile *base, const struct profile *cur,
		  const struct diff_opts *opts, struct diff_result *out);
void diff__free(struct diff_result *r);

/* Per-function verdicts for the differential flame graph: the change of each
 * function's self cost (its share of all samples as the innermost frame) with
 * its interval. */
struct diff_function_map;
struct diff_function_map *diff__function_map(const struct profile *base,
					     const struct profile *cur,
					     const struct diff_opts *opts);
/* Looks up a frame name; returns NULL when not analysed. */
const struct diff_function *diff_function_map__get(const struct diff_function_map *m,
						   const char *name);
void diff_function_map__free(struct diff_function_map *m);

#endif
