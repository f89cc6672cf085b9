/* counts.h - exact per-process and per-thread CPU time and counter totals of a
 * capture (the scheduler's per-task CPU time and the BPF counter sums), with per-tag breakdowns
 * taken from the profile's samples, as a table and as JSON (`--counts FILE`).
 */
#ifndef DYNOPROF_COUNTS_H
#define DYNOPROF_COUNTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "profile/profile.h"
#include "counts_abi.h" /* bpf/counts_abi.h: struct task_counts */

/* What the counter slots held during the capture. */
struct counts_units {
	bool instructions;   /* slot PRIMARY counted hardware instructions */
	bool cycles;         /* slot CYCLES counted hardware cycles */
	const char *primary_event; /* "instructions" or "cpu-clock" (the stand-in) */
	const char *reason;  /* why (one line, from the counter choice) */
};

struct counts_table;

struct counts_table *counts_table__new(void);
void counts_table__free(struct counts_table *t);

/* Adds a thread's totals (an exited thread's final counts, or a live thread's
 * at the end). A tid added twice keeps the larger totals. Returns 0 or -ENOMEM. */
int counts_table__add(struct counts_table *t, uint32_t tid, const struct task_counts *tc);

/* Rescales p's cpu values so that each process's samples sum to its exact
 * CPU time in t, keeping their shares (cpu_totals__apportion: the profile's
 * per-process totals become exact, its split by stack and tag stays
 * statistical). Returns 0, -EINVAL when p has no cpu values, or -ENOMEM. */
int counts_table__apportion(const struct counts_table *t, struct profile *p);

/* Prints the top n processes by CPU time: PID, COMM, CPU s, and instructions
 * and IPC where the counters exist. */
void counts_table__print_top(const struct counts_table *t, FILE *out, size_t n,
			     const struct counts_units *u);

/* Writes the JSON document: units, processes (each with threads), and per-tag
 * breakdowns computed from p's samples (cpu and instructions values summed by
 * each label key and value; `statistical: true` — see README). Returns 0 or
 * -errno. */
int counts_table__write_json(const struct counts_table *t, const struct profile *p,
			     const struct counts_units *u, FILE *out);

#endif
