/* proc_maps.h - a process's executable memory mappings, from /proc/PID/maps.
 *
 * Read while the process lives (at its first sample, or when an address falls
 * outside every known mapping), then kept so its samples can be symbolized
 * after it exits.
 */
#ifndef DYNOPROF_PROC_MAPS_H
#define DYNOPROF_PROC_MAPS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* One executable mapping. */
struct proc_map {
	uint64_t start;   /* first address */
	uint64_t end;     /* one past the last address */
	uint64_t offset;  /* file offset of start */
	uint64_t inode;   /* inode of the mapped file; 0 for anonymous */
	uint32_t dev_major; /* device of the mapped file */
	uint32_t dev_minor;
	char *path;       /* owned: path as the process saw it, "" if anonymous;
			   * "[vdso]" etc. for special mappings; " (deleted)" stripped */
	int deleted;      /* nonzero when the file was deleted or replaced */
};

struct proc_maps;

/* Reads /proc/PID/maps (executable mappings only). NULL + errno (ESRCH when the
 * process is gone). */
struct proc_maps *proc_maps__read(pid_t pid);
/* Parses maps text from f (same format). NULL + errno (EINVAL on bad lines). */
struct proc_maps *proc_maps__parse(FILE *f);
void proc_maps__free(struct proc_maps *maps);

/* Where a reader of several per-process tables gets pid's mappings without
 * reading /proc/PID/maps once per table (the agent: the symbolizer's copy,
 * symbolizer__fresh_maps): mappings read at most PROC_MAPS_FRESH_NS ago,
 * borrowed until the next call into the source's owner; NULL + errno when
 * unreadable (ESRCH: gone). */
typedef const struct proc_maps *(*proc_maps_source_fn)(void *ctx, pid_t pid);
/* How old a source's mappings may be: well under any re-check interval, so a
 * re-check (a library loaded since) reads them again. */
#define PROC_MAPS_FRESH_NS 100000000ull

/* Returns the mapping containing addr, or NULL. */
const struct proc_map *proc_maps__find(const struct proc_maps *maps, uint64_t addr);
size_t proc_maps__count(const struct proc_maps *maps);
const struct proc_map *proc_maps__at(const struct proc_maps *maps, size_t i);

/* Returns the basename of path (pointer into it). */
const char *path_basename(const char *path);

#endif
