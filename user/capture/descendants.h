/* descendants.h - a process's descendants and CPU time from /proc: what
 * `record -p PID --children` adds to its targets, and what the 0-sample hint
 * measures. */
#ifndef DYNOPROF_DESCENDANTS_H
#define DYNOPROF_DESCENDANTS_H

#include <stddef.h>
#include <stdint.h>

/* Most processes a descendant walk returns (the BPF targets map holds 16384). */
#define DESCENDANTS_MAX 16000

/* A set of process ids: the roots first, then their live descendants found
 * breadth-first through /proc/PID/task/TID/children, each once. */
struct pid_set {
	uint32_t *pids; /* owned; roots first */
	size_t count;   /* pids in use */
	size_t cap;     /* pids allocated */
};

/* Adds pid unless present. Returns 1 if added, 0 if present, -E2BIG past
 * DESCENDANTS_MAX, -ENOMEM. */
int pid_set__add(struct pid_set *s, uint32_t pid);
/* Whether pid is in the set. */
int pid_set__has(const struct pid_set *s, uint32_t pid);
/* Frees the ids (s itself belongs to the caller); accepts NULL. */
void pid_set__free(struct pid_set *s);

/* Adds roots and every live descendant of them to s (which may already hold
 * ids: they are kept, and their descendants are walked too). Processes that
 * exit during the walk are skipped. Returns 0, -E2BIG when there are more than
 * DESCENDANTS_MAX (s then holds the first ones), or -ENOMEM. */
int descendants__collect(struct pid_set *s, const uint32_t *roots, size_t nroots);

/* A live process's CPU time so far, all threads (utime + stime of
 * /proc/PID/stat, which the kernel scales to the scheduler's exact sum; clock
 * tick resolution). Returns 0 or -errno (-ENOENT: it exited). */
int proc__cpu_ns(uint32_t pid, uint64_t *ns);

#endif
