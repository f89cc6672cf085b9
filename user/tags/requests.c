// SPDX-License-Identifier: MIT
#include "tags/requests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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
	tag_registry__foreach(tags, poll_process, &pc);
	return pc.error ? pc.error : pc.reported;
}
