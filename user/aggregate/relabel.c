// SPDX-License-Identifier: MIT
#include "aggregate/relabel.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

/* One held sample: a private copy of a sample_desc. */
struct held_sample {
	uint32_t *frames;          /* nframes frame ids, root first */
	uint32_t nframes;
	uint32_t tid;
	char *comm;                /* NULL when the sample had none */
	char **keys;               /* nlabels keys, room for one more (endpoint) */
	char **values;             /* nlabels values, likewise */
	uint32_t nlabels;
	uint64_t values_[PROFILE_MAX_VALUES]; /* the sample's values, the rest 0 */
	uint64_t exact_ns;         /* exact CPU ns it carried */
};

/* The held samples of one request, in arrival order. */
struct held_request {
	struct held_sample *samples;
	size_t count, cap;
};

struct relabel_buffer {
	struct hashmap *requests;  /* struct relabel_key -> struct held_request* */
	size_t samples;            /* held in all */
	size_t max_samples;        /* the bound */
};

static void sample_free(struct held_sample *h)
{
	for (uint32_t i = 0; i < h->nlabels; i++) {
		free(h->keys[i]);
		free(h->values[i]);
	}
	free(h->keys);
	free(h->values);
	free(h->frames);
	free(h->comm);
}

static void request_free(struct held_request *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->count; i++)
		sample_free(&r->samples[i]);
	free(r->samples);
	free(r);
}

struct relabel_buffer *relabel_buffer__new(size_t max_samples)
{
	if (!max_samples) {
		errno = EINVAL;
		return NULL;
	}
	struct relabel_buffer *b = calloc(1, sizeof(*b));
	if (!b || !(b->requests = hashmap__new())) {
		free(b);
		errno = ENOMEM;
		return NULL;
	}
	b->max_samples = max_samples;
	return b;
}

void relabel_buffer__free(struct relabel_buffer *b)
{
	if (!b)
		return;
	size_t cursor = 0;
	void *value;
	while (hashmap__next(b->requests, &cursor, NULL, NULL, &value))
		request_free(value);
	hashmap__free(b->requests);
	free(b);
}

/* Copies s into h; 0 or -ENOMEM (h then holds what it got: sample_free it). */
static int sample_copy(struct held_sample *h, const struct sample_desc *s, size_t nvalues,
		       uint64_t exact_ns)
{
	memset(h, 0, sizeof(*h));
	h->tid = s->tid;
	h->exact_ns = exact_ns;
	memcpy(h->values_, s->values, nvalues * sizeof(*s->values));
	if (!(h->frames = malloc((s->nframes ? s->nframes : 1) * sizeof(*h->frames))))
		return -ENOMEM;
	memcpy(h->frames, s->frames, s->nframes * sizeof(*h->frames));
	h->nframes = s->nframes;
	if (s->comm && !(h->comm = strdup(s->comm)))
		return -ENOMEM;
	if (!(h->keys = calloc(s->nlabels + 1, sizeof(*h->keys))) ||
	    !(h->values = calloc(s->nlabels + 1, sizeof(*h->values))))
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nlabels; i++) {
		h->keys[i] = strdup(s->label_keys[i]);
		h->values[i] = strdup(s->label_values[i]);
		h->nlabels = i + 1;
		if (!h->keys[i] || !h->values[i])
			return -ENOMEM;
	}
	return 0;
}

int relabel_buffer__hold(struct relabel_buffer *b, uint32_t request, const struct sample_desc *s,
			 size_t nvalues, uint64_t exact_ns)
{
	if (!request || nvalues > PROFILE_MAX_VALUES)
		return -EINVAL;
	if (b->samples >= b->max_samples)
		return -ENOSPC;
	struct relabel_key key = { .pid = s->pid, .request = request };
	struct held_request *r = hashmap__get(b->requests, &key, sizeof(key));
	if (!r) {
		if (!(r = calloc(1, sizeof(*r))))
			return -ENOMEM;
		if (hashmap__put(b->requests, &key, sizeof(key), r, NULL)) {
			free(r);
			return -ENOMEM;
		}
	}
	if (r->count == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 4;
		struct held_sample *grown = realloc(r->samples, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		r->samples = grown;
		r->cap = cap;
	}
	int err = sample_copy(&r->samples[r->count], s, nvalues, exact_ns);
	if (err) {
		sample_free(&r->samples[r->count]);
		return err;
	}
	r->count++;
	b->samples++;
	return 0;
}

size_t relabel_buffer__samples(const struct relabel_buffer *b)
{
	return b->samples;
}

size_t relabel_buffer__requests(const struct relabel_buffer *b)
{
	return hashmap__size(b->requests);
}

static int key_order(const void *x, const void *y)
{
	const struct relabel_key *a = x, *b = y;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	return a->request < b->request ? -1 : a->request > b->request;
}

size_t relabel_buffer__list(const struct relabel_buffer *b, struct relabel_key *out, size_t cap)
{
	size_t cursor = 0, n = 0, key_len;
	const void *key;
	while (n < cap && hashmap__next(b->requests, &cursor, &key, &key_len, NULL))
		if (key_len == sizeof(struct relabel_key))
			memcpy(&out[n++], key, sizeof(*out));
	qsort(out, n, sizeof(*out), key_order);
	return n;
}

int relabel_buffer__release(struct relabel_buffer *b, struct relabel_key key, const char *endpoint,
			    relabel_emit_fn fn, void *ctx)
{
	struct held_request *r = hashmap__remove(b->requests, &key, sizeof(key));
	int err = 0;
	if (!r)
		return 0;
	for (size_t i = 0; i < r->count && !err; i++) {
		struct held_sample *h = &r->samples[i];
		const char **keys = (const char **)h->keys, **values = (const char **)h->values;
		uint32_t n = h->nlabels, at = n;
		for (uint32_t k = 0; k < n; k++)
			if (strcmp(keys[k], "endpoint") == 0)
				at = k;
		if (!endpoint) {
			struct sample_desc as_is = {
				.frames = h->frames, .nframes = h->nframes, .pid = key.pid,
				.tid = h->tid, .comm = h->comm, .label_keys = keys,
				.label_values = values, .nlabels = n, .values = h->values_,
			};
			err = fn(ctx, &as_is, h->exact_ns);
			continue;
		}
		/* Only the pointer is swapped in: the copy frees what it owns. */
		const char *saved = at < n ? values[at] : NULL;
		keys[at] = at < n ? keys[at] : "endpoint";
		values[at] = endpoint;
		struct sample_desc s = {
			.frames = h->frames, .nframes = h->nframes, .pid = key.pid, .tid = h->tid,
			.comm = h->comm, .label_keys = keys, .label_values = values,
			.nlabels = at < n ? n : n + 1, .values = h->values_,
		};
		err = fn(ctx, &s, h->exact_ns);
		if (at < n)
			values[at] = saved;
		else
			keys[at] = values[at] = NULL;
	}
	size_t released = r->count;
	b->samples -= r->count;
	request_free(r);
	return err ? err : (int)released;
}
