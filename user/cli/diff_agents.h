/* diff_agents.h - `dynoprof diff` over many agents: every agent's history
 * query fetched in parallel (bounded threads, a timeout per agent, a bounded
 * answer), each answer read as a profile and named by the host that gave it.
 * The caller pools the answers of a side with a `host` label on every sample,
 * so that diff clusters by host x window. Private to user/cli/. */
#ifndef DYNOPROF_CLI_DIFF_AGENTS_H
#define DYNOPROF_CLI_DIFF_AGENTS_H

#include <stddef.h>

#include "profile/profile.h"

/* Most agents one diff reads (URLs over both sides). */
#define DIFF_MAX_AGENTS 1024
/* Requests in flight at once. */
#define DIFF_AGENT_PARALLEL 32

/* One agent's query for one side. */
struct agent_job {
	const char *url;          /* agent base URL (borrowed) */
	const char *query;        /* the side's selectors, KEY=VALUE joined by '&' (borrowed) */
	int side;                 /* 0 base, 1 new */
	char host[96];            /* the host it names itself (its `host`, from the
				   * answer's "dynoprof.host=" comment), else the URL's
				   * host:port */
	struct profile *profile;  /* its answer (owned by the job), NULL on failure */
	char error[400];          /* why it has none ("" when it has one) */
	int usage_error;          /* the query itself is malformed (not the agent's fault) */
	int answered;             /* 1: profile holds its answer */
};

struct agent_fetch_opts {
	const char *token;        /* bearer token or NULL */
	int timeout_s;            /* per socket wait of one agent, >= 1 */
	size_t max_bytes;         /* largest answer of one agent */
};

/* Runs every job, DIFF_AGENT_PARALLEL at a time, and returns when all are
 * done or the deadline passed (timeout_s per round of DIFF_AGENT_PARALLEL,
 * plus a live query's `seconds=`, plus 2 s): a job not done by then says "no answer within N s" (its thread,
 * detached, drops what it gets later; the threads work on copies, so the
 * jobs are the caller's as soon as this returns). Returns 0 or -ENOMEM. */
int agent_jobs__run(struct agent_job *jobs, size_t n, const struct agent_fetch_opts *o);

#endif
