/* Layer python: CPython processes: which interpreter a process runs, the
 * structure offsets the BPF walker needs, code objects to frames.
 * (Layers and their order: scripts/check-layers.sh.) */
/* py_resolver.h - turns Python frames sampled in BPF (struct py_frame: a code
 * object address, an instruction offset, and co_firstlineno read at sample
 * time) into profile frames `module:qualname (file:line)`.
 *
 * Code objects are read from the live process with process_vm_readv as the
 * samples arrive (so a process that exits later keeps its names), and cached
 * per (pid, code address). A cached entry is used only when the sampled
 * co_firstlineno matches the one read, so a code address reused after garbage
 * collection is read again instead of yielding a stale name. Unreadable frames
 * degrade to a "[python: unreadable frame]" marker, never to a wrong name.
 *
 * Memory is bounded: the cache keeps at most max_entries code objects (two
 * generations, least recently used dropped first).
 *
 * A process forked from another (a gunicorn worker) holds its parent's code
 * objects at the same addresses: the last code object read at an address is
 * kept with its witness (the bytes its name, file and line table were read
 * from: header fields, type name, strings, line table), and another process
 * whose memory holds the same witness (one process_vm_readv) and sees the same
 * root shares the entry instead of reading it again (~11 reads). So an address
 * reused for another object is never named by the old one. That index is
 * bounded too (4096 code objects, emptied when full). Each code object also
 * remembers its last few frame ids per profile (profile__serial), so a frame
 * asked for again needs neither its line table nor an intern.
 */
#ifndef DYNOPROF_PY_RESOLVER_H
#define DYNOPROF_PY_RESOLVER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "python_abi.h" /* bpf/python_abi.h: struct py_frame */
#include "python/py_layout.h"
#include "profile/profile.h"

struct py_resolver;

struct py_resolver_stats {
	uint64_t hits;          /* frames answered from the cache */
	uint64_t reads;         /* code objects read from a process */
	uint64_t read_failures; /* reads that failed (process gone, bad pointer) */
	uint64_t stale;         /* cached entries replaced because co_firstlineno differed */
	uint64_t shared;        /* code objects taken from another process's read
				 * after their witness matched (one read, not ~11) */
	uint64_t memo_hits;     /* frames answered from a code object's frame memo */
	uint64_t entries;       /* (pid, code object) keys cached now */
};

/* Its counters so far. */
void py_resolver__stats(const struct py_resolver *r, struct py_resolver_stats *out);

/* max_entries 0 picks a default. warnings: where the one-time warning per
 * process about unreadable code objects goes (NULL: none); past the first
 * few processes per reason they are counted for py_resolver__summary().
 * NULL + errno. */
struct py_resolver *py_resolver__new(size_t max_entries, FILE *warnings);
void py_resolver__free(struct py_resolver *r);

/* Interns the frame f of process pid (whose interpreter has layout, from
 * py_registry__lookup; NULL: unknown) into p. with_lines: 0 folds to function
 * level (no line). Returns 0 (a frame, possibly the unreadable marker) or
 * -ENOMEM. */
int py_resolver__frame(struct py_resolver *r, pid_t pid, const struct py_layout *layout,
		       const struct py_frame *f, int with_lines, struct profile *p,
		       uint32_t *frame_id);

/* Drops the cached code objects of every process for which keep(ctx, pid)
 * returns 0 (processes that exited: their code objects are never asked for
 * again, and a reused pid reads its own). Returns the entries dropped. */
size_t py_resolver__retain(struct py_resolver *r, int (*keep)(void *ctx, pid_t pid), void *ctx);

/* Says how many warnings were counted instead of said since the last summary
 * (util/warn_log.h: the agent per window, record at the end with force).
 * Returns the lines said. */
int py_resolver__summary(struct py_resolver *r, const char *prefix, const char *suffix,
			 int force);

/* Derives a dotted module name from a source path: the file's stem, prefixed
 * by each enclosing directory that holds an __init__.py (looked up under
 * root, e.g. "/proc/PID/root", or "" for the host). "<frozen x>" style names
 * and names without a .py suffix are returned as they are (stem only). Writes
 * at most len bytes (NUL-terminated). */
void py_module_name(const char *root, const char *path, char *out, size_t len);

#endif
