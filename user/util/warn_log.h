/* warn_log.h - warnings that would repeat (per process, per frame, per scan),
 * said once and then summarised, so a day-long log stays readable.
 *
 * A warning has a kind (what went wrong, without the process: "Python 3.6 is
 * not supported (3.8-3.13 are): /usr/lib/libpython3.6m.so") and a subject (a
 * PID). Each subject is named at most once per kind, and only the first
 * WARN_LOG_NAMED subjects of a kind are named at all; everything after that
 * (other subjects, or the same subject again) is counted. warn_log__summary()
 * then says "N more: KIND" for the kinds counted since their last summary —
 * the agent once per window, record once at the end — with the gap between
 * two summaries of one kind doubling (1, 2, 4, ... calls, at most max_gap), so
 * a steady stream costs a few lines an hour, not one per window.
 *
 * Bounded: at most WARN_LOG_MAX_KINDS kinds (more are folded into one "other
 * warnings" count). Not thread-safe (one owner: the loop).
 */
#ifndef DYNOPROF_WARN_LOG_H
#define DYNOPROF_WARN_LOG_H

#include <stdint.h>
#include <stdio.h>

#define WARN_LOG_NAMED 3
#define WARN_LOG_MAX_KINDS 64

struct warn_log;

/* out: where lines go (NULL: nowhere, counting only). max_gap: most summary
 * calls between two summaries of one kind (0: 64). NULL + errno. */
struct warn_log *warn_log__new(FILE *out, unsigned max_gap);
void warn_log__free(struct warn_log *w);

/* Notes one occurrence of kind for subject. Says the line (printf format,
 * one line, the newline added) when the subject is one to name; else counts
 * it. Returns 1 when said, 0 when counted. */
int warn_log__say(struct warn_log *w, const char *kind, int subject, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Says, for each kind counted since its last summary and due (see above; all
 * of them when force), one line "PREFIX: N more: KIND (SUFFIX)" (suffix may be
 * NULL) and resets its count. Returns the lines said. */
int warn_log__summary(struct warn_log *w, const char *prefix, const char *suffix, int force);

/* Occurrences counted (not said) since the start, all kinds. */
uint64_t warn_log__counted(const struct warn_log *w);

#endif
