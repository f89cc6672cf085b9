/* process_table.h - the bound shared by the per-process tables (symbolizer,
 * Python registry, tag registry): hash maps keyed by pid whose values start
 * with a struct process_slot. When a table is full, exited processes go
 * first, else the least recently used one. */
#ifndef DYNOPROF_PROCESS_TABLE_H
#define DYNOPROF_PROCESS_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/hashmap.h"

/* The first member of every table value. */
struct process_slot {
	pid_t pid;           /* the key */
	int exited;          /* exit seen: evicted first; 2 once a sweep saw it
			      * (process_table__sweep_exited) */
	uint64_t last_use;   /* the table's tick at the last lookup (LRU) */
};

/* When map holds max entries or more, removes every exited entry (or, when
 * none, the least recently used) and hands each removed value to
 * on_evict(ctx, value). */
void process_table__make_room(struct hashmap *map, size_t max,
			      void (*on_evict)(void *ctx, void *value), void *ctx);

/* Returns pid's entry, or, when absent, makes room and adds a zeroed entry
 * of entry_size bytes (>= sizeof(struct process_slot)) with its pid set;
 * *created (may be NULL) tells which. Either way the entry's last_use gets
 * ++*tick. Returns NULL on ENOMEM. */
void *process_table__get(struct hashmap *map, pid_t pid, size_t max, size_t entry_size,
			 uint64_t *tick, void (*on_evict)(void *ctx, void *value), void *ctx,
			 int *created);

/* Evicts (on_evict(ctx, value)) every entry whose exit was already seen by
 * the previous sweep, and marks the exits seen since. So an exited process's
 * entry lives until the second sweep after its exit: samples it queued
 * before exiting are read by then when sweeps are at least one reader drain
 * apart (the agent sweeps at each window close). Returns the entries evicted. */
size_t process_table__sweep_exited(struct hashmap *map, void (*on_evict)(void *ctx, void *value),
				   void *ctx);

#endif
