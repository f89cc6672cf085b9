/* apportion.h - exact per-process CPU totals spread over a profile's samples.
 *
 * Two facts are known about a process's CPU time and neither alone answers
 * "how much CPU did /checkout use": the scheduler's exact per-thread sum (how
 * much in all), and the samples (where it went: stacks and tags). A sampling
 * timer hits every nanosecond of CPU with the same chance, so the samples'
 * period weights split a process's time between stacks and tags without bias.
 * Apportioning keeps those shares and rescales each process's samples to its
 * exact total.
 *
 * Why samples do not simply carry the exact time accrued since the thread's
 * previous sample: the scheduler brings its sum up to date only at ticks and
 * switches, so that amount lags the sample by up to a tick (4 ms at HZ=250).
 * A request shorter than that would hand its own time to whatever the thread
 * runs at its next sample: a bias against short requests, not just noise.
 */
#ifndef DYNOPROF_APPORTION_H
#define DYNOPROF_APPORTION_H

#include <stddef.h>
#include <stdint.h>

#include "profile/profile.h"

/* The frame of a synthetic sample that carries a process's CPU time no
 * stack sample took (a process that ran too briefly to be sampled, or the
 * time a thread ran between its last sample and its exit): its samples and
 * cpu values are 0 until apportioned. */
#define CPU_UNSAMPLED_FRAME "[unsampled]"

/* Exact CPU totals per process (pid -> ns). Memory grows with the processes
 * added; cpu_totals__clear() empties it. Not thread-safe. */
struct cpu_totals;

/* Returns an empty table, or NULL with errno set. */
struct cpu_totals *cpu_totals__new(void);

/* Accepts NULL. */
void cpu_totals__free(struct cpu_totals *t);

/* Adds ns to process pid's total. Returns 0 or -ENOMEM. */
int cpu_totals__add(struct cpu_totals *t, uint32_t pid, uint64_t ns);

/* Adds ns to process pid's total, carried by one stack sample of it. Returns
 * 0 or -ENOMEM. */
int cpu_totals__add_sample(struct cpu_totals *t, uint32_t pid, uint64_t ns);

/* Process pid's total, 0 when it has none. */
uint64_t cpu_totals__get(const struct cpu_totals *t, uint32_t pid);

/* Stack samples of pid added with cpu_totals__add_sample. */
uint64_t cpu_totals__samples(const struct cpu_totals *t, uint32_t pid);

/* Non-zero when s is a synthetic sample (one CPU_UNSAMPLED_FRAME frame). */
int cpu_totals__is_unsampled(const struct profile *p, const struct profile_sample *s);

/* Forgets every total. */
void cpu_totals__clear(struct cpu_totals *t);

/* Rescales p's "cpu" values so that each process with a total in t sums to
 * it, every sample keeping its share of the process's cpu weight (the rounding
 * is carried from sample to sample, so the sum is exactly the total).
 * A process whose samples all weigh 0 has no share to keep: its total goes
 * to its [unsampled] samples (split evenly; see CPU_UNSAMPLED_FRAME), and
 * other weightless samples (e.g. request counts) stay at 0. Processes without
 * a total, or with neither weight nor [unsampled] samples, are left as they are. Returns 0, -EINVAL when p has no "cpu" value
 * type, or -ENOMEM. */
int cpu_totals__apportion(const struct cpu_totals *t, struct profile *p);

/* Apportions pid's total over its samples in p now (as cpu_totals__apportion
 * does), leaves those samples alone from then on (until cpu_totals__clear),
 * and forgets pid's total: what pid gets later is a new process's when the
 * pid was reused (its first process's samples keep their own time). Returns
 * 0, -EINVAL when p has no "cpu" value type, or -ENOMEM. */
int cpu_totals__seal(struct cpu_totals *t, struct profile *p, uint32_t pid);

#endif
