/* Layer stats: the statistics of regression checks (confidence intervals,
 * resampling); pure numbers, no profiles.
 * (Layers and their order: scripts/check-layers.sh.) */
/* ratio_ci.h - did a deploy make an endpoint more expensive? Confidence
 * intervals for the relative change of a ratio between two clustered samples.
 *
 * Each side (base, new) is a set of clusters, e.g. one per time window. A
 * cluster holds a numerator and a denominator: CPU ns and requests of an
 * endpoint (CPU per request), or samples of the endpoint and all samples (its
 * share). Per side the statistic is the ratio estimator R = sum(num) / sum(den);
 * the effect is change = R_new / R_base - 1. Clusters must be independent of
 * each other: split a window by process only if processes do not share its
 * slowness (a busy host slows all of them; then the intervals are too narrow).
 *
 * Samples inside a cluster are not independent (a slow window slows all its
 * requests), so the spread is taken from the clusters, never from the sample
 * counts: a cluster bootstrap (clusters resampled with replacement, each side on
 * its own) with a studentized (bootstrap-t) interval on log(R_new / R_base).
 * The studentizing standard error is the delta-method (linearization) one of a
 * ratio estimator, recomputed inside every resample. Percentile intervals
 * under-cover with few clusters (~89% at 5, ~92% at 10 clusters per side);
 * bootstrap-t measured 94-96% from 5 clusters per side up (the calibration is
 * in tests/unit/test_ratio_ci.c).
 *
 * Pure computation: no I/O, no globals, deterministic for a seed, thread-safe.
 */
#ifndef DYNOPROF_RATIO_CI_H
#define DYNOPROF_RATIO_CI_H

#include <stddef.h>
#include <stdint.h>

struct cluster_obs {
	double num; /* finite, >= 0: CPU ns (or samples) of the endpoint in the cluster */
	double den; /* finite, >= 0: requests of the endpoint (or all samples) in the cluster */
};

struct ratio_change {
	double base;          /* R_base = sum(num) / sum(den); NaN when sum(den) is 0 */
	double current;       /* R_new, likewise */
	double change;        /* R_new / R_base - 1; +inf when only R_base is 0; NaN
			       * when a ratio is NaN */
	double lo, hi;        /* bounds of the confidence interval of change; lo >= -1.
			       * [-1, +inf] when the spread cannot be estimated (a side
			       * with fewer than 2 clusters, or a zero ratio); NaN when
			       * change is NaN */
	size_t base_clusters; /* base clusters with den > 0 */
	size_t new_clusters;  /* new clusters with den > 0 */
	double base_den;      /* sum(den) of the base side: requests or samples */
	double new_den;       /* sum(den) of the new side */
	size_t base_hosts;    /* nested estimates: base hosts with a cluster; else 0 */
	size_t new_hosts;     /* nested estimates: new hosts with a cluster; else 0 */
};

/* Largest accepted `resamples`: bounds the scratch memory (8 bytes each). */
#define RATIO_CHANGE_MAX_RESAMPLES 1000000u

/* Estimates the change from base to cur and its confidence interval.
 * base/cur: nbase/ncur clusters (a pointer may be NULL when its count is 0;
 * an empty side yields NaN estimates, not an error). Clusters with num == 0 and
 * den == 0 carry nothing and are ignored; clusters with den == 0 but num > 0
 * (CPU of requests that finished in another window) count in the sums.
 * resamples: bootstrap replicates, 1..RATIO_CHANGE_MAX_RESAMPLES (2000 gives
 * stable 95% bounds). confidence: in (0, 1), e.g. 0.95. seed: the same inputs
 * and seed give bit-identical results. Fills *out.
 * Returns 0, -EINVAL (bad argument, negative or non-finite value), or -ENOMEM.
 * Cost: O(resamples * (nbase + ncur)); memory O(resamples + nbase + ncur). */
int ratio_change__estimate(const struct cluster_obs *base, size_t nbase,
			   const struct cluster_obs *cur, size_t ncur,
			   unsigned resamples, double confidence, uint64_t seed,
			   struct ratio_change *out);

/* The same estimate for clusters nested in hosts (a host's windows share its
 * lasting differences: hardware, neighbours, configuration). base_host[i] /
 * cur_host[i] number cluster i's host, 0..n-1 of its side (any numbering).
 * The bootstrap is two-stage: each replicate draws the side's hosts with
 * replacement, then each drawn host's clusters with replacement from its own.
 * The studentizing variance of log R is the larger of the clusters' (as
 * ratio_change__estimate) and the hosts' (the delta-method variance with
 * each host's clusters summed) — in a balanced design n * max(MS_between,
 * MS_within) / sum(num)^2 of the one-way random-effects ANOVA, so host-to-host
 * variation enters the interval when the hosts differ by more than their
 * windows' noise, with the few-host uncertainty the replicates' spread of
 * that variance carries. A side of one host is its clusters' bootstrap.
 * Fills out->base_hosts and new_hosts. Returns 0, -EINVAL (as above, or a
 * host number out of range, or a NULL host array with clusters), -ENOMEM.
 * Cost: O(resamples * (nbase + ncur)). */
int ratio_change__estimate_nested(const struct cluster_obs *base, const uint32_t *base_host,
				  size_t nbase, const struct cluster_obs *cur,
				  const uint32_t *cur_host, size_t ncur, unsigned resamples,
				  double confidence, uint64_t seed, struct ratio_change *out);

/* The variance of log R = log(sum(num) / sum(den)) that studentizes the
 * intervals above: the delta-method one over the clusters (host NULL), or the
 * nested one (host as for ratio_change__estimate_nested). NaN with fewer than
 * 2 clusters that are not (0, 0) or a zero sum(num). Returns 0, -EINVAL,
 * -ENOMEM. */
int ratio__log_variance(const struct cluster_obs *obs, const uint32_t *host, size_t n,
			double *out);

enum verdict {
	VERDICT_INSUFFICIENT_DATA, /* too few clusters or too little den on a side */
	VERDICT_NO_CHANGE,         /* the interval allows no change, or the change is small */
	VERDICT_REGRESSION,        /* more expensive: lo > 0 and change >= min_effect */
	VERDICT_IMPROVEMENT,       /* cheaper: hi < 0 and change <= -min_effect */
};

struct verdict_opts {
	double min_effect;   /* smallest relative change worth reporting, e.g. 0.02 */
	size_t min_clusters; /* clusters with den > 0 needed on each side */
	double min_den;      /* sum(den) needed on each side */
};

/* Defaults for CPU per request (den = requests) and for share (den = samples). */
#define VERDICT_OPTS_PER_REQUEST { .min_effect = 0.02, .min_clusters = 10, .min_den = 30 }
#define VERDICT_OPTS_SHARE       { .min_effect = 0.02, .min_clusters = 10, .min_den = 200 }

/* Decides from an estimate: insufficient data when either side has fewer than
 * min_clusters clusters, less than min_den, or a ratio that is 0 or undefined
 * (nothing measured); else regression iff lo > 0 and change >= min_effect,
 * improvement iff hi < 0 and change <= -min_effect, else no change.
 * c NULL gives insufficient data; o NULL means VERDICT_OPTS_PER_REQUEST. */
enum verdict verdict__decide(const struct ratio_change *c, const struct verdict_opts *o);

/* Returns a constant string: "regression", "improvement", "no significant
 * change", "insufficient data" (or "unknown" for an invalid value). */
const char *verdict__name(enum verdict v);

#endif
