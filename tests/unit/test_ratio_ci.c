// SPDX-License-Identifier: MIT
/* The change-detection statistics: estimates, edge cases, verdicts, and the
 * calibration of the cluster bootstrap on synthetic clustered streams.
 *
 * Synthetic streams (see draw_side): a cluster is one time window x process.
 * Each cluster gets a multiplicative random effect exp(N(-s^2/2, s^2)) (mean 1,
 * s = 0.05: slow and fast windows), and:
 * - CPU per request: requests ~ Poisson(200); each request's CPU is Gamma with
 *   CV 0.5 around 5 ms times the effect (the cluster total is one Gamma draw);
 * - share: endpoint samples ~ Poisson(4000 * 0.25 * effect), other samples ~
 *   Poisson(4000 * (1 - 0.25 * effect)) (a process sampled ~4000 times per
 *   window, the endpoint ~25% of it).
 * An injected change multiplies the mean CPU per request (or the share) of the
 * new side, so the true change is exact. The documented volume is 150 clusters
 * per side: 30 windows x 5 worker processes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>

#include <cmocka.h>

#include "stats/ratio_ci.h"
#include "stats/rng.h"

#define CALIBRATION_CLUSTERS 150 /* per side: 30 windows x 5 processes */
#define CALIBRATION_TRIALS 200
#define CALIBRATION_RESAMPLES 500

/* cmocka compares floats only; these are doubles. */
#define assert_close(actual, expected, tolerance) \
	assert_close_at((actual), (expected), (tolerance), __FILE__, __LINE__)

static void assert_close_at(double actual, double expected, double tolerance,
			    const char *file, int line)
{
	if (!(fabs(actual - expected) <= tolerance)) {
		print_error("%.17g is not within %g of %.17g\n", actual, tolerance, expected);
		_fail(file, line);
	}
}

/* ---- synthetic streams ---- */

/* Gamma(shape >= 1, scale 1) by Marsaglia and Tsang. */
static double gamma_draw(struct rng *r, double shape)
{
	double d = shape - 1.0 / 3, c = 1 / sqrt(9 * d);

	for (;;) {
		double x = rng__normal(r), v = 1 + c * x;

		if (v <= 0)
			continue;
		v = v * v * v;
		if (log(rng__uniform(r)) < 0.5 * x * x + d - d * v + d * log(v))
			return d * v;
	}
}

/* Poisson: multiplication below a mean of 10, else PTRS (Hormann 1993). */
static double poisson_draw(struct rng *r, double mean)
{
	if (mean < 10) {
		double limit = exp(-mean), product = rng__uniform(r), k = 0;

		while (product > limit) {
			product *= rng__uniform(r);
			k++;
		}
		return k;
	}
	double b = 0.931 + 2.53 * sqrt(mean), a = -0.059 + 0.02483 * b;
	double inv_alpha = 1.1239 + 1.1328 / (b - 3.4), vr = 0.9277 - 3.6224 / (b - 2);

	for (;;) {
		double u = rng__uniform(r) - 0.5, v = rng__uniform(r);
		double us = 0.5 - fabs(u);
		double k = floor((2 * a / us + b) * u + mean + 0.43);

		if (us >= 0.07 && v <= vr)
			return k;
		if (k < 0 || (us < 0.013 && v > us))
			continue;
		if (log(v) + log(inv_alpha) - log(a / (us * us) + b) <=
		    -mean + k * log(mean) - lgamma(k + 1))
			return k;
	}
}

struct stream {
	double cluster_sigma; /* sd of the per-cluster log effect */
	double den_mean;      /* mean requests (or all samples) per cluster */
	double request_cv;    /* CV of one request's CPU (CPU per request streams) */
	double share;         /* endpoint share of samples; 0 for CPU per request */
};

static const struct stream per_request_stream = {
	.cluster_sigma = 0.05, .den_mean = 200, .request_cv = 0.5,
};
static const struct stream share_stream = {
	.cluster_sigma = 0.05, .den_mean = 4000, .share = 0.25,
};

/* Fills n clusters whose true ratio is factor times the stream's base ratio. */
static void draw_side(struct rng *r, const struct stream *s, double factor,
		      struct cluster_obs *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double sigma = s->cluster_sigma;
		double effect = exp(sigma * rng__normal(r) - sigma * sigma / 2);

		if (s->share > 0) {
			double q = s->share * factor * effect;

			out[i].num = poisson_draw(r, s->den_mean * q);
			out[i].den = out[i].num + poisson_draw(r, s->den_mean * (1 - q));
		} else {
			double requests = poisson_draw(r, s->den_mean);
			double shape = 1 / (s->request_cv * s->request_cv);

			out[i].den = requests;
			out[i].num = requests > 0 ?
				5e6 * factor * effect * gamma_draw(r, requests * shape) / shape : 0;
		}
	}
}

struct calibration {
	unsigned trials;       /* comparisons run */
	unsigned regressions;  /* verdicts "regression" */
	unsigned improvements; /* verdicts "improvement" */
	unsigned covered;      /* intervals containing the true change */
};

/* Runs trials base-vs-new comparisons with the new side's ratio multiplied by
 * factor, clusters per side, and tallies verdicts and coverage. */
static struct calibration calibrate(const struct stream *s, size_t clusters, double factor,
				    unsigned trials, const struct verdict_opts *opts,
				    uint64_t seed)
{
	struct cluster_obs *base = calloc(clusters, sizeof(*base));
	struct cluster_obs *cur = calloc(clusters, sizeof(*cur));
	struct calibration cal = { .trials = trials };
	struct rng r;

	assert_non_null(base);
	assert_non_null(cur);
	rng__seed(&r, seed);
	for (unsigned t = 0; t < trials; t++) {
		struct ratio_change c;

		draw_side(&r, s, 1, base, clusters);
		draw_side(&r, s, factor, cur, clusters);
		assert_int_equal(ratio_change__estimate(base, clusters, cur, clusters,
							CALIBRATION_RESAMPLES, 0.95,
							seed + t, &c), 0);
		enum verdict v = verdict__decide(&c, opts);

		cal.regressions += v == VERDICT_REGRESSION;
		cal.improvements += v == VERDICT_IMPROVEMENT;
		cal.covered += c.lo <= factor - 1 && factor - 1 <= c.hi;
	}
	free(base);
	free(cur);
	return cal;
}

static double percent(unsigned count, unsigned trials)
{
	return 100.0 * count / trials;
}

/* A-vs-A, +5% and -5% at the documented volume: silent on noise, finds 5%,
 * and the 95% interval covers the truth ~95% of the time. */
static void check_calibration(const struct stream *s, const struct verdict_opts *opts,
			      const char *metric, uint64_t seed)
{
	unsigned n = CALIBRATION_TRIALS;
	struct calibration same = calibrate(s, CALIBRATION_CLUSTERS, 1.00, n, opts, seed);
	struct calibration worse = calibrate(s, CALIBRATION_CLUSTERS, 1.05, n, opts, seed + 1000);
	struct calibration better = calibrate(s, CALIBRATION_CLUSTERS, 0.95, n / 2, opts,
					      seed + 2000);
	unsigned covered = same.covered + worse.covered + better.covered;
	unsigned total = same.trials + worse.trials + better.trials;

	print_message("%s, %d clusters/side: A/A false regression %.1f%%, false improvement "
		      "%.1f%%; +5%% found %.1f%%; -5%% found %.1f%%; 95%% CI coverage %.1f%%\n",
		      metric, CALIBRATION_CLUSTERS, percent(same.regressions, n),
		      percent(same.improvements, n), percent(worse.regressions, n),
		      percent(better.improvements, better.trials), percent(covered, total));
	assert_true(percent(same.regressions, n) <= 1.0);
	assert_true(percent(same.improvements, n) <= 1.0);
	assert_true(percent(worse.regressions, n) >= 95.0);
	assert_int_equal(worse.improvements, 0);
	assert_true(percent(better.improvements, better.trials) >= 95.0);
	assert_int_equal(better.regressions, 0);
	assert_true(percent(covered, total) >= 91.0 && percent(covered, total) <= 98.5);
}

static void test_calibration_cpu_per_request(void **state)
{
	(void)state;
	struct verdict_opts opts = VERDICT_OPTS_PER_REQUEST;

	check_calibration(&per_request_stream, &opts, "CPU per request", 101);
}

static void test_calibration_share(void **state)
{
	(void)state;
	struct verdict_opts opts = VERDICT_OPTS_SHARE;

	check_calibration(&share_stream, &opts, "share", 202);
}

/* Few clusters and noisier windows: the studentized interval keeps its
 * coverage where a percentile interval would fall to ~92%. */
static void test_calibration_few_clusters(void **state)
{
	(void)state;
	const struct stream noisy = { .cluster_sigma = 0.1, .den_mean = 200, .request_cv = 0.5 };
	struct verdict_opts opts = VERDICT_OPTS_PER_REQUEST;
	struct calibration same = calibrate(&noisy, 10, 1.00, CALIBRATION_TRIALS, &opts, 303);
	struct calibration worse = calibrate(&noisy, 10, 1.05, CALIBRATION_TRIALS, &opts, 404);
	unsigned covered = same.covered + worse.covered;
	unsigned total = same.trials + worse.trials;

	print_message("10 clusters/side, sigma 0.1: 95%% CI coverage %.1f%%, "
		      "A/A false regression %.1f%%\n", percent(covered, total),
		      percent(same.regressions, same.trials));
	assert_true(percent(covered, total) >= 91.0 && percent(covered, total) <= 98.5);
	/* Nothing but the interval guards here: about the nominal 2.5%. */
	assert_true(percent(same.regressions, same.trials) <= 5.0);
}

/* ---- estimates ---- */

static void test_estimate_simple(void **state)
{
	(void)state;
	/* Base: 2 ms per request; new: 2.2 ms (+10%), with some spread. */
	const struct cluster_obs base[] = {
		{ 190e6, 100 }, { 420e6, 200 }, { 310e6, 150 }, { 80e6, 50 }, { 200e6, 100 },
		{ 410e6, 200 }, { 290e6, 150 }, { 120e6, 50 }, { 210e6, 100 }, { 370e6, 200 },
	};
	const struct cluster_obs cur[] = {
		{ 225e6, 100 }, { 430e6, 200 }, { 330e6, 150 }, { 110e6, 50 }, { 215e6, 100 },
		{ 450e6, 200 }, { 345e6, 150 }, { 115e6, 50 }, { 230e6, 100 }, { 450e6, 200 },
	};
	struct ratio_change c;

	assert_int_equal(ratio_change__estimate(base, 10, cur, 10, 2000, 0.95, 42, &c), 0);
	assert_close(c.base, 2600e6 / 1300, 1e-6);
	assert_close(c.current, 2900e6 / 1300, 1e-6);
	assert_close(c.change, 2900.0 / 2600 - 1, 1e-12);
	assert_int_equal(c.base_clusters, 10);
	assert_int_equal(c.new_clusters, 10);
	assert_close(c.base_den, 1300, 0);
	assert_close(c.new_den, 1300, 0);
	assert_true(c.lo > 0 && c.lo < c.change);
	assert_true(c.hi > c.change && c.hi < 0.25);
	assert_int_equal(verdict__decide(&c, NULL), VERDICT_REGRESSION);

	/* Swapped sides: an improvement of the reciprocal size. */
	struct ratio_change back;

	assert_int_equal(ratio_change__estimate(cur, 10, base, 10, 2000, 0.95, 42, &back), 0);
	assert_close(back.change, 2600.0 / 2900 - 1, 1e-12);
	assert_true(back.hi < 0);
	assert_int_equal(verdict__decide(&back, NULL), VERDICT_IMPROVEMENT);

	/* A wider interval at a higher confidence. */
	struct ratio_change wide;

	assert_int_equal(ratio_change__estimate(base, 10, cur, 10, 2000, 0.99, 42, &wide), 0);
	assert_true(wide.lo < c.lo && wide.hi > c.hi);
}

static void test_deterministic_for_seed(void **state)
{
	(void)state;
	struct cluster_obs base[40], cur[40];
	struct ratio_change a, b;
	struct rng r;

	rng__seed(&r, 9);
	draw_side(&r, &per_request_stream, 1, base, 40);
	draw_side(&r, &per_request_stream, 1.03, cur, 40);
	assert_int_equal(ratio_change__estimate(base, 40, cur, 40, 500, 0.95, 7, &a), 0);
	assert_int_equal(ratio_change__estimate(base, 40, cur, 40, 500, 0.95, 7, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	/* Another seed moves the bounds a little, never the estimate. */
	assert_int_equal(ratio_change__estimate(base, 40, cur, 40, 500, 0.95, 8, &b), 0);
	assert_true(a.change == b.change);
	assert_close(a.lo, b.lo, 0.01);
	assert_close(a.hi, b.hi, 0.01);
}

static void test_empty_sides(void **state)
{
	(void)state;
	const struct cluster_obs one[] = { { 10, 5 }, { 12, 6 } };
	struct ratio_change c;

	assert_int_equal(ratio_change__estimate(NULL, 0, one, 2, 100, 0.95, 1, &c), 0);
	assert_true(isnan(c.base));
	assert_close(c.current, 2, 1e-12);
	assert_true(isnan(c.change) && isnan(c.lo) && isnan(c.hi));
	assert_int_equal(c.base_clusters, 0);
	assert_int_equal(c.new_clusters, 2);
	assert_int_equal(verdict__decide(&c, NULL), VERDICT_INSUFFICIENT_DATA);

	assert_int_equal(ratio_change__estimate(NULL, 0, NULL, 0, 100, 0.95, 1, &c), 0);
	assert_int_equal(c.base_clusters + c.new_clusters, 0);
	assert_int_equal(verdict__decide(&c, NULL), VERDICT_INSUFFICIENT_DATA);
}

static void test_zero_denominators(void **state)
{
	(void)state;
	/* All-zero clusters are ignored; CPU in a window without finished requests
	 * counts in the ratio but not as a cluster. */
	const struct cluster_obs base[] = { { 0, 0 }, { 100, 10 }, { 0, 0 }, { 110, 10 },
					    { 20, 0 }, { 90, 10 } };
	const struct cluster_obs no_requests[] = { { 100, 0 }, { 120, 0 } };
	struct ratio_change c;

	assert_int_equal(ratio_change__estimate(base, 6, base, 6, 200, 0.95, 1, &c), 0);
	assert_int_equal(c.base_clusters, 3);
	assert_close(c.base, 320.0 / 30, 1e-12);
	assert_close(c.base_den, 30, 0);
	assert_close(c.change, 0, 0);

	assert_int_equal(ratio_change__estimate(base, 6, no_requests, 2, 200, 0.95, 1, &c), 0);
	assert_int_equal(c.new_clusters, 0);
	assert_true(isnan(c.current) && isnan(c.change));
	assert_int_equal(verdict__decide(&c, &(struct verdict_opts){ 0 }),
			 VERDICT_INSUFFICIENT_DATA);
}

static void test_zero_numerator(void **state)
{
	(void)state;
	/* An endpoint never sampled before the deploy: no ratio to compare with. */
	const struct cluster_obs never[] = { { 0, 500 }, { 0, 400 }, { 0, 600 } };
	const struct cluster_obs some[] = { { 30, 500 }, { 25, 400 }, { 40, 600 } };
	struct ratio_change c;
	struct verdict_opts opts = { .min_effect = 0.02, .min_clusters = 3, .min_den = 200 };

	assert_int_equal(ratio_change__estimate(never, 3, some, 3, 200, 0.95, 1, &c), 0);
	assert_true(c.base == 0 && isinf(c.change) && c.change > 0);
	assert_true(c.lo == -1 && isinf(c.hi));
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_INSUFFICIENT_DATA);

	assert_int_equal(ratio_change__estimate(some, 3, never, 3, 200, 0.95, 1, &c), 0);
	assert_true(c.current == 0 && c.change == -1);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_INSUFFICIENT_DATA);

	/* Sparse: most clusters have no endpoint sample; bounds stay ordered. */
	const struct cluster_obs sparse[] = { { 0, 500 }, { 1, 400 }, { 0, 600 }, { 0, 450 } };

	assert_int_equal(ratio_change__estimate(sparse, 4, some, 3, 500, 0.95, 1, &c), 0);
	assert_true(c.change > 10);
	assert_true(c.lo >= -1 && c.lo <= c.change && c.change <= c.hi);
}

static void test_one_cluster(void **state)
{
	(void)state;
	/* One cluster per side says nothing about the spread. */
	const struct cluster_obs base[] = { { 100, 10 } };
	const struct cluster_obs cur[] = { { 150, 10 } };
	struct ratio_change c;
	struct verdict_opts opts = { .min_effect = 0.02, .min_clusters = 1, .min_den = 1 };

	assert_int_equal(ratio_change__estimate(base, 1, cur, 1, 100, 0.95, 1, &c), 0);
	assert_close(c.change, 0.5, 1e-12);
	assert_true(c.lo == -1 && isinf(c.hi));
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_NO_CHANGE);
}

static void test_identical_data(void **state)
{
	(void)state;
	struct cluster_obs noisy[50];
	const struct cluster_obs constant[] = { { 300, 100 }, { 600, 200 }, { 30, 10 },
						{ 150, 50 }, { 3e6, 1e6 } };
	struct ratio_change c;
	struct verdict_opts opts = { .min_effect = 0.02, .min_clusters = 5, .min_den = 30 };
	struct rng r;

	rng__seed(&r, 5);
	draw_side(&r, &per_request_stream, 1, noisy, 50);
	assert_int_equal(ratio_change__estimate(noisy, 50, noisy, 50, 1000, 0.95, 1, &c), 0);
	assert_close(c.change, 0, 0);
	assert_true(c.lo < 0 && c.hi > 0);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_NO_CHANGE);

	/* Every cluster at exactly 3 per unit: no noise, a zero-width interval. */
	assert_int_equal(ratio_change__estimate(constant, 5, constant, 5, 1000, 0.95, 1, &c), 0);
	assert_close(c.base, 3, 1e-12);
	assert_close(c.change, 0, 1e-12);
	assert_close(c.lo, 0, 1e-12);
	assert_close(c.hi, 0, 1e-12);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_NO_CHANGE);
}

static void test_huge_values(void **state)
{
	(void)state;
	struct cluster_obs base[30], cur[30], big_base[30], big_cur[30];
	struct ratio_change small, big;
	struct rng r;

	rng__seed(&r, 11);
	draw_side(&r, &per_request_stream, 1, base, 30);
	draw_side(&r, &per_request_stream, 1.1, cur, 30);
	/* Sums of these squares would overflow a double without rescaling. */
	for (size_t i = 0; i < 30; i++) {
		big_base[i] = (struct cluster_obs){ base[i].num * 1e295, base[i].den * 1e300 };
		big_cur[i] = (struct cluster_obs){ cur[i].num * 1e295, cur[i].den * 1e300 };
	}
	assert_int_equal(ratio_change__estimate(base, 30, cur, 30, 500, 0.95, 3, &small), 0);
	assert_int_equal(ratio_change__estimate(big_base, 30, big_cur, 30, 500, 0.95, 3, &big), 0);
	assert_close(big.base, small.base * 1e-5, small.base * 1e-14);
	assert_close(big.change, small.change, 1e-12);
	assert_close(big.lo, small.lo, 1e-9);
	assert_close(big.hi, small.hi, 1e-9);
	assert_true(isfinite(big.lo) && isfinite(big.hi) && big.lo < big.hi);

	/* Nanoseconds near UINT64_MAX per cluster. */
	const struct cluster_obs ns[] = { { 1.8e19, 1 }, { 1.7e19, 1 }, { 1.9e19, 1 } };

	assert_int_equal(ratio_change__estimate(ns, 3, ns, 3, 200, 0.95, 3, &big), 0);
	assert_close(big.base, 1.8e19, 1e6);
	assert_true(big.lo < 0 && big.hi > 0);
}

static void test_invalid_arguments(void **state)
{
	(void)state;
	const struct cluster_obs ok[] = { { 1, 1 }, { 2, 2 } };
	const struct cluster_obs negative[] = { { 1, 1 }, { -2, 2 } };
	const struct cluster_obs not_a_number[] = { { 1, NAN } };
	const struct cluster_obs infinite[] = { { INFINITY, 1 } };
	struct ratio_change c;

	assert_int_equal(ratio_change__estimate(ok, 2, ok, 2, 100, 0.95, 1, NULL), -EINVAL);
	assert_int_equal(ratio_change__estimate(NULL, 2, ok, 2, 100, 0.95, 1, &c), -EINVAL);
	assert_int_equal(ratio_change__estimate(ok, 2, negative, 2, 100, 0.95, 1, &c), -EINVAL);
	assert_int_equal(ratio_change__estimate(not_a_number, 1, ok, 2, 100, 0.95, 1, &c),
			 -EINVAL);
	assert_int_equal(ratio_change__estimate(ok, 2, infinite, 1, 100, 0.95, 1, &c), -EINVAL);
	assert_int_equal(ratio_change__estimate(ok, 2, ok, 2, 0, 0.95, 1, &c), -EINVAL);
	assert_int_equal(ratio_change__estimate(ok, 2, ok, 2, RATIO_CHANGE_MAX_RESAMPLES + 1,
						0.95, 1, &c), -EINVAL);
	assert_int_equal(ratio_change__estimate(ok, 2, ok, 2, 100, 0, 1, &c), -EINVAL);
	assert_int_equal(ratio_change__estimate(ok, 2, ok, 2, 100, 1, 1, &c), -EINVAL);
	assert_int_equal(ratio_change__estimate(ok, 2, ok, 2, 100, NAN, 1, &c), -EINVAL);
}

/* ---- verdicts ---- */

static struct ratio_change enough_data(double change, double lo, double hi)
{
	return (struct ratio_change){
		.base = 1, .current = 1 + change, .change = change, .lo = lo, .hi = hi,
		.base_clusters = 30, .new_clusters = 30, .base_den = 6000, .new_den = 6000,
	};
}

static void test_verdict_rules(void **state)
{
	(void)state;
	const struct verdict_opts opts = { .min_effect = 0.02, .min_clusters = 10,
					   .min_den = 30 };
	struct ratio_change c = enough_data(0.041, 0.028, 0.053);

	assert_int_equal(verdict__decide(&c, &opts), VERDICT_REGRESSION);
	c = enough_data(-0.041, -0.053, -0.028);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_IMPROVEMENT);
	/* Significant but below the minimum effect: not worth a red line. */
	c = enough_data(0.015, 0.005, 0.025);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_NO_CHANGE);
	c = enough_data(-0.015, -0.025, -0.005);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_NO_CHANGE);
	/* Large but the interval allows no change. */
	c = enough_data(0.3, -0.01, 0.6);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_NO_CHANGE);
	c = enough_data(-0.3, -0.6, 0);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_NO_CHANGE);
	/* Exactly at the minimum effect counts. */
	c = enough_data(0.02, 0.001, 0.04);
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_REGRESSION);

	/* Too little data on either side. */
	c = enough_data(0.2, 0.1, 0.3);
	c.base_clusters = 9;
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_INSUFFICIENT_DATA);
	c = enough_data(0.2, 0.1, 0.3);
	c.new_clusters = 9;
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_INSUFFICIENT_DATA);
	c = enough_data(0.2, 0.1, 0.3);
	c.base_den = 29;
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_INSUFFICIENT_DATA);
	c = enough_data(0.2, 0.1, 0.3);
	c.new_den = 29;
	assert_int_equal(verdict__decide(&c, &opts), VERDICT_INSUFFICIENT_DATA);
	assert_int_equal(verdict__decide(NULL, &opts), VERDICT_INSUFFICIENT_DATA);

	/* NULL options are the CPU-per-request defaults. */
	c = enough_data(0.041, 0.028, 0.053);
	assert_int_equal(verdict__decide(&c, NULL), VERDICT_REGRESSION);
	c.base_den = 20;
	assert_int_equal(verdict__decide(&c, NULL), VERDICT_INSUFFICIENT_DATA);
}

static void test_verdict_names(void **state)
{
	(void)state;
	assert_string_equal(verdict__name(VERDICT_REGRESSION), "regression");
	assert_string_equal(verdict__name(VERDICT_IMPROVEMENT), "improvement");
	assert_string_equal(verdict__name(VERDICT_NO_CHANGE), "no significant change");
	assert_string_equal(verdict__name(VERDICT_INSUFFICIENT_DATA), "insufficient data");
	assert_string_equal(verdict__name((enum verdict)42), "unknown");
}

/* ---- generator ---- */

static void test_rng(void **state)
{
	(void)state;
	struct rng a, b;
	unsigned counts[6] = { 0 };
	double sum = 0, sum_sq = 0, uniform_min = 1, uniform_max = 0;
	const int n = 60000;

	rng__seed(&a, 123);
	rng__seed(&b, 123);
	for (int i = 0; i < 100; i++)
		assert_true(rng__next(&a) == rng__next(&b));
	rng__seed(&b, 124);
	assert_true(rng__next(&a) != rng__next(&b));

	assert_true(rng__below(&a, 0) == 0);
	assert_true(rng__below(&a, 1) == 0);
	for (int i = 0; i < n; i++) {
		uint64_t k = rng__below(&a, 6);
		double u = rng__uniform(&a), z = rng__normal(&a);

		assert_true(k < 6);
		counts[k]++;
		uniform_min = fmin(uniform_min, u);
		uniform_max = fmax(uniform_max, u);
		assert_true(u >= 0 && u < 1);
		sum += z;
		sum_sq += z * z;
	}
	for (int k = 0; k < 6; k++)
		assert_true(counts[k] > 9500 && counts[k] < 10500);
	assert_true(uniform_min < 0.001 && uniform_max > 0.999);
	assert_close(sum / n, 0, 0.02);
	assert_close(sum_sq / n, 1, 0.03);
}

/* ---- clusters nested in hosts ---- */

static void test_log_variance_known(void **state)
{
	(void)state;
	double v;
	/* Windows: R = 2, residuals -1 and 1: 2 / (2 - 1) * 2 / 4^2. */
	const struct cluster_obs two[] = { { 1, 1 }, { 3, 1 } };

	assert_int_equal(ratio__log_variance(two, NULL, 2, &v), 0);
	assert_close(v, 0.25, 1e-15);

	/* Hosts A (ratio 1, 1) and B (3, 3): no spread within a host. Windows
	 * alone: 4 / 3 * 4 / 8^2; hosts' residual sums -2 and 2: 2 / 1 * 8 / 8^2,
	 * the larger. */
	const struct cluster_obs split[] = { { 1, 1 }, { 1, 1 }, { 3, 1 }, { 3, 1 } };
	const uint32_t ab[] = { 0, 0, 1, 1 }, each[] = { 0, 1, 2, 3 }, one[] = { 0, 0, 0, 0 };

	assert_int_equal(ratio__log_variance(split, NULL, 4, &v), 0);
	assert_close(v, 4.0 / 3 * 4 / 64, 1e-15);
	assert_int_equal(ratio__log_variance(split, ab, 4, &v), 0);
	assert_close(v, 0.25, 1e-15);
	/* Each window its own host, or one host: the windows' variance. */
	assert_int_equal(ratio__log_variance(split, each, 4, &v), 0);
	assert_close(v, 4.0 / 3 * 4 / 64, 1e-15);
	assert_int_equal(ratio__log_variance(split, one, 4, &v), 0);
	assert_close(v, 4.0 / 3 * 4 / 64, 1e-15);

	/* Hosts that agree ((1, 3) each): host sums 0, the windows' variance
	 * stands. Host numbers need not be dense or in order. */
	const struct cluster_obs same[] = { { 1, 1 }, { 3, 1 }, { 3, 1 }, { 1, 1 } };
	const uint32_t sparse[] = { 3, 3, 1, 1 };

	assert_int_equal(ratio__log_variance(same, sparse, 4, &v), 0);
	assert_close(v, 4.0 / 3 * 4 / 64, 1e-15);

	/* Unbalanced: A = (1, 1), (2, 1); B = (6, 2). R = 9 / 4; residuals
	 * -1.25, -0.25 | 1.5: windows 3 / 2 * 3.875 / 81; hosts -1.5 | 1.5:
	 * 2 * 4.5 / 81, the larger. */
	const struct cluster_obs uneven[] = { { 1, 1 }, { 6, 2 }, { 2, 1 } };
	const uint32_t uh[] = { 0, 1, 0 };

	assert_int_equal(ratio__log_variance(uneven, uh, 3, &v), 0);
	assert_close(v, 9.0 / 81, 1e-15);
	assert_int_equal(ratio__log_variance(uneven, NULL, 3, &v), 0);
	assert_close(v, 1.5 * 3.875 / 81, 1e-15);

	/* Too little to say: NaN, not an error. */
	assert_int_equal(ratio__log_variance(two, each, 1, &v), 0);
	assert_true(isnan(v));
	assert_int_equal(ratio__log_variance(two, NULL, 2, NULL), -EINVAL);
	const uint32_t bad[] = { 0, 2 };
	assert_int_equal(ratio__log_variance(two, bad, 2, &v), -EINVAL);
}

static void test_nested_one_host_is_windows(void **state)
{
	(void)state;
	struct cluster_obs base[40], cur[30];
	uint32_t bh[40] = { 0 }, ch[30];
	struct ratio_change flat, nested;
	struct rng r;

	rng__seed(&r, 3);
	draw_side(&r, &per_request_stream, 1, base, 40);
	draw_side(&r, &per_request_stream, 1.05, cur, 30);
	for (size_t i = 0; i < 30; i++)
		ch[i] = 7;
	/* One host a side: exactly the windows' bootstrap (same draws). */
	assert_int_equal(ratio_change__estimate(base, 40, cur, 30, 500, 0.95, 5, &flat), 0);
	assert_int_equal(ratio_change__estimate_nested(base, bh, 40, cur, ch, 30, 500, 0.95, 5,
						       &nested), 0);
	assert_int_equal(nested.base_hosts, 1);
	assert_int_equal(nested.new_hosts, 1);
	assert_int_equal(flat.base_hosts, 0);
	nested.base_hosts = nested.new_hosts = 0;
	assert_memory_equal(&flat, &nested, sizeof(flat));
}

static void test_nested_lasting_host_differences(void **state)
{
	(void)state;
	/* 3 hosts a side, 20 windows each, windows varying by 0.5% around their
	 * host's level; the hosts' levels differ by 3% (1.0, 1.03, 0.97 on both
	 * sides, the new side 2% dearer). Windows as independent clusters see a
	 * narrow interval; nested in hosts, the hosts' spread is in it. */
	struct cluster_obs base[60], cur[60];
	uint32_t host[60];
	const double level[] = { 1.0, 1.03, 0.97 };
	struct rng r;

	rng__seed(&r, 17);
	for (size_t i = 0; i < 60; i++) {
		host[i] = (uint32_t)(i / 20);
		base[i] = (struct cluster_obs){ 100 * level[i / 20] * (1 + 0.005 * rng__normal(&r)),
						100 };
		/* The new side's hosts in another order: other machines. */
		cur[i] = (struct cluster_obs){
			102 * level[2 - i / 20] * (1 + 0.005 * rng__normal(&r)), 100 };
	}
	struct ratio_change flat, nested;

	assert_int_equal(ratio_change__estimate(base, 60, cur, 60, 2000, 0.95, 1, &flat), 0);
	assert_int_equal(ratio_change__estimate_nested(base, host, 60, cur, host, 60, 2000, 0.95,
						       1, &nested), 0);
	assert_close(nested.change, flat.change, 0);
	assert_int_equal(nested.base_hosts, 3);
	assert_int_equal(nested.new_hosts, 3);
	assert_int_equal(nested.base_clusters, 60);
	/* The windows' interval excludes 0; the hosts' does not, and is wider. */
	print_message("hosts 3%% apart: windows [%+.4f, %+.4f], nested [%+.4f, %+.4f]\n",
		      flat.lo, flat.hi, nested.lo, nested.hi);
	assert_true(flat.lo > 0);
	assert_true(nested.lo < 0 && nested.hi > flat.hi);
	assert_true(nested.hi - nested.lo > 3 * (flat.hi - flat.lo));
	assert_int_equal(verdict__decide(&nested, NULL), VERDICT_NO_CHANGE);

	/* Hosts alike (the same level): about the windows' interval. */
	for (size_t i = 0; i < 60; i++) {
		base[i].num = 100 * (1 + 0.005 * rng__normal(&r));
		cur[i].num = 102 * (1 + 0.005 * rng__normal(&r));
	}
	assert_int_equal(ratio_change__estimate(base, 60, cur, 60, 2000, 0.95, 1, &flat), 0);
	assert_int_equal(ratio_change__estimate_nested(base, host, 60, cur, host, 60, 2000, 0.95,
						       1, &nested), 0);
	print_message("hosts alike: windows [%+.4f, %+.4f], nested [%+.4f, %+.4f]\n",
		      flat.lo, flat.hi, nested.lo, nested.hi);
	assert_true(nested.lo > 0);
	assert_true(nested.hi - nested.lo < 1.6 * (flat.hi - flat.lo));
	const struct verdict_opts one_percent = { .min_effect = 0.01, .min_clusters = 10,
						  .min_den = 30 };

	assert_int_equal(verdict__decide(&nested, &one_percent), VERDICT_REGRESSION);

	/* Bad host numbers and arrays. */
	host[5] = 60;
	assert_int_equal(ratio_change__estimate_nested(base, host, 60, cur, host, 60, 100, 0.95,
						       1, &nested), -EINVAL);
	assert_int_equal(ratio_change__estimate_nested(base, NULL, 60, cur, host, 60, 100, 0.95,
						       1, &nested), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rng),
		cmocka_unit_test(test_estimate_simple),
		cmocka_unit_test(test_deterministic_for_seed),
		cmocka_unit_test(test_empty_sides),
		cmocka_unit_test(test_zero_denominators),
		cmocka_unit_test(test_zero_numerator),
		cmocka_unit_test(test_one_cluster),
		cmocka_unit_test(test_identical_data),
		cmocka_unit_test(test_huge_values),
		cmocka_unit_test(test_invalid_arguments),
		cmocka_unit_test(test_verdict_rules),
		cmocka_unit_test(test_verdict_names),
		cmocka_unit_test(test_log_variance_known),
		cmocka_unit_test(test_nested_one_host_is_windows),
		cmocka_unit_test(test_nested_lasting_host_differences),
		cmocka_unit_test(test_calibration_cpu_per_request),
		cmocka_unit_test(test_calibration_share),
		cmocka_unit_test(test_calibration_few_clusters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
