// SPDX-License-Identifier: MIT
#include "tags/requests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/hashmap.h"

#define MAX_BASELINES 100000

struct request_tracker {
	struct hashmap *seen; /* "pid\0endpoint" -> last count + 1 (as uintptr_t) */
};

struct poll_ctx {
	struct request_tracker *t;
	struct tag_registry *tags;
	void (*fn)(void *ctx, pid_t pid, const char *endpoint, uint64_t requests);
	void *fn_ctx;
	pid_t pid;       /* process being read */
	int reported;    /* increases reported */
	int error;       /* -ENOMEM */
};

struct request_tracker *request_tracker__new(void)
{
	struct request_tracker *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->seen = hashmap__new();
	if (!t->seen) {
		free(t);
		return NULL;
	}
	return t;
}

void request_tracker__free(struct request_tracker *t)
{
	if (!t)
		return;
	hashmap__free(t->seen);
	free(t);
}

static void on_count(void *ctx, const char *endpoint, uint64_t count)
{
	struct poll_ctx *pc = ctx;
	char key[600];
	int len = snprintf(key, sizeof(key), "%d%c%s", (int)pc->pid, 0, endpoint);
	if (len < 0 || (size_t)len >= sizeof(key))
		return;
	uintptr_t seen = (uintptr_t)hashmap__get(pc->t->seen, key, (size_t)len);
	if (!seen && hashmap__size(pc->t->seen) >= MAX_BASELINES) {
		hashmap__free(pc->t->seen);
		pc->t->seen = hashmap__new();
		if (!pc->t->seen) {
			pc->error = -ENOMEM;
			return;
		}
	}
	if (hashmap__put(pc->t->seen, key, (size_t)len, (void *)(uintptr_t)(count + 1), NULL)) {
		pc->error = -ENOMEM;
		return;
	}
	uint64_t prev = seen ? seen - 1 : 0;
	if (!seen || count <= prev)
		return;
	pc->fn(pc->fn_ctx, pc->pid, endpoint, count - prev);
	pc->reported++;
}

size_t request_tracker__retain(struct request_tracker *t, const struct tag_registry *tags)
{
	size_t cur = 0, n = hashmap__size(t->seen), k = 0, dropped = 0;
	const void *key;
	size_t key_len;
	if (!n)
		return 0;
	/* Keys are "pid\0endpoint"; the victims' keys are copied, as removing
	 * frees the map's copies. */
	struct victim { char *key; size_t len; } *victims = malloc(n * sizeof(*victims));
	if (!victims)
		return 0;
	while (hashmap__next(t->seen, &cur, &key, &key_len, NULL) && k < n) {
		if (tag_registry__tracks(tags, (pid_t)atoi(key)))
			continue;
		char *copy = malloc(key_len);
		if (!copy)
			break;
		memcpy(copy, key, key_len);
		victims[k++] = (struct victim){ copy, key_len };
	}
	for (size_t i = 0; i < k; i++) {
		dropped += hashmap__remove(t->seen, victims[i].key, victims[i].len) != NULL;
		free(victims[i].key);
	}
	free(victims);
	return dropped;
}

static void poll_process(void *ctx, pid_t pid)
{
	struct poll_ctx *pc = ctx;
	pc->pid = pid;
	tag_registry__requests(pc->tags, pid, on_count, pc);
}

int request_tracker__poll(struct request_tracker *t, struct tag_registry *tags,
			  void (*fn)(void *ctx, pid_t pid, const char *endpoint, uint64_t requests),
			  void *ctx)
{
	struct poll_ctx pc = { .t = t, .tags = tags, .fn = fn, .fn_ctx = ctx };
	tag_registry__foreach_tagged(tags, poll_process, &pc);
	return pc.error ? pc.error : pc.reported;
}
