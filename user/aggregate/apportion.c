// SPDX-License-Identifier: MIT
#include "aggregate/apportion.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

/* One process's share keeping, while apportioning. */
struct share {
	uint64_t total;    /* exact ns the samples must sum to */
	uint64_t weight;   /* sum of the samples' weights (value v before) */
	uint64_t seen;     /* weight of the samples rescaled so far */
	uint64_t assigned; /* ns handed to them */
	uint64_t unsampled;/* its [unsampled] samples (they take the total when
			    * the process's samples weigh nothing) */
	uint64_t unsampled_seen; /* of those, rescaled so far */
};

/* One process's sums. */
struct pid_total {
	uint64_t ns;       /* exact ns */
	uint64_t samples;  /* stack samples that carried some of it */
};

struct cpu_totals {
	struct hashmap *by_pid; /* pid -> struct pid_total * (owned) */
	struct hashmap *sealed; /* sample index -> (void *)1: apportioned by
				 * cpu_totals__seal, left alone from then on */
};

struct cpu_totals *cpu_totals__new(void)
{
	struct cpu_totals *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->by_pid = hashmap__new();
	t->sealed = hashmap__new();
	if (!t->by_pid || !t->sealed) {
		hashmap__free(t->by_pid);
		hashmap__free(t->sealed);
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

/* Frees map and the values it owns. Accepts NULL. */
static void free_map_and_values(struct hashmap *map)
{
	size_t cursor = 0;
	void *v;
	while (map && hashmap__next(map, &cursor, NULL, NULL, &v))
		free(v);
	hashmap__free(map);
}

void cpu_totals__clear(struct cpu_totals *t)
{
	free_map_and_values(t->by_pid);
	t->by_pid = hashmap__new(); /* NULL: add fails with -ENOMEM, get finds nothing */
	hashmap__free(t->sealed);
	t->sealed = hashmap__new(); /* NULL: seal fails with -ENOMEM */
}

void cpu_totals__free(struct cpu_totals *t)
{
	if (!t)
		return;
	free_map_and_values(t->by_pid);
	hashmap__free(t->sealed);
	free(t);
}

static int add(struct cpu_totals *t, uint32_t pid, uint64_t ns, uint64_t samples)
{
	if (!t->by_pid)
		return -ENOMEM; /* a clear could not get a new map */
	struct pid_total *sum = hashmap__get(t->by_pid, &pid, sizeof(pid));
	if (!sum) {
		sum = calloc(1, sizeof(*sum));
		if (!sum || hashmap__put(t->by_pid, &pid, sizeof(pid), sum, NULL)) {
			free(sum);
			return -ENOMEM;
		}
	}
	sum->ns += ns;
	sum->samples += samples;
	return 0;
}

int cpu_totals__add(struct cpu_totals *t, uint32_t pid, uint64_t ns)
{
	return add(t, pid, ns, 0);
}

int cpu_totals__add_sample(struct cpu_totals *t, uint32_t pid, uint64_t ns)
{
	return add(t, pid, ns, 1);
}

uint64_t cpu_totals__get(const struct cpu_totals *t, uint32_t pid)
{
	const struct pid_total *sum = t->by_pid ? hashmap__get(t->by_pid, &pid, sizeof(pid)) : NULL;
	return sum ? sum->ns : 0;
}

uint64_t cpu_totals__samples(const struct cpu_totals *t, uint32_t pid)
{
	const struct pid_total *sum = t->by_pid ? hashmap__get(t->by_pid, &pid, sizeof(pid)) : NULL;
	return sum ? sum->samples : 0;
}

int cpu_totals__is_unsampled(const struct profile *p, const struct profile_sample *s)
{
	return s->nframes == 1 &&
	       strcmp(profile__str(p, profile__frame(p, s->frames[0])->name),
		      CPU_UNSAMPLED_FRAME) == 0;
}

static int is_sealed(const struct cpu_totals *t, size_t i)
{
	return t->sealed && hashmap__get(t->sealed, &i, sizeof(i)) != NULL;
}

/* Apportions the samples of every process (only_pid 0) or of only_pid,
 * skipping sealed samples; with seal, marks those it rescaled sealed. */
static int apportion(const struct cpu_totals *t, struct profile *p, uint32_t only_pid,
		     struct hashmap *seal)
{
	int found = profile__find_value(p, "cpu");
	if (found < 0)
		return -EINVAL;
	size_t v = (size_t)found;
	struct hashmap *shares = hashmap__new();
	if (!shares)
		return -ENOMEM;
	/* First pass: each process's weight. */
	int err = 0;
	for (size_t i = 0; i < profile__sample_count(p) && !err; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		if ((only_pid && s->pid != only_pid) || is_sealed(t, i))
			continue;
		uint64_t total = cpu_totals__get(t, s->pid);
		if (!total)
			continue;
		struct share *sh = hashmap__get(shares, &s->pid, sizeof(s->pid));
		if (!sh) {
			sh = calloc(1, sizeof(*sh));
			if (!sh || hashmap__put(shares, &s->pid, sizeof(s->pid), sh, NULL)) {
				free(sh);
				err = -ENOMEM;
				break;
			}
			sh->total = total;
		}
		sh->weight += s->values[v];
		if (!s->values[v] && cpu_totals__is_unsampled(p, s))
			sh->unsampled++;
	}
	/* Second pass: sample k of a process gets the rounded-down exact share of
	 * everything up to and including it, minus what its predecessors got, so
	 * no rounding error accumulates and the last one brings the sum to total. */
	for (size_t i = 0; i < profile__sample_count(p) && !err; i++) {
		uint32_t pid = profile__sample(p, i)->pid;
		struct share *sh = hashmap__get(shares, &pid, sizeof(pid));
		if (!sh || (only_pid && pid != only_pid) || is_sealed(t, i))
			continue;
		if (seal && hashmap__put(seal, &i, sizeof(i), (void *)1, NULL)) {
			err = -ENOMEM;
			break;
		}
		uint64_t *values = profile__sample_values(p, i);
		if (!sh->weight) {
			/* No sample of it weighs anything: its [unsampled] samples
			 * (one per label set) share the total evenly. */
			if (!sh->unsampled || !cpu_totals__is_unsampled(p, profile__sample(p, i)))
				continue;
			sh->unsampled_seen++;
			uint64_t upto = (uint64_t)((unsigned __int128)sh->total * sh->unsampled_seen /
						   sh->unsampled);
			values[v] = upto - sh->assigned;
			sh->assigned = upto;
			continue;
		}
		sh->seen += values[v];
		uint64_t upto = (uint64_t)((unsigned __int128)sh->total * sh->seen / sh->weight);
		values[v] = upto - sh->assigned;
		sh->assigned = upto;
	}
	free_map_and_values(shares);
	return err;
}

int cpu_totals__apportion(const struct cpu_totals *t, struct profile *p)
{
	return apportion(t, p, 0, NULL);
}

int cpu_totals__seal(struct cpu_totals *t, struct profile *p, uint32_t pid)
{
	if (!t->sealed || !t->by_pid)
		return -ENOMEM;
	int err = pid ? apportion(t, p, pid, t->sealed) : 0;
	free(hashmap__remove(t->by_pid, &pid, sizeof(pid)));
	return err;
}
