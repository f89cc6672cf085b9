// SPDX-License-Identifier: MIT
#include "formats/groups.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "formats/format.h"
#include "util/hashmap.h"
#include "util/strbuf.h"

/* Accumulator of one group while scanning samples. */
struct group_acc {
	struct group_row row;       /* figures so far */
	struct hashmap *self;       /* leaf frame id -> self samples (as uintptr_t) */
};

static void acc_free(struct group_acc *g)
{
	if (!g)
		return;
	free(g->row.key);
	free(g->row.top_function);
	hashmap__free(g->self);
	free(g);
}

static int row_cmp(const void *a, const void *b)
{
	const struct group_row *x = a, *y = b;
	if (x->samples != y->samples)
		return x->samples > y->samples ? -1 : 1;
	return strcmp(x->key, y->key);
}

int groups__compute(const struct profile *p, const char *const *keys, size_t nkeys,
		    struct group_row **rows_out, size_t *nrows_out)
{
	struct hashmap *groups = hashmap__new();
	struct strbuf key = STRBUF_INIT;
	int cpu = profile__find_value(p, "cpu");
	int samples_v = profile__find_value(p, "samples");
	int instr_v = profile__find_value(p, "instructions");
	int req_v = profile__find_value(p, "requests");
	uint64_t total = 0;
	int err = 0;

	if (!groups)
		return -ENOMEM;
	for (size_t i = 0; i < profile__sample_count(p) && !err; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		uint64_t n = s->values[samples_v >= 0 ? samples_v : 0];
		strbuf__reset(&key);
		for (size_t k = 0; k < nkeys; k++) {
			const char *v = profile__sample_label(p, s, keys[k]);
			strbuf__printf(&key, "%s%s", k ? ", " : "", v && *v ? v : "-");
		}
		if ((err = strbuf__error(&key)))
			break;
		struct group_acc *g = hashmap__get(groups, strbuf__str(&key), key.len);
		if (!g) {
			g = calloc(1, sizeof(*g));
			if (!g || !(g->row.key = strdup(strbuf__str(&key))) ||
			    !(g->self = hashmap__new()) ||
			    hashmap__put(groups, strbuf__str(&key), key.len, g, NULL)) {
				acc_free(g);
				err = -ENOMEM;
				break;
			}
		}
		g->row.samples += n;
		g->row.cpu_ns += cpu >= 0 ? s->values[cpu] : 0;
		g->row.instructions += instr_v >= 0 ? s->values[instr_v] : 0;
		g->row.requests += req_v >= 0 ? s->values[req_v] : 0;
		total += n;
		if (s->nframes && n) {
			uint32_t leaf = s->frames[s->nframes - 1];
			uintptr_t c = (uintptr_t)hashmap__get(g->self, &leaf, sizeof(leaf));
			if (hashmap__put(g->self, &leaf, sizeof(leaf), (void *)(c + n), NULL))
				err = -ENOMEM;
		}
	}
	strbuf__release(&key);

	size_t nrows = hashmap__size(groups), r = 0, cur = 0;
	struct group_row *rows = calloc(nrows ? nrows : 1, sizeof(*rows));
	void *v;
	if (!rows)
		err = -ENOMEM;
	while (hashmap__next(groups, &cur, NULL, NULL, &v)) {
		struct group_acc *g = v;
		if (!err) {
			/* Top function: the leaf with the most self samples. */
			size_t c2 = 0;
			const void *fk;
			void *fv;
			uint32_t best = 0;
			uintptr_t best_n = 0;
			while (hashmap__next(g->self, &c2, &fk, NULL, &fv)) {
				uint32_t id;
				memcpy(&id, fk, sizeof(id));
				if ((uintptr_t)fv > best_n || ((uintptr_t)fv == best_n && id < best)) {
					best_n = (uintptr_t)fv;
					best = id;
				}
			}
			struct strbuf name = STRBUF_INIT;
			if (best_n)
				frame__display(p, profile__frame(p, best), &name);
			g->row.top_function = strdup(best_n ? strbuf__str(&name) : "-");
			strbuf__release(&name);
			g->row.top_samples = best_n;
			g->row.share = total ? (double)g->row.samples / (double)total : 0;
			rows[r++] = g->row;
			g->row.key = NULL;
			g->row.top_function = NULL;
			if (!rows[r - 1].top_function)
				err = -ENOMEM;
		}
		acc_free(g);
	}
	hashmap__free(groups);
	if (err) {
		groups__free(rows, r);
		return err;
	}
	if (r > 1) /* qsort's base must not be NULL, even for 0 items */
		qsort(rows, r, sizeof(*rows), row_cmp);
	*rows_out = rows;
	*nrows_out = r;
	return 0;
}

void groups__free(struct group_row *rows, size_t nrows)
{
	for (size_t i = 0; rows && i < nrows; i++) {
		free(rows[i].key);
		free(rows[i].top_function);
	}
	free(rows);
}

int groups__print(const struct profile *p, FILE *out, const char *const *keys, size_t nkeys)
{
	struct group_row *rows;
	size_t n;
	int err = groups__compute(p, keys, nkeys, &rows, &n);
	if (err)
		return err;
	int with_requests = 0, with_instr = profile__find_value(p, "instructions") >= 0;
	for (size_t i = 0; i < n; i++)
		with_requests |= rows[i].requests > 0;
	struct strbuf head = STRBUF_INIT;
	for (size_t k = 0; k < nkeys; k++)
		strbuf__printf(&head, "%s%s", k ? ", " : "", keys[k]);
	fprintf(out, "%9s %7s %11s", "SAMPLES", "SHARE%", "CPU");
	if (with_instr)
		fprintf(out, " %16s", "INSTRUCTIONS");
	if (with_requests)
		fprintf(out, " %9s %12s", "REQUESTS", with_instr ? "INSTR/REQ" : "CPU-ms/REQ");
	fprintf(out, "  %-32s  %s\n", strbuf__str(&head), "TOP FUNCTION (self samples)");
	strbuf__release(&head);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%9" PRIu64 " %6.1f%% %10.3fs", rows[i].samples, rows[i].share * 100.0,
			(double)rows[i].cpu_ns / 1e9);
		if (with_instr)
			fprintf(out, " %16" PRIu64, rows[i].instructions);
		if (with_requests) {
			fprintf(out, " %9" PRIu64, rows[i].requests);
			if (!rows[i].requests)
				fprintf(out, " %12s", "-");
			else if (with_instr)
				fprintf(out, " %12.0f", (double)rows[i].instructions /
							 (double)rows[i].requests);
			else
				fprintf(out, " %12.3f", (double)rows[i].cpu_ns / 1e6 /
							 (double)rows[i].requests);
		}
		fprintf(out, "  %-32s  %s (%" PRIu64 ")\n", rows[i].key, rows[i].top_function,
			rows[i].top_samples);
	}
	groups__free(rows, n);
	return ferror(out) ? -EIO : 0;
}

int groups__parse_keys(char *text, const char **keys, size_t max)
{
	size_t n = 0;
	char *rest = text;
	/* strsep, not strtok: "a,,b", ",a" and "a," hold an empty key, refused. */
	for (char *tok; (tok = strsep(&rest, ","));) {
		if (n >= max || !*tok)
			return -EINVAL;
		keys[n++] = tok;
	}
	return n ? (int)n : -EINVAL;
}
