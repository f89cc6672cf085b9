/* file_cache.c - see file_cache.h. */
#include "file_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

/* The map's key: the file's identity. */
struct file_identity {
	uint64_t dev; /* st_dev */
	uint64_t ino; /* st_ino */
};

/* The map's value: when the verdict was made, then value_size bytes of it. */
struct file_cache_entry {
	int64_t size;       /* st_size when stored */
	int64_t mtime_sec;  /* st_mtim when stored */
	int64_t mtime_nsec;
	unsigned char value[]; /* the caller's verdict */
};

static void clear_locked(struct file_cache *cache)
{
	size_t cursor = 0;
	void *value;

	while (hashmap__next(cache->map, &cursor, NULL, NULL, &value))
		free(value);
	hashmap__free(cache->map);
	cache->map = NULL;
}

static int entry_is_fresh(const struct file_cache_entry *entry, const struct stat *st)
{
	return entry->size == st->st_size && entry->mtime_sec == st->st_mtim.tv_sec &&
	       entry->mtime_nsec == st->st_mtim.tv_nsec;
}

int file_cache__get(struct file_cache *cache, const struct stat *st, void *out)
{
	struct file_identity id = {.dev = st->st_dev, .ino = st->st_ino};
	int hit = 0;

	pthread_mutex_lock(&cache->lock);
	const struct file_cache_entry *entry =
		cache->map ? hashmap__get(cache->map, &id, sizeof(id)) : NULL;
	if (entry && entry_is_fresh(entry, st)) {
		memcpy(out, entry->value, cache->value_size);
		hit = 1;
	}
	pthread_mutex_unlock(&cache->lock);
	return hit;
}

void file_cache__put(struct file_cache *cache, const struct stat *st, const void *value)
{
	struct file_identity id = {.dev = st->st_dev, .ino = st->st_ino};
	struct file_cache_entry *entry = malloc(sizeof(*entry) + cache->value_size);
	void *old = NULL;

	if (!entry)
		return;
	entry->size = st->st_size;
	entry->mtime_sec = st->st_mtim.tv_sec;
	entry->mtime_nsec = st->st_mtim.tv_nsec;
	memcpy(entry->value, value, cache->value_size);
	pthread_mutex_lock(&cache->lock);
	if (cache->map && hashmap__size(cache->map) >= cache->max_entries)
		clear_locked(cache);
	if (!cache->map)
		cache->map = hashmap__new();
	if (!cache->map || hashmap__put(cache->map, &id, sizeof(id), entry, &old) != 0)
		free(entry);
	free(old);
	pthread_mutex_unlock(&cache->lock);
}

void file_cache__clear(struct file_cache *cache)
{
	pthread_mutex_lock(&cache->lock);
	if (cache->map)
		clear_locked(cache);
	pthread_mutex_unlock(&cache->lock);
}

size_t file_cache__size(struct file_cache *cache)
{
	size_t n;

	pthread_mutex_lock(&cache->lock);
	n = cache->map ? hashmap__size(cache->map) : 0;
	pthread_mutex_unlock(&cache->lock);
	return n;
}
