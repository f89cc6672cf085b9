/* query.h - what a profile query selects, shared by the agent's profile
 * endpoints (handlers.c) and the web page's JSON APIs (web_api.c), and the
 * parsing they share (query.c). Private to user/agent/.
 */
#ifndef DYNOPROF_AGENT_QUERY_H
#define DYNOPROF_AGENT_QUERY_H

#include <stdint.h>

#include "agent/agent_state.h"
#include "agent/http_server.h"
#include "profile/profile.h"
#include "profile/transform.h"
#include "util/strbuf.h"

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

/* Adds key=value to s's filters (key copied into tag_keys; value kept as a
 * pointer). 0, or -EINVAL with a 400 set on r (key too long, too many). */
int agent_query__add_filter(struct selection *s, const char *key, const char *value,
			    struct http_response *r);

/* The configured max_query_range, in seconds (read under the lock). */
int64_t agent_query__max_range_s(struct agent_state *st);

/* A history range from the texts of from and to (either NULL): to defaults
 * to now, from to DEFAULT_RANGE_S before to. 0, -EINVAL when a time does not
 * parse, -ERANGE when from is not before to or the range is longer than
 * max_range_s. */
int agent_query__range(const char *from, const char *to, int64_t max_range_s, int64_t *from_ns,
		       int64_t *to_ns);

/* The names of the group keys, in store order. */
extern const char *const agent_query__group_keys[3];

/* Longest tags filter of a group query (JSON text), in bytes. */
#define GROUP_TAGS_FILTER_MAX 4096

/* What /api/v1/groups and /api/v1/timeseries select. */
struct group_query {
	int by[3];               /* indexes into agent_query__group_keys, request order */
	size_t nby;              /* keys in by (1 to 3) */
	int64_t from_ns, to_ns;  /* history range */
	const char *filter[3];   /* service, commit, endpoint values ("" selects the
				  * untagged) or NULL: any; point into the query */
	char tags[GROUP_TAGS_FILTER_MAX]; /* tag.KEY=VALUE filters as the store's
					   * tags filter (tagset__filter_json);
					   * "": none */
};

/* Parses by, from, to, service, commit, endpoint, tag.KEY (at most
 * AGENT_MAX_FILTERS; "-" selects groups without KEY) and the one more
 * allowed parameter extra (or NULL) into gq. 0, or -EINVAL with a 400 set
 * on r. */
int agent_query__parse_groups(struct agent_state *st, const struct http_query *q,
			      const char *extra, struct group_query *gq, struct http_response *r);

/* g's three values (untagged reads "-") into vals, and its by= values joined
 * by NULs appended to key (the group's identity). 0 or -ENOMEM. */
int agent_query__group_key(const struct group_query *gq, const struct store_group *g,
			   const char *vals[3], struct strbuf *key);

#endif
