// SPDX-License-Identifier: MIT
#include "profile/transform.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int label_filter__parse(char *text, struct label_filter *f)
{
	char *eq = strchr(text, '=');
	if (!eq || eq == text)
		return -EINVAL;
	*eq = '\0';
	f->key = text;
	f->value = eq + 1;
	return 0;
}

/* The rule: "-" wants the label absent, any other value wants it equal. */
static int accepts(const struct label_filter *f, const char *v)
{
	return strcmp(f->value, "-") == 0 ? v == NULL : v && strcmp(v, f->value) == 0;
}

int label_filter__match(const struct profile *p, const struct profile_sample *s,
			const struct label_filter *filters, size_t nfilters)
{
	for (size_t i = 0; i < nfilters; i++)
		if (!accepts(&filters[i], profile__sample_label(p, s, filters[i].key)))
			return 0;
	return 1;
}

int label_filter__match_labels(const struct label_filter *filters, size_t nfilters,
			       const char *const *keys, const char *const *values, uint32_t n)
{
	for (size_t i = 0; i < nfilters; i++) {
		const char *v = NULL;
		for (uint32_t l = 0; l < n && !v; l++)
			if (!strcmp(keys[l], filters[i].key))
				v = values[l];
		if (!accepts(&filters[i], v))
			return 0;
	}
	return 1;
}

/* Copies frame id of src into dst, returning its id there. */
static int copy_frame(const struct profile *src, struct profile *dst, uint32_t id,
		      uint32_t *out)
{
	const struct profile_frame *f = profile__frame(src, id);
	uint32_t mapping = 0;
	if (f->mapping) {
		const struct profile_mapping *m = profile__mapping(src, f->mapping - 1);
		int err = profile__add_mapping(dst, m->start, m->limit, m->offset,
					       profile__str(src, m->file),
					       profile__str(src, m->build_id), &mapping);
		if (err)
			return err;
	}
	struct frame_desc d = { .kind = (enum frame_kind)f->kind, .name = profile__str(src, f->name),
				.module = profile__str(src, f->module),
				.file = profile__str(src, f->file), .line = f->line,
				.mapping = mapping, .address = f->address };
	return profile__add_frame(dst, &d, out);
}

/* Adds src's samples matching filters (and, when pid is non-zero, of that
 * process) to dst; with group keys, stacks get the group and comm frames in
 * front (see profile__grouped_copy). dst must have src's value types. */
static int merge_samples(struct profile *dst, const struct profile *src,
			 const struct label_filter *filters, size_t nfilters, uint32_t pid,
			 const char *const *group_keys, size_t ngroup_keys,
			 const struct label_filter *extra)
{
	uint32_t *frames = NULL;
	const char **keys = NULL, **values = NULL;
	size_t cap_frames = 0, cap_labels = 0;
	uint64_t vals[PROFILE_MAX_VALUES];
	int err = 0;

	/* Values are matched by type name, so profiles of different layouts merge. */
	int map[PROFILE_MAX_VALUES];
	for (size_t v = 0; v < profile__value_count(dst); v++)
		map[v] = profile__find_value(src, profile__value_type(dst, v));

	for (size_t i = 0; i < profile__sample_count(src) && !err; i++) {
		const struct profile_sample *s = profile__sample(src, i);
		if ((pid && s->pid != pid) || !label_filter__match(src, s, filters, nfilters))
			continue;
		size_t prefix = group_keys ? ngroup_keys + 1 : 0;
		if (s->nframes + prefix > cap_frames) {
			cap_frames = (s->nframes + prefix) * 2;
			free(frames);
			frames = malloc(cap_frames * sizeof(*frames));
			if (!frames) {
				err = -ENOMEM;
				break;
			}
		}
		if (s->nlabels + 1 > cap_labels) {
			cap_labels = (s->nlabels + 1) * 2;
			free(keys);
			free(values);
			keys = malloc(cap_labels * sizeof(*keys));
			values = malloc(cap_labels * sizeof(*values));
			if (!keys || !values) {
				err = -ENOMEM;
				break;
			}
		}
		for (size_t k = 0; k < prefix && !err; k++) {
			char text[512];
			if (k < ngroup_keys) {
				const char *v = profile__sample_label(src, s, group_keys[k]);
				snprintf(text, sizeof(text), "[%s=%s]", group_keys[k], v && *v ? v : "-");
			} else {
				const char *comm = profile__str(src, s->comm);
				snprintf(text, sizeof(text), "%s", *comm ? comm : "[unknown]");
			}
			struct frame_desc gd = { .kind = FRAME_SPECIAL, .name = text };
			err = profile__add_frame(dst, &gd, &frames[k]);
		}
		for (uint32_t f = 0; f < s->nframes && !err; f++)
			err = copy_frame(src, dst, s->frames[f], &frames[prefix + f]);
		uint32_t nl = 0;
		for (uint32_t l = 0; l < s->nlabels; l++) {
			keys[nl] = profile__str(src, s->labels[l].key);
			values[nl] = profile__str(src, s->labels[l].value);
			if (!extra || strcmp(keys[nl], extra->key))
				nl++;
		}
		if (extra) {
			keys[nl] = extra->key;
			values[nl++] = extra->value;
		}
		for (size_t v = 0; v < profile__value_count(dst); v++)
			vals[v] = map[v] >= 0 ? s->values[map[v]] : 0;
		struct sample_desc d = { .frames = frames, .nframes = s->nframes + (uint32_t)prefix,
					 .pid = s->pid, .tid = s->tid,
					 .comm = prefix ? "" : profile__str(src, s->comm),
					 .label_keys = keys, .label_values = values,
					 .nlabels = nl, .values = vals };
		if (!err)
			err = profile__add_sample(dst, &d);
	}
	free(frames);
	free(keys);
	free(values);
	return err;
}

/* A new empty profile with src's value types and metadata. */
static struct profile *empty_like(const struct profile *src)
{
	struct profile *dst = profile__new();
	int err = 0;
	if (!dst)
		return NULL;
	for (size_t v = 0; v < profile__value_count(src) && !err; v++) {
		int r = profile__add_value_type(dst, profile__value_type(src, v),
						profile__value_unit(src, v));
		err = r < 0 ? r : 0;
	}
	profile__set_time(dst, profile__start_ns(src), profile__duration_ns(src));
	if (!err)
		err = profile__set_period(dst, profile__period_type(src), profile__period_unit(src),
					  profile__period(src));
	for (size_t i = 0; i < profile__comment_count(src) && !err; i++)
		err = profile__add_comment(dst, profile__comment(src, i));
	if (err) {
		profile__free(dst);
		errno = -err;
		return NULL;
	}
	return dst;
}

static struct profile *copy_profile(const struct profile *src, const struct label_filter *filters,
				    size_t nfilters, const char *const *group_keys,
				    size_t ngroup_keys)
{
	struct profile *dst = empty_like(src);
	if (!dst)
		return NULL;
	int err = merge_samples(dst, src, filters, nfilters, 0, group_keys, ngroup_keys, NULL);
	if (err) {
		profile__free(dst);
		errno = -err;
		return NULL;
	}
	return dst;
}

int profile__merge(struct profile *dst, const struct profile *src,
		   const struct label_filter *filters, size_t nfilters, uint32_t pid,
		   const struct label_filter *extra)
{
	if (profile__value_count(dst) == 0) {
		for (size_t v = 0; v < profile__value_count(src); v++) {
			int r = profile__add_value_type(dst, profile__value_type(src, v),
							profile__value_unit(src, v));
			if (r < 0)
				return r;
		}
	}
	return merge_samples(dst, src, filters, nfilters, pid, NULL, 0, extra);
}

struct profile *profile__filtered_copy(const struct profile *src,
				       const struct label_filter *filters, size_t nfilters)
{
	return copy_profile(src, filters, nfilters, NULL, 0);
}

struct profile *profile__grouped_copy(const struct profile *src, const char *const *keys,
				      size_t nkeys)
{
	/* NULL group keys mean "not grouped" to copy_profile; no keys still
	 * lead with the comm frame. */
	static const char *const no_keys[1] = { NULL };
	return copy_profile(src, NULL, 0, keys ? keys : no_keys, keys ? nkeys : 0);
}

int profile__add_foreign_sample(struct profile *dst, const struct profile *src,
				const struct sample_desc *s)
{
	uint32_t *frames = malloc((s->nframes ? s->nframes : 1) * sizeof(*frames));
	uint64_t vals[PROFILE_MAX_VALUES] = { 0 };
	int err = frames ? 0 : -ENOMEM;
	for (uint32_t f = 0; f < s->nframes && !err; f++)
		err = copy_frame(src, dst, s->frames[f], &frames[f]);
	for (size_t v = 0; v < profile__value_count(dst) && !err; v++) {
		int sv = profile__find_value(src, profile__value_type(dst, v));
		vals[v] = sv >= 0 && s->values ? s->values[sv] : 0;
	}
	if (!err) {
		struct sample_desc d = *s;
		d.frames = frames;
		d.values = vals;
		err = profile__add_sample(dst, &d);
	}
	free(frames);
	return err;
}
