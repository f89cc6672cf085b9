/* unwind_registry.h - which processes BPF unwinds through CFI, and with which
 * tables.
 *
 * A process's first sample (and an exec, and a stack that met a mapping the
 * tables do not know: at once, then backing off up to 10 s while that finds
 * nothing new, as JIT code does) queues it; a worker thread of its
 * own reads its executable mappings and publishes them once each file has
 * its table. A builder thread builds each file's table once (cfi_table.h;
 * files opened as the symbolizer opens them: through /proc/PID/root for
 * other mount namespaces, /proc/PID/map_files for deleted ones), shares it by
 * build-id and puts its rows in a BPF table of their own (sized to them:
 * kernel memory follows the files in use, and the agent keeps no copy); a
 * scan that needs a table not built yet waits parked meanwhile, and the
 * worker goes on with the other processes. Until its publication a
 * process's samples are cut after the leaf (bpf/unwind.bpf.h: [unwind:
 * tables pending]). So table building never runs on the ring buffer's
 * consumer, nor in BPF.
 *
 * A process that exec'd while tracked (a new command) goes first: its scan
 * before those of the processes already running (the host's backlog when a
 * whole-host capture starts), its builds before theirs. One whose files all
 * have tables is published within a scan (a read of /proc/PID/maps: about a
 * millisecond), whatever is being built; one that needs its own waits for
 * them, after the build under way. It is read again 2, 4, ... 64 ms later
 * until its mappings stop changing (the dynamic loader maps its libraries
 * after the exec).
 *
 * Bounded: all tables' rows together stay within the budget
 * (--unwind-table-mb). A file that needs room evicts the least recently used
 * tables no live process's publication uses (counted); one that still does
 * not fit is walked by frame pointers and counted, and tried again once
 * processes have exited. The file cache, the process set, the table slots
 * and the queue have fixed caps, counted when hit.
 */
#ifndef DYNOPROF_UNWIND_REGISTRY_H
#define DYNOPROF_UNWIND_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "unwind_abi.h"

/* Where tables and processes go (the sampler's maps; memory in unit tests).
 * Each returns 0 or -errno. */
struct unwind_registry_ops {
	/* Publishes (info != NULL) or withdraws a process
	 * (sampler__set_unwind_process). */
	int (*publish)(void *ctx, uint32_t pid, const struct unwind_proc *info);
	/* Puts nrows rows as the table in slot (sampler__unwind_table_put). */
	int (*table_put)(void *ctx, uint32_t slot, const struct unwind_row *rows, size_t nrows);
	/* Empties slot (sampler__unwind_table_drop). */
	int (*table_drop)(void *ctx, uint32_t slot);
};

/* Bytes of the row table by default (--unwind-table-mb). */
#define UNWIND_TABLE_DEFAULT_MB 32
/* Processes tracked at once; files cached; queued requests (per queue). */
#define UNWIND_MAX_PROCESSES 65536
#define UNWIND_MAX_FILES 16384
#define UNWIND_QUEUE 4096

struct unwind_registry_stats {
	uint64_t processes;       /* publications of a process's mappings */
	uint64_t files_cfi;       /* files whose table was built */
	uint64_t files_shared;    /* files that reused another's table (same build-id) */
	uint64_t files_no_cfi;    /* files without CFI (walked by frame pointers) */
	uint64_t files_over_budget; /* tables that did not fit the budget (frame pointers) */
	uint64_t files_unreadable;/* files that could not be opened or parsed (frame pointers) */
	uint64_t maps_over_limit; /* mappings past UNWIND_MAX_MAPS of a process (no CFI) */
	uint64_t queue_full;      /* requests lost to a full queue or process set */
	uint64_t publish_failed;  /* processes BPF's map refused (full: 8192 processes) */
	uint64_t rows_used;       /* rows of all tables in use */
	uint64_t rows_capacity;   /* rows the budget allows */
	uint64_t evictions;       /* tables evicted to make room for another */
	uint64_t rows_evicted;    /* their rows */
	uint64_t build_ns;        /* time spent building tables */
};

struct unwind_registry;

/* Starts the registry and its worker; tables hold budget_rows rows at most.
 * NULL + errno. */
struct unwind_registry *unwind_registry__new(const struct unwind_registry_ops *ops,
					     size_t budget_rows, void *ctx);
/* Stops the worker and frees everything. Accepts NULL. */
void unwind_registry__free(struct unwind_registry *r);

/* A sample of pid arrived; missed (its stack met a pc in no known mapping):
 * its mappings may have changed since they were read. Cheap: a look-up, and
 * at most a queued request. Thread-safe. */
void unwind_registry__note_sample(struct unwind_registry *r, pid_t pid, int missed);
/* pid exec'd (its mappings are new) or exited. */
void unwind_registry__note_exec(struct unwind_registry *r, pid_t pid);
void unwind_registry__note_exit(struct unwind_registry *r, pid_t pid);
/* Waits until every queued request is done (tests, record's priming). */
void unwind_registry__drain(struct unwind_registry *r);

void unwind_registry__stats(struct unwind_registry *r, struct unwind_registry_stats *out);
/* One line on out (prefix first) when tables were lost to a limit or
 * evicted. */
void unwind_registry__summary(struct unwind_registry *r, FILE *out, const char *prefix);

#endif
