/* query.h - what a profile query selects, shared by the agent's profile
 * endpoints (handlers.c) and the web page's JSON APIs (web_api.c). Private to
 * user/agent/.
 */
#ifndef DYNOPROF_AGENT_QUERY_H
#define DYNOPROF_AGENT_QUERY_H

#include <stdint.h>

#include "agent/agent_state.h"
#include "agent/http_server.h"
#include "profile/profile.h"
#include "profile/transform.h"

/* Longest history scan of one query, in windows. */
#define MAX_QUERY_WINDOWS 20000
/* Default range of /api/v1/groups and from-only queries. */
#define DEFAULT_RANGE_S 3600

/* What a profile request selects. */
struct selection {
	double seconds;          /* live collection length; 0: history */
	int64_t from_ns, to_ns;  /* history range */
	uint32_t pid;            /* 0: any */
	struct label_filter filters[AGENT_MAX_FILTERS]; /* label filters (values point
						  * into the query or tag_keys) */
	size_t nfilters;         /* filters in use */
	char tag_keys[AGENT_MAX_FILTERS][128]; /* storage for tag.K names */
};

/* The selection of /debug/pprof/profile and /flamegraph (seconds, from, to,
 * pid, service, endpoint, commit, tag.KEY; extra: more allowed names,
 * NULL-terminated, or NULL), collected live or read from the history.
 * NULL with the error (400 for bad parameters) set on r. */
struct profile *agent_query__profile(struct agent_state *st, const struct http_query *q,
				     const char *const *extra, struct http_response *r);
/* A history selection's profile (each window's samples labelled
 * window=START as diff's clusters). NULL with the error set on r. */
struct profile *agent_query__history(struct agent_state *st, const struct selection *sel,
				     struct http_response *r);

#endif
