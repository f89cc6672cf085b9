// SPDX-License-Identifier: MIT
/* metrics.c - the agent's Prometheus registry.
 *
 * A family is a name, a type, a help text and its series; a series is a
 * canonical label set (labels sorted by name, encoded as the hash key
 * "name\0value\0name\0value\0...") and a value. Byte order of those keys is
 * the lexicographic order of the label lists, so rendering sorts series by
 * comparing keys.
 *
 * Values are doubles, but a series whose every update was a non-negative
 * integer also keeps the exact 64-bit total: a counter of instructions passes
 * 2^53 within months on a busy host, and a double would start dropping
 * increments there.
 */
#include "agent/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

#define METRICS_DEFAULT_MAX_SERIES 1000
/* Label sets of one update (more is a caller bug, not data). */
#define METRICS_MAX_LABELS 16
#define OVERFLOW_FAMILY "dynoprof_metrics_overflow_total"
#define OVERFLOW_VALUE "__other__"

struct metric_series {
	char *key;         /* canonical label key (owned), see the file comment */
	size_t key_len;    /* bytes of key */
	double value;      /* current value */
	uint64_t exact;    /* exact value while is_exact (counts past 2^53) */
	bool is_exact;     /* every update so far was a non-negative integer */
};

struct metric_family {
	char *name;              /* family name (owned) */
	char *help;              /* help text, unescaped (owned) */
	enum metric_type type;   /* counter or gauge */
	struct hashmap *series;  /* label key -> struct metric_series */
	bool capped;             /* subject to the cardinality cap (all but the overflow family) */
};

struct metrics {
	pthread_mutex_t lock;      /* guards everything below */
	size_t max_series;         /* series per family before folding */
	struct hashmap *families;  /* name -> struct metric_family */
};

/* One label while building a key. */
struct label_ref {
	const char *name;   /* label name */
	const char *value;  /* label value ("" for NULL) */
};

static bool valid_name(const char *s, bool allow_colon)
{
	if (!s || !*s)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			     (allow_colon && c == ':');
		if (!alpha && !(p != s && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

static void series_free(struct metric_series *s)
{
	if (!s)
		return;
	free(s->key);
	free(s);
}

/* Empties f; on -ENOMEM f is unchanged. */
static int family_clear_series(struct metric_family *f)
{
	struct hashmap *empty = hashmap__new();
	if (!empty)
		return -ENOMEM;
	size_t cursor = 0;
	void *value;
	while (hashmap__next(f->series, &cursor, NULL, NULL, &value))
		series_free(value);
	hashmap__free(f->series);
	f->series = empty;
	return 0;
}

static void family_free(struct metric_family *f)
{
	if (!f)
		return;
	size_t cursor = 0;
	void *value;
	if (f->series) {
		while (hashmap__next(f->series, &cursor, NULL, NULL, &value))
			series_free(value);
		hashmap__free(f->series);
	}
	free(f->name);
	free(f->help);
	free(f);
}

static int declare_locked(struct metrics *m, const char *family, enum metric_type type,
			  const char *help, bool capped)
{
	if (!valid_name(family, true) || (type != METRIC_COUNTER && type != METRIC_GAUGE))
		return -EINVAL;
	struct metric_family *f = hashmap__get(m->families, family, strlen(family));
	if (f)
		return f->type == type ? 0 : -EEXIST;
	/* Prometheus naming: a counter's name ends in _total, a gauge's does
	 * not (rate() on a gauge, or a counter read as a level, is a user bug
	 * the name should prevent). */
	size_t len = strlen(family);
	bool total = len > 6 && !strcmp(family + len - 6, "_total");
	if (total != (type == METRIC_COUNTER))
		return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->name = strdup(family);
	f->help = strdup(help ? help : "");
	f->type = type;
	f->capped = capped;
	f->series = hashmap__new();
	if (!f->name || !f->help || !f->series ||
	    hashmap__put(m->families, family, strlen(family), f, NULL)) {
		family_free(f);
		return -ENOMEM;
	}
	return 0;
}

struct metrics *metrics__new(size_t max_series)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->max_series = max_series ? max_series : METRICS_DEFAULT_MAX_SERIES;
	m->families = hashmap__new();
	if (!m->families || pthread_mutex_init(&m->lock, NULL)) {
		hashmap__free(m->families);
		free(m);
		errno = ENOMEM;
		return NULL;
	}
	int err = declare_locked(m, OVERFLOW_FAMILY, METRIC_COUNTER,
				 "Updates folded into an __other__ series because their metric "
				 "family reached its series limit.",
				 false);
	if (err) {
		metrics__free(m);
		errno = -err;
		return NULL;
	}
	return m;
}

void metrics__free(struct metrics *m)
{
	if (!m)
		return;
	size_t cursor = 0;
	void *value;
	while (hashmap__next(m->families, &cursor, NULL, NULL, &value))
		family_free(value);
	hashmap__free(m->families);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int metrics__declare(struct metrics *m, const char *family, enum metric_type type,
		     const char *help)
{
	if (!m)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	int err = declare_locked(m, family, type, help, true);
	pthread_mutex_unlock(&m->lock);
	return err;
}

static int cmp_label_ref(const void *a, const void *b)
{
	return strcmp(((const struct label_ref *)a)->name, ((const struct label_ref *)b)->name);
}

/* Builds the canonical key of labels into *out (sorted by name), with every
 * value replaced by OVERFLOW_VALUE when fold_all, or only the endpoint's when
 * fold_endpoint. 0 or -EINVAL (bad or repeated label name) / -ENOMEM. */
static int build_key(const struct metric_label *labels, size_t nlabels, bool fold_all,
		     bool fold_endpoint, struct strbuf *out)
{
	struct label_ref refs[METRICS_MAX_LABELS];
	if (nlabels > METRICS_MAX_LABELS || (nlabels && !labels))
		return -EINVAL;
	for (size_t i = 0; i < nlabels; i++) {
		if (!valid_name(labels[i].name, false))
			return -EINVAL;
		refs[i].name = labels[i].name;
		refs[i].value = labels[i].value && *labels[i].value ? labels[i].value :
				METRICS_UNSET_VALUE;
		if (fold_all || (fold_endpoint && !strcmp(refs[i].name, "endpoint")))
			refs[i].value = OVERFLOW_VALUE;
	}
	if (nlabels > 1) /* qsort's base must not be NULL, even for 0 items */
		qsort(refs, nlabels, sizeof(refs[0]), cmp_label_ref);
	strbuf__reset(out);
	for (size_t i = 0; i < nlabels; i++) {
		if (i && !strcmp(refs[i - 1].name, refs[i].name))
			return -EINVAL;
		strbuf__append(out, refs[i].name, strlen(refs[i].name) + 1);
		strbuf__append(out, refs[i].value, strlen(refs[i].value) + 1);
	}
	return strbuf__error(out);
}

static struct metric_series *series_get_or_create(struct metric_family *f, const struct strbuf *key,
						  int *err)
{
	struct metric_series *s = hashmap__get(f->series, strbuf__str(key), key->len);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		goto nomem;
	s->is_exact = true;
	s->key_len = key->len;
	s->key = malloc(key->len ? key->len : 1);
	if (!s->key)
		goto nomem;
	if (key->len)
		memcpy(s->key, key->data, key->len);
	if (hashmap__put(f->series, s->key, s->key_len, s, NULL))
		goto nomem;
	return s;
nomem:
	series_free(s);
	*err = -ENOMEM;
	return NULL;
}

/* Finds (creating) the series an update of labels lands in: its own, or,
 * when the family is full, a folded one. Sets *folded. Hard bound: a family
 * holds at most 2 * max_series + 1 series (endpoint-folded series are created
 * up to twice the limit, the all-__other__ series after that). */
static struct metric_series *find_series(struct metrics *m, struct metric_family *f,
					 const struct metric_label *labels, size_t nlabels,
					 bool *folded, int *err)
{
	struct strbuf key = STRBUF_INIT;
	struct metric_series *s = NULL;
	*folded = false;
	*err = build_key(labels, nlabels, false, false, &key);
	if (*err)
		goto out;
	s = hashmap__get(f->series, strbuf__str(&key), key.len);
	if (s || !f->capped || hashmap__size(f->series) < m->max_series) {
		if (!s)
			s = series_get_or_create(f, &key, err);
		goto out;
	}
	*folded = true;
	bool has_endpoint = false;
	for (size_t i = 0; i < nlabels; i++)
		has_endpoint |= !strcmp(labels[i].name, "endpoint");
	if (has_endpoint) {
		*err = build_key(labels, nlabels, false, true, &key);
		if (*err)
			goto out;
		s = hashmap__get(f->series, strbuf__str(&key), key.len);
		if (s || hashmap__size(f->series) < 2 * m->max_series) {
			if (!s)
				s = series_get_or_create(f, &key, err);
			goto out;
		}
	}
	*err = build_key(labels, nlabels, true, false, &key);
	if (!*err)
		s = series_get_or_create(f, &key, err);
out:
	strbuf__release(&key);
	return *err ? NULL : s;
}

static bool exact_integer(double v)
{
	return v >= 0 && v < 18446744073709551616.0 && v == floor(v);
}

static void series_add(struct metric_series *s, double delta)
{
	if (s->is_exact && exact_integer(delta) && (uint64_t)delta <= UINT64_MAX - s->exact) {
		s->exact += (uint64_t)delta;
		s->value = (double)s->exact;
		return;
	}
	s->is_exact = false;
	s->value += delta;
}

static void series_set(struct metric_series *s, double value)
{
	s->value = value;
	s->is_exact = exact_integer(value);
	s->exact = s->is_exact ? (uint64_t)value : 0;
}

static void count_overflow(struct metrics *m, const char *family)
{
	struct metric_family *of = hashmap__get(m->families, OVERFLOW_FAMILY,
						strlen(OVERFLOW_FAMILY));
	struct metric_label label = { .name = "family", .value = family };
	bool folded;
	int err;
	struct metric_series *s = of ? find_series(m, of, &label, 1, &folded, &err) : NULL;
	if (s)
		series_add(s, 1);
}

enum update_op {
	UPDATE_ADD,
	UPDATE_SET,
};

static int update(struct metrics *m, const char *family, const struct metric_label *labels,
		  size_t nlabels, double value, enum update_op op)
{
	if (!m || !family)
		return -EINVAL;
	int err = 0;
	pthread_mutex_lock(&m->lock);
	struct metric_family *f = hashmap__get(m->families, family, strlen(family));
	if (!f) {
		err = -ENOENT;
		goto out;
	}
	/* Counters only go up: a negative or NaN delta, or a set below the
	 * current total, would make rate() see a reset that never happened. */
	if (f->type == METRIC_COUNTER && (!isfinite(value) || value < 0)) {
		err = -EINVAL;
		goto out;
	}
	bool folded;
	struct metric_series *s = find_series(m, f, labels, nlabels, &folded, &err);
	if (!s)
		goto out;
	if (op == UPDATE_SET && f->type == METRIC_COUNTER && value < s->value && !folded) {
		err = -EINVAL;
		goto out;
	}
	/* A folded gauge sums what it stands for: with the clear-then-set
	 * snapshot pattern, __other__ is the total of the endpoints cut off.
	 * A folded counter total can only keep the largest total it was given. */
	if (op == UPDATE_ADD || (folded && f->type == METRIC_GAUGE))
		series_add(s, value);
	else if (!(folded && value < s->value))
		series_set(s, value);
	if (folded)
		count_overflow(m, family);
out:
	pthread_mutex_unlock(&m->lock);
	return err;
}

int metrics__add(struct metrics *m, const char *family, const struct metric_label *labels,
		 size_t nlabels, double delta)
{
	return update(m, family, labels, nlabels, delta, UPDATE_ADD);
}

int metrics__set(struct metrics *m, const char *family, const struct metric_label *labels,
		 size_t nlabels, double value)
{
	return update(m, family, labels, nlabels, value, UPDATE_SET);
}

int metrics__clear(struct metrics *m, const char *family)
{
	if (!m || !family)
		return -EINVAL;
	int err = 0;
	pthread_mutex_lock(&m->lock);
	struct metric_family *f = hashmap__get(m->families, family, strlen(family));
	if (!f)
		err = -ENOENT;
	else if (f->type != METRIC_GAUGE)
		err = -EINVAL;
	else
		err = family_clear_series(f);
	pthread_mutex_unlock(&m->lock);
	return err;
}

/* Appends v the way Prometheus and people read it back: integers as
 * integers (no exponent below 1e21), others in the shortest form that
 * round-trips, and NaN / +Inf / -Inf. */
void metrics__format_value(struct strbuf *out, double v)
{
	if (isnan(v)) {
		strbuf__puts(out, "NaN");
		return;
	}
	if (isinf(v)) {
		strbuf__puts(out, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == 0) {
		strbuf__putc(out, '0'); /* also -0 */
		return;
	}
	if (v == floor(v) && fabs(v) < 1e21) {
		strbuf__printf(out, "%.0f", v);
		return;
	}
	char text[40];
	for (int precision = 15; precision <= 17; precision++) {
		snprintf(text, sizeof(text), "%.*g", precision, v);
		if (strtod(text, NULL) == v)
			break;
	}
	strbuf__puts(out, text);
}

static void escape_help(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			strbuf__puts(out, "\\\\");
		else if (*s == '\n')
			strbuf__puts(out, "\\n");
		else
			strbuf__putc(out, *s);
	}
}

static void escape_label_value(struct strbuf *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			strbuf__puts(out, "\\\\");
		else if (*s == '"')
			strbuf__puts(out, "\\\"");
		else if (*s == '\n')
			strbuf__puts(out, "\\n");
		else
			strbuf__putc(out, *s);
	}
}

static int cmp_family(const void *a, const void *b)
{
	const struct metric_family *fa = *(const struct metric_family *const *)a;
	const struct metric_family *fb = *(const struct metric_family *const *)b;
	return strcmp(fa->name, fb->name);
}

static int cmp_series(const void *a, const void *b)
{
	const struct metric_series *sa = *(const struct metric_series *const *)a;
	const struct metric_series *sb = *(const struct metric_series *const *)b;
	size_t n = sa->key_len < sb->key_len ? sa->key_len : sb->key_len;
	int c = n ? memcmp(sa->key, sb->key, n) : 0;
	if (c)
		return c;
	return sa->key_len < sb->key_len ? -1 : sa->key_len > sb->key_len;
}

static void render_series(struct strbuf *out, const struct metric_family *f,
			  const struct metric_series *s)
{
	strbuf__puts(out, f->name);
	if (s->key_len) {
		strbuf__putc(out, '{');
		const char *p = s->key, *end = s->key + s->key_len;
		bool first = true;
		while (p < end) {
			const char *name = p;
			const char *value = name + strlen(name) + 1;
			p = value + strlen(value) + 1;
			if (!first)
				strbuf__putc(out, ',');
			first = false;
			strbuf__puts(out, name);
			strbuf__puts(out, "=\"");
			escape_label_value(out, value);
			strbuf__putc(out, '"');
		}
		strbuf__putc(out, '}');
	}
	strbuf__putc(out, ' ');
	if (s->is_exact)
		strbuf__printf(out, "%" PRIu64, s->exact);
	else
		metrics__format_value(out, s->value);
	strbuf__putc(out, '\n');
}

int metrics__render(struct metrics *m, struct strbuf *out)
{
	if (!m || !out)
		return -EINVAL;
	int err = 0;
	struct metric_family **families = NULL;
	struct metric_series **series = NULL;
	pthread_mutex_lock(&m->lock);
	size_t nfamilies = hashmap__size(m->families), n = 0;
	families = calloc(nfamilies ? nfamilies : 1, sizeof(*families));
	if (!families) {
		err = -ENOMEM;
		goto out;
	}
	size_t cursor = 0;
	void *value;
	while (hashmap__next(m->families, &cursor, NULL, NULL, &value))
		families[n++] = value;
	if (n > 1) /* qsort's base must not be NULL, even for 0 items */
		qsort(families, n, sizeof(*families), cmp_family);
	for (size_t i = 0; i < n; i++) {
		const struct metric_family *f = families[i];
		size_t nseries = hashmap__size(f->series), k = 0;
		/* A family without series says nothing; its HELP alone would
		 * only show up as an empty metric in Prometheus. */
		if (!nseries)
			continue;
		free(series);
		series = calloc(nseries, sizeof(*series));
		if (!series) {
			err = -ENOMEM;
			goto out;
		}
		cursor = 0;
		while (hashmap__next(f->series, &cursor, NULL, NULL, &value))
			series[k++] = value;
		if (k > 1) /* qsort's base must not be NULL, even for 0 items */
			qsort(series, k, sizeof(*series), cmp_series);
		strbuf__printf(out, "# HELP %s ", f->name);
		escape_help(out, f->help);
		strbuf__printf(out, "\n# TYPE %s %s\n", f->name,
			       f->type == METRIC_COUNTER ? "counter" : "gauge");
		for (size_t j = 0; j < k; j++)
			render_series(out, f, series[j]);
	}
	err = strbuf__error(out);
out:
	pthread_mutex_unlock(&m->lock);
	free(series);
	free(families);
	return err;
}
