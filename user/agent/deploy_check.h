/* deploy_check.h - automatic deploy checks in the agent: when a service's
 * processes switch commit (a commit tag not seen before for that service),
 * compare the endpoints' CPU per request (or CPU share) of the old commit
 * with the new one over check_window seconds, with confidence intervals
 * (stats/ratio_ci.h; clusters = stored windows), and keep the verdicts.
 *
 * Two situations are told apart: a rolling switch (the old commit stops)
 * compares the last check_window of the old commit before the switch with the
 * first check_window of the new one; a canary (both commits still run)
 * compares the same time range on both sides. Results are bounded (the last
 * DEPLOY_CHECK_MAX_RESULTS) and exported as Prometheus gauges
 * dynoprof_regression_ratio{service,endpoint,base,new} (new/base cost) with
 * _lower and _upper bounds.
 */
#ifndef DYNOPROF_DEPLOY_CHECK_H
#define DYNOPROF_DEPLOY_CHECK_H

#include <stdint.h>

#include "agent/metrics.h"
#include "agent/store.h"
#include "util/strbuf.h"

#define DEPLOY_CHECK_MAX_RESULTS 1000

struct deploy_check_opts {
	double check_window_s;   /* seconds compared on each side (default 300) */
	double min_effect;       /* verdict threshold (default 0.02) */
	double confidence;       /* interval level, in (0, 1) (default 0.95) */
	double forget_s;         /* a commit unseen this long is forgotten (default 1 day) */
};

struct deploy_checker;

struct deploy_checker *deploy_checker__new(const struct deploy_check_opts *opts,
					   struct store *store, struct metrics *metrics);
void deploy_checker__free(struct deploy_checker *d);

/* Notes that (service, commit) ran in the window [start_ns, end_ns). Services
 * or commits that are "" are ignored. Returns 0 or -ENOMEM. */
int deploy_checker__observe(struct deploy_checker *d, const char *service, const char *commit,
			    int64_t start_ns, int64_t end_ns);

/* Runs the checks that are due at now_ns (their new-commit window is over).
 * Returns the number of checks run. */
int deploy_checker__run_due(struct deploy_checker *d, int64_t now_ns);

/* Appends the results as JSON ({"checks": [...]}), newest first. Thread-safe. */
int deploy_checker__json(struct deploy_checker *d, struct strbuf *out);

#endif
