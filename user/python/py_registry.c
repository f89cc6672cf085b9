// SPDX-License-Identifier: MIT
#include "python/py_registry.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "python/py_debug_offsets.h"
#include "python/py_detect.h"
#include "symbolize/proc_maps.h"
#include "util/hashmap.h"
#include "util/process_table.h"
#include "util/remote.h"
#include "util/warn_log.h"
#include "util/clock.h"

#define DEFAULT_MAX_PROCESSES 16384
/* A "not Python" verdict is re-checked this many times, this far apart. */
#define RECHECKS 3
#define RECHECK_INTERVAL_NS 300000000ull

enum py_state {
	PY_STATE_UNKNOWN = 0,     /* never looked at (or exec'd since) */
	PY_STATE_PYTHON = 1,      /* supported interpreter, published to BPF */
	PY_STATE_NOT_PYTHON = 2,  /* not Python (may be re-checked) */
	PY_STATE_REFUSED = 3,     /* Python we cannot profile: warned once */
};

struct py_entry {
	struct process_slot slot; /* pid, exited, LRU tick (first: see process_table.h) */
	enum py_state state;      /* verdict */
	unsigned checks;          /* detections done for this image */
	uint64_t checked_ns;      /* CLOCK_MONOTONIC of the last detection */
	struct py_layout layout;  /* when PYTHON: its offsets */
	int minor;                /* when PYTHON */
	char *interpreter;        /* when PYTHON: interpreter file path (owned) */
};

struct py_registry {
	struct hashmap *procs;            /* pid -> struct py_entry* */
	size_t max_processes;             /* bound on procs */
	py_registry_publish_fn publish;   /* BPF map writer */
	void *ctx;                        /* its context */
	FILE *warnings;                   /* one-time warnings go here */
	struct warn_log *log;             /* says them once, then summarises */
	uint64_t tick;                    /* LRU clock */
	struct py_registry_stats stats;   /* counters */
	proc_maps_source_fn maps;         /* mappings for detection; NULL: read them */
	void *maps_ctx;                   /* its context */
};

struct py_registry *py_registry__new(py_registry_publish_fn publish, void *ctx,
				     size_t max_processes, FILE *warnings)
{
	struct py_registry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->procs = hashmap__new();
	if (!r->procs) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->publish = publish;
	r->ctx = ctx;
	r->warnings = warnings;
	r->log = warn_log__new(warnings, 0);
	if (!r->log) {
		hashmap__free(r->procs);
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	r->max_processes = max_processes ? max_processes : DEFAULT_MAX_PROCESSES;
	return r;
}

static void entry_free(struct py_entry *e)
{
	if (!e)
		return;
	free(e->interpreter);
	free(e);
}

void py_registry__free(struct py_registry *r)
{
	if (!r)
		return;
	size_t cur = 0;
	void *v;
	while (hashmap__next(r->procs, &cur, NULL, NULL, &v))
		entry_free(v);
	hashmap__free(r->procs);
	warn_log__free(r->log);
	free(r);
}

static void withdraw(struct py_registry *r, struct py_entry *e)
{
	if (e->state == PY_STATE_PYTHON && r->publish)
		r->publish(r->ctx, (uint32_t)e->slot.pid, NULL);
}

static void evict_entry(void *ctx, void *value)
{
	struct py_registry *r = ctx;
	withdraw(r, value);
	entry_free(value);
}

static void detect(struct py_registry *r, struct py_entry *e)
{
	struct py_target t;
	char reason[256] = "";
	e->checks++;
	e->checked_ns = mono_ns();
	r->stats.detections++;

	struct proc_maps *owned = NULL;
	const struct proc_maps *maps = r->maps ? r->maps(r->maps_ctx, e->slot.pid)
					       : (owned = proc_maps__read(e->slot.pid));
	if (!maps) {
		e->state = PY_STATE_NOT_PYTHON;
		e->checks = RECHECKS; /* gone: no point in looking again */
		return;
	}
	int err = py_detect(e->slot.pid, maps, &t, reason, sizeof(reason));
	proc_maps__free(owned);
	if (err == -ENOTSUP) {
		e->state = PY_STATE_REFUSED;
		r->stats.unsupported++;
		/* Once per process, and only the first few of one interpreter: a
		 * host that starts an old Python every minute must not fill the log. */
		char kind[320];
		snprintf(kind, sizeof(kind), "Python processes showing native frames only (%s)",
			 reason[0] ? reason : "unsupported Python");
		warn_log__say(r->log, kind, (int)e->slot.pid, "dynoprof: warning: PID %d: %s: "
			      "showing its native frames only", (int)e->slot.pid,
			      reason[0] ? reason : "unsupported Python");
		return;
	}
	if (err) {
		/* -EAGAIN: an interpreter whose libpython is not mapped yet. */
		e->state = PY_STATE_NOT_PYTHON;
		if (err != -ENOENT && err != -EAGAIN)
			e->checks = RECHECKS;
		return;
	}
	char *path = strdup(t.path);
	if (!path) {
		e->state = PY_STATE_NOT_PYTHON;
		return;
	}
	struct py_proc info = { .runtime_addr = t.runtime_addr, .minor = (uint32_t)t.minor,
				.o = t.layout.walk };
	if (r->publish && r->publish(r->ctx, (uint32_t)e->slot.pid, &info)) {
		free(path);
		e->state = PY_STATE_NOT_PYTHON;
		e->checks = RECHECKS;
		warn_log__say(r->log, "Python processes not registered for the BPF walker (map "
			      "full?): native frames only", (int)e->slot.pid, "dynoprof: warning: "
			      "PID %d: cannot register Python process for the BPF walker (map "
			      "full?): native frames only", (int)e->slot.pid);
		return;
	}
	free(e->interpreter);
	e->interpreter = path;
	e->layout = t.layout;
	e->minor = t.minor;
	if (t.layout.source == PY_LAYOUT_NEWER) {
		r->stats.newer++;
		char kind[160];
		snprintf(kind, sizeof(kind), "Python 3.%d processes read through their own "
			 "_Py_DebugOffsets (newer than dynoprof knows)", t.minor);
		warn_log__say(r->log, kind, (int)e->slot.pid, "dynoprof: PID %d: Python %d.%d is "
			      "newer than dynoprof knows (3.8-3.%d): read through its own "
			      "_Py_DebugOffsets, which check out with the 3.%d layout (names "
			      "validated): %s", (int)e->slot.pid, t.major, t.minor,
			      PY_DEBUG_OFFSETS_KNOWN_MINOR, PY_DEBUG_OFFSETS_KNOWN_MINOR, t.path);
	}
	e->state = PY_STATE_PYTHON;
	r->stats.python_processes++;
}

static struct py_entry *get_entry(struct py_registry *r, pid_t pid)
{
	return process_table__get(r->procs, pid, r->max_processes, sizeof(struct py_entry),
				  &r->tick, evict_entry, r, NULL);
}

int py_registry__lookup(struct py_registry *r, pid_t pid, struct py_process_info *info)
{
	if (pid <= 0)
		return 0;
	struct py_entry *e = get_entry(r, pid);
	if (!e)
		return -ENOMEM;
	if (e->state == PY_STATE_UNKNOWN ||
	    (e->state == PY_STATE_NOT_PYTHON && !e->slot.exited && e->checks < RECHECKS &&
	     mono_ns() - e->checked_ns >= RECHECK_INTERVAL_NS))
		detect(r, e);
	if (e->state != PY_STATE_PYTHON)
		return 0;
	info->layout = &e->layout;
	info->minor = e->minor;
	info->interpreter = e->interpreter;
	return 1;
}

void py_registry__note_exec(struct py_registry *r, pid_t pid)
{
	struct py_entry *e = hashmap__get(r->procs, &pid, sizeof(pid));
	if (!e)
		return;
	withdraw(r, e);
	free(e->interpreter);
	e->interpreter = NULL;
	e->state = PY_STATE_UNKNOWN;
	e->checks = 0;
	e->slot.exited = 0;
}

void py_registry__note_exit(struct py_registry *r, pid_t pid)
{
	struct py_entry *e = hashmap__get(r->procs, &pid, sizeof(pid));
	if (!e)
		return;
	/* BPF dropped nothing by itself: withdraw so a reused pid starts clean,
	 * but keep the verdict for samples still queued. */
	if (e->state == PY_STATE_PYTHON && r->publish)
		r->publish(r->ctx, (uint32_t)pid, NULL);
	e->slot.exited = 1;
}

/* An exited process was withdrawn from BPF at its exit (note_exit): its
 * entry only goes. */
static void forget_entry(void *ctx, void *value)
{
	(void)ctx;
	entry_free(value);
}

size_t py_registry__sweep_exited(struct py_registry *r)
{
	return r ? process_table__sweep_exited(r->procs, forget_entry, NULL) : 0;
}

void py_registry__set_maps_source(struct py_registry *r, proc_maps_source_fn fn, void *ctx)
{
	r->maps = fn;
	r->maps_ctx = ctx;
}

int py_registry__tracks(const struct py_registry *r, pid_t pid)
{
	return r && hashmap__get(r->procs, &pid, sizeof(pid)) != NULL;
}

int py_registry__scan(struct py_registry *r)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int found = 0;
	struct py_process_info info;
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid_t pid = (pid_t)atoi(de->d_name);
		if (py_registry__lookup(r, pid, &info) == 1)
			found++;
	}
	closedir(d);
	return found;
}

void py_registry__stats(const struct py_registry *r, struct py_registry_stats *out)
{
	*out = r->stats;
}

int py_registry__summary(struct py_registry *r, const char *prefix, const char *suffix,
			 int force)
{
	return r ? warn_log__summary(r->log, prefix, suffix, force) : 0;
}
