// SPDX-License-Identifier: MIT
#include "profile/profile.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

/* A growable array of fixed-size elements. */
struct vec {
	void *data;   /* elements */
	size_t len;   /* elements used */
	size_t cap;   /* elements allocated */
};

static int vec_push(struct vec *v, const void *elem, size_t elem_size)
{
	if (v->len == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		void *p = realloc(v->data, cap * elem_size);
		if (!p)
			return -ENOMEM;
		v->data = p;
		v->cap = cap;
	}
	memcpy((char *)v->data + v->len * elem_size, elem, elem_size);
	v->len++;
	return 0;
}

struct profile {
	struct vec strings;        /* char* owned copies; [0] = "" */
	struct hashmap *string_ids;/* string bytes -> id + 1 (as pointer-sized int) */
	struct vec frames;         /* struct profile_frame */
	struct hashmap *frame_ids; /* frame identity key -> id + 1 */
	struct vec mappings;       /* struct profile_mapping */
	struct hashmap *mapping_ids; /* mapping key -> index + 1 */
	struct vec samples;        /* struct profile_sample */
	struct hashmap *sample_ids;/* sample identity key -> index + 1 */
	struct vec comments;       /* uint32_t string ids */
	uint32_t value_type[PROFILE_MAX_VALUES]; /* string ids of value types */
	uint32_t value_unit[PROFILE_MAX_VALUES]; /* string ids of value units */
	size_t nvalues;            /* number of value types */
	int64_t start_ns;          /* capture start, unix ns; 0 unknown */
	int64_t duration_ns;       /* capture length; 0 unknown */
	uint32_t period_type;      /* string id */
	uint32_t period_unit;      /* string id */
	int64_t period;            /* sampling period in period_unit; 0 unknown */
	uint64_t totals[PROFILE_MAX_VALUES]; /* sum of each value over the samples as
					      * added: never past UINT64_MAX, so no
					      * sum over any subset of samples wraps */
	uint64_t saturated;        /* values clamped to keep totals from wrapping */
	uint64_t serial;           /* profile__serial(): unique in the process */
};

/* The last serial handed out (profiles may be made on several threads). */
static uint64_t last_serial;

struct profile *profile__new(void)
{
	struct profile *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->string_ids = hashmap__new();
	p->frame_ids = hashmap__new();
	p->mapping_ids = hashmap__new();
	p->sample_ids = hashmap__new();
	p->serial = __atomic_add_fetch(&last_serial, 1, __ATOMIC_RELAXED);
	uint32_t empty;
	if (!p->string_ids || !p->frame_ids || !p->mapping_ids || !p->sample_ids ||
	    profile__intern(p, "", &empty)) {
		profile__free(p);
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

uint64_t profile__serial(const struct profile *p)
{
	return p->serial;
}

void profile__free(struct profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->strings.len; i++)
		free(((char **)p->strings.data)[i]);
	free(p->strings.data);
	for (size_t i = 0; i < p->samples.len; i++) {
		struct profile_sample *s = &((struct profile_sample *)p->samples.data)[i];
		free(s->frames);
		free(s->labels);
	}
	free(p->samples.data);
	free(p->frames.data);
	free(p->mappings.data);
	free(p->comments.data);
	hashmap__free(p->string_ids);
	hashmap__free(p->frame_ids);
	hashmap__free(p->mapping_ids);
	hashmap__free(p->sample_ids);
	free(p);
}

int profile__intern(struct profile *p, const char *s, uint32_t *id)
{
	if (!s)
		s = "";
	size_t len = strlen(s);
	uintptr_t found = (uintptr_t)hashmap__get(p->string_ids, s, len);
	if (found) {
		*id = (uint32_t)(found - 1);
		return 0;
	}
	char *copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	uint32_t new_id = (uint32_t)p->strings.len;
	if (vec_push(&p->strings, &copy, sizeof(copy))) {
		free(copy);
		return -ENOMEM;
	}
	if (hashmap__put(p->string_ids, s, len, (void *)(uintptr_t)(new_id + 1), NULL)) {
		p->strings.len--;
		free(copy);
		return -ENOMEM;
	}
	*id = new_id;
	return 0;
}

const char *profile__str(const struct profile *p, uint32_t id)
{
	if (id >= p->strings.len)
		return "";
	return ((char **)p->strings.data)[id];
}

int profile__add_value_type(struct profile *p, const char *type, const char *unit)
{
	if (p->samples.len)
		return -EBUSY;
	if (p->nvalues >= PROFILE_MAX_VALUES)
		return -E2BIG;
	int err = profile__intern(p, type, &p->value_type[p->nvalues]);
	if (!err)
		err = profile__intern(p, unit, &p->value_unit[p->nvalues]);
	if (err)
		return err;
	return (int)p->nvalues++;
}

size_t profile__value_count(const struct profile *p)
{
	return p->nvalues;
}

const char *profile__value_type(const struct profile *p, size_t i)
{
	return i < p->nvalues ? profile__str(p, p->value_type[i]) : "";
}

const char *profile__value_unit(const struct profile *p, size_t i)
{
	return i < p->nvalues ? profile__str(p, p->value_unit[i]) : "";
}

int profile__find_value(const struct profile *p, const char *type)
{
	for (size_t i = 0; i < p->nvalues; i++)
		if (strcmp(profile__value_type(p, i), type) == 0)
			return (int)i;
	return -1;
}

int profile__add_frame(struct profile *p, const struct frame_desc *d, uint32_t *id)
{
	if (!d->name || !d->name[0])
		return -EINVAL;
	struct profile_frame f = { .line = d->line, .mapping = d->mapping,
				   .kind = (uint8_t)d->kind, .address = d->address };
	int err = profile__intern(p, d->name, &f.name);
	if (!err)
		err = profile__intern(p, d->module, &f.module);
	if (!err)
		err = profile__intern(p, d->file, &f.file);
	if (err)
		return err;
	uint32_t key[5] = { f.name, f.module, f.file, f.line, f.kind };
	uintptr_t found = (uintptr_t)hashmap__get(p->frame_ids, key, sizeof(key));
	if (found) {
		*id = (uint32_t)(found - 1);
		return 0;
	}
	uint32_t new_id = (uint32_t)p->frames.len;
	if (vec_push(&p->frames, &f, sizeof(f)))
		return -ENOMEM;
	if (hashmap__put(p->frame_ids, key, sizeof(key), (void *)(uintptr_t)(new_id + 1), NULL)) {
		p->frames.len--;
		return -ENOMEM;
	}
	*id = new_id;
	return 0;
}

size_t profile__frame_count(const struct profile *p)
{
	return p->frames.len;
}

const struct profile_frame *profile__frame(const struct profile *p, uint32_t id)
{
	if (id >= p->frames.len)
		return NULL;
	return &((const struct profile_frame *)p->frames.data)[id];
}

int profile__add_mapping(struct profile *p, uint64_t start, uint64_t limit, uint64_t offset,
			 const char *file, const char *build_id, uint32_t *index_plus_one)
{
	struct profile_mapping m = { .start = start, .limit = limit, .offset = offset };
	int err = profile__intern(p, file, &m.file);
	if (!err)
		err = profile__intern(p, build_id, &m.build_id);
	if (err)
		return err;
	uintptr_t found = (uintptr_t)hashmap__get(p->mapping_ids, &m, sizeof(m));
	if (found) {
		*index_plus_one = (uint32_t)found;
		return 0;
	}
	if (vec_push(&p->mappings, &m, sizeof(m)))
		return -ENOMEM;
	uint32_t idx1 = (uint32_t)p->mappings.len;
	if (hashmap__put(p->mapping_ids, &m, sizeof(m), (void *)(uintptr_t)idx1, NULL)) {
		p->mappings.len--;
		return -ENOMEM;
	}
	*index_plus_one = idx1;
	return 0;
}

size_t profile__mapping_count(const struct profile *p)
{
	return p->mappings.len;
}

const struct profile_mapping *profile__mapping(const struct profile *p, size_t index)
{
	if (index >= p->mappings.len)
		return NULL;
	return &((const struct profile_mapping *)p->mappings.data)[index];
}

static int label_cmp(const void *a, const void *b)
{
	const struct profile_label *x = a, *y = b;
	return x->key < y->key ? -1 : x->key > y->key;
}

int profile__add_sample(struct profile *p, const struct sample_desc *s)
{
	struct profile_label *labels = NULL;
	uint32_t nlabels = 0;
	uint32_t *key = NULL;
	int err = 0;

	if (s->nlabels) {
		labels = calloc(s->nlabels, sizeof(*labels));
		if (!labels)
			return -ENOMEM;
	}
	/* Intern labels, sort by key, last value wins on duplicate keys. */
	for (uint32_t i = 0; i < s->nlabels; i++) {
		struct profile_label l;
		err = profile__intern(p, s->label_keys[i], &l.key);
		if (!err)
			err = profile__intern(p, s->label_values[i], &l.value);
		if (err)
			goto out;
		uint32_t j;
		for (j = 0; j < nlabels && labels[j].key != l.key; j++)
			;
		labels[j] = l;
		if (j == nlabels)
			nlabels++;
	}
	if (nlabels)
		qsort(labels, nlabels, sizeof(*labels), label_cmp);

	uint32_t comm;
	err = profile__intern(p, s->comm, &comm);
	if (err)
		goto out;

	/* Identity key: pid, tid, comm, nframes, nlabels, frames..., labels... */
	size_t key_words = 5 + s->nframes + 2 * (size_t)nlabels;
	key = malloc(key_words * sizeof(*key));
	if (!key) {
		err = -ENOMEM;
		goto out;
	}
	key[0] = s->pid;
	key[1] = s->tid;
	key[2] = comm;
	key[3] = s->nframes;
	key[4] = nlabels;
	if (s->nframes)
		memcpy(key + 5, s->frames, s->nframes * sizeof(*key));
	if (nlabels)
		memcpy(key + 5 + s->nframes, labels, nlabels * sizeof(*labels));

	/* Counts saturate: a value that would take its total past UINT64_MAX is
	 * clamped (counted, profile__saturated) rather than wrapping every sum. */
	uint64_t in[PROFILE_MAX_VALUES] = { 0 };
	uint64_t clamped = 0;
	for (size_t v = 0; v < p->nvalues; v++) {
		in[v] = s->values ? s->values[v] : 0;
		if (in[v] > UINT64_MAX - p->totals[v]) {
			in[v] = UINT64_MAX - p->totals[v];
			clamped++;
		}
	}
	uintptr_t found = (uintptr_t)hashmap__get(p->sample_ids, key, key_words * sizeof(*key));
	if (found) {
		struct profile_sample *ex = &((struct profile_sample *)p->samples.data)[found - 1];
		for (size_t v = 0; v < p->nvalues; v++) {
			ex->values[v] += in[v];
			p->totals[v] += in[v];
		}
		p->saturated += clamped;
		goto out;
	}

	struct profile_sample ns = { .nframes = s->nframes, .pid = s->pid, .tid = s->tid,
				     .comm = comm, .nlabels = nlabels };
	for (size_t v = 0; v < p->nvalues; v++)
		ns.values[v] = in[v];
	ns.frames = malloc((s->nframes ? s->nframes : 1) * sizeof(uint32_t));
	if (!ns.frames) {
		err = -ENOMEM;
		goto out;
	}
	if (s->nframes)
		memcpy(ns.frames, s->frames, s->nframes * sizeof(uint32_t));
	ns.labels = labels;
	if (vec_push(&p->samples, &ns, sizeof(ns))) {
		free(ns.frames);
		err = -ENOMEM;
		goto out;
	}
	labels = NULL; /* owned by the sample now */
	err = hashmap__put(p->sample_ids, key, key_words * sizeof(*key),
			   (void *)(uintptr_t)p->samples.len, NULL);
	if (err) {
		struct profile_sample *last =
			&((struct profile_sample *)p->samples.data)[--p->samples.len];
		free(last->frames);
		free(last->labels);
	} else {
		for (size_t v = 0; v < p->nvalues; v++)
			p->totals[v] += in[v];
		p->saturated += clamped;
	}
out:
	free(key);
	free(labels);
	return err;
}

size_t profile__sample_count(const struct profile *p)
{
	return p->samples.len;
}

const struct profile_sample *profile__sample(const struct profile *p, size_t i)
{
	if (i >= p->samples.len)
		return NULL;
	return &((const struct profile_sample *)p->samples.data)[i];
}

uint64_t *profile__sample_values(struct profile *p, size_t i)
{
	if (i >= p->samples.len)
		return NULL;
	return ((struct profile_sample *)p->samples.data)[i].values;
}

uint64_t profile__total(const struct profile *p, size_t v)
{
	uint64_t total = 0;
	if (v >= p->nvalues)
		return 0;
	/* Summed again (values may have been rescaled), saturating likewise. */
	for (size_t i = 0; i < p->samples.len; i++) {
		uint64_t x = ((const struct profile_sample *)p->samples.data)[i].values[v];
		total = x > UINT64_MAX - total ? UINT64_MAX : total + x;
	}
	return total;
}

uint64_t profile__saturated(const struct profile *p)
{
	return p->saturated;
}

void profile__set_time(struct profile *p, int64_t start_unix_ns, int64_t duration_ns)
{
	p->start_ns = start_unix_ns;
	p->duration_ns = duration_ns;
}

int64_t profile__start_ns(const struct profile *p)
{
	return p->start_ns;
}

int64_t profile__duration_ns(const struct profile *p)
{
	return p->duration_ns;
}

int profile__set_period(struct profile *p, const char *type, const char *unit, int64_t period)
{
	int err = profile__intern(p, type, &p->period_type);
	if (!err)
		err = profile__intern(p, unit, &p->period_unit);
	if (!err)
		p->period = period;
	return err;
}

const char *profile__period_type(const struct profile *p)
{
	return profile__str(p, p->period_type);
}

const char *profile__period_unit(const struct profile *p)
{
	return profile__str(p, p->period_unit);
}

int64_t profile__period(const struct profile *p)
{
	return p->period;
}

int profile__add_comment(struct profile *p, const char *comment)
{
	uint32_t id;
	int err = profile__intern(p, comment, &id);
	if (err)
		return err;
	return vec_push(&p->comments, &id, sizeof(id));
}

size_t profile__comment_count(const struct profile *p)
{
	return p->comments.len;
}

const char *profile__comment(const struct profile *p, size_t i)
{
	if (i >= p->comments.len)
		return "";
	return profile__str(p, ((uint32_t *)p->comments.data)[i]);
}

const char *profile__sample_label(const struct profile *p, const struct profile_sample *s,
				  const char *key)
{
	for (uint32_t i = 0; i < s->nlabels; i++)
		if (strcmp(profile__str(p, s->labels[i].key), key) == 0)
			return profile__str(p, s->labels[i].value);
	return NULL;
}
