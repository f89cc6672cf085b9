/* py_registry.h - which processes run a supported CPython, learnt at their
 * first sample (or at start-up for the targets of a capture), and announced to
 * the BPF walker through a callback that fills its py_procs map.
 *
 * Each process is detected once per exec image. A process found not to be
 * Python is checked again a few times in its first second (an interpreter
 * caught before ld.so mapped libpython looks like a plain executable). Python
 * processes that cannot be profiled (unsupported version or build) get one
 * warning line on stderr at most, naming the PID and the reason, and keep their
 * native frames (a minor newer than dynoprof knows, read through its own
 * _Py_DebugOffsets, gets one line saying so); past the first few of one interpreter they are only counted,
 * for py_registry__summary() (util/warn_log.h). Memory is bounded by max_processes (exited first, then least
 * recently used are forgotten).
 */
#ifndef DYNOPROF_PY_REGISTRY_H
#define DYNOPROF_PY_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "python_abi.h" /* bpf/python_abi.h: struct py_proc */
#include "python/py_layout.h"
#include "symbolize/proc_maps.h"

/* Called to publish (info != NULL) or withdraw (info == NULL) a process for
 * the BPF walker. Returns 0 or -errno. */
typedef int (*py_registry_publish_fn)(void *ctx, uint32_t pid, const struct py_proc *info);

/* What the registry knows of a Python process. */
struct py_process_info {
	const struct py_layout *layout; /* its structure layout (for py_resolver__frame) */
	int minor;                   /* 3.minor */
	const char *interpreter;     /* path of the file holding the interpreter (the
				      * executable or libpython), as in /proc/PID/maps */
};

struct py_registry_stats {
	uint64_t python_processes;   /* processes found running a supported CPython */
	uint64_t unsupported;        /* Python processes refused (warned once each) */
	uint64_t newer;              /* processes of a minor newer than known, read
				      * through their own debug offsets (said once each) */
	uint64_t detections;         /* py_detect calls */
};

struct py_registry;

/* warnings: where to print the one-time warnings (NULL: none). */
struct py_registry *py_registry__new(py_registry_publish_fn publish, void *ctx,
				     size_t max_processes, FILE *warnings);
void py_registry__free(struct py_registry *r);

/* Returns 1 and fills *info when pid runs a supported CPython (detecting it
 * now if it was never looked at), 0 when not, -ENOMEM. info's strings and
 * layout live until the process is forgotten. */
int py_registry__lookup(struct py_registry *r, pid_t pid, struct py_process_info *info);
/* The process exec'd: detect again at its next sample. */
void py_registry__note_exec(struct py_registry *r, pid_t pid);
/* The process exited: withdraw it from BPF, keep it for late samples. */
void py_registry__note_exit(struct py_registry *r, pid_t pid);
/* Forgets the processes whose exit the previous sweep already saw
 * (process_table__sweep_exited); returns how many. */
size_t py_registry__sweep_exited(struct py_registry *r);
/* Takes pid's mappings from fn(ctx, pid) instead of reading them itself. */
void py_registry__set_maps_source(struct py_registry *r, proc_maps_source_fn fn, void *ctx);
/* 1 when pid has an entry (live, or exited and not yet swept), else 0. */
int py_registry__tracks(const struct py_registry *r, pid_t pid);
/* Detects every process in /proc now (for a system-wide capture, so Python
 * frames show from the first sample). Returns the number of Python processes. */
int py_registry__scan(struct py_registry *r);

void py_registry__stats(const struct py_registry *r, struct py_registry_stats *out);

/* Says how many warnings were counted instead of said since the last summary
 * (warn_log__summary: the agent per window, record at the end with force).
 * Returns the lines said. */
int py_registry__summary(struct py_registry *r, const char *prefix, const char *suffix,
			 int force);

#endif
