/* Layer tags: the tags of sampled processes (environment, libdynotag's records,
 * endpoint rules) and their request counters.
 * (Layers and their order: scripts/check-layers.sh.) */
/* tag_registry.h - the tags of every sampled process: which processes use
 * libdynotag (published to the BPF program, which then copies each sampled
 * thread's tag ids into the sample), the strings behind those ids, the
 * process's own tags (commit, service, env, custom) from its environment and
 * from libdynotag's process record, and its per-endpoint request counters.
 *
 * Environment variables are read once per exec image from /proc/PID/environ;
 * the library is looked for at a process's first sample (or at start-up by
 * tag_registry__scan) and again every half second for its first minute
 * (Python apps load it at import). A process's published strings are read
 * all at once when the library is found and whenever an unknown id shows up,
 * so samples processed after the process exited still resolve.
 * Memory is bounded: processes (max_processes) and strings (per process and
 * overall) are evicted oldest first.
 */
#ifndef DYNOPROF_TAG_REGISTRY_H
#define DYNOPROF_TAG_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "tags_abi.h" /* bpf/tags_abi.h: struct tag_proc, enum tag_read_status */
#include "symbolize/proc_maps.h"

/* The label budget of one sample. Each source is capped where its labels
 * enter the registry (the excess counted in tag_registry_stats), so the
 * sources together never fill the reserved slots: `endpoint` (from a tag, the
 * stack rule or a request counter) and `window` (the time slot `diff`
 * resamples on) always fit and are never the labels dropped. */
#define TAG_MAX_ENV_LABELS 16                   /* from the environment */
#define TAG_MAX_PROCESS_LABELS DYNOTAG_MAX_TAGS /* libdynotag's process record */
#define TAG_MAX_THREAD_LABELS DYNOTAG_MAX_TAGS  /* the sampled thread's record */
#define TAG_RESERVED_LABELS 2                   /* endpoint, window */
#define TAG_MAX_LABELS (TAG_MAX_ENV_LABELS + TAG_MAX_PROCESS_LABELS + \
			TAG_MAX_THREAD_LABELS + TAG_RESERVED_LABELS)
/* Longest tag key or value kept, in bytes after sanitising (longer: cut, counted). */
#define TAG_TEXT_MAX 1024

/* Maps an environment variable to a process tag. */
struct env_tag_rule {
	const char *variable;   /* e.g. "GIT_COMMIT" */
	const char *key;        /* e.g. "commit"; NULL: the variable holds
				 * "k=v,k=v" pairs (like DYNOPROF_TAGS) */
};

/* Publishes (info != NULL) or withdraws a libdynotag process for BPF. */
typedef int (*tag_publish_fn)(void *ctx, uint32_t pid, const struct tag_proc *info);

struct tag_registry_opts {
	const struct env_tag_rule *env_rules; /* NULL: tag_default_env_rules */
	size_t n_env_rules;
	tag_publish_fn publish;  /* BPF map writer; NULL: thread tags off */
	void *publish_ctx;
	size_t max_processes;    /* 0: default */
	proc_maps_source_fn maps; /* where library look-ups get mappings; NULL:
				   * read /proc/PID/maps */
	void *maps_ctx;
};

/* The default environment rules: DYNOPROF_COMMIT, GIT_COMMIT, SOURCE_VERSION
 * -> commit; DYNOPROF_SERVICE -> service; DYNOPROF_ENV -> env; DYNOPROF_TAGS
 * -> k=v,k=v pairs. The first variable present wins for a key. */
extern const struct env_tag_rule tag_default_env_rules[];
extern const size_t tag_default_env_rule_count;

/* The labels of one sample. Strings stay valid until the next call of
 * tag_registry__labels on the same registry. */
struct tag_labels {
	const char *keys[TAG_MAX_LABELS];
	const char *values[TAG_MAX_LABELS];
	unsigned count;
};

struct tag_registry_stats {
	uint64_t processes;       /* processes tracked */
	uint64_t tagged_processes;/* processes found using libdynotag */
	uint64_t string_reads;    /* strings read from processes */
	uint64_t string_failures; /* ids that could not be read (label dropped): the
				   * process exited before its new strings were read,
				   * or the id is past the 4,096 strings cached per
				   * process */
	uint64_t string_denied;   /* ids that could not be read because reading the
				   * process's memory was refused (no CAP_SYS_PTRACE,
				   * or a Yama/LSM policy): label dropped */
	uint64_t races;           /* samples whose thread was writing its tags */
	uint64_t env_dropped;     /* environment tags beyond TAG_MAX_ENV_LABELS (per
				   * process image read) */
	uint64_t process_dropped; /* process-record pairs beyond TAG_MAX_PROCESS_LABELS
				   * (a record claiming more than it can hold) */
	uint64_t thread_dropped;  /* thread pairs beyond TAG_MAX_THREAD_LABELS */
	uint64_t truncated;       /* keys/values cut to TAG_TEXT_MAX, and environments
				   * longer than dynoprof reads (later variables unseen) */
};

struct tag_registry;

struct tag_registry *tag_registry__new(const struct tag_registry_opts *opts);
void tag_registry__free(struct tag_registry *r);

/* Labels of a sample of pid: the process tags, then the thread's (pairs as
 * copied by BPF, when status is TAG_READ_OK). A thread tag replaces a
 * process tag of the same key. Returns 0 or -ENOMEM. */
int tag_registry__labels(struct tag_registry *r, pid_t pid, uint32_t status,
			 const struct dynotag_pair *pairs, uint32_t npairs,
			 struct tag_labels *out);

/* Sets key to value in l: replaces a label of that key, else appends it.
 * `endpoint` and `window` always fit (reserved slots); any other key only
 * while the sources' share of the budget has room. Returns 0 or -ENOSPC
 * (the caller counts it). */
int tag_labels__put(struct tag_labels *l, const char *key, const char *value);

/* Calls fn(ctx, endpoint, requests) for each endpoint with a non-zero request
 * counter in pid (libdynotag's request_begin counts). Returns 0, -ENOENT when
 * pid has no library, or -errno when its memory cannot be read. */
/* Like tag_registry__labels, and when pid was gone before its environment
 * could be read (a short-lived process), its environment tags are its
 * parent ppid's (0: unknown). */
int tag_registry__labels_inherit(struct tag_registry *r, pid_t pid, pid_t ppid, uint32_t status,
				 const struct dynotag_pair *pairs, uint32_t npairs,
				 struct tag_labels *out);

int tag_registry__requests(struct tag_registry *r, pid_t pid,
			   void (*fn)(void *ctx, const char *endpoint, uint64_t requests),
			   void *ctx);

/* The endpoint a request that ended without one is labelled with. */
#define TAG_ENDPOINT_UNRESOLVED "unresolved"
/* What tag_registry__request_endpoints gives an abandoned request (no request
 * after all: its samples get no endpoint); compare the pointer. */
extern const char tag_request_abandoned[];

/* Looks up whole requests (libdynotag ABI 2) in pid's request log: sets
 * endpoints[i] to the endpoint request numbers[i] has (TAG_ENDPOINT_UNRESOLVED
 * when it ended with none, tag_request_abandoned when it was abandoned; valid
 * as long as the registry tracks pid), or to
 * NULL when the log does not have it (still open with no endpoint, or
 * overwritten by later requests). Returns 0, -ENOENT (pid has no such
 * library), -EINVAL (a log this reader does not understand) or -errno when
 * its memory cannot be read. */
int tag_registry__request_endpoints(struct tag_registry *r, pid_t pid, const uint32_t *numbers,
				    size_t n, const char **endpoints);

/* pid exec'd at exec_ns (CLOCK_MONOTONIC, the event's time; 0 unknown):
 * what was read of it before then is forgotten. */
void tag_registry__note_exec(struct tag_registry *r, pid_t pid, uint64_t exec_ns);
void tag_registry__note_exit(struct tag_registry *r, pid_t pid);
/* pid's thread group leader is exiting (its memory is gone, so its
 * environment and mappings read empty): a process not seen before gets an
 * entry that reads neither and inherits its parent's environment, as reading
 * would have ended; one seen keeps its entry. 0 or -ENOMEM. */
int tag_registry__note_leader_exit(struct tag_registry *r, pid_t pid);
/* Forgets the processes whose exit the previous sweep already saw
 * (process_table__sweep_exited); returns how many. */
size_t tag_registry__sweep_exited(struct tag_registry *r);
/* 1 when pid has an entry, else 0. */
int tag_registry__tracks(const struct tag_registry *r, pid_t pid);
/* Calls fn for every tracked pid (e.g. to collect request counts). */
void tag_registry__foreach(struct tag_registry *r, void (*fn)(void *ctx, pid_t pid), void *ctx);
/* Calls fn for every tracked pid whose libdynotag was found (the only ones
 * with request counters): no look-up per untagged process. */
void tag_registry__foreach_tagged(struct tag_registry *r, void (*fn)(void *ctx, pid_t pid),
				  void *ctx);
void tag_registry__stats(const struct tag_registry *r, struct tag_registry_stats *out);

/* Looks at every process in /proc now (for a system-wide capture: tags from
 * the first sample). Returns the number using libdynotag. */
int tag_registry__scan(struct tag_registry *r);
/* Looks at pid now (a capture's target). 0 or -ENOMEM. */
int tag_registry__touch(struct tag_registry *r, pid_t pid);

/* Sanitises untrusted tag text into out (NUL-terminated, at most len bytes):
 * valid UTF-8 is kept, other bytes and control characters become \xNN.
 * Returns true when the text did not fit and was cut. */
bool tag_sanitize(const char *in, size_t in_len, char *out, size_t len);

#endif
