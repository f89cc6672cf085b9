/* deploy_check.h - automatic deploy checks in the agent: when a service's
 * processes switch commit, compare the endpoints' CPU per request (or CPU per
 * window) of the old commit with the new one, with confidence intervals
 * (stats/ratio_ci.h; clusters = stored windows), and keep the verdicts.
 *
 * What is a switch. A commit is new for a service when the agent has never
 * seen it there: not since it started, and not in the history it opened
 * (commits of the last forget_s are read back at start, so a restart does
 * not make the running commit look new). The switch's base is the commit of
 * the service seen most recently in an EARLIER window; a commit that only
 * shows up in the same window as the new one is no base (an agent started
 * during a deploy sees both at once and checks nothing). A commit seen
 * before that shows up again — a late sample of an exiting old worker, or a
 * rollback — is not a switch. A switch is announced ("switched commit A -> B")
 * once the new commit ran in DEPLOY_CHECK_CONFIRM_WINDOWS windows; one that
 * ran in fewer by the time its check is due is dropped without a word.
 *
 * What is compared (switch = start of the new commit's first window, W =
 * check_window):
 *   new side:  the new commit's windows in [switch, switch + W)
 *   base side: rolling deploy (the old commit stopped before switch + W):
 *              the old commit's windows in [end - W, end), end being the
 *              switch (or the end of its last window, if it stopped before):
 *              its last W before the new commit appeared; its windows during
 *              the rollout (workers draining and exiting) are left out;
 *              canary (the old commit still ran at switch + W): the same
 *              range as the new side, [switch, switch + W).
 * Only windows in which the commit had samples count on its side: windows of
 * a commit that did not run carry no information about its cost. Comparing
 * CPU per request, so do only windows in which the commit counted requests
 * (a process's first moments, before the agent found its counters, have CPU
 * but no count).
 *
 * Verdicts are those of `dynoprof diff` (regression, improvement, no
 * significant change) or "insufficient data" with a reason: a side with
 * fewer than DEPLOY_CHECK_MIN_WINDOWS windows, too few requests, or an
 * endpoint only one side served. A check where a whole side is missing gives
 * one result for endpoint "(all)". Results are bounded (the last
 * DEPLOY_CHECK_MAX_RESULTS kept in the history) and exported as Prometheus
 * gauges dynoprof_deploy_check_verdict{service,endpoint,base,new,verdict} = 1,
 * and, when the estimate exists, dynoprof_regression_ratio{service,endpoint,
 * base,new} (new/base cost) with _lower and _upper bounds and
 * dynoprof_regression_significant (1 regression, -1 improvement, 0 else).
 */
#ifndef DYNOPROF_DEPLOY_CHECK_H
#define DYNOPROF_DEPLOY_CHECK_H

#include <stdint.h>

#include "agent/metrics.h"
#include "agent/store.h"
#include "util/strbuf.h"

#define DEPLOY_CHECK_MAX_RESULTS 1000
/* Windows each side needs (the interval's clusters). */
#define DEPLOY_CHECK_MIN_WINDOWS 5
/* Windows the new commit must run in before its switch is announced. */
#define DEPLOY_CHECK_CONFIRM_WINDOWS 2

struct deploy_check_opts {
	double check_window_s;   /* seconds compared on each side (default 300) */
	double min_effect;       /* verdict threshold (default 0.02) */
	double confidence;       /* interval level, in (0, 1) (default 0.95) */
	double forget_s;         /* a commit unseen this long is forgotten (default 1 day) */
};

struct deploy_checker;

/* Reads the commits of the last forget_s from store (see the file comment).
 * NULL + errno. */
struct deploy_checker *deploy_checker__new(const struct deploy_check_opts *opts,
					   struct store *store, struct metrics *metrics);
void deploy_checker__free(struct deploy_checker *d);

/* Notes that (service, commit) ran (had samples) in the window [start_ns,
 * end_ns). Call it for every pair of a window before the next window's.
 * Services or commits that are "" are ignored. Returns 0 or -ENOMEM. */
int deploy_checker__observe(struct deploy_checker *d, const char *service, const char *commit,
			    int64_t start_ns, int64_t end_ns);

/* Runs the checks that are due at now_ns (their new-commit window is over).
 * Returns the number of checks run (results stored, "insufficient data"
 * included). */
int deploy_checker__run_due(struct deploy_checker *d, int64_t now_ns);

/* Appends the results as JSON ({"checks": [...]}: always a list, empty
 * before the first check), newest first. Thread-safe. */
int deploy_checker__json(struct deploy_checker *d, struct strbuf *out);

#endif
