/* symcache.c - bounded, reference-counted cache of ELF symbol tables. */
#include "symbolize/symcache.h"

#include "util/hashmap.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A file identity; the hash key of by_file (fixed width so keys hash the same
 * whatever dev_t/ino_t are). */
struct symcache_key {
	uint64_t dev; /* st_dev / maps device */
	uint64_t ino; /* inode number */
};

/* One cached file. */
struct symcache_entry {
	struct symcache_key key;   /* identity this entry answers for */
	struct elf_symtab *table;  /* the cache's reference; NULL for a remembered failure */
	int error;                 /* remembered failure's errno (table == NULL) */
	uint64_t last_use;         /* cache clock at the last get, for LRU eviction */
	bool owns_build_id;        /* by_build_id maps this table's build-id to this entry */
};

struct symcache {
	pthread_mutex_t lock;           /* serialises every operation */
	struct hashmap *by_file;        /* symcache_key -> struct symcache_entry* (owned) */
	struct hashmap *by_build_id;    /* build-id hex -> struct symcache_entry* (in by_file) */
	size_t max_entries;             /* bound on by_file's size */
	size_t max_bytes;               /* bound on bytes (0: none) */
	size_t bytes;                   /* elf_symtab__bytes() of the cached tables */
	uint64_t clock;                 /* incremented per get; stamps last_use */
	struct symcache_stats stats;    /* counters (entries kept in sync on read) */
};

struct symcache *symcache__new(size_t max_entries)
{
	struct symcache *cache;

	if (max_entries == 0) {
		errno = EINVAL;
		return NULL;
	}
	cache = calloc(1, sizeof(*cache));
	if (!cache) {
		errno = ENOMEM;
		return NULL;
	}
	cache->max_entries = max_entries;
	cache->by_file = hashmap__new();
	cache->by_build_id = hashmap__new();
	if (!cache->by_file || !cache->by_build_id) {
		hashmap__free(cache->by_file);
		hashmap__free(cache->by_build_id);
		free(cache);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&cache->lock, NULL);
	return cache;
}

/* Unlinks entry from both maps and drops its reference. Caller holds the lock. */
static void symcache__drop_entry(struct symcache *cache, struct symcache_entry *entry)
{
	hashmap__remove(cache->by_file, &entry->key, sizeof(entry->key));
	cache->bytes -= elf_symtab__bytes(entry->table);
	if (entry->owns_build_id) {
		const char *id = elf_symtab__build_id(entry->table);

		if (id)
			hashmap__remove(cache->by_build_id, id, strlen(id));
	}
	elf_symtab__put(entry->table);
	free(entry);
}

void symcache__free(struct symcache *cache)
{
	size_t cursor = 0;
	void *value;

	if (!cache)
		return;
	while (hashmap__next(cache->by_file, &cursor, NULL, NULL, &value)) {
		struct symcache_entry *entry = value;

		elf_symtab__put(entry->table);
		free(entry);
	}
	hashmap__free(cache->by_file);
	hashmap__free(cache->by_build_id);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

/* Drops the least recently used entry, preferring one whose table nobody but
 * the cache holds (refcount 1) or a remembered failure. Caller holds the lock. */
static void symcache__evict_one(struct symcache *cache)
{
	struct symcache_entry *victim = NULL;
	bool victim_idle = false;
	size_t cursor = 0;
	void *value;

	while (hashmap__next(cache->by_file, &cursor, NULL, NULL, &value)) {
		struct symcache_entry *entry = value;
		bool idle = !entry->table || elf_symtab__refcount(entry->table) <= 1;

		if (!victim || (idle && !victim_idle) ||
		    (idle == victim_idle && entry->last_use < victim->last_use)) {
			victim = entry;
			victim_idle = idle;
		}
	}
	if (victim) {
		symcache__drop_entry(cache, victim);
		cache->stats.evictions++;
	}
}

/* Adds an entry for key (table may be NULL with error set). Returns 0 or
 * -ENOMEM. Caller holds the lock; takes its own reference on table. */
static int symcache__insert(struct symcache *cache, const struct symcache_key *key,
			    struct elf_symtab *table, int error)
{
	struct symcache_entry *entry;
	const char *id;

	size_t need = elf_symtab__bytes(table);
	while (hashmap__size(cache->by_file) >= cache->max_entries ||
	       (cache->max_bytes && hashmap__size(cache->by_file) &&
		cache->bytes + need > cache->max_bytes))
		symcache__evict_one(cache);
	entry = calloc(1, sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	entry->key = *key;
	entry->table = elf_symtab__get(table);
	cache->bytes += need;
	entry->error = error;
	entry->last_use = cache->clock;
	if (hashmap__put(cache->by_file, key, sizeof(*key), entry, NULL)) {
		elf_symtab__put(entry->table);
		free(entry);
		return -ENOMEM;
	}
	id = elf_symtab__build_id(table);
	if (id && !hashmap__get(cache->by_build_id, id, strlen(id)) &&
	    hashmap__put(cache->by_build_id, id, strlen(id), entry, NULL) == 0)
		entry->owns_build_id = true;
	return 0;
}

/* The miss path: share a table by build-id or load the file. Returns a table
 * with one reference for the caller, or NULL with errno. Caller holds the lock. */
static struct elf_symtab *symcache__load(struct symcache *cache, const struct symcache_key *key,
					 const char *open_path, const struct elf_symtab_opts *opts)
{
	char build_id[ELF_SYMTAB_BUILD_ID_MAX];
	struct elf_symtab *table = NULL;
	int err = elf_symtab__read_build_id(open_path, build_id, sizeof(build_id));

	if (err == 0) {
		struct symcache_entry *same = hashmap__get(cache->by_build_id, build_id,
							   strlen(build_id));
		if (same) {
			table = elf_symtab__get(same->table);
			cache->stats.build_id_shares++;
		}
	} else if (err != -ENODATA && err != -ENOSPC) {
		if (err == -ENOEXEC)
			symcache__insert(cache, key, NULL, ENOEXEC); /* best effort */
		errno = -err;
		return NULL;
	}
	if (!table) {
		table = elf_symtab__open_opts(open_path, opts);
		if (!table) {
			err = errno;
			if (err == ENOEXEC)
				symcache__insert(cache, key, NULL, err);
			errno = err;
			return NULL;
		}
		cache->stats.loads++;
		cache->stats.truncated_loads += elf_symtab__truncated(table);
	}
	err = symcache__insert(cache, key, table, 0);
	if (err) {
		elf_symtab__put(table);
		errno = -err;
		return NULL;
	}
	return table;
}

struct elf_symtab *symcache__get_opts(struct symcache *cache, const char *open_path, dev_t dev,
				      ino_t ino, const struct elf_symtab_opts *opts)
{
	struct symcache_key key = { .dev = (uint64_t)dev, .ino = (uint64_t)ino };
	struct symcache_entry *entry;
	struct elf_symtab *table;
	int err;

	if (!cache || !open_path) {
		errno = EINVAL;
		return NULL;
	}
	pthread_mutex_lock(&cache->lock);
	cache->clock++;
	entry = hashmap__get(cache->by_file, &key, sizeof(key));
	if (entry) {
		cache->stats.hits++;
		entry->last_use = cache->clock;
		table = elf_symtab__get(entry->table);
		err = table ? 0 : entry->error;
	} else {
		cache->stats.misses++;
		table = symcache__load(cache, &key, open_path, opts);
		err = table ? 0 : errno;
	}
	if (!table)
		cache->stats.errors++;
	pthread_mutex_unlock(&cache->lock);
	if (!table)
		errno = err;
	return table;
}

struct elf_symtab *symcache__get(struct symcache *cache, const char *open_path, dev_t dev,
				 ino_t ino)
{
	return symcache__get_opts(cache, open_path, dev, ino, NULL);
}

void symcache__set_max_bytes(struct symcache *cache, size_t max_bytes)
{
	pthread_mutex_lock(&cache->lock);
	cache->max_bytes = max_bytes;
	pthread_mutex_unlock(&cache->lock);
}

void symcache__stats(struct symcache *cache, struct symcache_stats *stats)
{
	if (!cache || !stats)
		return;
	pthread_mutex_lock(&cache->lock);
	cache->stats.entries = hashmap__size(cache->by_file);
	cache->stats.bytes = cache->bytes;
	*stats = cache->stats;
	pthread_mutex_unlock(&cache->lock);
}
