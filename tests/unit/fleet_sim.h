/* fleet_sim.h - a simulated fleet for calibrating `dynoprof diff` over many
 * agents (clusters: host x window, nested in hosts by default), shared by tests/unit/test_fleet_sim.c (the
 * calibration check) and tests/bench/fleet_sim.c (the hosts x minutes table).
 *
 * One endpoint, two sides (base: the fleet's hosts, new: the canaries': other
 * hosts). A cluster is one host's window: its requests R = cores * window_s /
 * cpu_per_req_s; their true CPU is R * cpu_per_req_s * exp(sigma_host * Z_host +
 * sigma_window * Z_window) * (1 + req_cv / sqrt(R) * Z) (times 1 + change on
 * the new side); what the agent measures is that CPU with the sampling error
 * of the endpoint's share of its process (share of the process's CPU): relative
 * sd sqrt((1 - share) / samples), samples = hz * CPU seconds. Each side's
 * clusters go to the statistic diff uses for --clusters (nested in hosts:
 * ratio_change__estimate_nested; host-window or host: ratio_change__estimate)
 * and verdict__decide. Pure functions of the seed. */
#ifndef DYNOPROF_TESTS_FLEET_SIM_H
#define DYNOPROF_TESTS_FLEET_SIM_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "stats/ratio_ci.h"
#include "stats/rng.h"

struct fleet_model {
	double hz;            /* agent samples per second per CPU (19 default, 99) */
	double window_s;      /* seconds per window (the agent's: 10) */
	double cores;         /* CPU the endpoint uses on one host, in cores */
	double share;         /* the endpoint's share of its processes' CPU */
	double cpu_per_req_s; /* mean CPU of one request, seconds */
	double req_cv;        /* spread of one request's CPU (sd / mean) */
	double sigma_window;  /* window-to-window variation of a host (log sd) */
	double sigma_host;    /* host-to-host variation (log sd), fixed per host */
};

struct fleet_plan {
	unsigned hosts;       /* hosts per side */
	unsigned windows;     /* windows per host */
	double change;        /* true relative change of the new side */
	double min_effect;    /* the verdict's minimum effect (--min-effect) */
	double confidence;    /* the interval's level (--confidence) */
	unsigned resamples;   /* bootstrap resamples */
	int clusters;         /* FLEET_NESTED (diff's default), FLEET_HOST_WINDOW or
			       * FLEET_HOST: diff's --clusters */
};

/* diff --clusters: nested (hosts, then their windows), host-window, host. */
enum { FLEET_NESTED = 0, FLEET_HOST_WINDOW = 1, FLEET_HOST = 2 };

/* Fills n = hosts * windows clusters of one side. */
static inline void fleet_sim__side(const struct fleet_model *m, const struct fleet_plan *p,
				   double factor, struct rng *r, struct cluster_obs *out)
{
	double requests = m->cores * m->window_s / m->cpu_per_req_s;
	for (unsigned h = 0; h < p->hosts; h++) {
		double host = exp(m->sigma_host * rng__normal(r));
		for (unsigned w = 0; w < p->windows; w++) {
			double cpu = requests * m->cpu_per_req_s * factor * host *
				     exp(m->sigma_window * rng__normal(r)) *
				     (1 + m->req_cv / sqrt(requests) * rng__normal(r));
			double samples = m->hz * cpu;
			double measured = cpu * (1 + sqrt((1 - m->share) / samples) * rng__normal(r));
			struct cluster_obs *c = &out[h * p->windows + w];
			c->num = measured > 0 ? measured : 0;
			c->den = requests;
		}
	}
}

/* One trial: the verdict diff would give (regression = 1). Returns -1 on
 * error. */
static inline int fleet_sim__trial(const struct fleet_model *m, const struct fleet_plan *p,
				   uint64_t seed)
{
	size_t n = (size_t)p->hosts * p->windows;
	struct cluster_obs *b = calloc(n, sizeof(*b)), *c = calloc(n, sizeof(*c));
	struct ratio_change rc;
	struct rng r;
	int out = -1;
	if (!b || !c)
		goto done;
	rng__seed(&r, seed);
	fleet_sim__side(m, p, 1.0, &r, b);
	fleet_sim__side(m, p, 1.0 + p->change, &r, c);
	size_t k = n;
	int err;
	if (p->clusters == FLEET_HOST) { /* as diff --clusters host: sum each host's windows */
		for (unsigned h = 0; h < p->hosts; h++) {
			struct cluster_obs sb = { 0, 0 }, sc = { 0, 0 };
			for (unsigned w = 0; w < p->windows; w++) {
				sb.num += b[h * p->windows + w].num;
				sb.den += b[h * p->windows + w].den;
				sc.num += c[h * p->windows + w].num;
				sc.den += c[h * p->windows + w].den;
			}
			b[h] = sb;
			c[h] = sc;
		}
		k = p->hosts;
	}
	if (p->clusters == FLEET_NESTED) {
		uint32_t *host = calloc(n, sizeof(*host));
		if (!host)
			goto done;
		for (size_t i = 0; i < n; i++)
			host[i] = (uint32_t)(i / p->windows);
		err = ratio_change__estimate_nested(b, host, n, c, host, n, p->resamples,
						    p->confidence, seed * 7 + 1, &rc);
		free(host);
	} else {
		err = ratio_change__estimate(b, k, c, k, p->resamples, p->confidence,
					     seed * 7 + 1, &rc);
	}
	if (err)
		goto done;
	struct verdict_opts vo = VERDICT_OPTS_PER_REQUEST;
	vo.min_effect = p->min_effect;
	if (p->clusters == FLEET_HOST)
		vo.min_clusters = 5; /* hosts a side the bootstrap-t is calibrated from */
	out = verdict__decide(&rc, &vo) == VERDICT_REGRESSION;
done:
	free(b);
	free(c);
	return out;
}

/* Share of `trials` trials flagged as a regression (negative on error). */
static inline double fleet_sim__rate(const struct fleet_model *m, const struct fleet_plan *p,
				     unsigned trials, uint64_t seed)
{
	unsigned hits = 0;
	for (unsigned t = 0; t < trials; t++) {
		int v = fleet_sim__trial(m, p, seed + t * 1000003ull);
		if (v < 0)
			return -1;
		hits += (unsigned)v;
	}
	return (double)hits / trials;
}

#endif
