/* Layer pipeline: the one capture pipeline. Options in, a running pipeline out,
 * one teardown: `record`, the agent (and whatever else captures) assemble BPF
 * sampling, symbolization, Python frames, tags and aggregation only here.
 * (Layers and their order: scripts/check-layers.sh.) */
/* pipeline.h - the capture pipeline: sampler (BPF) -> aggregator (symbolizer,
 * Python registry and resolver, tag registry) -> a profile.
 *
 * pipeline__open() calibrates what the BPF walkers need (glibc's TLS layout),
 * loads and attaches the BPF programs, and wires every stage in the one order
 * that works (the registries publish into the sampler's maps, the aggregator
 * reads from them). The caller owns the profile the samples go into, and may
 * swap it (aggregator__set_profile, the agent's windows). A capability a
 * stage cannot have here (Python frames without a TLS layout) is turned off
 * with one warning, never silently.
 */
#ifndef DYNOPROF_PIPELINE_H
#define DYNOPROF_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "aggregate/aggregate.h"
#include "aggregate/counts.h"
#include "capture/sampler.h"
#include "tags/requests.h"
#include "tags/tag_registry.h"

struct pipeline_opts {
	/* What to sample (struct sampler_opts has the details). */
	unsigned freq_hz;             /* samples per second per CPU */
	enum sample_event event;      /* cpu-clock, cycles or the tick */
	uint64_t period;              /* events per sample; 0: frequency mode */
	const uint32_t *pids;         /* only these processes (borrowed); NULL: all */
	size_t npids;
	const uint32_t *tids;         /* only these threads (borrowed); NULL: all */
	size_t ntids;
	bool follow_children;         /* the targets' forks become targets */
	uint64_t cgroup_id;           /* != 0: only tasks in this cgroup v2 or below it
				       * (util/cgroup.h resolves a path) */
	uint32_t cgroup_level;        /* its depth below the cgroup root */
	bool counting;                /* exact per-thread CPU time (and counters) */
	bool counter_standin;         /* no PMU: the software cpu-clock in the counter slot */
	bool bpf_stats;               /* measure the BPF programs' own run time */
	size_t ringbuf_bytes;         /* ring buffer size (a power of two); 0: the default */
	/* What samples carry. */
	bool kernel;                  /* kernel stacks and frames */
	bool python;                  /* walk and name CPython frames */
	size_t unwind_table_bytes;    /* native stacks through .eh_frame CFI with a row
				       * table this big; 0: frame pointers only */
	bool python_lines;            /* Python frames carry their line */
	bool tags;                    /* process tags, thread tags (endpoint), requests */
	const struct env_tag_rule *env_rules; /* environment variables read as tags
				       * (borrowed); NULL: the defaults */
	size_t n_env_rules;
	const struct endpoint_rule *endpoint_rule; /* endpoints from stacks (borrowed); NULL: off */
	bool counts_table;            /* keep every thread's exact totals in a table
				       * (record's --counts and apportioning); else the
				       * aggregator sums them per process */
	bool process_comm;            /* a sample's comm is its process's name */
	uint64_t window_ns;           /* > 0: the `window` label's slot length */
	uint64_t window_origin_ns;    /* CLOCK_MONOTONIC origin of window 0 */
	void (*on_sample)(void *ctx, const struct profile *p, const struct sample_desc *s,
			  uint64_t exact_cpu_ns); /* every sample added (see aggregate.h) */
	void *on_sample_ctx;
	/* How it behaves. */
	size_t symcache_bytes;        /* symbol tables kept, in bytes; 0: no byte bound */
	bool share_maps_reads;        /* Python detection and tag look-ups reuse the
				       * symbolizer's fresh /proc/PID/maps read of a new
				       * process instead of reading it again */
	bool keep_going;              /* a record that fails to aggregate is skipped and
				       * polling goes on (a daemon); else poll fails */
	FILE *warnings;               /* Python warnings (once per process); NULL: quiet */
	const char *log_prefix;       /* "dynoprof" or "dynoprof agent": start of every line */
};

struct pipeline;

/* Opens the pipeline, samples flowing into profile (borrowed; it gets the
 * value types of aggregate.h if it has none). NULL with errno set and a
 * one-line reason in err on failure. */
struct pipeline *pipeline__open(const struct pipeline_opts *o, struct profile *profile,
				char *err, size_t err_len);
void pipeline__free(struct pipeline *p);

/* Announces the targets to the registries before the first sample: the given
 * pids, or with none given (and no command or threads) every process on the
 * host, so processes that never get sampled early are known too. */
void pipeline__prime(struct pipeline *p, bool whole_host);

/* Polls the ring buffer up to timeout_ms and reads the request counters when
 * their interval is due. Returns 0, -EINTR, or -errno: reading failed, or a
 * record failed to aggregate (always for -ENOMEM; any error without
 * keep_going: with it, other errors skip their record and are forgotten). */
int pipeline__poll(struct pipeline *p, int timeout_ms);

/* Reads every request counter now. Requests that began since the previous
 * read are dated back_ns before now (half the poll interval: on average). */
void pipeline__read_requests(struct pipeline *p, uint64_t back_ns);

/* Forgets what every stage kept of processes that exited before the previous
 * call (their samples were all read by then): mappings, Python verdicts and
 * code objects, tags, request baselines. A daemon calls it at each window
 * close, so a host's churn does not grow it. */
void pipeline__forget_exited(struct pipeline *p);

/* CLOCK_REALTIME (ns) when counting began (just before the BPF programs
 * loaded): a daemon's first window starts there, so it holds every thread's
 * CPU time from the counting baseline. */
int64_t pipeline__counting_began_unix_ns(const struct pipeline *p);

/* The stages, for the caller's summaries, windows and queries (borrowed; NULL
 * when off: Python, tags, counts table). */
struct sampler *pipeline__sampler(const struct pipeline *p);
struct aggregator *pipeline__aggregator(const struct pipeline *p);
struct symbolizer *pipeline__symbolizer(const struct pipeline *p);
struct py_registry *pipeline__python(const struct pipeline *p);
struct py_resolver *pipeline__python_resolver(const struct pipeline *p);
/* CFI unwinding's registry (NULL: off). */
struct unwind_registry *pipeline__unwind(const struct pipeline *p);
struct tag_registry *pipeline__tags(const struct pipeline *p);
struct counts_table *pipeline__counts(const struct pipeline *p);
/* The counters counting chose, NULL when not counting. */
const struct counter_choice *pipeline__counting(const struct pipeline *p);

/* The value types of the profiles it fills (aggregator__value_types()). */
size_t pipeline__value_types(const struct pipeline *p,
			     const char *types[AGGREGATE_MAX_VALUE_TYPES][2]);

/* Nanoseconds between reads of libdynotag request counters: a process's first
 * reading is its baseline and the requests of a process that exits after its
 * last read are lost, so the interval bounds both errors. */
#define PIPELINE_REQUEST_POLL_NS 250000000ull

#endif
