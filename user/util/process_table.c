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
