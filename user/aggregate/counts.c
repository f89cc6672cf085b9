// SPDX-License-Identifier: MIT
#include "aggregate/counts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "aggregate/apportion.h"
#include "util/hashmap.h"
#include "util/strbuf.h"

/* One thread's totals. */
struct thread_row {
	uint32_t tid;       /* thread id */
	uint32_t pid;       /* its process */
	uint64_t cpu_ns;    /* on-CPU ns */
	uint64_t primary;   /* slot PRIMARY total */
	uint64_t cycles;    /* slot CYCLES total */
	char comm[PROFILE_COMM_LEN + 1]; /* thread name */
};

/* One process's totals, the sum of its threads. */
struct process_row {
	uint32_t pid;
	uint64_t cpu_ns;
	uint64_t primary;
	uint64_t cycles;
	char comm[PROFILE_COMM_LEN + 1]; /* main thread's name, else the first seen */
	size_t nthreads;
};

struct counts_table {
	struct hashmap *threads; /* tid -> struct thread_row* */
};

struct counts_table *counts_table__new(void)
{
	struct counts_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->threads = hashmap__new();
	if (!t->threads) {
		free(t);
		return NULL;
	}
	return t;
}

void counts_table__free(struct counts_table *t)
{
	if (!t)
		return;
	size_t cur = 0;
	void *v;
	while (hashmap__next(t->threads, &cur, NULL, NULL, &v))
		free(v);
	hashmap__free(t->threads);
	free(t);
}

int counts_table__add(struct counts_table *t, uint32_t tid, const struct task_counts *tc)
{
	struct thread_row *r = hashmap__get(t->threads, &tid, sizeof(tid));
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r || hashmap__put(t->threads, &tid, sizeof(tid), r, NULL)) {
			free(r);
			return -ENOMEM;
		}
		r->tid = tid;
	}
	/* A pid reused by a new thread of another process: the new one wins. */
	if (r->pid != tc->pid || tc->cpu_ns >= r->cpu_ns) {
		r->pid = tc->pid;
		r->cpu_ns = tc->cpu_ns;
		r->primary = tc->counters[COUNTER_PRIMARY];
		r->cycles = tc->counters[COUNTER_CYCLES];
		memcpy(r->comm, tc->comm, PROFILE_COMM_LEN);
		r->comm[PROFILE_COMM_LEN] = '\0';
	}
	return 0;
}

/* Builds the per-process rows, sorted by CPU time (largest first). */
static struct process_row *processes(const struct counts_table *t, size_t *n_out)
{
	struct hashmap *by_pid = hashmap__new();
	size_t n = 0, cur = 0;
	void *v;
	struct process_row *rows = calloc(hashmap__size(t->threads) + 1, sizeof(*rows));
	if (!by_pid || !rows) {
		hashmap__free(by_pid);
		free(rows);
		return NULL;
	}
	while (hashmap__next(t->threads, &cur, NULL, NULL, &v)) {
		const struct thread_row *tr = v;
		uintptr_t idx = (uintptr_t)hashmap__get(by_pid, &tr->pid, sizeof(tr->pid));
		if (!idx) {
			idx = ++n;
			if (hashmap__put(by_pid, &tr->pid, sizeof(tr->pid), (void *)idx, NULL)) {
				hashmap__free(by_pid);
				free(rows);
				return NULL;
			}
			rows[idx - 1].pid = tr->pid;
			memcpy(rows[idx - 1].comm, tr->comm, sizeof(tr->comm));
		}
		struct process_row *pr = &rows[idx - 1];
		pr->cpu_ns += tr->cpu_ns;
		pr->primary += tr->primary;
		pr->cycles += tr->cycles;
		pr->nthreads++;
		if (tr->tid == tr->pid)
			memcpy(pr->comm, tr->comm, sizeof(tr->comm));
	}
	hashmap__free(by_pid);
	for (size_t i = 1; i < n; i++) /* insertion sort: n is small */
		for (size_t j = i; j > 0 && rows[j].cpu_ns > rows[j - 1].cpu_ns; j--) {
			struct process_row tmp = rows[j];
			rows[j] = rows[j - 1];
			rows[j - 1] = tmp;
		}
	*n_out = n;
	return rows;
}

int counts_table__apportion(const struct counts_table *t, struct profile *p)
{
	struct cpu_totals *totals = cpu_totals__new();
	if (!totals)
		return -ENOMEM;
	size_t cur = 0;
	void *v;
	int err = 0;
	while (!err && hashmap__next(t->threads, &cur, NULL, NULL, &v)) {
		const struct thread_row *tr = v;
		err = cpu_totals__add(totals, tr->pid, tr->cpu_ns);
	}
	if (!err)
		err = cpu_totals__apportion(totals, p);
	cpu_totals__free(totals);
	return err;
}

void counts_table__print_top(const struct counts_table *t, FILE *out, size_t top,
			     const struct counts_units *u)
{
	size_t n = 0;
	struct process_row *rows = processes(t, &n);
	if (!rows)
		return;
	fprintf(out, "%8s  %-16s %10s %16s %6s\n", "PID", "COMM", "CPU-s",
		u->instructions ? "INSTRUCTIONS" : "", u->instructions && u->cycles ? "IPC" : "");
	for (size_t i = 0; i < n && i < top; i++) {
		fprintf(out, "%8u  %-16s %10.3f", rows[i].pid, rows[i].comm, rows[i].cpu_ns / 1e9);
		if (u->instructions)
			fprintf(out, " %16" PRIu64, rows[i].primary);
		if (u->instructions && u->cycles && rows[i].cycles)
			fprintf(out, " %6.2f", (double)rows[i].primary / (double)rows[i].cycles);
		fputc('\n', out);
	}
	free(rows);
}

static void json_counter(struct strbuf *sb, const char *name, bool present, uint64_t v)
{
	if (present)
		strbuf__printf(sb, ", \"%s\": %" PRIu64, name, v);
	else
		strbuf__printf(sb, ", \"%s\": null", name);
}

/* Appends {"KEY": {"VALUE": {"samples", "cpu_ns", "instructions"}}} from p. */
static int tag_breakdown(const struct profile *p, const struct counts_units *u,
			 struct strbuf *sb)
{
	int vs = profile__find_value(p, "samples"), vc = profile__find_value(p, "cpu");
	int vi = profile__find_value(p, "instructions");
	struct hashmap *keys = hashmap__new();
	if (!keys)
		return -ENOMEM;
	/* Collect label keys. */
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		for (uint32_t l = 0; l < s->nlabels; l++)
			hashmap__put(keys, &s->labels[l].key, sizeof(uint32_t), (void *)1, NULL);
	}
	strbuf__puts(sb, "{");
	size_t cur = 0, nk = 0;
	const void *kp;
	while (hashmap__next(keys, &cur, &kp, NULL, NULL)) {
		uint32_t key;
		memcpy(&key, kp, sizeof(key));
		struct hashmap *vals = hashmap__new(); /* value id -> uint64_t[3] */
		if (!vals)
			break;
		for (size_t i = 0; i < profile__sample_count(p); i++) {
			const struct profile_sample *s = profile__sample(p, i);
			for (uint32_t l = 0; l < s->nlabels; l++) {
				if (s->labels[l].key != key)
					continue;
				uint64_t *acc = hashmap__get(vals, &s->labels[l].value, sizeof(uint32_t));
				if (!acc) {
					acc = calloc(3, sizeof(uint64_t));
					if (!acc || hashmap__put(vals, &s->labels[l].value,
								 sizeof(uint32_t), acc, NULL)) {
						free(acc);
						continue;
					}
				}
				acc[0] += vs >= 0 ? s->values[vs] : 0;
				acc[1] += vc >= 0 ? s->values[vc] : 0;
				acc[2] += vi >= 0 ? s->values[vi] : 0;
			}
		}
		strbuf__puts(sb, nk++ ? ", " : "");
		strbuf__json_string(sb, profile__str(p, key));
		strbuf__puts(sb, ": {");
		size_t c2 = 0, nv = 0;
		const void *vk;
		void *vv;
		while (hashmap__next(vals, &c2, &vk, NULL, &vv)) {
			uint32_t value;
			uint64_t *acc = vv;
			memcpy(&value, vk, sizeof(value));
			strbuf__puts(sb, nv++ ? ", " : "");
			strbuf__json_string(sb, profile__str(p, value));
			strbuf__printf(sb, ": {\"samples\": %" PRIu64 ", \"cpu_ns\": %" PRIu64,
				       acc[0], acc[1]);
			json_counter(sb, "instructions", u->instructions, acc[2]);
			strbuf__puts(sb, "}");
			free(acc);
		}
		hashmap__free(vals);
		strbuf__puts(sb, "}");
	}
	strbuf__puts(sb, "}");
	hashmap__free(keys);
	return strbuf__error(sb);
}

int counts_table__write_json(const struct counts_table *t, const struct profile *p,
			     const struct counts_units *u, FILE *out)
{
	struct strbuf sb = STRBUF_INIT;
	size_t n = 0;
	struct process_row *rows = processes(t, &n);
	if (!rows)
		return -ENOMEM;
	strbuf__puts(&sb, "{\n  \"units\": {\"cpu\": \"cpu_ns\", \"counter_event\": ");
	strbuf__json_string(&sb, u->primary_event ? u->primary_event : "none");
	strbuf__printf(&sb, ", \"instructions\": %s, \"cycles\": %s, \"reason\": ",
		       u->instructions ? "true" : "false", u->cycles ? "true" : "false");
	strbuf__json_string(&sb, u->reason ? u->reason : "");
	strbuf__puts(&sb, "},\n  \"processes\": [\n");
	for (size_t i = 0; i < n; i++) {
		const struct process_row *pr = &rows[i];
		strbuf__printf(&sb, "    {\"pid\": %u, \"comm\": ", pr->pid);
		strbuf__json_string(&sb, pr->comm);
		strbuf__printf(&sb, ", \"cpu_ns\": %" PRIu64, pr->cpu_ns);
		json_counter(&sb, "instructions", u->instructions, pr->primary);
		json_counter(&sb, "cycles", u->cycles, pr->cycles);
		if (!u->instructions && u->primary_event && !strcmp(u->primary_event, "cpu-clock"))
			strbuf__printf(&sb, ", \"counter_value\": %" PRIu64, pr->primary);
		strbuf__puts(&sb, ", \"threads\": [");
		size_t cur = 0, k = 0;
		void *v;
		while (hashmap__next(t->threads, &cur, NULL, NULL, &v)) {
			const struct thread_row *tr = v;
			if (tr->pid != pr->pid)
				continue;
			strbuf__printf(&sb, "%s{\"tid\": %u, \"comm\": ", k++ ? ", " : "", tr->tid);
			strbuf__json_string(&sb, tr->comm);
			strbuf__printf(&sb, ", \"cpu_ns\": %" PRIu64, tr->cpu_ns);
			json_counter(&sb, "instructions", u->instructions, tr->primary);
			json_counter(&sb, "cycles", u->cycles, tr->cycles);
			strbuf__puts(&sb, "}");
		}
		strbuf__printf(&sb, "]}%s\n", i + 1 < n ? "," : "");
	}
	strbuf__puts(&sb, "  ],\n  \"tags\": {\"statistical\": true, \"by\": ");
	int err = p ? tag_breakdown(p, u, &sb) : (strbuf__puts(&sb, "{}"), 0);
	strbuf__puts(&sb, "}\n}\n");
	free(rows);
	if (!err)
		err = strbuf__error(&sb);
	if (!err && fwrite(sb.data, 1, sb.len, out) != sb.len)
		err = -EIO;
	strbuf__release(&sb);
	return err;
}
