/* tagset.h - a history group's "other tags": the tags a sample carries
 * besides service, commit and endpoint (feature flags, env, region...: from
 * the environment or libdynotag), kept per group in the history so the
 * overview can be filtered by any of them. Private to user/agent/.
 *
 * A tag set is written as a JSON object with its keys sorted bytewise, each
 * once ("{}" when none): one text per set, so equal sets compare equal, and
 * the store can both intern it and read it with SQLite's json_each.
 *
 * Bounds (a hostile process can set many tags and values): a set keeps at
 * most TAGSET_MAX_PAIRS pairs and TAGSET_MAX_BYTES of text, the smallest
 * keys first; the pairs beyond are dropped and counted. How many distinct
 * sets one window stores is bounded by the agent (TAGSET_MAX_PER_WINDOW),
 * which stores the samples past it under TAGSET_OVERFLOW and counts them.
 */
#ifndef DYNOPROF_AGENT_TAGSET_H
#define DYNOPROF_AGENT_TAGSET_H

#include <stddef.h>

#include "profile/transform.h"
#include "util/strbuf.h"

/* Most pairs one group's set keeps. */
#define TAGSET_MAX_PAIRS 8
/* Most bytes of one set's JSON text. */
#define TAGSET_MAX_BYTES 1024
/* Most distinct non-empty sets stored per window. */
#define TAGSET_MAX_PER_WINDOW 256
/* The set of samples whose own set did not fit a window's budget. */
#define TAGSET_OVERFLOW "{\"dynoprof_overflow\":\"tag sets\"}"
/* The empty set. */
#define TAGSET_EMPTY "{}"

/* Why pairs were dropped from a set (tagset__json's counts). */
struct tagset_drops {
	size_t pairs;  /* pairs past TAGSET_MAX_PAIRS */
	size_t bytes;  /* pairs that did not fit TAGSET_MAX_BYTES */
};

/* 1 when key is one of the group keys (service, commit, endpoint) or the
 * diff time slot (window): not an "other" tag. */
int tagset__is_group_key(const char *key);

/* Writes the set of the n labels keys[i] = values[i] (group keys skipped; a
 * key given twice keeps its first value) to out, replacing its content:
 * keys sorted, bounded as above; drops (may be NULL) gets what was left
 * out. 0 or -ENOMEM (out is then "{}"). */
int tagset__json(const char *const *keys, const char *const *values, size_t n,
		 struct strbuf *out, struct tagset_drops *drops);

/* The filter of the store's tag-set queries for label filters (the other
 * tags among filters; group keys skipped): a JSON object of key -> value,
 * null for "-" (selects sets without the key), written to out (replaced).
 * Sets *count to the filters written (0: out is "", no tag filter).
 * 0 or -ENOMEM. */
int tagset__filter_json(const struct label_filter *filters, size_t nfilters, struct strbuf *out,
			size_t *count);

struct profile;
struct profile_sample;

/* tagset__json of sample s's labels. 0 or -ENOMEM. */
int tagset__of_sample(const struct profile *p, const struct profile_sample *s,
		      struct strbuf *out, struct tagset_drops *drops);

/* The distinct sets one window stores: at most TAGSET_MAX_PER_WINDOW
 * non-empty ones. */
struct tagset_window;

/* NULL + errno. */
struct tagset_window *tagset_window__new(void);
/* Accepts NULL. */
void tagset_window__free(struct tagset_window *w);
/* The set a sample with set json is stored under: json itself while the
 * window has room for it (the empty set always has), else TAGSET_OVERFLOW
 * (*overflow set to 1). NULL + errno (ENOMEM). */
const char *tagset_window__admit(struct tagset_window *w, const char *json, int *overflow);

#endif
