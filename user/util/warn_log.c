// SPDX-License-Identifier: MIT
#include "util/warn_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_GAP 64
#define OTHER_KIND "other warnings"

/* One kind of warning. */
struct warn_kind {
	char *text;                   /* the kind (owned) */
	int named[WARN_LOG_NAMED];    /* subjects said */
	unsigned nnamed;              /* entries of named used */
	uint64_t pending;             /* counted since the last summary */
	uint64_t next_call;           /* summary call from which it may be said */
	unsigned gap;                 /* calls until the next one after that */
};

struct warn_log {
	FILE *out;                    /* NULL: count only */
	unsigned max_gap;             /* cap of gap */
	uint64_t calls;               /* summary calls so far */
	uint64_t counted;             /* all counted occurrences */
	struct warn_kind kinds[WARN_LOG_MAX_KINDS + 1]; /* the last: OTHER_KIND */
	unsigned nkinds;              /* kinds used, OTHER_KIND excluded */
};

struct warn_log *warn_log__new(FILE *out, unsigned max_gap)
{
	struct warn_log *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->out = out;
	w->max_gap = max_gap ? max_gap : DEFAULT_MAX_GAP;
	w->kinds[WARN_LOG_MAX_KINDS].text = strdup(OTHER_KIND);
	if (!w->kinds[WARN_LOG_MAX_KINDS].text) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	for (unsigned i = 0; i <= WARN_LOG_MAX_KINDS; i++)
		w->kinds[i].gap = 1;
	return w;
}

void warn_log__free(struct warn_log *w)
{
	if (!w)
		return;
	for (unsigned i = 0; i <= WARN_LOG_MAX_KINDS; i++)
		free(w->kinds[i].text);
	free(w);
}

/* The kind's entry, added when new; the "other" entry when full or out of
 * memory. */
static struct warn_kind *find_kind(struct warn_log *w, const char *kind)
{
	for (unsigned i = 0; i < w->nkinds; i++)
		if (!strcmp(w->kinds[i].text, kind))
			return &w->kinds[i];
	if (w->nkinds < WARN_LOG_MAX_KINDS) {
		struct warn_kind *k = &w->kinds[w->nkinds];
		k->text = strdup(kind);
		if (k->text) {
			w->nkinds++;
			return k;
		}
	}
	return &w->kinds[WARN_LOG_MAX_KINDS];
}

int warn_log__say(struct warn_log *w, const char *kind, int subject, const char *fmt, ...)
{
	if (!w || !kind)
		return 0;
	struct warn_kind *k = find_kind(w, kind);
	int seen = 0;
	for (unsigned i = 0; i < k->nnamed; i++)
		seen |= k->named[i] == subject;
	if (seen || k->nnamed >= WARN_LOG_NAMED || k == &w->kinds[WARN_LOG_MAX_KINDS]) {
		k->pending++;
		w->counted++;
		return 0;
	}
	k->named[k->nnamed++] = subject;
	if (w->out && fmt) {
		va_list ap;
		va_start(ap, fmt);
		vfprintf(w->out, fmt, ap);
		va_end(ap);
		fputc('\n', w->out);
		fflush(w->out);
	}
	return 1;
}

int warn_log__summary(struct warn_log *w, const char *prefix, const char *suffix, int force)
{
	if (!w)
		return 0;
	int said = 0;
	uint64_t call = w->calls++;
	for (unsigned i = 0; i <= WARN_LOG_MAX_KINDS; i++) {
		struct warn_kind *k = &w->kinds[i];
		if (!k->pending || (!force && call < k->next_call))
			continue;
		if (w->out)
			fprintf(w->out, "%s: %" PRIu64 " more: %s%s%s%s\n", prefix ? prefix : "dynoprof",
				k->pending, k->text, suffix ? " (" : "", suffix ? suffix : "",
				suffix ? ")" : "");
		said++;
		k->pending = 0;
		k->next_call = call + k->gap;
		k->gap = k->gap * 2 > w->max_gap ? w->max_gap : k->gap * 2;
	}
	if (said && w->out)
		fflush(w->out);
	return said;
}

uint64_t warn_log__counted(const struct warn_log *w)
{
	return w ? w->counted : 0;
}
