// SPDX-License-Identifier: MIT
#include "formats/folded.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "util/hashmap.h"
#include "util/strbuf.h"

/* ------------------------------------------------------------------ writer */

/* Appends s keeping the line parseable: ';' separates frames and a line
 * break ends the record, so they become ':' and ' '. */
static void append_sanitized(struct strbuf *sb, const char *s, size_t len)
{
	size_t start = sb->len;
	strbuf__append(sb, s, len);
	if (strbuf__error(sb))
		return;
	for (size_t i = start; i < sb->len; i++) {
		if (sb->data[i] == ';')
			sb->data[i] = ':';
		else if (sb->data[i] == '\n' || sb->data[i] == '\r')
			sb->data[i] = ' ';
	}
}

/* The sanitized display text of every frame, computed once: frame id i is
 * text.data[offsets[i] .. offsets[i + 1]). */
struct frame_texts {
	struct strbuf text; /* all display texts, back to back */
	size_t *offsets;    /* frame_count + 1 start offsets into text */
};

static int frame_texts__init(struct frame_texts *ft, const struct profile *p)
{
	size_t n = profile__frame_count(p);
	struct strbuf one = STRBUF_INIT;

	memset(ft, 0, sizeof(*ft));
	ft->offsets = calloc(n + 1, sizeof(*ft->offsets));
	if (!ft->offsets)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ft->offsets[i] = ft->text.len;
		strbuf__reset(&one);
		frame__display(p, profile__frame(p, (uint32_t)i), &one);
		append_sanitized(&ft->text, strbuf__str(&one), one.len);
	}
	ft->offsets[n] = ft->text.len;
	int err = strbuf__error(&one) ?: strbuf__error(&ft->text);
	strbuf__release(&one);
	return err;
}

static void frame_texts__release(struct frame_texts *ft)
{
	strbuf__release(&ft->text);
	free(ft->offsets);
}

/* Distinct lines (without their count) and the summed count of each. */
struct line_set {
	struct hashmap *index; /* line text -> (void *)(position in counts + 1) */
	uint64_t *counts;      /* summed counts, in order of first appearance */
	size_t len;            /* number of distinct lines */
	size_t cap;            /* allocated entries of counts */
};

static int line_set__add(struct line_set *set, const char *text, size_t len, uint64_t count)
{
	uintptr_t pos = (uintptr_t)hashmap__get(set->index, text, len);
	if (pos) {
		set->counts[pos - 1] += count;
		return 0;
	}
	if (set->len == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 64;
		uint64_t *counts = realloc(set->counts, cap * sizeof(*counts));
		if (!counts)
			return -ENOMEM;
		set->counts = counts;
		set->cap = cap;
	}
	int err = hashmap__put(set->index, text, len, (void *)(uintptr_t)(set->len + 1), NULL);
	if (err)
		return err;
	set->counts[set->len++] = count;
	return 0;
}

/* A finished line, for sorting. */
struct sorted_line {
	const char *text; /* points into the line_set's hash map keys */
	size_t len;       /* text length */
	uint64_t count;   /* summed count */
};

static int sorted_line_cmp(const void *a, const void *b)
{
	const struct sorted_line *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->text, y->text, n);
	if (c)
		return c;
	return (x->len > y->len) - (x->len < y->len);
}

static int label_key_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return strcmp(x[0], y[0]);
}

/* Appends `[key=value];` for each label of s, sorted by key text. */
static int append_label_frames(const struct profile *p, const struct profile_sample *s,
			       struct strbuf *line)
{
	if (!s->nlabels)
		return 0;
	/* pairs[2i] = key, pairs[2i+1] = value, sorted together by key */
	const char **pairs = calloc(2 * (size_t)s->nlabels, sizeof(*pairs));
	if (!pairs)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->nlabels; i++) {
		pairs[2 * i] = profile__str(p, s->labels[i].key);
		pairs[2 * i + 1] = profile__str(p, s->labels[i].value);
	}
	if (s->nlabels > 1) /* qsort's base must not be NULL, even for 0 items */
		qsort(pairs, s->nlabels, 2 * sizeof(*pairs), label_key_cmp);
	for (uint32_t i = 0; i < s->nlabels; i++) {
		strbuf__putc(line, '[');
		append_sanitized(line, pairs[2 * i], strlen(pairs[2 * i]));
		strbuf__putc(line, '=');
		append_sanitized(line, pairs[2 * i + 1], strlen(pairs[2 * i + 1]));
		strbuf__puts(line, "];");
	}
	free(pairs);
	return strbuf__error(line);
}

/* Builds the line of sample s (without its count) into line. */
static int build_line(const struct profile *p, const struct profile_sample *s,
		      const struct frame_texts *ft, const struct folded_opts *opts,
		      struct strbuf *line)
{
	strbuf__reset(line);
	for (size_t i = 0; opts->group_keys && i < opts->ngroup_keys; i++) {
		const char *v = profile__sample_label(p, s, opts->group_keys[i]);
		strbuf__putc(line, '[');
		append_sanitized(line, opts->group_keys[i], strlen(opts->group_keys[i]));
		strbuf__putc(line, '=');
		if (!v || !*v)
			v = "-";
		append_sanitized(line, v, strlen(v));
		strbuf__puts(line, "];");
	}
	if (opts->label_frames && !opts->group_keys) {
		int err = append_label_frames(p, s, line);
		if (err)
			return err;
	}
	if (opts->comm_prefix) {
		const char *comm = profile__str(p, s->comm);
		if (!*comm)
			comm = "[unknown]";
		append_sanitized(line, comm, strlen(comm));
		strbuf__putc(line, ';');
	}
	for (uint32_t i = 0; i < s->nframes; i++) {
		uint32_t id = s->frames[i];
		size_t begin = ft->offsets[id], end = ft->offsets[id + 1];
		strbuf__append(line, ft->text.data + begin, end - begin);
		strbuf__putc(line, ';');
	}
	if (line->len)
		line->data[--line->len] = '\0'; /* drop the last ';' */
	else
		strbuf__puts(line, "[unknown]");
	return strbuf__error(line);
}

int folded__write(const struct profile *p, FILE *out, const struct folded_opts *opts)
{
	const struct folded_opts defaults = FOLDED_OPTS_INIT;
	struct frame_texts ft = { 0 };
	struct line_set set = { 0 };
	struct strbuf line = STRBUF_INIT;
	struct sorted_line *sorted = NULL;
	int err;

	if (!opts)
		opts = &defaults;
	if (!p || !out || opts->value_index >= profile__value_count(p))
		return -EINVAL;

	set.index = hashmap__new();
	if (!set.index)
		return -ENOMEM;
	err = frame_texts__init(&ft, p);
	if (err)
		goto out;

	size_t nsamples = profile__sample_count(p);
	for (size_t i = 0; i < nsamples; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		uint64_t count = s->values[opts->value_index];
		if (!count)
			continue;
		err = build_line(p, s, &ft, opts, &line);
		if (!err)
			err = line_set__add(&set, line.data, line.len, count);
		if (err)
			goto out;
	}

	sorted = calloc(set.len ? set.len : 1, sizeof(*sorted));
	if (!sorted) {
		err = -ENOMEM;
		goto out;
	}
	size_t cursor = 0, n = 0;
	const void *key;
	size_t key_len;
	void *value;
	while (hashmap__next(set.index, &cursor, &key, &key_len, &value)) {
		sorted[n].text = key;
		sorted[n].len = key_len;
		sorted[n].count = set.counts[(uintptr_t)value - 1];
		n++;
	}
	if (n > 1) /* qsort's base must not be NULL, even for 0 items */
		qsort(sorted, n, sizeof(*sorted), sorted_line_cmp);
	for (size_t i = 0; i < n; i++) {
		fwrite(sorted[i].text, 1, sorted[i].len, out);
		fprintf(out, " %" PRIu64 "\n", sorted[i].count);
	}
	err = ferror(out) ? -EIO : 0;
out:
	free(sorted);
	strbuf__release(&line);
	hashmap__free(set.index);
	free(set.counts);
	frame_texts__release(&ft);
	return err;
}

/* ------------------------------------------------------------------ reader */

/* Parser state for one folded__read() call. */
struct folded_reader {
	struct profile *profile;    /* destination */
	int comm_prefix;            /* from folded_read_opts */
	size_t count_index;         /* value index that receives line counts */
	size_t line_no;             /* 1-based number of the current line */
	char *err;                  /* caller's error buffer, may be NULL */
	size_t errlen;              /* its size */
	uint32_t *frames;           /* frame ids of the current line */
	size_t frames_cap;          /* allocated entries of frames */
	const char **label_keys;    /* label keys of the current line */
	const char **label_values;  /* label values of the current line */
	size_t labels_cap;          /* allocated entries of both label arrays */
};

__attribute__((format(printf, 2, 3)))
static int reader_fail(struct folded_reader *r, const char *fmt, ...)
{
	if (r->err && r->errlen) {
		int n = snprintf(r->err, r->errlen, "line %zu: ", r->line_no);
		if (n >= 0 && (size_t)n < r->errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

/* Reads one line (without its line break) into line. Returns 1 for a line,
 * 0 at end of input, -EIO, -E2BIG past FOLDED_MAX_LINE, -EILSEQ at a NUL byte
 * (fgets() cannot tell one from the end of its buffer: "a 5\0x\nb 7" read as
 * one line "a 5b 7"), or -ENOMEM. */
static int read_line(FILE *in, struct strbuf *line)
{
	char chunk[4096];
	size_t n = 0;
	int got = 0, c;

	strbuf__reset(line);
	while ((c = getc_unlocked(in)) != EOF) {
		got = 1;
		if (c == '\n')
			break;
		if (c == '\0')
			return -EILSEQ;
		chunk[n++] = (char)c;
		if (n == sizeof(chunk) || line->len + n > FOLDED_MAX_LINE) {
			if (line->len + n > FOLDED_MAX_LINE)
				return -E2BIG;
			strbuf__append(line, chunk, n);
			n = 0;
			if (strbuf__error(line))
				return -ENOMEM;
		}
	}
	if (ferror(in))
		return -EIO;
	strbuf__append(line, chunk, n);
	if (strbuf__error(line))
		return -ENOMEM;
	if (got && line->len && line->data[line->len - 1] == '\r')
		line->data[--line->len] = '\0';
	return got;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/* Returns the position of the last occurrence of needle in s[0..len), or NULL. */
static char *last_occurrence(char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = len; i >= n; i--) {
		if (memcmp(s + i - n, needle, n) == 0)
			return s + i - n;
	}
	return NULL;
}

/* Parses a decimal unsigned integer filling all of s[0..len). */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!len)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		unsigned digit = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - digit) / 10)
			return -ERANGE;
		v = v * 10 + digit;
	}
	*out = v;
	return 0;
}

/* Splits a " (file:line)" / " (file)" suffix off a frame text of length len.
 * Returns 1 and fills desc when text is a Python frame; the text is cut in
 * place. Parentheses inside the suffix disqualify it, so C++ signatures such
 * as "f(void (*)(int))" stay native. */
static int parse_python_frame(char *text, size_t len, struct frame_desc *desc)
{
	if (!ends_with(text, len, ")"))
		return 0;
	char *open = last_occurrence(text, len - 1, " (");
	if (!open || open == text)
		return 0;
	char *loc = open + 2, *loc_end = text + len - 1;
	if (loc == loc_end || memchr(loc, '(', (size_t)(loc_end - loc)) ||
	    memchr(loc, ')', (size_t)(loc_end - loc)))
		return 0;

	*open = '\0';
	*loc_end = '\0';
	desc->kind = FRAME_PYTHON;
	desc->name = text;
	desc->file = loc;
	desc->line = 0;
	char *colon = strrchr(loc, ':');
	uint64_t line;
	if (colon && colon != loc &&
	    parse_u64(colon + 1, (size_t)(loc_end - colon - 1), &line) == 0 && line <= UINT32_MAX) {
		*colon = '\0';
		desc->line = (uint32_t)line;
	}
	return 1;
}

/* Classifies frame text (NUL-terminated, length len, modified in place). */
static void parse_frame(char *text, size_t len, struct frame_desc *desc)
{
	memset(desc, 0, sizeof(*desc));
	desc->kind = FRAME_NATIVE;
	desc->name = text;

	if (ends_with(text, len, "_[k]") && len > 4) {
		len -= 4;
		text[len] = '\0';
		desc->kind = FRAME_KERNEL;
		desc->module = "[kernel.kallsyms]";
		/* "name [module]" names a loadable module. */
		char *open = ends_with(text, len, "]") ? last_occurrence(text, len, " [") : NULL;
		if (open && open != text && open + 3 < text + len) {
			*open = '\0';
			text[len - 1] = '\0';
			desc->module = open + 2;
		}
		return;
	}
	if (text[0] == '[' && text[len - 1] == ']') {
		desc->kind = FRAME_SPECIAL;
		return;
	}
	parse_python_frame(text, len, desc);
}

/* If text is a tag frame "[key=value]", cuts it in place into key and value
 * and returns 1. */
static int parse_tag_frame(char *text, size_t len, char **key, char **value)
{
	if (len < 4 || text[0] != '[' || text[len - 1] != ']')
		return 0;
	char *eq = memchr(text + 1, '=', len - 2);
	if (!eq || eq == text + 1)
		return 0;
	*eq = '\0';
	text[len - 1] = '\0';
	*key = text + 1;
	*value = eq + 1;
	return 1;
}

static int reader_push_frame(struct folded_reader *r, size_t n, uint32_t id)
{
	if (n == r->frames_cap) {
		size_t cap = r->frames_cap ? r->frames_cap * 2 : 64;
		uint32_t *frames = realloc(r->frames, cap * sizeof(*frames));
		if (!frames)
			return -ENOMEM;
		r->frames = frames;
		r->frames_cap = cap;
	}
	r->frames[n] = id;
	return 0;
}

static int reader_push_label(struct folded_reader *r, size_t n, const char *key,
			     const char *value)
{
	if (n == r->labels_cap) {
		size_t cap = r->labels_cap ? r->labels_cap * 2 : 8;
		const char **keys = realloc(r->label_keys, cap * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		r->label_keys = keys;
		const char **values = realloc(r->label_values, cap * sizeof(*values));
		if (!values)
			return -ENOMEM;
		r->label_values = values;
		r->labels_cap = cap;
	}
	r->label_keys[n] = key;
	r->label_values[n] = value;
	return 0;
}

/* Parses one non-blank line (modified in place) and adds its sample. */
static int reader_parse_line(struct folded_reader *r, char *line, size_t len)
{
	/* The count follows the last blank; the stack keeps any other blanks. */
	size_t sep = len;
	while (sep > 0 && line[sep - 1] != ' ' && line[sep - 1] != '\t')
		sep--;
	if (sep == 0)
		return reader_fail(r, "missing sample count");
	uint64_t count;
	if (parse_u64(line + sep, len - sep, &count))
		return reader_fail(r, "bad sample count '%s'", line + sep);
	size_t stack_len = sep - 1;
	line[stack_len] = '\0';
	if (stack_len == 0)
		return reader_fail(r, "empty stack");

	const char *comm = NULL;
	size_t nframes = 0, nlabels = 0;
	int frames_started = 0;
	char *pos = line;
	for (;;) {
		char *semi = strchr(pos, ';');
		size_t flen = semi ? (size_t)(semi - pos) : strlen(pos);
		if (semi)
			*semi = '\0';
		if (flen == 0)
			return reader_fail(r, "empty frame");

		char *key, *value;
		int err = 0;
		if (!frames_started && parse_tag_frame(pos, flen, &key, &value)) {
			err = reader_push_label(r, nlabels++, key, value);
		} else if (r->comm_prefix && !comm && !frames_started) {
			comm = pos;
		} else {
			struct frame_desc desc;
			uint32_t id;
			frames_started = 1;
			parse_frame(pos, flen, &desc);
			err = profile__add_frame(r->profile, &desc, &id);
			if (!err)
				err = reader_push_frame(r, nframes++, id);
		}
		if (err)
			return err;
		if (!semi)
			break;
		pos = semi + 1;
	}

	uint64_t values[PROFILE_MAX_VALUES] = { 0 };
	values[r->count_index] = count;
	struct sample_desc sd = {
		.frames = r->frames,
		.nframes = (uint32_t)nframes,
		.comm = comm,
		.label_keys = r->label_keys,
		.label_values = r->label_values,
		.nlabels = (uint32_t)nlabels,
		.values = values,
	};
	return profile__add_sample(r->profile, &sd);
}

int folded__read(struct profile *p, FILE *in, const struct folded_read_opts *opts,
		 char *err, size_t errlen)
{
	const struct folded_read_opts defaults = FOLDED_READ_OPTS_INIT;
	struct strbuf line = STRBUF_INIT;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!opts)
		opts = &defaults;
	if (!p || !in)
		return -EINVAL;
	if (profile__value_count(p) == 0) {
		ret = profile__add_value_type(p, "samples", "count");
		if (ret < 0)
			return ret;
	}
	int samples = profile__find_value(p, "samples");

	struct folded_reader r = {
		.profile = p,
		.comm_prefix = opts->comm_prefix,
		.count_index = samples >= 0 ? (size_t)samples : 0,
		.err = err,
		.errlen = errlen,
	};
	for (;;) {
		r.line_no++;
		ret = read_line(in, &line);
		if (ret == -E2BIG) {
			ret = reader_fail(&r, "line longer than %u bytes", FOLDED_MAX_LINE);
			break;
		}
		if (ret == -EILSEQ) {
			ret = reader_fail(&r, "NUL byte: not folded text");
			break;
		}
		if (ret <= 0)
			break;
		size_t start = 0;
		while (start < line.len && (line.data[start] == ' ' || line.data[start] == '\t'))
			start++;
		if (start == line.len || line.data[start] == '#')
			continue;
		ret = reader_parse_line(&r, line.data, line.len);
		if (ret)
			break;
	}
	if (ret == -EIO && err && errlen)
		snprintf(err, errlen, "line %zu: read error", r.line_no);
	strbuf__release(&line);
	free(r.frames);
	free(r.label_keys);
	free(r.label_values);
	return ret;
}
