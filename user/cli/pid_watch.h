/* pid_watch.h - the processes `record -p` was given and their descendants,
 * with their CPU time at the start: says at the start that children are left
 * out (without --children), and why a capture got no samples at the end. */
#ifndef DYNOPROF_PID_WATCH_H
#define DYNOPROF_PID_WATCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "capture/descendants.h"

struct pid_watch {
	struct pid_set procs; /* the given processes first, then their descendants */
	size_t nroots;        /* how many of procs were given (-p) */
	uint64_t *start_ns;   /* CPU time of procs[i] at the start; UINT64_MAX: unreadable */
	bool walk_cut;        /* more than DESCENDANTS_MAX descendants: the rest unseen */
};

/* Takes the processes and their live descendants with their CPU time now.
 * Returns 0 or -errno (-ENOMEM); w is zeroed first. */
int pid_watch__start(struct pid_watch *w, const uint32_t *roots, size_t nroots);

/* Without --children: one note naming the child processes that will not be
 * profiled (nothing when there are none). */
void pid_watch__note_children(const struct pid_watch *w, FILE *out);

/* After a capture with no samples: one line saying why it might have none
 * (the given processes used no CPU but their children did: --children; too
 * little CPU for the rate; or no CPU at all). */
void pid_watch__explain_no_samples(const struct pid_watch *w, bool children, unsigned freq_hz,
				   double elapsed_s, FILE *out);

/* Frees what start allocated; accepts NULL. */
void pid_watch__free(struct pid_watch *w);

#endif
