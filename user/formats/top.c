// SPDX-License-Identifier: MIT
#include "formats/top.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "util/hashmap.h"
#include "util/strbuf.h"

/* One row candidate: every frame displaying as the same text. */
struct top_function {
	size_t name_offset;    /* display text offset into top_table.names */
	uint64_t self;         /* weight of samples whose leaf this is */
	uint64_t total;        /* weight of samples containing it (once per stack) */
	uint64_t self_samples; /* SAMPLES column: self sample count */
	size_t last_sample;    /* sample index + 1 that last added to total */
};

/* Aggregation state of one top__print() call. */
struct top_table {
	struct strbuf names;            /* NUL-separated display texts */
	struct top_function *functions; /* distinct display texts */
	size_t nfunctions;              /* entries used in functions */
	uint32_t *function_of_frame;    /* profile frame id -> functions index */
};

/* Appends the display text of f with tabs and line breaks made spaces, so
 * one row is one line. */
static int append_row_name(const struct profile *p, const struct profile_frame *f,
			   struct strbuf *sb)
{
	size_t start = sb->len;
	int err = frame__display(p, f, sb);
	if (err)
		return err;
	for (size_t i = start; i < sb->len; i++) {
		if (sb->data[i] == '\n' || sb->data[i] == '\r' || sb->data[i] == '\t')
			sb->data[i] = ' ';
	}
	return 0;
}

static int top_table__init(struct top_table *t, const struct profile *p)
{
	size_t n = profile__frame_count(p);
	struct hashmap *by_name = hashmap__new();
	int err = 0;

	t->functions = calloc(n ? n : 1, sizeof(*t->functions));
	t->function_of_frame = calloc(n ? n : 1, sizeof(*t->function_of_frame));
	if (!by_name || !t->functions || !t->function_of_frame) {
		hashmap__free(by_name);
		return -ENOMEM;
	}
	for (size_t id = 0; id < n; id++) {
		size_t offset = t->names.len;
		err = append_row_name(p, profile__frame(p, (uint32_t)id), &t->names);
		if (err)
			break;
		size_t len = t->names.len - offset;
		uintptr_t pos = (uintptr_t)hashmap__get(by_name, t->names.data + offset, len);
		if (pos) {
			/* Same text as an earlier frame: drop the copy. */
			t->names.len = offset;
			t->names.data[offset] = '\0';
		} else {
			strbuf__putc(&t->names, '\0');
			if ((err = strbuf__error(&t->names)))
				break;
			pos = ++t->nfunctions;
			t->functions[pos - 1].name_offset = offset;
			err = hashmap__put(by_name, t->names.data + offset, len, (void *)pos, NULL);
			if (err)
				break;
		}
		t->function_of_frame[id] = (uint32_t)(pos - 1);
	}
	hashmap__free(by_name);
	return err;
}

static void top_table__release(struct top_table *t)
{
	strbuf__release(&t->names);
	free(t->functions);
	free(t->function_of_frame);
}

static void top_table__add_samples(struct top_table *t, const struct profile *p,
				   size_t value_index, int samples_index)
{
	size_t n = profile__sample_count(p);
	for (size_t i = 0; i < n; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		uint64_t weight = s->values[value_index];
		if (!weight || !s->nframes)
			continue;
		struct top_function *leaf = &t->functions[t->function_of_frame[s->frames[s->nframes - 1]]];
		leaf->self += weight;
		leaf->self_samples += samples_index >= 0 ? s->values[samples_index] : weight;
		for (uint32_t j = 0; j < s->nframes; j++) {
			struct top_function *fn = &t->functions[t->function_of_frame[s->frames[j]]];
			if (fn->last_sample == i + 1)
				continue; /* recursion: already counted in this stack */
			fn->last_sample = i + 1;
			fn->total += weight;
		}
	}
}

static int top_function_cmp(const void *a, const void *b, void *names)
{
	const struct top_function *x = a, *y = b;
	if (x->self != y->self)
		return x->self > y->self ? -1 : 1;
	if (x->total != y->total)
		return x->total > y->total ? -1 : 1;
	return strcmp((const char *)names + x->name_offset, (const char *)names + y->name_offset);
}

/* Appends one value total in human units, e.g. "1234 samples", "12.3 s cpu". */
static void append_total(struct strbuf *sb, uint64_t v, const char *type, const char *unit)
{
	if (strcmp(unit, "nanoseconds") == 0) {
		if (v >= 1000000000ull)
			strbuf__printf(sb, "%.1f s %s", (double)v / 1e9, type);
		else if (v >= 1000000ull)
			strbuf__printf(sb, "%.1f ms %s", (double)v / 1e6, type);
		else
			strbuf__printf(sb, "%" PRIu64 " ns %s", v, type);
	} else if (strcmp(unit, "bytes") == 0) {
		static const char *const scale[] = { "B", "KiB", "MiB", "GiB", "TiB" };
		double d = (double)v;
		size_t i = 0;
		while (d >= 1024 && i + 1 < sizeof(scale) / sizeof(scale[0])) {
			d /= 1024;
			i++;
		}
		if (i)
			strbuf__printf(sb, "%.1f %s %s", d, scale[i], type);
		else
			strbuf__printf(sb, "%" PRIu64 " B %s", v, type);
	} else if (strcmp(unit, "count") == 0 || !*unit) {
		strbuf__printf(sb, "%" PRIu64 " %s", v, type);
	} else {
		strbuf__printf(sb, "%" PRIu64 " %s %s", v, unit, type);
	}
}

static double share(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

int top__print(const struct profile *p, FILE *out, const struct top_opts *opts)
{
	const struct top_opts defaults = TOP_OPTS_INIT;
	struct top_table t = { 0 };
	struct strbuf text = STRBUF_INIT;
	int err;

	if (!opts)
		opts = &defaults;
	if (!p || !out || opts->value_index >= profile__value_count(p))
		return -EINVAL;
	size_t max_rows = opts->max_rows ? opts->max_rows : TOP_DEFAULT_ROWS;

	err = top_table__init(&t, p);
	if (err)
		goto out;
	top_table__add_samples(&t, p, opts->value_index, profile__find_value(p, "samples"));
	qsort_r(t.functions, t.nfunctions, sizeof(*t.functions), top_function_cmp, t.names.data);

	strbuf__puts(&text, "total: ");
	for (size_t v = 0; v < profile__value_count(p); v++) {
		if (v)
			strbuf__puts(&text, ", ");
		append_total(&text, profile__total(p, v), profile__value_type(p, v),
			     profile__value_unit(p, v));
	}
	if (profile__saturated(p))
		strbuf__puts(&text, " (saturated: the input's counts do not fit 64 bits)");
	strbuf__puts(&text, "\n  SELF%  TOTAL%  SAMPLES  FUNCTION\n");

	uint64_t whole = profile__total(p, opts->value_index);
	for (size_t i = 0; i < t.nfunctions && i < max_rows; i++) {
		const struct top_function *fn = &t.functions[i];
		if (!fn->total)
			break; /* sorted: only weightless functions remain */
		strbuf__printf(&text, "%6.1f%% %6.1f%% %8" PRIu64 "  %s\n", share(fn->self, whole),
			       share(fn->total, whole), fn->self_samples,
			       t.names.data + fn->name_offset);
	}
	if ((err = strbuf__error(&text)))
		goto out;
	if (fwrite(text.data, 1, text.len, out) != text.len || ferror(out))
		err = -EIO;
out:
	strbuf__release(&text);
	top_table__release(&t);
	return err;
}
