/* store.h - the agent's history: closed profiling windows in an embedded
 * SQLite database (WAL), with retention by age and by size.
 *
 * Each window is stored once, in one transaction, when it closes: its time
 * range, totals, the window's profile as gzipped pprof, and one row per tag
 * group (service, commit, endpoint) with samples, CPU ns, instructions and
 * requests — so group queries never decode profiles. A crash (kill -9) loses
 * at most the open window: closed windows are committed and the database
 * opens clean (WAL recovery). Thread-safe: one connection behind a mutex;
 * readers (HTTP handlers) and the writer (the agent loop) may call at once.
 */
#ifndef DYNOPROF_STORE_H
#define DYNOPROF_STORE_H

#include <stddef.h>
#include <stdint.h>

/* One tag group's figures in a window. */
struct store_group {
	const char *service;     /* "" when untagged */
	const char *commit;      /* "" when untagged */
	const char *endpoint;    /* "" when untagged */
	uint64_t samples;        /* samples in the group */
	uint64_t cpu_ns;         /* CPU nanoseconds */
	uint64_t instructions;   /* instructions (0 when not counted) */
	uint64_t requests;       /* requests begun in the window (0 unknown) */
};

/* A window to store. */
struct store_window {
	int64_t start_ns;        /* unix ns, inclusive */
	int64_t end_ns;          /* unix ns, exclusive */
	uint64_t samples;        /* samples in the window */
	const void *pprof_gz;    /* gzipped pprof of the window's profile */
	size_t pprof_len;        /* its bytes */
	const struct store_group *groups; /* ngroups rows */
	size_t ngroups;
};

/* Retention: windows older than max_age_s, or beyond max_bytes of database,
 * oldest first, are deleted (checked after each insert). */
struct store_opts {
	int64_t max_age_s;       /* default 7 days */
	int64_t max_bytes;       /* default 1 GiB */
};

struct store;

/* Opens (creating) the database at path. NULL + errno; *err gets a message. */
struct store *store__open(const char *path, const struct store_opts *opts, char *err,
			  size_t errlen);
void store__close(struct store *s);

/* Stores a window (one transaction), then applies retention. 0 or -errno. */
int store__put_window(struct store *s, const struct store_window *w);

/* Calls fn for each window overlapping [from_ns, to_ns), oldest first, with
 * its gzipped pprof; stops early when fn returns non-zero (returned). At most
 * max_windows are visited (bounds a query's cost). 0, fn's value, or -errno. */
int store__foreach_window(struct store *s, int64_t from_ns, int64_t to_ns, size_t max_windows,
			  int (*fn)(void *ctx, int64_t start_ns, int64_t end_ns,
				    const void *pprof_gz, size_t len),
			  void *ctx);

/* Calls fn for the group rows of windows overlapping [from_ns, to_ns),
 * summed per (service, commit, endpoint). Filters may be NULL (any). */
int store__groups(struct store *s, int64_t from_ns, int64_t to_ns, const char *service,
		  const char *commit, const char *endpoint,
		  int (*fn)(void *ctx, const struct store_group *g), void *ctx);

/* Per-window rows of one group (for diff's bootstrap over windows): calls fn
 * with each window's start and the group's figures. */
int store__group_series(struct store *s, int64_t from_ns, int64_t to_ns, const char *service,
			const char *commit, const char *endpoint,
			int (*fn)(void *ctx, int64_t start_ns, const struct store_group *g),
			void *ctx);

/* Database size in bytes (pages in use), and the number of windows. */
int store__stats(struct store *s, int64_t *bytes, int64_t *windows, int64_t *oldest_ns);

/* Runs PRAGMA integrity_check; 0 when "ok", -EIO otherwise. */
int store__check(struct store *s);

#endif
