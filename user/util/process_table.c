// SPDX-License-Identifier: MIT
#include "util/process_table.h"

#include <stdlib.h>

void process_table__make_room(struct hashmap *map, size_t max,
			      void (*on_evict)(void *ctx, void *value), void *ctx)
{
	if (hashmap__size(map) < max)
		return;
	size_t cur = 0, n = 0;
	void *v;
	const struct process_slot *lru = NULL;
	pid_t *victims = malloc(hashmap__size(map) * sizeof(pid_t));
	if (!victims)
		return;
	while (hashmap__next(map, &cur, NULL, NULL, &v)) {
		const struct process_slot *slot = v;
		if (slot->exited)
			victims[n++] = slot->pid;
		if (!lru || slot->last_use < lru->last_use)
			lru = slot;
	}
	if (!n && lru)
		victims[n++] = lru->pid;
	for (size_t i = 0; i < n; i++) {
		void *value = hashmap__remove(map, &victims[i], sizeof(pid_t));
		if (value)
			on_evict(ctx, value);
	}
	free(victims);
}

void *process_table__get(struct hashmap *map, pid_t pid, size_t max, size_t entry_size,
			 uint64_t *tick, void (*on_evict)(void *ctx, void *value), void *ctx,
			 int *created)
{
	struct process_slot *slot = hashmap__get(map, &pid, sizeof(pid));
	if (created)
		*created = !slot;
	if (!slot) {
		process_table__make_room(map, max, on_evict, ctx);
		slot = calloc(1, entry_size);
		if (!slot)
			return NULL;
		slot->pid = pid;
		if (hashmap__put(map, &pid, sizeof(pid), slot, NULL)) {
			free(slot);
			return NULL;
		}
	}
	slot->last_use = ++*tick;
	return slot;
}

size_t process_table__sweep_exited(struct hashmap *map, void (*on_evict)(void *ctx, void *value),
				   void *ctx)
{
	size_t cur = 0, n = 0, evicted = 0;
	void *v;
	while (hashmap__next(map, &cur, NULL, NULL, &v))
		n += ((const struct process_slot *)v)->exited >= 2;
	pid_t *victims = n ? malloc(n * sizeof(pid_t)) : NULL;
	size_t k = 0;
	cur = 0;
	while (hashmap__next(map, &cur, NULL, NULL, &v)) {
		struct process_slot *slot = v;
		if (slot->exited >= 2 && victims && k < n)
			victims[k++] = slot->pid;
		else if (slot->exited == 1)
			slot->exited = 2;
	}
	for (size_t i = 0; i < k; i++) {
		void *value = hashmap__remove(map, &victims[i], sizeof(pid_t));
		if (value) {
			on_evict(ctx, value);
			evicted++;
		}
	}
	free(victims);
	return evicted;
}
