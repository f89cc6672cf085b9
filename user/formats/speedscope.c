// SPDX-License-Identifier: MIT
#include "formats/speedscope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "util/hashmap.h"
#include "util/strbuf.h"

/* Output is flushed to the FILE whenever the buffer grows past this, so the
 * writer's memory does not grow with the output size. */
#define FLUSH_BYTES (64u << 10)

/* A process: one speedscope profile. */
struct process_group {
	uint32_t pid;        /* process id; 0 unknown */
	uint32_t comm;       /* string id of the name shown */
	int comm_is_main;    /* comm came from the main thread (tid == pid) */
	uint64_t total;      /* summed weight of its samples */
};

/* A sample to emit, for sorting. */
struct sample_ref {
	size_t group;  /* index into the groups array */
	size_t sample; /* profile sample index */
};

/* Everything the writer builds before it prints. */
struct speedscope_writer {
	const struct profile *profile;
	size_t value_index;          /* weight source */
	struct hashmap *frame_index; /* (name, file, line) key -> speedscope index + 1 */
	uint32_t *frame_map;         /* profile frame id -> speedscope index + 1; 0 unused */
	uint32_t *order;             /* speedscope index -> first profile frame id */
	size_t nframes;              /* speedscope frames so far */
	struct strbuf names;         /* display names, back to back */
	size_t *name_offsets;        /* profile frame id -> offset into names (+ len below) */
	size_t *name_lens;           /* profile frame id -> name length */
	struct process_group *groups;
	size_t ngroups;
	size_t groups_cap;
	struct sample_ref *refs;     /* samples with nonzero weight */
	size_t nrefs;
};

static int writer_init_frames(struct speedscope_writer *w)
{
	const struct profile *p = w->profile;
	size_t n = profile__frame_count(p);
	struct strbuf key = STRBUF_INIT;
	int err = 0;

	w->frame_index = hashmap__new();
	w->frame_map = calloc(n + 1, sizeof(*w->frame_map));
	w->order = calloc(n + 1, sizeof(*w->order));
	w->name_offsets = calloc(n + 1, sizeof(*w->name_offsets));
	w->name_lens = calloc(n + 1, sizeof(*w->name_lens));
	if (!w->frame_index || !w->frame_map || !w->order || !w->name_offsets || !w->name_lens)
		return -ENOMEM;

	for (size_t id = 0; id < n; id++) {
		const struct profile_frame *f = profile__frame(p, (uint32_t)id);
		w->name_offsets[id] = w->names.len;
		frame__display_flags(p, f, FRAME_DISPLAY_NO_KERNEL_SUFFIX | FRAME_DISPLAY_NO_LOCATION,
				     &w->names);
		w->name_lens[id] = w->names.len - w->name_offsets[id];
		strbuf__putc(&w->names, '\0');
		if ((err = strbuf__error(&w->names)))
			break;

		/* Frames speedscope would show identically share one entry. */
		strbuf__reset(&key);
		strbuf__append(&key, w->names.data + w->name_offsets[id], w->name_lens[id] + 1);
		strbuf__puts(&key, profile__str(p, f->file));
		strbuf__printf(&key, "%c%u", '\0', f->line);
		if ((err = strbuf__error(&key)))
			break;
		uintptr_t pos = (uintptr_t)hashmap__get(w->frame_index, key.data, key.len);
		if (!pos) {
			pos = ++w->nframes;
			w->order[pos - 1] = (uint32_t)id;
			err = hashmap__put(w->frame_index, key.data, key.len, (void *)pos, NULL);
			if (err)
				break;
		}
		w->frame_map[id] = (uint32_t)pos;
	}
	strbuf__release(&key);
	return err;
}

static int writer_group_of(struct speedscope_writer *w, struct hashmap *index,
			   const struct profile_sample *s, size_t *group)
{
	/* Unknown pids are told apart by comm; known ones are one process. */
	uint32_t key[2] = { s->pid, s->pid ? 0 : s->comm };
	uintptr_t pos = (uintptr_t)hashmap__get(index, key, sizeof(key));
	if (pos) {
		struct process_group *g = &w->groups[pos - 1];
		if (!g->comm_is_main && s->pid && s->tid == s->pid) {
			g->comm = s->comm;
			g->comm_is_main = 1;
		}
		*group = pos - 1;
		return 0;
	}
	if (w->ngroups == w->groups_cap) {
		size_t cap = w->groups_cap ? w->groups_cap * 2 : 16;
		struct process_group *groups = realloc(w->groups, cap * sizeof(*groups));
		if (!groups)
			return -ENOMEM;
		w->groups = groups;
		w->groups_cap = cap;
	}
	w->groups[w->ngroups] = (struct process_group){
		.pid = s->pid,
		.comm = s->comm,
		.comm_is_main = s->pid && s->tid == s->pid,
	};
	int err = hashmap__put(index, key, sizeof(key), (void *)(uintptr_t)(w->ngroups + 1), NULL);
	if (err)
		return err;
	*group = w->ngroups++;
	return 0;
}

static int writer_collect_samples(struct speedscope_writer *w)
{
	const struct profile *p = w->profile;
	size_t n = profile__sample_count(p);
	struct hashmap *index = hashmap__new();
	int err = 0;

	w->refs = calloc(n ? n : 1, sizeof(*w->refs));
	if (!index || !w->refs) {
		hashmap__free(index);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		uint64_t weight = s->values[w->value_index];
		size_t group;
		if (!weight)
			continue;
		if ((err = writer_group_of(w, index, s, &group)))
			break;
		w->groups[group].total += weight;
		w->refs[w->nrefs++] = (struct sample_ref){ .group = group, .sample = i };
	}
	hashmap__free(index);
	return err;
}

/* Heaviest process first; ties by pid, then comm text, for stable output. */
static int group_cmp(const struct speedscope_writer *w, size_t a, size_t b)
{
	const struct process_group *x = &w->groups[a], *y = &w->groups[b];
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return strcmp(profile__str(w->profile, x->comm), profile__str(w->profile, y->comm));
}

static int sample_ref_cmp(const void *a, const void *b, void *ctx)
{
	const struct speedscope_writer *w = ctx;
	const struct sample_ref *x = a, *y = b;
	if (x->group != y->group)
		return group_cmp(w, x->group, y->group);
	const struct profile_sample *sx = profile__sample(w->profile, x->sample);
	const struct profile_sample *sy = profile__sample(w->profile, y->sample);
	for (uint32_t i = 0; i < sx->nframes && i < sy->nframes; i++) {
		int c = strcmp(w->names.data + w->name_offsets[sx->frames[i]],
			       w->names.data + w->name_offsets[sy->frames[i]]);
		if (c)
			return c;
	}
	if (sx->nframes != sy->nframes)
		return sx->nframes < sy->nframes ? -1 : 1;
	return (x->sample > y->sample) - (x->sample < y->sample);
}

/* Maps a profile value unit to a speedscope ValueUnit. */
static const char *speedscope_unit(const char *unit)
{
	static const char *const known[] = { "nanoseconds", "microseconds", "milliseconds",
					     "seconds", "bytes" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strcmp(unit, known[i]) == 0)
			return known[i];
	}
	return "none";
}

static int flush(struct strbuf *buf, FILE *out, int force)
{
	if (strbuf__error(buf))
		return -ENOMEM;
	if (buf->len && (force || buf->len >= FLUSH_BYTES)) {
		if (fwrite(buf->data, 1, buf->len, out) != buf->len)
			return -EIO;
		strbuf__reset(buf);
	}
	return 0;
}

static int write_frames(struct speedscope_writer *w, struct strbuf *buf, FILE *out)
{
	strbuf__puts(buf, "\"shared\":{\"frames\":[");
	for (size_t i = 0; i < w->nframes; i++) {
		uint32_t id = w->order[i];
		const struct profile_frame *f = profile__frame(w->profile, id);
		const char *file = profile__str(w->profile, f->file);
		strbuf__puts(buf, i ? ",{\"name\":" : "{\"name\":");
		strbuf__json_string(buf, w->names.data + w->name_offsets[id]);
		if (*file) {
			strbuf__puts(buf, ",\"file\":");
			strbuf__json_string(buf, file);
		}
		if (f->line)
			strbuf__printf(buf, ",\"line\":%u", f->line);
		strbuf__putc(buf, '}');
		int err = flush(buf, out, 0);
		if (err)
			return err;
	}
	strbuf__puts(buf, "]}");
	return 0;
}

/* Writes one "sampled" profile from refs[*pos] for as long as the group lasts. */
static int write_group(struct speedscope_writer *w, size_t *pos, const char *unit,
		       struct strbuf *buf, FILE *out)
{
	const struct profile *p = w->profile;
	size_t first = *pos, end = first;
	const struct process_group *g = &w->groups[w->refs[first].group];
	const char *comm = profile__str(p, g->comm);
	int err;

	while (end < w->nrefs && w->refs[end].group == w->refs[first].group)
		end++;
	*pos = end;

	strbuf__puts(buf, "{\"type\":\"sampled\",\"name\":\"");
	strbuf__json_escape(buf, *comm ? comm : "[unknown]");
	if (g->pid)
		strbuf__printf(buf, " (pid %u)", g->pid);
	strbuf__printf(buf, "\",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%" PRIu64
		       ",\"samples\":[", unit, g->total);
	for (size_t i = first; i < end; i++) {
		const struct profile_sample *s = profile__sample(p, w->refs[i].sample);
		strbuf__puts(buf, i > first ? ",[" : "[");
		for (uint32_t j = 0; j < s->nframes; j++)
			strbuf__printf(buf, j ? ",%u" : "%u", w->frame_map[s->frames[j]] - 1);
		strbuf__putc(buf, ']');
		if ((err = flush(buf, out, 0)))
			return err;
	}
	strbuf__puts(buf, "],\"weights\":[");
	for (size_t i = first; i < end; i++) {
		const struct profile_sample *s = profile__sample(p, w->refs[i].sample);
		strbuf__printf(buf, i > first ? ",%" PRIu64 : "%" PRIu64, s->values[w->value_index]);
		if ((err = flush(buf, out, 0)))
			return err;
	}
	strbuf__puts(buf, "]}");
	return 0;
}

static void writer_release(struct speedscope_writer *w)
{
	hashmap__free(w->frame_index);
	free(w->frame_map);
	free(w->order);
	strbuf__release(&w->names);
	free(w->name_offsets);
	free(w->name_lens);
	free(w->groups);
	free(w->refs);
}

int speedscope__write(const struct profile *p, FILE *out, size_t value_index)
{
	if (!p || !out || value_index >= profile__value_count(p))
		return -EINVAL;

	struct speedscope_writer w = { .profile = p, .value_index = value_index };
	struct strbuf buf = STRBUF_INIT;
	int err = writer_init_frames(&w);
	if (!err)
		err = writer_collect_samples(&w);
	if (err)
		goto out;
	qsort_r(w.refs, w.nrefs, sizeof(*w.refs), sample_ref_cmp, &w);

	const char *unit = speedscope_unit(profile__value_unit(p, value_index));
	strbuf__puts(&buf, "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
			   "\"exporter\":\"dynoprof\",\"name\":");
	struct strbuf title = STRBUF_INIT;
	strbuf__printf(&title, "dynoprof %s", profile__value_type(p, value_index));
	strbuf__json_string(&buf, strbuf__str(&title));
	err = strbuf__error(&title);
	strbuf__release(&title);
	if (err)
		goto out;
	strbuf__puts(&buf, ",\"activeProfileIndex\":0,");
	if ((err = write_frames(&w, &buf, out)))
		goto out;
	strbuf__puts(&buf, ",\"profiles\":[");
	for (size_t pos = 0; pos < w.nrefs;) {
		if (pos)
			strbuf__putc(&buf, ',');
		if ((err = write_group(&w, &pos, unit, &buf, out)))
			goto out;
	}
	strbuf__puts(&buf, "]}\n");
	err = flush(&buf, out, 1);
	if (!err && ferror(out))
		err = -EIO;
out:
	strbuf__release(&buf);
	writer_release(&w);
	return err;
}
