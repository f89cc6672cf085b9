/* agent_state.h - what the agent loop shares with its HTTP handlers. Private
 * to user/agent/. */
#ifndef DYNOPROF_AGENT_STATE_H
#define DYNOPROF_AGENT_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/deploy_check.h"
#include "agent/metrics.h"
#include "agent/store.h"
#include "aggregate/aggregate.h"
#include "aggregate/apportion.h"
#include "profile/profile.h"
#include "profile/transform.h"

#define AGENT_MAX_FILTERS 16

/* A live query (`/debug/pprof/profile?seconds=N`): the loop adds every
 * matching sample until end_ns, then marks it done and signals. */
struct live_query {
	struct profile *profile;          /* samples so far (owned by the query) */
	struct cpu_totals *exact_cpu;     /* exact CPU its samples carried, per process
					   * (owned; apportioned over profile at the end) */
	struct label_filter filters[AGENT_MAX_FILTERS]; /* label filters */
	size_t nfilters;
	uint32_t pid;                     /* 0: any */
	int64_t end_mono_ns;              /* CLOCK_MONOTONIC end */
	bool done;                        /* set by the loop at end (or shutdown) */
	int error;                        /* -errno if adding failed */
	struct live_query *next;          /* list link */
};

struct agent_state {
	pthread_mutex_t lock;             /* guards config, queries, stopping */
	pthread_cond_t query_done;        /* signalled when a query completes */
	struct agent_config config;       /* current settings */
	struct live_query *queries;       /* active live queries */
	bool stopping;                    /* shutting down: queries end now */
	struct store *store;              /* history (thread-safe) */
	struct metrics *metrics;          /* Prometheus registry (thread-safe) */
	struct deploy_checker *deploys;   /* automatic deploy checks (results thread-safe) */
	int64_t started_unix_ns;          /* agent start */
	struct http_server *http;         /* the server, for its refusal counts (NULL
					   * until started); guarded by lock */
	int store_error;                  /* -errno of the last window's store, 0 when it
					   * was stored: /healthz is degraded while != 0 */
	int64_t store_failing_since_ns;   /* unix ns of the first failure in a row */
	uint64_t store_failures;          /* windows lost to failed stores, since start */
	const char *value_types[AGGREGATE_MAX_VALUE_TYPES][2]; /* type/unit of window profiles */
	size_t nvalue_types;
};

/* Most routes the agent serves. */
#define AGENT_MAX_ROUTES 16

/* Registers the HTTP routes' handlers: fills routes (at most AGENT_MAX_ROUTES)
 * and returns their count. */
struct http_route;
size_t agent_handlers__routes(struct agent_state *st, struct http_route *routes);

#endif
