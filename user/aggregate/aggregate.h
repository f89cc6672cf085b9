/* Layer aggregate: the hub: folds capture records into a profile, symbolized
 * through symbolize, python and tags, weighed by exact CPU counts.
 * (Layers and their order: scripts/check-layers.sh.) */
/* aggregate.h - folds sample records from the BPF ring buffer into a profile:
 * symbolizes their kernel, user and Python stacks (as they arrive, while the
 * process lives) and adds them, root first, with their pid/tid/comm and weights.
 *
 * Python stacks are merged with native ones: the Python frames (root first)
 * stand where the interpreter runs; the interpreter's own native frames are
 * left out, and the native frames leafward of the innermost interpreter frame
 * (C extensions, libraries they call) follow the Python leaf, then the kernel
 * frames.
 */
#ifndef DYNOPROF_AGGREGATE_H
#define DYNOPROF_AGGREGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "counts_abi.h" /* bpf/counts_abi.h: thread counts records */
#include "events_abi.h" /* bpf/events_abi.h: record header and types */
#include "sampling_abi.h" /* bpf/sampling_abi.h: the sample record */
#include "aggregate/apportion.h"
#include "aggregate/counts.h"
#include "profile/profile.h"
#include "python/py_registry.h"
#include "python/py_resolver.h"
#include "symbolize/symbolizer.h"
#include "tags/endpoint_rule.h"
#include "tags/tag_registry.h"

/* How sample weights are turned into profile values. */
struct aggregate_opts {
	int period_is_ns;        /* the sampling event's period counts nanoseconds (cpu-clock) */
	int interrupt_frames;    /* kernel stacks begin with the timer interrupt's own
				  * frames (sampling on the tick): cut them off */
	uint64_t ns_per_sample;  /* else: CPU ns each sample stands for (1e9 / freq) */
	int weight_by_runtime;   /* a sample weighs its thread's CPU time since that
				  * thread's previous sample (delta_ns; needs exact_cpu):
				  * sampling on the tick, which sees only who runs at
				  * ticks, so a period per sample would miss threads that
				  * run between them */
	int kernel_frames;       /* include kernel frames (default on) */
	int user_frames;         /* include user frames (default on) */
	struct py_registry *python;   /* borrowed; NULL: no Python frames */
	struct py_resolver *py_resolver; /* borrowed; required with python */
	int python_lines;        /* Python frames carry their line (else function level) */
	struct tag_registry *tags;    /* borrowed; NULL: samples carry no tags */
	const struct endpoint_rule *endpoint_rule; /* infer endpoints from stacks; NULL: off */
	struct counts_table *counts;  /* borrowed; exited threads' totals go here; NULL: none */
	bool exact_cpu;          /* the sampler counts: samples carry the exact CPU time
				  * (and counters) accrued since the thread's previous
				  * sample. Counters weigh samples directly; CPU time is
				  * summed per process for aggregator__apportion() unless
				  * counts is set (see aggregate/apportion.h for why) */
	bool instructions;       /* slot PRIMARY counts instructions: add that value type */
	bool cycles;             /* slot CYCLES counts cycles: add that value type */
	uint64_t window_ns;      /* > 0: label each sample `window` = its time slot
				  * ((sample time - window_origin_ns) / window_ns), the
				  * clusters `dynoprof diff` resamples */
	uint64_t window_origin_ns; /* CLOCK_MONOTONIC origin of window 0 */
	bool process_comm;       /* samples' comm is their process's name (the thread
				  * group leader's), not their thread's */
	/* Called with every sample added (frames are ids in the profile) and the
	 * exact CPU ns it carried (0 without exact_cpu), e.g. to feed live
	 * queries; NULL: none. Also with every [unsampled] sample (values all 0,
	 * see aggregator__add_unsampled): the receiver adds it only where the
	 * process has no stack sample, and credits the ns either way. */
	void (*on_sample)(void *ctx, const struct profile *p, const struct sample_desc *s,
			  uint64_t exact_cpu_ns);
	void *on_sample_ctx;
};

struct aggregate_stats {
	uint64_t samples;         /* sample records folded in */
	uint64_t bad_records;     /* records too short or of unknown type (ignored) */
	uint64_t kstack_missing;  /* samples whose kernel stack BPF could not read */
	uint64_t ustack_missing;  /* samples whose user stack BPF could not read */
	uint64_t execs;           /* exec notifications */
	uint64_t exits;           /* exit notifications */
	uint64_t python_samples;  /* samples with Python frames */
	uint64_t python_truncated;/* of which deeper than the walker's limit */
	uint64_t python_read_errors; /* of which the walk stopped at an unreadable frame */
	uint64_t python_torn;     /* of which the chain was caught mid-update (3.12+) */
	uint64_t tagged_samples;  /* samples that carry at least one tag */
	uint64_t inferred_endpoints; /* samples whose endpoint came from the stack rule */
	uint64_t tag_races;       /* samples whose thread was writing its tags (untagged) */
	uint64_t unsampled_ns;    /* CPU ns no sample took, credited to its process
				   * (exit records, frees, window flushes) */
	uint64_t kernel_truncated; /* samples whose kernel stack filled PROFILE_MAX_FRAMES
				  * (marked [truncated]) */
	uint64_t native_truncated; /* samples whose user stack filled its cap (127, or
				  * PY_NATIVE_FRAMES in Python processes) short of the
				  * root or interpreter (marked [truncated]) */
	uint64_t window_tags_replaced; /* samples whose process set its own `window` tag,
				  * replaced by the time slot (window_ns) */
	/* Whole requests (aggregate/relabel.h): samples taken in a request
	 * before its endpoint was known, held until it is. */
	uint64_t relabel_held;       /* samples held */
	uint64_t relabel_resolved;   /* of which released with their request's endpoint */
	uint64_t relabel_unresolved; /* of which released as `unresolved`: the
				      * request ended with no endpoint (404s) */
	uint64_t relabel_lost;       /* of which released as `unresolved` without
				      * knowing: the request was still open at a flush
				      * (window close), its process's log was gone or
				      * unreadable, or later requests overwrote it */
	uint64_t relabel_abandoned;  /* of which released with no endpoint: the
				      * request was abandoned (no request after all) */
	uint64_t relabel_overflow;   /* samples not held (RELABEL_MAX_SAMPLES held
				      * already): added as `unresolved` at once */
};

/* Most samples held for re-labelling at once (each a copy of its stack and
 * labels, ~1 KiB: at most some 16 MiB). Held requests are looked up every
 * 0.1 s, so only requests left open without an endpoint for long add up. */
#define RELABEL_MAX_SAMPLES 16384

struct aggregator;

/* Most value types a profile of the aggregator has. */
#define AGGREGATE_MAX_VALUE_TYPES 5

/* The value types (type, unit) of the profiles an aggregator with opts fills,
 * in their order: samples/count, cpu/nanoseconds, then instructions/count and
 * cycles/count when counted, requests/count with tags. The one definition:
 * whoever builds a profile of the same kind (the agent's live queries) asks
 * here. Returns how many. */
size_t aggregator__value_types(const struct aggregate_opts *opts,
			       const char *types[AGGREGATE_MAX_VALUE_TYPES][2]);

/* The profile gets the value types of aggregator__value_types() (each sample
 * weighs the time its sampling period stands for, until apportioned). The
 * aggregator borrows p and sym; both must outlive it. NULL + errno. */
struct aggregator *aggregator__new(struct profile *p, struct symbolizer *sym,
				   const struct aggregate_opts *opts);
void aggregator__free(struct aggregator *a);

/* Handles one ring buffer record (sample, exec or exit). Returns 0 or -errno
 * (-ENOMEM only: malformed records are counted and skipped). */
int aggregator__record(struct aggregator *a, const void *data, size_t size);

void aggregator__stats(const struct aggregator *a, struct aggregate_stats *out);

/* Directs later samples into p (same value types as the first profile; the
 * agent swaps in a fresh profile at every window). Returns 0, or -EINVAL when
 * p's value types differ (p gets them when it has none). */
int aggregator__set_profile(struct aggregator *a, struct profile *p);

/* With exact_cpu and no counts table: rescales the cpu values of the current
 * profile so that each process's samples sum to the exact CPU time they
 * carried since the last call (cpu_totals__apportion), then starts new
 * totals. Call before handing a profile off (the agent: at each window).
 * With a counts table, apportion by it instead (counts_table__apportion).
 * Returns 0 or -errno. */
int aggregator__apportion(struct aggregator *a);

/* With exact_cpu and no counts table: credits a thread's CPU time that no
 * stack sample took (r: an exit record's tail, a freed thread's, or a window
 * flush's, sampler__flush_unsampled) to its process in the current profile.
 * When the process has no stack sample there yet, it gets a synthetic one
 * (frame CPU_UNSAMPLED_FRAME, its process name, tags (its parent's when it
 * is gone) and pid, all values 0) for aggregator__apportion to put the time
 * on. Returns 0 or -errno (-ENOMEM). */
int aggregator__add_unsampled(struct aggregator *a, const struct unsampled_record *r);

/* Releases every held sample of a whole request (see aggregate_stats
 * relabel_*): with its request's endpoint where the process's request log
 * has it, else as `unresolved` (counted in relabel_lost). Called by
 * aggregator__apportion and aggregator__set_profile; a one-shot capture
 * calls it before apportioning. Returns 0 or -errno. */
int aggregator__flush_requests(struct aggregator *a);

/* Records that process pid began `requests` requests of endpoint since the
 * last call: a sample with the single frame "[requests]", every value 0 but
 * "requests", labelled with the process's tags, the endpoint and (with
 * window_ns) the current window. `dynoprof diff` divides CPU by these.
 * Needs opts.tags. Returns 0 or -errno. */
int aggregator__add_requests(struct aggregator *a, pid_t pid, const char *endpoint,
			     uint64_t requests, uint64_t now_mono_ns);

#endif
