/* store.h - the agent's history: closed profiling windows in an embedded
 * SQLite database (WAL), with retention by age and by size.
 *
 * Each window is stored once, in one transaction, when it closes: its time
 * range, totals, the window's profile as gzipped pprof, and one row per tag
 * group (service, commit, endpoint) with samples, CPU ns, instructions and
 * requests — so group queries never decode profiles. A group is a (service,
 * commit, endpoint, other tags) whose other tags are the sample's remaining
 * tags as a bounded tag set (agent/tagset.h), so a query filtered by any tag
 * answers with CPU and requests of the same samples. A crash (kill -9) loses
 * at most the open window: closed windows are committed and the database
 * opens clean (WAL recovery); an OS crash or power loss may also lose the
 * windows since the last WAL checkpoint (synchronous=NORMAL), never the
 * database's consistency. Thread-safe: one connection behind a mutex;
 * readers (HTTP handlers) and the writer (the agent loop) may call at once.
 */
#ifndef DYNOPROF_STORE_H
#define DYNOPROF_STORE_H

#include <stddef.h>
#include <stdint.h>

/* One tag group's figures in a window. Counters are stored as SQLite
 * integers: values above INT64_MAX are clamped to it. */
struct store_group {
	const char *service;     /* "" when untagged (NULL is stored as "") */
	const char *commit;      /* "" when untagged (NULL is stored as "") */
	const char *endpoint;    /* "" when untagged (NULL is stored as "") */
	uint64_t samples;        /* samples in the group */
	uint64_t cpu_ns;         /* CPU nanoseconds */
	uint64_t instructions;   /* instructions (0 when not counted) */
	uint64_t requests;       /* requests begun in the window (0 unknown) */
	const char *tags;        /* the other tags: a JSON object, keys sorted
				  * (tagset__json); "{}" when none (NULL and ""
				  * are stored as "{}"); anything but a JSON
				  * object fails the put with -EINVAL. Last, so
				  * positional initialisers need not name it */
};

/* A window to store. */
struct store_window {
	int64_t start_ns;        /* unix ns, inclusive */
	int64_t end_ns;          /* unix ns, exclusive; > start_ns */
	uint64_t samples;        /* samples in the window */
	const void *pprof_gz;    /* gzipped pprof of the window's profile (copied;
				  * stored as opaque bytes) */
	size_t pprof_len;        /* its bytes (0: empty) */
	const struct store_group *groups; /* ngroups rows; a group given twice
					   * is summed */
	size_t ngroups;          /* rows in groups */
};

/* Retention: windows older than max_age_s, or beyond max_bytes of database,
 * oldest first, are deleted (checked after each insert). max_bytes counts the
 * database's pages in use, schema included (~40 KiB), and its -wal file: a
 * quarter of max_bytes (64 KiB to 16 MiB) is kept for the WAL (or the WAL's
 * size, when another process's reader kept it larger), and a put that
 * deleted windows or grew the WAL past half that part checkpoints it and
 * truncates the file (wal_checkpoint(TRUNCATE); it waits up to the busy
 * timeout, 5 s, for another process's readers). The database file plus the
 * WAL so stay within about max_bytes (plus one window, and the 32 KiB -shm). */
struct store_opts {
	int64_t max_age_s;       /* 0: default 7 days; by end_ns vs the wall clock */
	int64_t max_bytes;       /* 0: default 1 GiB */
};

struct store;

/* Opens (creating, mode 0600) the database file at path; opts may be NULL
 * (defaults). NULL + errno, and err (errlen bytes, may be NULL) gets a
 * one-line message naming path:
 *   EACCES, ENOENT, EISDIR, ...  the file cannot be opened (strerror)
 *   EINVAL     not an SQLite database, or one that is not a dynoprof history
 *   ENOTSUP    a history written by a newer dynoprof (newer schema version)
 * A history of schema version 1 (before groups had other tags) is upgraded
 * in place: its groups keep their figures, with no other tags.
 *   EBUSY      another process holds the database locked (5 s)
 * Callbacks of store__groups and store__group_series run with the store
 * locked: they must not call store functions (those return -EDEADLK), and
 * should be quick (the writer waits). store__foreach_window's run unlocked.
 * Pointers passed to callbacks are valid only during the call. */
struct store *store__open(const char *path, const struct store_opts *opts, char *err,
			  size_t errlen);
/* Closes the database (checkpointing the WAL). Accepts NULL. */
void store__close(struct store *s);

/* Stores a window (one transaction), then applies retention: windows whose
 * end_ns is older than max_age_s, then the oldest while the database exceeds
 * max_bytes. The window just written is never deleted by its own put, even
 * when it is already too old or alone exceeds max_bytes: the next put removes
 * it. 0 once the window is committed (a failed retention is retried by the
 * next put), -EINVAL (end_ns <= start_ns, NULL data), or -errno. */
int store__put_window(struct store *s, const struct store_window *w);

/* Sets *windows to the number of windows overlapping [from_ns, to_ns). 0 or -errno. */
int store__count_range(struct store *s, int64_t from_ns, int64_t to_ns, int64_t *windows);

/* Calls fn for each window overlapping [from_ns, to_ns) (start_ns < to_ns and
 * end_ns > from_ns), oldest (start_ns) first, with its gzipped pprof (NULL, 0
 * when empty); stops early when fn returns non-zero (returned). When more
 * than max_windows overlap the range (bounds a query's cost) it returns
 * -E2BIG without calling fn: an answer covers the whole range or is refused.
 * (Windows stored while it runs are visited while max_windows allows.) Windows are copied out in
 * chunks (at most 64 windows or 8 MiB, or one larger window) and fn runs
 * without the lock, so slow callbacks do not stall the writer and may call
 * the store; a window that retention deletes meanwhile may be skipped.
 * 0, fn's value, or -errno. */
int store__foreach_window(struct store *s, int64_t from_ns, int64_t to_ns, size_t max_windows,
			  int (*fn)(void *ctx, int64_t start_ns, int64_t end_ns,
				    const void *pprof_gz, size_t len),
			  void *ctx);

/* Calls fn for the group rows of windows overlapping [from_ns, to_ns),
 * summed per (service, commit, endpoint, tags), sorted by those. Filters may
 * be NULL (any); "" matches untagged. tags filters the other tags: NULL or ""
 * any, else a JSON object (tagset__filter_json) of key -> value, all of which
 * the group's tags must hold (a null value: must not have the key); a
 * malformed one fails (-EIO). Stops early when fn returns non-zero
 * (returned). Costs time linear in the group rows of the windows in range
 * (about 0.5 us each), whatever the filters, plus the tags rows when tags is
 * given. 0, fn's value, or -errno (-ERANGE if a sum overflows int64). */
int store__groups(struct store *s, int64_t from_ns, int64_t to_ns, const char *service,
		  const char *commit, const char *endpoint, const char *tags,
		  int (*fn)(void *ctx, const struct store_group *g), void *ctx);

/* Per-window rows of one group (for diff's bootstrap over windows): calls fn
 * with each window's start and the group's figures, oldest first, for EVERY
 * window overlapping [from_ns, to_ns) — zeros where the group did nothing.
 * The filters (NULL: any; tags as store__groups') select the group rows
 * summed per window; g's service/commit/endpoint/tags are the filters as
 * passed (NULL for "any").
 * Stops early when fn returns non-zero (returned). 0, fn's value, or -errno. */
int store__group_series(struct store *s, int64_t from_ns, int64_t to_ns, const char *service,
			const char *commit, const char *endpoint, const char *tags,
			int (*fn)(void *ctx, int64_t start_ns, const struct store_group *g),
			void *ctx);

/* store__groups per time bucket (sparklines): the sums of each (service,
 * commit, endpoint, tags) in each bucket of step_ns from from_ns on (bucket b holds
 * the windows starting in [from + b*step, from + (b+1)*step); one starting
 * before from_ns counts in bucket 0), sorted by the group, then bucket;
 * buckets where a group did nothing are not visited. Under the lock, as
 * store__groups. 0, fn's value, or -errno (-EINVAL: step_ns <= 0). */
int store__group_buckets(struct store *s, int64_t from_ns, int64_t to_ns, int64_t step_ns,
			 const char *service, const char *commit, const char *endpoint,
			 const char *tags, int (*fn)(void *ctx, int64_t bucket, const struct store_group *g),
			 void *ctx);

/* Database size in bytes (pages in use), the number of windows, and the
 * oldest window's start_ns (0 when empty). Outputs may be NULL. 0 or -errno. */
int store__stats(struct store *s, int64_t *bytes, int64_t *windows, int64_t *oldest_ns);

/* Stores one deploy-check result (a JSON object); results older than the age
 * retention are deleted. The checks table exists from store__open() on, so
 * store__foreach_check() works (visiting nothing) before the first result.
 * 0 or -errno. */
int store__put_check(struct store *s, int64_t checked_ns, const char *json);
/* Calls fn with up to limit results, newest first (under the store's lock:
 * fn must not call the store). 0, fn's non-zero value, or -errno. */
int store__foreach_check(struct store *s, size_t limit,
			 int (*fn)(void *ctx, int64_t checked_ns, const char *json), void *ctx);

/* Calls fn for every (service, commit) pair, both non-empty, with samples in
 * a window ending after from_ns: the start of its first such window and the
 * end of its last (under the store's lock: fn must not call the store).
 * Lets a restarted agent know which commits already ran. 0, fn's non-zero
 * value, or -errno. */
int store__commit_spans(struct store *s, int64_t from_ns,
			int (*fn)(void *ctx, const char *service, const char *commit,
				  int64_t first_ns, int64_t last_ns),
			void *ctx);

/* Runs PRAGMA integrity_check and foreign_key_check; 0 when both are clean,
 * -EIO otherwise. Reads the whole file: for tests and diagnostics. */
int store__check(struct store *s);

#endif
