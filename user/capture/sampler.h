/* Layer capture: the BPF programs loaded and attached, perf events and counters
 * opened, ring-buffer records delivered; no symbols, no profile.
 * (Layers and their order: scripts/check-layers.sh.) */
/* sampler.h - the BPF sampling pipeline: loads bpf/sample.bpf.c, opens one
 * sampling perf event per online CPU, attaches the program to each, and hands
 * every ring buffer record (struct profile_sample_event / profile_task_event, see
 * bpf/sampling_abi.h, bpf/events_abi.h) to a callback as it arrives.
 */
#ifndef DYNOPROF_SAMPLER_H
#define DYNOPROF_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "capture/counters.h"
#include "counts_abi.h" /* bpf/counts_abi.h: thread counts records */
#include "events_abi.h" /* bpf/events_abi.h: record types, drop reasons */
#include "python_abi.h" /* bpf/python_abi.h: struct py_proc, py_offsets */
#include "sampling_abi.h" /* bpf/sampling_abi.h: the sample record */
#include "tags_abi.h" /* bpf/tags_abi.h: struct tag_proc */
#include "unwind_abi.h" /* bpf/unwind_abi.h: unwind rows, struct unwind_proc */

/* Which event drives sampling. */
enum sample_event {
	SAMPLE_EVENT_AUTO = 0,  /* cycles when the PMU exposes it, else cpu-clock */
	SAMPLE_EVENT_CPU_CLOCK, /* software cpu-clock timer: weights are CPU nanoseconds */
	SAMPLE_EVENT_CYCLES,    /* hardware CPU cycles */
	SAMPLE_EVENT_INSTRUCTIONS, /* hardware instructions retired */
	SAMPLE_EVENT_TICK,      /* the scheduler tick already interrupting busy CPUs
				 * (every HZ/freq-th tick on average): no interrupts
				 * of its own; weights are CPU nanoseconds */
};

struct sampler;

struct sampler_opts {
	unsigned freq_hz;           /* samples per second per CPU (1..MAX_FREQ_HZ) */
	uint64_t period;            /* events per sample instead of freq_hz; 0 = use freq_hz */
	enum sample_event event;    /* requested event */
	const uint32_t *pids;       /* processes to sample; NULL/0 = all */
	size_t npids;
	const uint32_t *tids;       /* threads to sample; NULL/0 = all */
	size_t ntids;
	bool follow_children;       /* children forked by targets become targets */
	uint64_t cgroup_id;         /* != 0: only tasks in this cgroup v2 (its id: the
				     * directory's inode number) or below it */
	uint32_t cgroup_level;      /* its depth below the cgroup root (root: 0) */
	size_t ringbuf_bytes;       /* ring buffer size (power of two); 0 = default 8 MiB */
	bool walk_python;           /* walk CPython frames of published processes */
	bool no_kernel_stacks;      /* do not collect kernel stacks (saves their cost) */
	bool thread_tags;           /* read libdynotag thread tags of published processes */
	bool bpf_stats;             /* keep kernel BPF run-time statistics on (agent) */
	bool counter_standin;       /* without a PMU, read the software cpu-clock counter
				     * in the instructions slot (tests the counter path) */
	bool counting;              /* exact per-thread CPU time (the scheduler's sums)
				     * and counters (read at every context switch
				     * when open, see capture/counters.h) */
	struct py_tls_layout py_tls;/* glibc TSS layout (when walk_python or thread_tags) */
	size_t unwind_rows;         /* non-zero: CFI unwinding on (the registry's row
				     * budget, 8 bytes a row; tables are made per file
				     * by sampler__unwind_table_put); 0: frame pointers */
	/* Called once the maps exist, before any event is attached (NULL: none);
	 * a negative errno fails the open. */
	int (*before_attach)(void *ctx, struct sampler *s);
	/* Called when the open fails after before_attach succeeded, before the
	 * maps go away: whatever before_attach started that writes into them
	 * (a thread filling the unwind rows) must stop here (NULL: none). */
	void (*undo_before_attach)(void *ctx);
	void *before_attach_ctx;
};

/* Highest accepted sampling frequency. */
#define SAMPLER_MAX_FREQ_HZ 10000

/* Called for each record; data is valid only during the call. Return 0 to go
 * on, non-zero to stop polling (sampler__poll returns it). */
typedef int (*sampler_record_fn)(void *ctx, const void *data, size_t size);

struct sampler;

/* Ring buffer bounds for sampler__ringbuf_bytes_for(): the smallest one, and
 * the default (the largest). */
#define SAMPLER_RINGBUF_MIN_BYTES (1u << 20)
#define SAMPLER_RINGBUF_DEFAULT_BYTES (8u << 20)
/* Seconds of the largest records at full rate the sized ring buffer holds:
 * how long the reader may be busy elsewhere (the agent storing a window)
 * before samples are lost (counted as ringbuf_full). */
#define SAMPLER_RINGBUF_SLACK_S 4

/* A ring buffer size for freq_hz on ncpus CPUs (0: every possible CPU):
 * SAMPLER_RINGBUF_SLACK_S seconds of the largest sample records, as a power
 * of two in [SAMPLER_RINGBUF_MIN_BYTES, SAMPLER_RINGBUF_DEFAULT_BYTES]. Its
 * pages are mapped twice into the reader (wrap-around), so they count twice
 * in its RSS: a low rate needs no 8 MiB. */
size_t sampler__ringbuf_bytes_for(unsigned freq_hz, unsigned ncpus);

/* Opens, loads and attaches. On failure returns NULL, sets errno, and writes a
 * one-line message telling the user what to do into err. */
struct sampler *sampler__open(const struct sampler_opts *opts, sampler_record_fn fn,
			      void *ctx, char *err, size_t errlen);
/* Adds a process to the target set (when opened with pids). */
int sampler__add_pid(struct sampler *s, uint32_t pid);
/* Publishes (info != NULL) or withdraws a Python process for the BPF walker.
 * Matches py_registry_publish_fn. */
int sampler__set_python_process(void *sampler, uint32_t pid, const struct py_proc *info);
/* Publishes (info != NULL) or withdraws a process for CFI unwinding. Matches
 * unwind_publish_fn (unwind/unwind_registry.h). */
int sampler__set_unwind_process(void *sampler, uint32_t pid, const struct unwind_proc *info);
/* Puts a file's table (nrows rows, sorted by pc) in unwind table slot
 * `slot`, replacing any there; drops the one in it. 0 or -errno. Match
 * struct unwind_registry_ops (unwind/unwind_registry.h). */
int sampler__unwind_table_put(void *sampler, uint32_t slot, const struct unwind_row *rows,
			      size_t nrows);
int sampler__unwind_table_drop(void *sampler, uint32_t slot);

/* Publishes (info != NULL) or withdraws a libdynotag process for BPF.
 * Matches tag_publish_fn. */
int sampler__set_tag_process(void *sampler, uint32_t pid, const struct tag_proc *info);

/* The counting choice (valid when opened with counting), else NULL. */
const struct counter_choice *sampler__counting(const struct sampler *s);

/* Calls fn for every thread the BPF program is still accounting (threads
 * that exited came as PROFILE_EVENT_TASK_COUNTS records). Returns 0 or -errno. */
int sampler__foreach_task_counts(struct sampler *s,
				 void (*fn)(void *ctx, uint32_t tid, const struct task_counts *tc),
				 void *ctx);

/* Hands every live accounted thread's CPU time that no sample took yet to
 * the caller and marks it taken (a later sample or read gets only what runs
 * after): *recs (malloc'd, the caller frees it) gets *n records, one per
 * thread with some. All are read before any is returned, so they describe
 * one moment. Returns 0, -ENOENT when not counting, -E2BIG when more than
 * 2^20 threads had some (those kept are returned; the CPU time of the last
 * chunk read is lost, the threads not reached keep theirs for the next
 * read), or -errno (nothing returned). */
int sampler__read_unsampled(struct sampler *s, struct unsampled_record **recs, size_t *n);

/* Total run time and runs of the sampling program since it was loaded (the
 * kernel counts them only while run-time stats are enabled: the sampler
 * enables them when opened with stats). Returns 0 or -errno. */
int sampler__bpf_stats(const struct sampler *s, uint64_t *run_time_ns, uint64_t *run_count);

/* Waits up to timeout_ms for records and dispatches them. Returns the number of
 * records handled, the callback's non-zero value, or -errno (-EINTR on signal). */
int sampler__poll(struct sampler *s, int timeout_ms);
/* Dispatches whatever is already in the ring buffer without waiting. */
int sampler__drain(struct sampler *s);
/* Sums the per-CPU drop counters into out[DROP_REASON_COUNT]. */
int sampler__drops(struct sampler *s, uint64_t out[DROP_REASON_COUNT]);
/* Name of the event in use ("cpu-clock", "cycles"). */
const char *sampler__event_name(const struct sampler *s);
/* Why that event was chosen (e.g. "hardware cycles counter not available:
 * Operation not supported"); "" when it was what the user asked for. */
const char *sampler__event_reason(const struct sampler *s);
/* The event in use. */
enum sample_event sampler__event(const struct sampler *s);
/* Number of CPUs sampled. */
int sampler__cpu_count(const struct sampler *s);
/* Sampling on the tick: the tick rate the CPUs showed (ticks per second), or 0
 * when unknown (not sampling on the tick, or no CPU ticked twice while busy). */
unsigned sampler__tick_hz(struct sampler *s);
/* Human text for a drop reason. */
const char *sampler__drop_reason_name(int reason);
/* Its short name, the `reason` label of dynoprof_agent_samples_dropped_total. */
const char *sampler__drop_reason_label(int reason);
/* Accepts NULL. Detaches and frees everything. */
void sampler__free(struct sampler *s);

#endif
