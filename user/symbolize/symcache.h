/* symcache.h - per-binary symbol tables shared by every process that maps the
 * same file.
 *
 * Entries are keyed by the file's identity (device, inode) as reported in
 * /proc/PID/maps; a file met under a new identity whose GNU build-id matches a
 * cached table (the same library in two containers) shares that table instead of
 * loading it again. Files that are not ELF are remembered as failures so they are
 * not re-read on every sample; open(2) failures are not remembered (the process
 * may just have exited).
 *
 * The cache is bounded to max_entries: when full, the least recently used entry
 * is dropped, preferring one no caller holds. Tables are reference counted, so a
 * table a caller still holds survives its eviction until the caller drops it.
 * Thread-safe: a mutex serialises gets (a miss loads the file under the lock).
 */
#ifndef DYNOPROF_SYMCACHE_H
#define DYNOPROF_SYMCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "symbolize/elf_symtab.h"

struct symcache;

/* Counters since the cache was created. */
struct symcache_stats {
	uint64_t hits;             /* gets answered by an existing entry (incl. remembered failures) */
	uint64_t misses;           /* gets that found no entry */
	uint64_t build_id_shares;  /* misses served by a cached table with the same build-id */
	uint64_t loads;            /* symbol tables loaded from disk */
	uint64_t truncated_loads;  /* ... of which a bound cut (elf_symtab__truncated) */
	uint64_t evictions;        /* entries dropped to stay within max_entries or max_bytes */
	uint64_t errors;           /* gets that returned NULL */
	size_t entries;            /* entries currently cached */
	size_t bytes;              /* elf_symtab__bytes() of the cached tables */
};

/* Returns an empty cache holding at most max_entries files, or NULL with errno
 * (EINVAL for max_entries == 0, ENOMEM). */
struct symcache *symcache__new(size_t max_entries);

/* Drops the cache's references and frees it; tables callers still hold stay
 * valid until they are put. Accepts NULL. */
void symcache__free(struct symcache *cache);

/* Returns the symbol table of the file identified by (dev, ino), loading it
 * from open_path on a miss. open_path is how this process can reach the file:
 * "/proc/PID/root" + the mapped path, or "/proc/PID/map_files/START-END" for a
 * deleted or replaced file. The caller owns one reference on the result and
 * drops it with elf_symtab__put(). Returns NULL with errno set: ENOEXEC (not
 * ELF; remembered), an open(2) errno (not remembered), ENOMEM. */
struct elf_symtab *symcache__get(struct symcache *cache, const char *open_path, dev_t dev,
				 ino_t ino);

/* Same as symcache__get() with debug-file search options for a miss (opts may
 * be NULL; see struct elf_symtab_opts: root and logical_path let a process in
 * another mount namespace find its debug files). */
struct elf_symtab *symcache__get_opts(struct symcache *cache, const char *open_path, dev_t dev,
				      ino_t ino, const struct elf_symtab_opts *opts);

/* Bounds the cached tables' elf_symtab__bytes() too (0: no bound): least
 * recently used idle tables go first (evictions). A table larger than the
 * bound alone is still cached, alone. */
void symcache__set_max_bytes(struct symcache *cache, size_t max_bytes);

/* Copies the counters into *stats. */
void symcache__stats(struct symcache *cache, struct symcache_stats *stats);

#endif
