// SPDX-License-Identifier: MIT
/* query.c - the request parsing the agent's profile endpoints (handlers.c)
 * and the web page's JSON APIs (web_api.c) share: filters, history ranges and
 * the group selection of /api/v1/groups and /api/v1/timeseries. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "agent/query.h"
#include "agent/tagset.h"
#include "util/clock.h"

const char *const agent_query__group_keys[3] = { "service", "commit", "endpoint" };

int agent_query__add_filter(struct selection *s, const char *key, const char *value,
			    struct http_response *r)
{
	if (strlen(key) >= sizeof(s->tag_keys[0])) {
		http_response__error(r, 400, "tag key '%.32s...' is too long (at most %zu bytes)",
				     key, sizeof(s->tag_keys[0]) - 1);
		return -EINVAL;
	}
	if (s->nfilters >= AGENT_MAX_FILTERS) {
		http_response__error(r, 400, "too many filters (at most %d)", AGENT_MAX_FILTERS);
		return -EINVAL;
	}
	snprintf(s->tag_keys[s->nfilters], sizeof(s->tag_keys[0]), "%s", key);
	s->filters[s->nfilters].key = s->tag_keys[s->nfilters];
	s->filters[s->nfilters++].value = value;
	return 0;
}

int64_t agent_query__max_range_s(struct agent_state *st)
{
	pthread_mutex_lock(&st->lock);
	int64_t max_range_s = st->config.max_range_s;
	pthread_mutex_unlock(&st->lock);
	return max_range_s;
}

int agent_query__range(const char *from, const char *to, int64_t max_range_s, int64_t *from_ns,
		       int64_t *to_ns)
{
	*to_ns = clock_ns(CLOCK_REALTIME);
	if ((to && http_parse_time(to, to_ns)) || (from && http_parse_time(from, from_ns)))
		return -EINVAL;
	if (!from)
		*from_ns = *to_ns - (int64_t)DEFAULT_RANGE_S * 1000000000;
	if (*from_ns >= *to_ns || (*to_ns - *from_ns) / 1000000000 > max_range_s)
		return -ERANGE;
	return 0;
}

int agent_query__parse_groups(struct agent_state *st, const struct http_query *q,
			      const char *extra, struct group_query *gq, struct http_response *r)
{
	int64_t max_range_s = agent_query__max_range_s(st);
	struct selection tag_sel = { 0 }; /* the tag.KEY filters */
	memset(gq, 0, sizeof(*gq));

	for (size_t i = 0; i < http_query__count(q); i++) {
		const char *n = http_query__name(q, i);
		if (!strncmp(n, "tag.", 4) && n[4]) {
			if (tagset__is_group_key(n + 4)) {
				http_response__error(r, 400, "bad parameter '%s': service, "
						     "commit and endpoint are filtered with service=, "
						     "commit=, endpoint= (window is no tag)", n);
				return -EINVAL;
			}
			if (agent_query__add_filter(&tag_sel, n + 4, http_query__value(q, i), r))
				return -EINVAL;
			continue;
		}
		if (strcmp(n, "by") && strcmp(n, "from") && strcmp(n, "to") && strcmp(n, "service") &&
		    strcmp(n, "commit") && strcmp(n, "endpoint") && (!extra || strcmp(n, extra))) {
			http_response__error(r, 400, "unknown parameter '%s': use by, from, to, "
					     "%s%sservice, commit, endpoint, tag.KEY", n,
					     extra ? extra : "", extra ? ", " : "");
			return -EINVAL;
		}
	}
	if (tag_sel.nfilters) {
		struct strbuf json = STRBUF_INIT;
		size_t count = 0;
		int e = tagset__filter_json(tag_sel.filters, tag_sel.nfilters, &json, &count);
		if (!e && json.len >= sizeof(gq->tags))
			e = -E2BIG;
		if (!e)
			memcpy(gq->tags, strbuf__str(&json), json.len + 1);
		strbuf__release(&json);
		if (e == -E2BIG)
			http_response__error(r, 400, "tag filters too long (at most %zu bytes "
					     "as a JSON object)", sizeof(gq->tags) - 1);
		else if (e)
			http_response__error(r, 500, "out of memory");
		if (e)
			return -EINVAL;
	}
	const char *by = http_query__get(q, "by");
	char bybuf[128];
	/* Refused, not cut: a cut list would pass whatever the cut left. */
	if (by && strlen(by) >= sizeof(bybuf)) {
		http_response__error(r, 400, "by is too long (at most %zu bytes): a list of "
				     "service, commit, endpoint", sizeof(bybuf) - 1);
		return -EINVAL;
	}
	snprintf(bybuf, sizeof(bybuf), "%s", by ? by : "endpoint");
	char *save = NULL;
	int bad = 0;
	for (char *tok = strtok_r(bybuf, ",", &save); tok && !bad;
	     tok = strtok_r(NULL, ",", &save)) {
		int k = -1;
		for (int j = 0; j < 3; j++)
			if (!strcmp(tok, agent_query__group_keys[j]))
				k = j;
		/* Each key once: a repeated one would repeat a JSON member. */
		for (size_t i = 0; i < gq->nby && k >= 0; i++)
			bad |= gq->by[i] == k;
		bad |= k < 0 || gq->nby >= 3;
		if (!bad)
			gq->by[gq->nby++] = k;
	}
	if (bad || gq->nby == 0) {
		http_response__error(r, 400, "bad by '%s': a list of service, commit, endpoint, "
				     "each at most once", by);
		return -EINVAL;
	}
	int e = agent_query__range(http_query__get(q, "from"), http_query__get(q, "to"),
				   max_range_s, &gq->from_ns, &gq->to_ns);
	if (e == -EINVAL) {
		http_response__error(r, 400, "bad time: use unix seconds or RFC 3339");
		return -EINVAL;
	}
	if (e) {
		http_response__error(r, 400, "bad range: from must be before to, and the range at "
				     "most max_query_range (%" PRId64 " s)", max_range_s);
		return -EINVAL;
	}
	for (size_t i = 0; i < 3; i++) {
		/* "-" selects the untagged (stored as ""), as everywhere. */
		gq->filter[i] = http_query__get(q, agent_query__group_keys[i]);
		if (gq->filter[i] && !strcmp(gq->filter[i], "-"))
			gq->filter[i] = "";
	}
	return 0;
}

int agent_query__group_key(const struct group_query *gq, const struct store_group *g,
			   const char *vals[3], struct strbuf *key)
{
	/* Untagged reads "-", as in /metrics, report and the selectors. */
	vals[0] = *g->service ? g->service : "-";
	vals[1] = *g->commit ? g->commit : "-";
	vals[2] = *g->endpoint ? g->endpoint : "-";
	/* The values joined by NULs: as long as they are (tag values reach
	 * TAG_TEXT_MAX each), never cut, so no group is left out or merged. */
	for (size_t i = 0; i < gq->nby; i++) {
		strbuf__puts(key, vals[gq->by[i]]);
		strbuf__putc(key, '\0');
	}
	return strbuf__error(key) ? -ENOMEM : 0;
}
