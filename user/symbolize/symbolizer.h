/* Layer symbolize: native and kernel addresses to frames (/proc/PID/maps, ELF
 * symbol tables, kallsyms); generic ELF reading lives here too.
 * (Layers and their order: scripts/check-layers.sh.) */
/* symbolizer.h - turns sampled addresses into profile frames.
 *
 * Keeps, per process, the executable mappings read from /proc/PID/maps while the
 * process lives (refreshed on exec and when an address falls outside them), and
 * resolves addresses through per-binary symbol tables shared by every process
 * that maps the same file (symcache), and kernel addresses through kallsyms.
 * Processes that exit stay known until evicted (bounded table), so samples that
 * arrive after the exit still resolve.
 */
#ifndef DYNOPROF_SYMBOLIZER_H
#define DYNOPROF_SYMBOLIZER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "profile/profile.h"

struct symbolizer_stats {
	uint64_t processes;       /* processes currently tracked */
	uint64_t maps_reads;      /* /proc/PID/maps reads */
	uint64_t maps_failures;   /* reads that failed (process gone before we looked) */
	uint64_t maps_denied;     /* ... of which permission was denied (no CAP_SYS_PTRACE) */
	uint64_t unknown_frames;  /* addresses that resolved to no mapping or symbol */
	uint64_t symcache_hits;   /* symbol table cache hits */
	uint64_t symcache_misses; /* symbol tables loaded */
	uint64_t symcache_evictions; /* tables dropped to stay within the cache's bounds */
	uint64_t symcache_bytes;  /* memory of the cached tables */
	uint64_t symcache_truncated; /* tables loaded cut by a bound (elf_symtab__truncated) */
};

struct symbolizer;

/* max_processes bounds the process table (exited processes are evicted first);
 * 0 picks a default. NULL + errno on failure. */
struct symbolizer *symbolizer__new(size_t max_processes);
void symbolizer__free(struct symbolizer *s);

/* A process exec'd: its mappings are stale. */
void symbolizer__note_exec(struct symbolizer *s, pid_t pid);
/* A process exited: keep what we know, mark it evictable. */
void symbolizer__note_exit(struct symbolizer *s, pid_t pid);
/* Forgets the processes whose exit the previous sweep already saw
 * (process_table__sweep_exited): call once per reader drain or less often.
 * Returns the processes forgotten. */
size_t symbolizer__sweep_exited(struct symbolizer *s);
/* Bounds the symbol tables' memory too (0, the default: only the file
 * count). A table evicted while a process that exited still has samples to
 * come cannot be loaded again (its /proc/PID/root is gone): a daemon that
 * runs for weeks wants the bound (the agent: 16 MiB); a capture of many
 * processes at a high rate (record) keeps every table, as a table of an
 * exited process evicted under it would name its later samples [unknown]. */
void symbolizer__set_symcache_bytes(struct symbolizer *s, size_t max_bytes);
/* A proc_maps_source_fn (ctx: the symbolizer): pid's mappings as the
 * symbolizer holds them, read again when older than PROC_MAPS_FRESH_NS (the
 * symbolizer keeps the newer read). */
const struct proc_maps *symbolizer__fresh_maps(void *ctx, pid_t pid);
/* Reads pid's mappings now if not yet known (call at first sight, while it lives). */
int symbolizer__touch(struct symbolizer *s, pid_t pid);

/* Resolves user address addr of pid into a frame of p. is_return_address: the
 * address is a return address (all frames but the innermost), so addr - 1 is
 * looked up to land inside the call instruction. Never fails to produce a frame
 * except on -ENOMEM: unknown addresses become "[unknown]" or "file+0xoff". */
int symbolizer__user_frame(struct symbolizer *s, pid_t pid, uint64_t addr,
			   int is_return_address, struct profile *p, uint32_t *frame_id);
/* Same for a kernel address. */
int symbolizer__kernel_frame(struct symbolizer *s, uint64_t addr, int is_return_address,
			     struct profile *p, uint32_t *frame_id);
/* True when the kernel address (a return address unless innermost) is in the
 * timer interrupt's entry point: in a stack taken inside that interrupt, the
 * frames below it are the interrupted code's. */
bool symbolizer__is_interrupt_entry(struct symbolizer *s, uint64_t addr, int is_return_address);

void symbolizer__stats(const struct symbolizer *s, struct symbolizer_stats *out);

#endif
