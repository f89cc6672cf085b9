// SPDX-License-Identifier: MIT
#include "agent/agent.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "agent/agent_state.h"
#include "agent/http_server.h"
#include "agent/tagset.h"
#include "agent/web.h"
#include "aggregate/aggregate.h"
#include "aggregate/counts.h"
#include "capture/sampler.h"
#include "formats/pprof.h"
#include "pipeline/pipeline.h"
#include "profile/transform.h"
#include "python/py_registry.h"
#include "unwind/unwind_registry.h"
#include "python/py_resolver.h"
#include "symbolize/symbolizer.h"
#include "tags/endpoint_rule.h"
#include "tags/tag_registry.h"
#include "util/hashmap.h"
#include "util/textfile.h"
#include "util/clock.h"
#include "util/cgroup.h"

static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t reload_signal;

static void on_stop(int sig)
{
	(void)sig;
	stop_signal = 1;
}

static void on_hup(int sig)
{
	(void)sig;
	reload_signal = 1;
}

/* Everything the loop owns. */
struct agent {
	struct agent_state st;            /* shared with the handlers */
	struct pipeline *pipe;            /* the capture pipeline; the stages below are its */
	struct sampler *sampler;          /* BPF */
	struct symbolizer *sym;           /* native/kernel symbols */
	struct py_registry *pyreg;        /* Python processes (NULL: off) */
	struct py_resolver *pyres;        /* Python code objects (NULL: off) */
	struct tag_registry *tags;        /* tags (NULL: off) */
	struct endpoint_rule rule;        /* endpoint_from, when set */
	char rule_spec[128];              /* storage the rule points into */
	struct aggregator *agg;           /* records -> window profile (the pipeline's) */
	struct profile *window;           /* the open window */
	int64_t window_start_unix;        /* its start (unix ns) */
	int64_t window_start_mono;        /* its start (monotonic ns) */
	struct http_server *http;         /* HTTP */
	char token[256];                  /* bearer token ("" none) */
	int agg_error;                    /* first error adding unsampled CPU time */
	uint64_t drops_seen[DROP_REASON_COUNT]; /* BPF drop counters already exported */
	uint64_t bpf_ns_seen;             /* BPF run time already exported */
};

/* Feeds live queries (runs on the loop thread). */
static void on_sample(void *ctx, const struct profile *p, const struct sample_desc *s,
		      uint64_t exact_cpu_ns)
{
	struct agent *a = ctx;
	pthread_mutex_lock(&a->st.lock);
	for (struct live_query *q = a->st.queries; q; q = q->next) {
		if (q->done || (q->pid && s->pid != q->pid))
			continue;
		if (!label_filter__match_labels(q->filters, q->nfilters, s->label_keys,
						s->label_values, s->nlabels) ||
		    q->error || !s->pid)
			continue;
		/* An [unsampled] sample (CPU time no stack sample took) goes in
		 * only where the query has no stack sample of its process. */
		bool unsampled = s->nframes == 1 && !s->values[0] &&
			!strcmp(profile__str(p, profile__frame(p, s->frames[0])->name),
				CPU_UNSAMPLED_FRAME);
		if (!unsampled || !cpu_totals__samples(q->exact_cpu, s->pid))
			q->error = profile__add_foreign_sample(q->profile, p, s);
		if (!q->error)
			q->error = unsampled ? cpu_totals__add(q->exact_cpu, s->pid, exact_cpu_ns)
					     : cpu_totals__add_sample(q->exact_cpu, s->pid,
								      exact_cpu_ns);
	}
	pthread_mutex_unlock(&a->st.lock);
}

/* Hands every live thread's CPU time that no sample took yet to the open
 * window (and live queries): exact up to now, not up to each thread's next
 * sample. Returns CLOCK_REALTIME just after the threads were read: the moment
 * the window holds CPU time up to. */
static int64_t flush_unsampled(struct agent *a)
{
	if (!sampler__counting(a->sampler))
		return clock_ns(CLOCK_REALTIME);
	sampler__drain(a->sampler); /* exit records first: they are older */
	struct unsampled_record *recs;
	size_t n;
	int e = sampler__read_unsampled(a->sampler, &recs, &n);
	int64_t read_at = clock_ns(CLOCK_REALTIME);
	if (e)
		fprintf(stderr, "dynoprof agent: reading threads' CPU time failed: %s\n",
			strerror(-e));
	for (size_t i = 0; i < n; i++) {
		int e2 = aggregator__add_unsampled(a->agg, &recs[i]);
		if (e2 && !a->agg_error)
			a->agg_error = e2;
	}
	free(recs);
	return read_at;
}

/* Ends live queries whose time is up (all of them when stopping). */
static void finish_queries(struct agent *a, bool all)
{
	int64_t now = clock_ns(CLOCK_MONOTONIC);
	int signalled = 0, due = 0;
	pthread_mutex_lock(&a->st.lock);
	for (struct live_query *q = a->st.queries; q; q = q->next)
		due |= !q->done && (all || now >= q->end_mono_ns);
	pthread_mutex_unlock(&a->st.lock);
	if (due) /* the ending queries get their threads' CPU time up to now */
		flush_unsampled(a);
	pthread_mutex_lock(&a->st.lock);
	for (struct live_query *q = a->st.queries; q; q = q->next)
		if (!q->done && (all || now >= q->end_mono_ns)) {
			q->done = true;
			signalled = 1;
		}
	if (all)
		a->st.stopping = true;
	if (signalled)
		pthread_cond_broadcast(&a->st.query_done);
	pthread_mutex_unlock(&a->st.lock);
}

/* Per-(service, commit, endpoint, other tags, comm) sums of a window. */
struct window_group {
	struct store_group g;   /* strings point into key */
	char *key;              /* "service\0commit\0endpoint\0tags\0comm\0" (owned) */
	const char *comm;       /* into key */
};

static void add_to_group(struct hashmap *m, const char *svc, const char *commit,
			 const char *endpoint, const char *tags, const char *comm,
			 uint64_t samples, uint64_t cpu, uint64_t instr, uint64_t requests)
{
	size_t ls = strlen(svc), lc = strlen(commit), le = strlen(endpoint), lm = strlen(comm);
	size_t lt = strlen(tags), len = ls + lc + le + lt + lm + 5;
	char *key = malloc(len);
	if (!key)
		return;
	memcpy(key, svc, ls + 1);
	memcpy(key + ls + 1, commit, lc + 1);
	memcpy(key + ls + lc + 2, endpoint, le + 1);
	memcpy(key + ls + lc + le + 3, tags, lt + 1);
	memcpy(key + ls + lc + le + lt + 4, comm, lm + 1);
	struct window_group *wg = hashmap__get(m, key, len);
	if (!wg) {
		wg = calloc(1, sizeof(*wg));
		if (!wg || hashmap__put(m, key, len, wg, NULL)) {
			free(wg);
			free(key);
			return;
		}
		wg->key = key;
		wg->g.service = key;
		wg->g.commit = key + ls + 1;
		wg->g.endpoint = key + ls + lc + 2;
		wg->g.tags = key + ls + lc + le + 3;
		wg->comm = key + ls + lc + le + lt + 4;
	} else {
		free(key);
	}
	wg->g.samples += samples;
	wg->g.cpu_ns += cpu;
	wg->g.instructions += instr;
	wg->g.requests += requests;
}

static const char *label_or_empty(const struct profile *p, const struct profile_sample *s,
				  const char *key)
{
	const char *v = profile__sample_label(p, s, key);
	return v ? v : "";
}

/* Request counters are read this often: a process's requests count from its
 * first reading (its tags are visible by then) and are lost after its last,
 * so the interval bounds both edge errors. */

/* Tag labels cut where they entered (tag_registry.h's budget), by reason:
 * totals since start, so set, not added. */
static void export_label_drops(struct agent *a)
{
	struct tag_registry_stats ts;
	struct aggregate_stats st;
	if (!a->tags)
		return;
	tag_registry__stats(a->tags, &ts);
	aggregator__stats(a->agg, &st);
	const struct { const char *reason; uint64_t n; } drops[] = {
		{ "env_limit", ts.env_dropped },
		{ "process_limit", ts.process_dropped },
		{ "thread_limit", ts.thread_dropped },
		{ "unreadable", ts.string_failures },
		{ "denied", ts.string_denied },
		{ "reserved_window", st.window_tags_replaced },
	};
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++) {
		struct metric_label l = { "reason", drops[i].reason };
		metrics__set(a->st.metrics, "dynoprof_agent_tag_labels_dropped_total", &l, 1,
			     (double)drops[i].n);
	}
	metrics__set(a->st.metrics, "dynoprof_agent_tag_text_truncated_total", NULL, 0,
		     (double)ts.truncated);
}

/* Stacks cut at a layer's frame limit (marked [truncated]); Python's count
 * in dynoprof_agent_samples_dropped_total{reason="python_truncated"}. */
static void export_truncated_stacks(struct agent *a)
{
	struct aggregate_stats st;
	aggregator__stats(a->agg, &st);
	struct metric_label k = { "layer", "kernel" }, u = { "layer", "native" };
	metrics__set(a->st.metrics, "dynoprof_agent_stacks_truncated_total", &k, 1,
		     (double)st.kernel_truncated);
	metrics__set(a->st.metrics, "dynoprof_agent_stacks_truncated_total", &u, 1,
		     (double)st.native_truncated);
}

/* Samples of whole requests taken before their endpoint was known, by how
 * they were released (aggregate_stats relabel_*): totals, set. */
static void export_relabelled(struct agent *a)
{
	struct aggregate_stats st;
	aggregator__stats(a->agg, &st);
	const struct { const char *outcome; uint64_t n; } out[] = {
		{ "endpoint", st.relabel_resolved },
		{ "unresolved", st.relabel_unresolved },
		{ "unknown", st.relabel_lost },
		{ "none", st.relabel_abandoned },
		{ "not_held", st.relabel_overflow },
	};
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		struct metric_label l = { "outcome", out[i].outcome };
		metrics__set(a->st.metrics, "dynoprof_agent_request_samples_relabelled_total", &l,
			     1, (double)out[i].n);
	}
}

static void export_self_metrics(struct agent *a)
{
	export_label_drops(a);
	export_truncated_stacks(a);
	export_relabelled(a);
	struct metrics *m = a->st.metrics;
	uint64_t drops[DROP_REASON_COUNT] = { 0 }, run_ns = 0, runs = 0;
	sampler__drops(a->sampler, drops);
	for (int r = 0; r < DROP_REASON_COUNT; r++) {
		struct metric_label l = { "reason", sampler__drop_reason_label(r) };
		metrics__add(m, "dynoprof_agent_samples_dropped_total", &l, 1,
			     (double)(drops[r] - a->drops_seen[r]));
		a->drops_seen[r] = drops[r];
	}
	if (!sampler__bpf_stats(a->sampler, &run_ns, &runs)) {
		metrics__add(m, "dynoprof_agent_bpf_run_seconds_total", NULL, 0,
			     (double)(run_ns - a->bpf_ns_seen) / 1e9);
		a->bpf_ns_seen = run_ns;
	}
	struct symbolizer_stats ss;
	symbolizer__stats(a->sym, &ss);
	metrics__set(m, "dynoprof_agent_processes_tracked", NULL, 0, (double)ss.processes);
	/* Cumulative totals kept by the symbolizer: set, not added. */
	metrics__set(m, "dynoprof_agent_symbol_cache_hits_total", NULL, 0,
		     (double)ss.symcache_hits);
	metrics__set(m, "dynoprof_agent_symbol_cache_misses_total", NULL, 0,
		     (double)ss.symcache_misses);
	metrics__set(m, "dynoprof_agent_symbol_cache_evictions_total", NULL, 0,
		     (double)ss.symcache_evictions);
	metrics__set(m, "dynoprof_agent_symbol_cache_bytes", NULL, 0, (double)ss.symcache_bytes);
	metrics__set(m, "dynoprof_agent_symbol_tables_truncated_total", NULL, 0,
		     (double)ss.symcache_truncated);
	struct unwind_registry *unwind = pipeline__unwind(a->pipe);
	if (unwind) {
		struct unwind_registry_stats us;
		unwind_registry__stats(unwind, &us);
		const struct { const char *outcome; uint64_t n; } files[] = {
			{ "cfi", us.files_cfi }, { "shared", us.files_shared },
			{ "no_cfi", us.files_no_cfi }, { "over_budget", us.files_over_budget },
			{ "unreadable", us.files_unreadable },
		};
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			struct metric_label l = { "outcome", files[i].outcome };
			metrics__set(m, "dynoprof_agent_unwind_files_total", &l, 1, (double)files[i].n);
		}
		metrics__set(m, "dynoprof_agent_unwind_table_rows", NULL, 0, (double)us.rows_used);
		metrics__set(m, "dynoprof_agent_unwind_tables_evicted_total", NULL, 0,
			     (double)us.evictions);
	}
	long pages = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f) {
		long size;
		if (fscanf(f, "%ld %ld", &size, &pages) != 2)
			pages = 0;
		fclose(f);
	}
	metrics__set(m, "dynoprof_agent_rss_bytes", NULL, 0, (double)pages * getpagesize());
	int64_t bytes = 0, windows = 0, oldest = 0;
	if (!store__stats(a->st.store, &bytes, &windows, &oldest)) {
		metrics__set(m, "dynoprof_agent_database_bytes", NULL, 0, (double)bytes);
		metrics__set(m, "dynoprof_agent_windows_stored", NULL, 0, (double)windows);
	}
	/* Warnings said once, then counted: their summary, at most once a window
	 * and less often while they keep coming (util/warn_log.h). */
	py_registry__summary(a->pyreg, "dynoprof agent", "counted since the previous note", 0);
	py_resolver__summary(a->pyres, "dynoprof agent", "counted since the previous note", 0);
}

/* Records a window's store for /healthz (degraded while stores fail, healthy
 * again after the next success) and dynoprof_agent_store_failures_total. */
static void note_store_result(struct agent *a, int err, int64_t now)
{
	pthread_mutex_lock(&a->st.lock);
	if (err && !a->st.store_error)
		a->st.store_failing_since_ns = now;
	if (!err && a->st.store_error)
		fprintf(stderr, "dynoprof agent: storing windows works again (%" PRIu64
			" lost since start)\n", a->st.store_failures);
	a->st.store_error = err;
	a->st.store_failures += err != 0;
	pthread_mutex_unlock(&a->st.lock);
	if (err)
		metrics__add(a->st.metrics, "dynoprof_agent_store_failures_total", NULL, 0, 1);
}

/* Forgets what the agent kept of processes that exited before the previous
 * window closed (their samples were all read by now): their mappings, Python
 * verdict, code objects, tags and request baselines. Then hands freed heap
 * back to the kernel: a burst of short-lived processes must not leave the
 * agent's RSS at its high-water mark. */
static void forget_exited(struct agent *a)
{
	pipeline__forget_exited(a->pipe);
	malloc_trim(0);
}

/* Closes the open window: stores it, updates metrics, opens the next. */
static int close_window(struct agent *a)
{
	/* First every thread's CPU time so far: the window ends when it was
	 * read, so it holds no time of its successor's. */
	int64_t end = flush_unsampled(a);
	struct profile *w = a->window;
	struct hashmap *groups = hashmap__new();
	int vs = profile__find_value(w, "samples"), vc = profile__find_value(w, "cpu");
	int vi = profile__find_value(w, "instructions");
	int err = 0;

	if (!groups)
		return -ENOMEM;
	/* Each process's samples now add up to its exact CPU time of the window. */
	if ((err = aggregator__apportion(a->agg))) {
		hashmap__free(groups);
		return err;
	}
	pipeline__read_requests(a->pipe, PIPELINE_REQUEST_POLL_NS / 2);
	int vr = profile__find_value(w, "requests");
	profile__set_time(w, a->window_start_unix, end - a->window_start_unix);
	/* The other tags of each group, bounded (agent/tagset.h). */
	struct tagset_window *tw = tagset_window__new();
	struct strbuf tags = STRBUF_INIT;
	uint64_t tag_drops[3] = { 0 }; /* samples: pairs, bytes, tag_sets */
	for (size_t i = 0; i < profile__sample_count(w); i++) {
		const struct profile_sample *s = profile__sample(w, i);
		struct tagset_drops td = { 0 };
		int over = 0;
		const char *set = TAGSET_EMPTY;
		if (tw && !tagset__of_sample(w, s, &tags, &td))
			set = tagset_window__admit(tw, strbuf__str(&tags), &over);
		/* Counted in samples taken (an entry sums identical ones). */
		uint64_t taken = vs >= 0 ? s->values[vs] : 1;
		tag_drops[0] += td.pairs ? taken : 0;
		tag_drops[1] += td.bytes ? taken : 0;
		tag_drops[2] += over ? taken : 0;
		add_to_group(groups, label_or_empty(w, s, "service"), label_or_empty(w, s, "commit"),
			     label_or_empty(w, s, "endpoint"), set ? set : TAGSET_EMPTY,
			     profile__str(w, s->comm),
			     vs >= 0 ? s->values[vs] : 0, vc >= 0 ? s->values[vc] : 0,
			     vi >= 0 ? s->values[vi] : 0, vr >= 0 ? s->values[vr] : 0);
	}
	strbuf__release(&tags);
	tagset_window__free(tw);
	for (int r = 0; r < 3; r++) {
		static const char *const reasons[3] = { "pairs", "bytes", "tag_sets" };
		struct metric_label l = { "reason", reasons[r] };
		metrics__add(a->st.metrics, "dynoprof_agent_history_tags_dropped_total", &l, 1,
			     (double)tag_drops[r]);
	}

	/* Deploy checks: which commits ran, and checks now due. */
	if (a->st.deploys) {
		size_t c2 = 0;
		void *v2;
		while (hashmap__next(groups, &c2, NULL, NULL, &v2)) {
			const struct window_group *wg = v2;
			if (wg->g.samples)
				deploy_checker__observe(a->st.deploys, wg->g.service, wg->g.commit,
							a->window_start_unix, end);
		}
	}

	/* Metrics: per (service, commit, endpoint, comm). */
	size_t cur = 0, n = 0;
	void *v;
	struct store_group *rows = calloc(hashmap__size(groups) + 1, sizeof(*rows));
	struct hashmap *by_group = hashmap__new(); /* comm folded away for the store */
	while (hashmap__next(groups, &cur, NULL, NULL, &v)) {
		struct window_group *wg = v;
		struct metric_label l[4] = { { "service", wg->g.service }, { "commit", wg->g.commit },
					     { "endpoint", wg->g.endpoint }, { "comm", wg->comm } };
		if (wg->g.samples || wg->g.cpu_ns) { /* [unsampled] CPU has no samples */
			metrics__add(a->st.metrics, "dynoprof_samples_total", l, 4,
				     (double)wg->g.samples);
			if (vi >= 0)
				metrics__add(a->st.metrics, "dynoprof_cpu_instructions_total", l, 4,
					     (double)wg->g.instructions);
			else
				metrics__add(a->st.metrics, "dynoprof_cpu_seconds_total", l, 4,
					     (double)wg->g.cpu_ns / 1e9);
		}
		if (wg->g.requests)
			metrics__add(a->st.metrics, "dynoprof_requests_total", l, 3,
				     (double)wg->g.requests);
		/* Fold comms together for the store rows. */
		size_t klen = strlen(wg->g.service) + strlen(wg->g.commit) +
			      strlen(wg->g.endpoint) + strlen(wg->g.tags) + 4;
		uintptr_t idx = by_group ? (uintptr_t)hashmap__get(by_group, wg->key, klen) : 0;
		if (!rows || !by_group)
			continue;
		if (!idx) {
			rows[n] = wg->g;
			rows[n].samples = rows[n].cpu_ns = rows[n].instructions = rows[n].requests = 0;
			idx = ++n;
			hashmap__put(by_group, wg->key, klen, (void *)idx, NULL);
		}
		rows[idx - 1].samples += wg->g.samples;
		rows[idx - 1].cpu_ns += wg->g.cpu_ns;
		rows[idx - 1].instructions += wg->g.instructions;
		rows[idx - 1].requests += wg->g.requests;
	}

	/* The window's profile as gzipped pprof. */
	char *blob = NULL;
	size_t blob_len = 0;
	FILE *mem = open_memstream(&blob, &blob_len);
	err = mem ? pprof__write(w, mem) : -errno;
	if (mem && fclose(mem) && !err)
		err = -EIO;
	if (!err && rows) {
		struct store_window sw = { .start_ns = a->window_start_unix, .end_ns = end,
					   .samples = vs >= 0 ? profile__total(w, (size_t)vs) : 0,
					   .pprof_gz = blob, .pprof_len = blob_len,
					   .groups = rows, .ngroups = n };
		err = store__put_window(a->st.store, &sw);
		if (err)
			fprintf(stderr, "dynoprof agent: storing a window failed: %s\n",
				strerror(-err));
		else
			metrics__add(a->st.metrics, "dynoprof_agent_windows_total", NULL, 0, 1);
		note_store_result(a, err, end);
	}
	free(blob);
	free(rows);
	hashmap__free(by_group);
	cur = 0;
	while (hashmap__next(groups, &cur, NULL, NULL, &v)) {
		free(((struct window_group *)v)->key);
		free(v);
	}
	hashmap__free(groups);
	forget_exited(a);
	export_self_metrics(a);
	if (a->st.deploys)
		deploy_checker__run_due(a->st.deploys, end);

	/* The next window. */
	struct profile *next = profile__new();
	if (!next)
		return -ENOMEM;
	int e2 = aggregator__set_profile(a->agg, next);
	if (e2) {
		profile__free(next);
		return e2;
	}
	profile__free(a->window);
	a->window = next;
	a->window_start_unix = end;
	a->window_start_mono = clock_ns(CLOCK_MONOTONIC);
	return err;
}

/* Every metric family the agent exports (deploy checks declare their own). */
static const struct {
	const char *name;
	enum metric_type type;
	const char *help;
} metric_families[] = {
	{ "dynoprof_samples_total", METRIC_COUNTER,
	  "Stack samples taken, by service, commit, endpoint and comm." },
	{ "dynoprof_cpu_seconds_total", METRIC_COUNTER,
	  "On-CPU seconds (per process exact, from the scheduler's per-task sums; split between tags by samples), by "
	  "service, commit, endpoint and comm." },
	{ "dynoprof_cpu_instructions_total", METRIC_COUNTER,
	  "CPU instructions retired (hardware counters), by service, commit, endpoint and comm." },
	{ "dynoprof_requests_total", METRIC_COUNTER,
	  "Requests begun (libdynotag request counters), by service, commit, endpoint." },
	{ "dynoprof_agent_samples_dropped_total", METRIC_COUNTER,
	  "Samples lost or degraded in BPF, by reason." },
	{ "dynoprof_agent_tag_labels_dropped_total", METRIC_COUNTER,
	  "Tag labels dropped where they entered, by reason (env_limit, process_limit, "
	  "thread_limit: over a source's cap; unreadable: string gone; reserved_window: "
	  "a process's own `window` tag)." },
	{ "dynoprof_agent_history_tags_dropped_total", METRIC_COUNTER,
	  "Samples whose other tags the history's groups did not keep whole, by reason "
	  "(pairs: past 8 tags; bytes: past 1 KiB; tag_sets: past 256 sets in a window, "
	  "stored under the overflow set)." },
	{ "dynoprof_agent_tag_text_truncated_total", METRIC_COUNTER,
	  "Tag keys/values cut to 1024 bytes, and environments longer than 256 KiB." },
	{ "dynoprof_agent_stacks_truncated_total", METRIC_COUNTER,
	  "Samples whose kernel or native stack filled its frame limit (marked [truncated]), "
	  "by layer." },
	{ "dynoprof_agent_request_samples_relabelled_total", METRIC_COUNTER,
	  "Samples of whole requests taken before their endpoint was known, by outcome "
	  "(endpoint: given their request's; unresolved: the request ended with none; "
	  "unknown: still open at window close or out of the request log; none: the request "
	  "was abandoned; not_held: over the hold limit)." },
	{ "dynoprof_agent_bpf_run_seconds_total", METRIC_COUNTER,
	  "Time spent in the sampling BPF program." },
	{ "dynoprof_agent_windows_total", METRIC_COUNTER, "History windows stored." },
	{ "dynoprof_agent_processes_tracked", METRIC_GAUGE,
	  "Processes whose mappings the agent keeps." },
	{ "dynoprof_agent_symbol_cache_hits_total", METRIC_COUNTER, "Symbol table cache hits." },
	{ "dynoprof_agent_symbol_cache_misses_total", METRIC_COUNTER, "Symbol table cache misses." },
	{ "dynoprof_agent_symbol_cache_evictions_total", METRIC_COUNTER,
	  "Symbol tables dropped to keep the cache within its bounds (2048 files, 16 MiB)." },
	{ "dynoprof_agent_symbol_cache_bytes", METRIC_GAUGE, "Memory of the cached symbol tables." },
	{ "dynoprof_agent_symbol_tables_truncated_total", METRIC_COUNTER,
	  "Symbol tables loaded with a bound hit (over 4194304 .eh_frame function ranges, or "
	  "MiniDebugInfo over 64 MiB): some of their functions read FILE+0xOFFSET." },
	{ "dynoprof_agent_unwind_files_total", METRIC_COUNTER,
	  "Mapped files met by native unwinding, by outcome (cfi: table built; shared: "
	  "another file's table, same build-id; no_cfi, over_budget, unreadable: walked by "
	  "frame pointers)." },
	{ "dynoprof_agent_unwind_table_rows", METRIC_GAUGE,
	  "Rows of the native unwind table in use (8 bytes each; unwind_table_mb bounds it)." },
	{ "dynoprof_agent_unwind_tables_evicted_total", METRIC_COUNTER,
	  "Native unwind tables of files no running process maps, evicted to make room for "
	  "a new file's within unwind_table_mb." },
	{ "dynoprof_agent_rss_bytes", METRIC_GAUGE, "Resident memory of the agent." },
	{ "dynoprof_agent_database_bytes", METRIC_GAUGE, "Size of the history database." },
	{ "dynoprof_agent_windows_stored", METRIC_GAUGE, "History windows in the database." },
	{ "dynoprof_agent_store_failures_total", METRIC_COUNTER,
	  "History windows lost because storing them failed (e.g. disk full); /healthz is "
	  "degraded until a store succeeds." },
	{ "dynoprof_agent_http_connections_refused_total", METRIC_COUNTER,
	  "HTTP connections refused or closed before a request, by reason (head_timeout, "
	  "head_too_large, evicted, busy, fd_limit)." },
};

static void declare_metrics(struct metrics *m)
{
	for (size_t i = 0; i < sizeof(metric_families) / sizeof(metric_families[0]); i++)
		metrics__declare(m, metric_families[i].name, metric_families[i].type,
				 metric_families[i].help);
}

static int read_token(const char *path, char *out, size_t len, char *err, size_t errlen)
{
	/* Whole-file checks: a NUL or a second line must not shorten the token. */
	char msg[400];
	int e = textfile__read_token(path, out, len, msg, sizeof(msg));
	if (e)
		snprintf(err, errlen, "token_file %s", msg);
	return e;
}

/* Applies a reloaded config: what can change at run time does; the rest is
 * reported as needing a restart. */
static void reload(struct agent *a, const char *config_path,
		   int (*apply_flags)(struct agent_config *c, void *ctx), void *flags_ctx)
{
	struct agent_config c;
	char err[512];
	agent_config__defaults(&c);
	if (config_path && agent_config__load(&c, config_path, err, sizeof(err))) {
		fprintf(stderr, "dynoprof agent: reload failed, keeping the old settings: %s\n", err);
		return;
	}
	if (apply_flags && apply_flags(&c, flags_ctx)) {
		fprintf(stderr, "dynoprof agent: reload failed, keeping the old settings: a flag "
			"does not apply over %s\n", config_path ? config_path : "the defaults");
		return;
	}
	pthread_mutex_lock(&a->st.lock);
	struct agent_config old = a->st.config;
	a->st.config.max_query_s = c.max_query_s;
	a->st.config.max_range_s = c.max_range_s;
	a->st.config.window_s = c.window_s;
	pthread_mutex_unlock(&a->st.lock);
	if (strcmp(c.endpoint_from, old.endpoint_from) ||
	    strcmp(c.listen_address, old.listen_address) || c.listen_port != old.listen_port ||
	    c.frequency_hz != old.frequency_hz || c.sample_on_tick != old.sample_on_tick ||
	    strcmp(c.database, old.database) ||
	    c.python != old.python || c.tags != old.tags || c.kernel != old.kernel ||
	    strcmp(c.token_file, old.token_file) || c.max_series != old.max_series ||
	    c.listen_remote != old.listen_remote || c.retention_age_s != old.retention_age_s ||
	    c.retention_bytes != old.retention_bytes || strcmp(c.cgroup, old.cgroup) ||
	    c.unwind_table_mb != old.unwind_table_mb)
		fprintf(stderr, "dynoprof agent: reloaded; listen, token_file, frequency, event, database, "
			"retention, python, tags, kernel, endpoint_from, max_series and unwind_table_mb changes "
			"take effect after a restart\n");
	else
		fprintf(stderr, "dynoprof agent: reloaded %s\n", config_path ? config_path : "flags");
}

static int ensure_parent_dir(const char *path)
{
	char dir[256];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0750) && errno != EEXIST)
		return -errno;
	return 0;
}

int agent__run(const struct agent_config *initial, const char *config_path,
	       int (*apply_flags)(struct agent_config *c, void *ctx), void *flags_ctx)
{
	struct agent *a = calloc(1, sizeof(*a));
	char err[512] = "";
	int rc = 1, e;

	if (!a) {
		fprintf(stderr, "dynoprof agent: out of memory\n");
		return 1;
	}
	pthread_mutex_init(&a->st.lock, NULL);
	pthread_cond_init(&a->st.query_done, NULL);
	a->st.config = *initial;
	/* The host's name in answers (config `host`), fixed for the agent's life. */
	if (!a->st.config.host[0] &&
	    gethostname(a->st.config.host, sizeof(a->st.config.host) - 1))
		snprintf(a->st.config.host, sizeof(a->st.config.host), "unknown");
	a->st.started_unix_ns = clock_ns(CLOCK_REALTIME);
	const struct agent_config *c = &a->st.config;

	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (c->endpoint_from[0]) {
		snprintf(a->rule_spec, sizeof(a->rule_spec), "%s", c->endpoint_from);
		if (endpoint_rule__parse(a->rule_spec, &a->rule)) {
			fprintf(stderr, "dynoprof agent: bad endpoint_from '%s'\n", c->endpoint_from);
			goto out;
		}
	}
	if (c->token_file[0] && read_token(c->token_file, a->token, sizeof(a->token), err,
					   sizeof(err))) {
		fprintf(stderr, "dynoprof agent: %s\n", err);
		goto out;
	}
	if ((e = ensure_parent_dir(c->database))) {
		fprintf(stderr, "dynoprof agent: cannot create the directory of %s: %s\n",
			c->database, strerror(-e));
		goto out;
	}
	struct store_opts so = { .max_age_s = c->retention_age_s, .max_bytes = c->retention_bytes };
	a->st.store = store__open(c->database, &so, err, sizeof(err));
	a->st.metrics = metrics__new(c->max_series);
	a->window = profile__new();
	if (!a->st.store) {
		fprintf(stderr, "dynoprof agent: %s\n", err);
		goto out;
	}
	if (!a->st.metrics || !a->window) {
		fprintf(stderr, "dynoprof agent: out of memory\n");
		goto out;
	}
	declare_metrics(a->st.metrics);
	/* Present at 0 from the start, so an alert can use it before any failure. */
	metrics__add(a->st.metrics, "dynoprof_agent_store_failures_total", NULL, 0, 0);
	struct deploy_check_opts dopts = { .check_window_s = c->deploy_check_s,
					   .min_effect = c->deploy_min_effect,
					   .confidence = c->deploy_confidence };
	a->st.deploys = deploy_checker__new(&dopts, a->st.store, a->st.metrics);
	if (!a->st.deploys) {
		fprintf(stderr, "dynoprof agent: out of memory\n");
		goto out;
	}

	/* `cgroup`: one agent per container (or per test "host"). */
	struct cgroup_ref cg = { .id = 0 };
	if (c->cgroup[0] && cgroup__resolve(c->cgroup, &cg, err, sizeof(err))) {
		fprintf(stderr, "dynoprof agent: cgroup: %s\n", err);
		goto out;
	}
	struct pipeline_opts po = {
		.freq_hz = c->frequency_hz,
		.cgroup_id = cg.id,
		.cgroup_level = cg.level,
		.event = c->sample_on_tick ? SAMPLE_EVENT_TICK : SAMPLE_EVENT_CPU_CLOCK,
		.counting = true,
		.bpf_stats = true,
		.kernel = c->kernel,
		.python = c->python,
		.unwind_table_bytes = (size_t)c->unwind_table_mb << 20,
		.python_lines = true,
		.tags = c->tags,
		.endpoint_rule = c->endpoint_from[0] ? &a->rule : NULL,
		.process_comm = true,
		.window_ns = (uint64_t)(c->window_s * 1e9),
		.window_origin_ns = (uint64_t)clock_ns(CLOCK_MONOTONIC),
		.on_sample = on_sample,
		.on_sample_ctx = a,
		.keep_going = true, /* one bad sample must not stop the daemon */
		/* A daemon sees every short-lived Python process on the host: the
		 * first few per reason are named, the rest summarised per window. */
		.warnings = stderr,
		.log_prefix = "dynoprof agent",
		/* Sized to the rate: the ring buffer is mapped twice into the agent. */
		.ringbuf_bytes = sampler__ringbuf_bytes_for(c->frequency_hz, 0),
		/* Binaries no process runs any more must not pile up. */
		.symcache_bytes = 16u << 20,
		.share_maps_reads = true,
	};
	a->pipe = pipeline__open(&po, a->window, err, sizeof(err));
	if (!a->pipe) {
		fprintf(stderr, "dynoprof agent: %s\n", err);
		goto out;
	}
	a->sampler = pipeline__sampler(a->pipe);
	a->agg = pipeline__aggregator(a->pipe);
	a->sym = pipeline__symbolizer(a->pipe);
	a->pyreg = pipeline__python(a->pipe);
	a->pyres = pipeline__python_resolver(a->pipe);
	a->tags = pipeline__tags(a->pipe);
	const struct counter_choice *cc = pipeline__counting(a->pipe);
	/* The first window holds every thread's CPU time from when counting
	 * began, so it begins then. */
	int64_t counting_unix = pipeline__counting_began_unix_ns(a->pipe);
	/* Live queries build profiles of the same value types as windows. */
	a->st.nvalue_types = pipeline__value_types(a->pipe, a->st.value_types);
	pipeline__prime(a->pipe, true);

	struct http_route routes[AGENT_MAX_ROUTES];
	size_t nroutes = agent_handlers__routes(&a->st, routes);
	/* Live collections block: they must leave /healthz and /metrics room. */
	static const char *const blocking[] = { "/debug/pprof/profile", "/flamegraph",
						"/api/v1/flamegraph", "/api/v1/compare", NULL };
	struct http_server_opts ho = { .address = c->listen_address, .port = c->listen_port,
				       .allow_remote = c->listen_remote,
				       .token = a->token[0] ? a->token : NULL,
				       .public_paths = web_public_paths,
				       .blocking_paths = blocking };
	a->http = http_server__start(&ho, routes, nroutes, err, sizeof(err));
	if (!a->http) {
		fprintf(stderr, "dynoprof agent: %s\n", err);
		goto out;
	}
	pthread_mutex_lock(&a->st.lock);
	a->st.http = a->http;
	pthread_mutex_unlock(&a->st.lock);
	fprintf(stderr, "dynoprof agent: profiling all CPUs%s%s at %u Hz (%s), %gs windows into %s; "
		"serving http://%s%s%s:%u/metrics\n", cg.id ? ", only tasks in cgroup " : "",
		cg.id ? cg.path : "", c->frequency_hz,
		cc ? cc->reason : "no counters", c->window_s, c->database,
		strchr(c->listen_address, ':') ? "[" : "", c->listen_address,
		strchr(c->listen_address, ':') ? "]" : "", http_server__port(a->http));

	a->window_start_unix = counting_unix;
	a->window_start_mono = clock_ns(CLOCK_MONOTONIC);
	rc = 0;
	while (!stop_signal) {
		e = pipeline__poll(a->pipe, 100);
		if (e < 0 && e != -EINTR && e != -ENOMEM) {
			fprintf(stderr, "dynoprof agent: reading samples failed: %s\n", strerror(-e));
			rc = 1;
			break;
		}
		if (e == -ENOMEM || a->agg_error == -ENOMEM) {
			fprintf(stderr, "dynoprof agent: out of memory aggregating samples\n");
			rc = 1;
			break;
		}
		a->agg_error = 0;
		finish_queries(a, false);
		if (reload_signal) {
			reload_signal = 0;
			reload(a, config_path, apply_flags, flags_ctx);
		}
		pthread_mutex_lock(&a->st.lock);
		double window_s = a->st.config.window_s;
		pthread_mutex_unlock(&a->st.lock);
		if (clock_ns(CLOCK_MONOTONIC) - a->window_start_mono >= (int64_t)(window_s * 1e9) &&
		    (e = close_window(a)) == -ENOMEM) {
			fprintf(stderr, "dynoprof agent: out of memory closing a window\n");
			rc = 1;
			break;
		}
	}
	/* SIGTERM: the open window is flushed, so no data is lost; when it
	 * cannot be stored, the exit status says so. */
	sampler__drain(a->sampler);
	finish_queries(a, true);
	if ((e = close_window(a)) == 0 && rc == 0) {
		fprintf(stderr, "dynoprof agent: flushed the open window; exiting\n");
	} else if (e) {
		fprintf(stderr, "dynoprof agent: the final window was not stored (%s): it is lost; "
			"exiting with status 1\n", strerror(-e));
		rc = 1;
	}
	pthread_mutex_lock(&a->st.lock);
	a->st.http = NULL;
	pthread_mutex_unlock(&a->st.lock);
	http_server__stop(a->http);
	a->http = NULL;
out:
	http_server__stop(a->http);
	pipeline__free(a->pipe);
	profile__free(a->window);
	deploy_checker__free(a->st.deploys);
	metrics__free(a->st.metrics);
	store__close(a->st.store);
	pthread_mutex_destroy(&a->st.lock);
	pthread_cond_destroy(&a->st.query_done);
	free(a);
	return rc;
}
