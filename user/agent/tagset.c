// SPDX-License-Identifier: MIT
/* tagset.c - canonical, bounded tag sets of history groups (see tagset.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tagset.h"
#include "profile/profile.h"
#include "util/hashmap.h"

int tagset__is_group_key(const char *key)
{
	return !strcmp(key, "service") || !strcmp(key, "commit") || !strcmp(key, "endpoint") ||
	       !strcmp(key, "window");
}

/* The index of the smallest other key greater than after (NULL: any), its
 * first occurrence; -1 when none. */
static long next_key(const char *const *keys, size_t n, const char *after)
{
	long best = -1;
	for (size_t i = 0; i < n; i++) {
		if (!keys[i] || tagset__is_group_key(keys[i]) || (after && strcmp(keys[i], after) <= 0))
			continue;
		if (best < 0 || strcmp(keys[i], keys[best]) < 0)
			best = (long)i;
	}
	return best;
}

int tagset__json(const char *const *keys, const char *const *values, size_t n,
		 struct strbuf *out, struct tagset_drops *drops)
{
	struct tagset_drops d = { 0 };
	struct strbuf pair = STRBUF_INIT;
	size_t kept = 0;
	int err = 0;

	strbuf__reset(out);
	strbuf__putc(out, '{');
	/* Keys in order, each once: at most TAGSET_MAX_PAIRS + 1 passes over
	 * the labels before the rest is only counted. */
	const char *after = NULL;
	for (long i; (i = next_key(keys, n, after)) >= 0; after = keys[i]) {
		if (kept >= TAGSET_MAX_PAIRS) {
			d.pairs++;
			continue;
		}
		strbuf__reset(&pair);
		strbuf__json_string(&pair, keys[i]);
		strbuf__putc(&pair, ':');
		strbuf__json_string(&pair, values[i] ? values[i] : "");
		/* The pair, its comma and the closing brace must fit. */
		if (out->len + (kept ? 1 : 0) + pair.len + 1 > TAGSET_MAX_BYTES) {
			d.bytes++;
			continue;
		}
		if (kept++)
			strbuf__putc(out, ',');
		strbuf__append(out, pair.data, pair.len);
	}
	strbuf__putc(out, '}');
	if (strbuf__error(&pair) || strbuf__error(out)) {
		err = -ENOMEM;
		strbuf__release(out);
		strbuf__puts(out, TAGSET_EMPTY);
	}
	strbuf__release(&pair);
	if (drops)
		*drops = d;
	return err;
}

int tagset__filter_json(const struct label_filter *filters, size_t nfilters, struct strbuf *out,
			size_t *count)
{
	size_t c = 0;

	strbuf__reset(out);
	for (size_t i = 0; i < nfilters; i++) {
		if (tagset__is_group_key(filters[i].key))
			continue;
		strbuf__putc(out, c++ ? ',' : '{');
		strbuf__json_string(out, filters[i].key);
		strbuf__putc(out, ':');
		if (!strcmp(filters[i].value, "-"))
			strbuf__puts(out, "null");
		else
			strbuf__json_string(out, filters[i].value);
	}
	if (c)
		strbuf__putc(out, '}');
	*count = c;
	return strbuf__error(out) ? -ENOMEM : 0;
}

int tagset__of_sample(const struct profile *p, const struct profile_sample *s,
		      struct strbuf *out, struct tagset_drops *drops)
{
	const char **kv = s->nlabels ? calloc(2 * (size_t)s->nlabels, sizeof(*kv)) : NULL;
	if (s->nlabels && !kv) {
		strbuf__reset(out);
		strbuf__puts(out, TAGSET_EMPTY);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < s->nlabels; i++) {
		kv[i] = profile__str(p, s->labels[i].key);
		kv[s->nlabels + i] = profile__str(p, s->labels[i].value);
	}
	int err = tagset__json(kv, kv ? kv + s->nlabels : NULL, s->nlabels, out, drops);
	free(kv);
	return err;
}

struct tagset_window {
	struct hashmap *seen; /* set text -> (void *)1, the non-empty sets admitted */
};

struct tagset_window *tagset_window__new(void)
{
	struct tagset_window *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->seen = hashmap__new();
	if (!w->seen) {
		free(w);
		return NULL;
	}
	return w;
}

void tagset_window__free(struct tagset_window *w)
{
	if (!w)
		return;
	hashmap__free(w->seen);
	free(w);
}

const char *tagset_window__admit(struct tagset_window *w, const char *json, int *overflow)
{
	size_t len = strlen(json);
	*overflow = 0;
	if (!strcmp(json, TAGSET_EMPTY) || hashmap__get(w->seen, json, len))
		return json;
	if (hashmap__size(w->seen) >= TAGSET_MAX_PER_WINDOW) {
		*overflow = 1;
		return TAGSET_OVERFLOW;
	}
	if (hashmap__put(w->seen, json, len, (void *)1, NULL)) {
		errno = ENOMEM;
		return NULL;
	}
	return json;
}
