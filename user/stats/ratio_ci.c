// SPDX-License-Identifier: MIT
/* Cluster bootstrap-t interval for the relative change of a ratio estimator.
 *
 * On the log scale theta = log R_new - log R_base. Per side, the delta-method
 * variance of log R for R = sum(x) / sum(y) over n clusters is
 *     v = n / (n - 1) * sum((x_i - R y_i)^2) / sum(x)^2,
 * and se = sqrt(v_base + v_new). Each bootstrap replicate resamples the
 * clusters of both sides and records t* = (theta* - theta) / se*; the interval
 * is theta - t*_{1-a/2} se .. theta - t*_{a/2} se, mapped back by expm1.
 *
 * Every side is rescaled by its largest num and den first: ratios and log
 * variances do not change, and sums of squares cannot overflow for any finite
 * input.
 */
#include "ratio_ci.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "stats/rng.h"

/* Relative standard errors below this are rounding, not noise: clusters whose
 * ratios agree to ~12 digits give a zero-width interval. */
#define NEGLIGIBLE_LOG_SE 1e-12

struct scaled_cluster {
	double x; /* num / largest num of the side */
	double y; /* den / largest den of the side */
	double e; /* x - R y: residual from the side's scaled ratio R */
};

struct side {
	struct scaled_cluster *clusters; /* the side's clusters that are not (0, 0) */
	size_t n;                        /* entries in clusters */
	size_t counted;                  /* clusters with den > 0 */
	double den_total;                /* sum(den), unscaled */
	double num_scale;                /* largest num (1 when all are 0) */
	double den_scale;                /* largest den (1 when all are 0) */
	double sum_x;                    /* sum of scaled num */
	double sum_y;                    /* sum of scaled den */
	double log_ratio;                /* log(sum_x / sum_y): log R up to the scales */
	double log_var;                  /* delta-method variance of log R */
};

static int check_side(const struct cluster_obs *obs, size_t n)
{
	if (n > 0 && !obs)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		/* The negated form also rejects NaN. */
		if (!(obs[i].num >= 0 && obs[i].den >= 0) ||
		    isinf(obs[i].num) || isinf(obs[i].den))
			return -EINVAL;
	}
	return 0;
}

static double log_variance(double rss, size_t n, double sum_x)
{
	if (n < 2 || sum_x <= 0)
		return NAN;
	return rss * ((double)n / (double)(n - 1)) / (sum_x * sum_x);
}

/* Fills s from obs; s->clusters must have room for n entries. */
static void prepare_side(struct side *s, const struct cluster_obs *obs, size_t n)
{
	double num_max = 0, den_max = 0, rss = 0;

	s->counted = 0;
	s->den_total = 0;
	for (size_t i = 0; i < n; i++) {
		num_max = fmax(num_max, obs[i].num);
		den_max = fmax(den_max, obs[i].den);
		s->den_total += obs[i].den;
		s->counted += obs[i].den > 0;
	}
	s->num_scale = num_max > 0 ? num_max : 1;
	s->den_scale = den_max > 0 ? den_max : 1;

	s->n = 0;
	s->sum_x = 0;
	s->sum_y = 0;
	for (size_t i = 0; i < n; i++) {
		if (obs[i].num == 0 && obs[i].den == 0)
			continue;
		struct scaled_cluster *c = &s->clusters[s->n++];

		c->x = obs[i].num / s->num_scale;
		c->y = obs[i].den / s->den_scale;
		s->sum_x += c->x;
		s->sum_y += c->y;
	}

	double ratio = s->sum_x / s->sum_y;

	for (size_t i = 0; i < s->n; i++) {
		struct scaled_cluster *c = &s->clusters[i];

		c->e = c->x - ratio * c->y;
		rss += c->e * c->e;
	}
	s->log_ratio = log(s->sum_x) - log(s->sum_y);
	s->log_var = log_variance(rss, s->n, s->sum_x);
}

/* R in the caller's units; NaN when sum(den) is 0. */
static double side_ratio(const struct side *s)
{
	if (s->sum_y <= 0)
		return NAN;
	return (s->sum_x / s->sum_y) * (s->num_scale / s->den_scale);
}

/* log R in the caller's units; equal sides give bit-equal results. */
static double side_log_ratio(const struct side *s)
{
	return s->log_ratio + log(s->num_scale) - log(s->den_scale);
}

/* Draws one bootstrap replicate of a side: its log ratio shift from the
 * original (-inf when the replicate's numerator is 0) and its log variance. */
static void resample_side(const struct side *s, struct rng *r, double *log_shift,
			  double *log_var)
{
	double sum_x = 0, sum_y = 0, sum_ee = 0, sum_ey = 0, sum_yy = 0;

	for (size_t i = 0; i < s->n; i++) {
		const struct scaled_cluster *c = &s->clusters[rng__below(r, s->n)];

		sum_x += c->x;
		sum_y += c->y;
		sum_ee += c->e * c->e;
		sum_ey += c->e * c->y;
		sum_yy += c->y * c->y;
	}
	/* Residuals from the replicate's ratio R* = R + d, without a second pass:
	 * sum((e - d y)^2) = sum(e^2) - 2 d sum(e y) + d^2 sum(y^2). */
	double d = sum_x / sum_y - s->sum_x / s->sum_y;
	double rss = fmax(0, sum_ee - 2 * d * sum_ey + d * d * sum_yy);

	*log_shift = log(sum_x) - log(sum_y) - s->log_ratio;
	*log_var = log_variance(rss, s->n, sum_x);
}

/* Studentized replicate; NaN when it says nothing (both numerators 0). */
static double replicate_t(const struct side *base, const struct side *cur,
			  struct rng *r)
{
	double base_shift, base_var, cur_shift, cur_var;

	resample_side(base, r, &base_shift, &base_var);
	resample_side(cur, r, &cur_shift, &cur_var);

	double shift = cur_shift - base_shift;

	if (isnan(shift))
		return NAN;
	if (isinf(shift))
		return shift;
	double se = sqrt(base_var + cur_var);

	if (se > 0)
		return shift / se;
	return shift == 0 ? 0 : copysign(INFINITY, shift);
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The p-quantile of sorted[0..n) by the (n + 1) p rank, rounded and clamped;
 * no interpolation, so infinite replicates stay well defined. */
static double quantile(const double *sorted, size_t n, double p)
{
	double rank = nearbyint((double)(n + 1) * p);

	if (rank < 1)
		rank = 1;
	if (rank > (double)n)
		rank = (double)n;
	return sorted[(size_t)rank - 1];
}

/* Bootstrap-t bounds of theta; returns 0 or -ENOMEM. */
static int bootstrap_interval(const struct side *base, const struct side *cur,
			      double theta, unsigned resamples, double confidence,
			      uint64_t seed, double *lo, double *hi)
{
	double se = sqrt(base->log_var + cur->log_var);

	if (!(se > NEGLIGIBLE_LOG_SE)) {
		*lo = *hi = theta;
		return 0;
	}
	double *t = malloc(sizeof(*t) * resamples);

	if (!t)
		return -ENOMEM;

	struct rng r;
	size_t valid = 0;

	rng__seed(&r, seed);
	for (unsigned b = 0; b < resamples; b++) {
		double value = replicate_t(base, cur, &r);

		if (!isnan(value))
			t[valid++] = value;
	}
	if (valid == 0) {
		*lo = -INFINITY;
		*hi = INFINITY;
	} else {
		double alpha = 1 - confidence;

		if (valid > 1) /* qsort's base must not be NULL, even for 0 items */
			qsort(t, valid, sizeof(*t), compare_doubles);
		/* theta - t*se: the upper t quantile gives the lower bound. */
		*lo = theta - quantile(t, valid, 1 - alpha / 2) * se;
		*hi = theta - quantile(t, valid, alpha / 2) * se;
	}
	free(t);
	return 0;
}

int ratio_change__estimate(const struct cluster_obs *base, size_t nbase,
			   const struct cluster_obs *cur, size_t ncur,
			   unsigned resamples, double confidence, uint64_t seed,
			   struct ratio_change *out)
{
	if (!out || resamples == 0 || resamples > RATIO_CHANGE_MAX_RESAMPLES ||
	    !(confidence > 0 && confidence < 1))
		return -EINVAL;
	if (check_side(base, nbase) || check_side(cur, ncur))
		return -EINVAL;

	struct side sides[2] = { 0 };
	struct scaled_cluster *scratch = NULL;

	if (nbase + ncur > 0) {
		scratch = calloc(nbase + ncur, sizeof(*scratch));
		if (!scratch)
			return -ENOMEM;
	}
	sides[0].clusters = scratch;
	sides[1].clusters = scratch ? scratch + nbase : NULL;
	prepare_side(&sides[0], base, nbase);
	prepare_side(&sides[1], cur, ncur);

	struct ratio_change c = {
		.base = side_ratio(&sides[0]),
		.current = side_ratio(&sides[1]),
		.base_clusters = sides[0].counted,
		.new_clusters = sides[1].counted,
		.base_den = sides[0].den_total,
		.new_den = sides[1].den_total,
	};
	int err = 0;

	if (isnan(c.base) || isnan(c.current)) {
		c.change = c.lo = c.hi = NAN;
	} else if (c.base == 0 || c.current == 0) {
		/* No log scale: the estimate stands, the spread is unknown. */
		c.change = c.base == 0 ? (c.current == 0 ? 0 : INFINITY) : -1;
		c.lo = -1;
		c.hi = INFINITY;
	} else {
		double theta = side_log_ratio(&sides[1]) - side_log_ratio(&sides[0]);
		double lo = -INFINITY, hi = INFINITY;

		if (sides[0].n >= 2 && sides[1].n >= 2)
			err = bootstrap_interval(&sides[0], &sides[1], theta, resamples,
						 confidence, seed, &lo, &hi);
		c.change = expm1(theta);
		c.lo = expm1(lo);
		c.hi = expm1(hi);
	}
	free(scratch);
	if (err)
		return err;
	*out = c;
	return 0;
}

enum verdict verdict__decide(const struct ratio_change *c, const struct verdict_opts *o)
{
	static const struct verdict_opts defaults = VERDICT_OPTS_PER_REQUEST;

	if (!o)
		o = &defaults;
	if (!c || c->base_clusters < o->min_clusters || c->new_clusters < o->min_clusters ||
	    !(c->base_den >= o->min_den) || !(c->new_den >= o->min_den) ||
	    !(c->base > 0) || !(c->current > 0))
		return VERDICT_INSUFFICIENT_DATA;
	if (c->lo > 0 && c->change >= o->min_effect)
		return VERDICT_REGRESSION;
	if (c->hi < 0 && c->change <= -o->min_effect)
		return VERDICT_IMPROVEMENT;
	return VERDICT_NO_CHANGE;
}

const char *verdict__name(enum verdict v)
{
	switch (v) {
	case VERDICT_INSUFFICIENT_DATA:
		return "insufficient data";
	case VERDICT_NO_CHANGE:
		return "no significant change";
	case VERDICT_REGRESSION:
		return "regression";
	case VERDICT_IMPROVEMENT:
		return "improvement";
	}
	return "unknown";
}
