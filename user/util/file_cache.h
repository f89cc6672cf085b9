/* file_cache.h - a bounded, thread-safe cache of one fixed-size verdict per file.
 *
 * Callers that judge a file once (is this an interpreter? does this C library
 * keep thread data where we expect?) keep the verdict here, keyed by the file's
 * identity (st_dev, st_ino). An entry is a hit only while the file's st_size and
 * st_mtim are those it was stored with, so a file replaced in place is judged
 * again. The cache holds at most max_entries verdicts and is emptied when full
 * (verdicts are cheap to recompute; a bounded memory is the contract).
 *
 * Define one per verdict type with FILE_CACHE_INIT; there is no constructor.
 */
#ifndef DYNOPROF_FILE_CACHE_H
#define DYNOPROF_FILE_CACHE_H

#include <pthread.h>
#include <stddef.h>
#include <sys/stat.h>

struct hashmap;

struct file_cache {
	pthread_mutex_t lock; /* guards map */
	struct hashmap *map;  /* (dev, ino) -> entry; NULL until the first store */
	size_t value_size;    /* bytes of one verdict */
	size_t max_entries;   /* the cache is emptied when a store finds it this full */
};

#define FILE_CACHE_INIT(value_bytes, max)                                              \
	{ .lock = PTHREAD_MUTEX_INITIALIZER, .map = NULL, .value_size = (value_bytes),  \
	  .max_entries = (max) }

/* Copies the verdict stored for the file whose stat is *st into out
 * (value_size bytes) and returns 1; returns 0 when absent or stale. */
int file_cache__get(struct file_cache *cache, const struct stat *st, void *out);

/* Stores a copy of value for the file whose stat is *st. Best effort: a verdict
 * that cannot be stored (no memory) is simply computed again next time. */
void file_cache__put(struct file_cache *cache, const struct stat *st, const void *value);

/* Forgets every verdict and frees the cache's memory (it stays usable). */
void file_cache__clear(struct file_cache *cache);

/* Number of verdicts held (for tests). */
size_t file_cache__size(struct file_cache *cache);

#endif
