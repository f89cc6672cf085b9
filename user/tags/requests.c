// SPDX-License-Identifier: MIT
#include "tags/requests.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/hashmap.h"

#define MAX_BASELINES 100000

struct request_tracker {
	struct hashmap *seen; /* "pid\0endpoint" -> last count + 1 (as uintptr_t) */
	int64_t since_ns;     /* processes started after this (boot ns) count from 0 */
};

struct poll_ctx {
	struct request_tracker *t;
	struct tag_registry *tags;
	void (*fn)(void *ctx, pid_t pid, const char *endpoint, uint64_t requests);
	void *fn_ctx;
	pid_t pid;       /* process being read */
	int new_process; /* it started after the tracker: no baseline needed */
	int reported;    /* increases reported */
	int error;       /* -ENOMEM */
};

struct request_tracker *request_tracker__new(int64_t started_after_boot_ns)
{
	struct request_tracker *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->since_ns = started_after_boot_ns;
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
	if ((!seen && !pc->new_process) || count <= prev)
		return;
	pc->fn(pc->fn_ctx, pc->pid, endpoint, count - prev);
	pc->reported++;
}

/* Start time of pid since boot (ns), from /proc/PID/stat; -1 unknown. */
static int64_t process_start_ns(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* comm may hold spaces */
	unsigned long long start = 0;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
			 "%*d %*d %*d %*d %llu", &start) != 1)
		return -1;
	return (int64_t)(start * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK)));
}

static void poll_process(void *ctx, pid_t pid)
{
	struct poll_ctx *pc = ctx;
	pc->pid = pid;
	int64_t started = pc->t->since_ns ? process_start_ns(pid) : -1;
	pc->new_process = started >= 0 && started >= pc->t->since_ns;
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
