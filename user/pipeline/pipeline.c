// SPDX-License-Identifier: MIT
#include "pipeline/pipeline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "python/py_registry.h"
#include "python/py_resolver.h"
#include "python/tls_layout.h"
#include "symbolize/symbolizer.h"
#include "unwind/unwind_registry.h"
#include "util/clock.h"

struct pipeline {
	struct pipeline_opts opts;       /* as opened; python/tags as they could be had */
	struct sampler *sampler;         /* BPF programs, perf events, ring buffer */
	struct symbolizer *sym;          /* native and kernel frames */
	struct py_registry *pyreg;       /* Python processes (NULL: no Python frames) */
	struct py_resolver *pyres;       /* their code objects (NULL with pyreg) */
	struct unwind_registry *unwind;  /* CFI unwinding's tables (NULL: frame pointers) */
	struct tag_registry *tags;       /* tags (NULL: --no-tags) */
	struct request_tracker *requests;/* libdynotag request counters (NULL without tags) */
	struct counts_table *counts;     /* exact per-thread totals (NULL: not kept) */
	struct aggregator *agg;          /* records -> the caller's profile */
	struct aggregate_opts agg_opts;  /* what agg was opened with */
	int error;                       /* first aggregation error since the last poll */
	uint64_t next_requests_ns;       /* CLOCK_MONOTONIC of the next counter read */
	int64_t counting_began_unix_ns;  /* CLOCK_REALTIME just before the sampler opened */
};

/* What the request counters' callback needs. */
struct requests_ctx {
	struct pipeline *p;              /* where requests are added */
	uint64_t when_ns;                /* CLOCK_MONOTONIC they are dated at */
};

/* Tells the unwind registry of new processes, execs, exits, and stacks that
 * met a mapping it does not know (a library loaded since it read them). */
static void note_unwind(struct unwind_registry *r, const void *data, size_t size)
{
	const struct profile_event_header *h = data;
	if (size < sizeof(*h))
		return;
	if (h->type == PROFILE_EVENT_EXEC) {
		unwind_registry__note_exec(r, (pid_t)h->pid);
	} else if (h->type == PROFILE_EVENT_EXIT) {
		unwind_registry__note_exit(r, (pid_t)h->pid);
	} else if (h->type == PROFILE_EVENT_SAMPLE &&
		   size >= offsetof(struct profile_sample_event, stack)) {
		const struct profile_sample_event *e = data;
		int k = e->kstack_len > 0 ? e->kstack_len : 0;
		int u = e->ustack_len > 0 ? e->ustack_len : 0;
		size_t last = offsetof(struct profile_sample_event, stack) +
			      (size_t)(k + u) * 8;
		int missed = u > 0 && k + u <= PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES &&
			     size >= last &&
			     e->stack[k + u - 1] == UNWIND_MARKER_BASE + UNWIND_END_NO_CFI;
		unwind_registry__note_sample(r, (pid_t)h->pid, missed);
	}
}

/* Before the first sample: the unwind registry, and the targets' tables
 * built (none of their samples walked by frame pointers for want of them). */
static int start_unwinding(void *ctx, struct sampler *s)
{
	struct pipeline *p = ctx;
	static const struct unwind_registry_ops ops = {
		.publish = sampler__set_unwind_process,
		.table_put = sampler__unwind_table_put,
		.table_drop = sampler__unwind_table_drop,
	};
	if (!(p->unwind = unwind_registry__new(&ops, p->opts.unwind_table_bytes /
					       sizeof(struct unwind_row), s)))
		return errno ? -errno : -ENOMEM;
	for (size_t i = 0; i < p->opts.npids; i++)
		unwind_registry__note_sample(p->unwind, (pid_t)p->opts.pids[i], 0);
	/* Whole host: none; each process is scanned at its first sample, in
	 * that order (priming every running process first was measured to delay
	 * the processes being sampled: a table build in progress cannot give way). */
	unwind_registry__drain(p->unwind);
	return 0;
}

/* The sampler failed to open after start_unwinding: the registry's thread
 * writes into the sampler's row table, so it stops before that is unmapped. */
static void stop_unwinding(void *ctx)
{
	struct pipeline *p = ctx;
	unwind_registry__free(p->unwind);
	p->unwind = NULL;
}

static int on_record(void *ctx, const void *data, size_t size)
{
	struct pipeline *p = ctx;
	if (p->unwind)
		note_unwind(p->unwind, data, size);
	int e = aggregator__record(p->agg, data, size);
	if (e && !p->error)
		p->error = e;
	/* A daemon goes on past one bad record; a capture stops on the first. */
	return e && !p->opts.keep_going ? 1 : 0;
}

static void on_requests(void *ctx, pid_t pid, const char *endpoint, uint64_t n)
{
	struct requests_ctx *rc = ctx;
	int e = aggregator__add_requests(rc->p->agg, pid, endpoint, n, rc->when_ns);
	if (e && !rc->p->error)
		rc->p->error = e;
}

void pipeline__read_requests(struct pipeline *p, uint64_t back_ns)
{
	if (!p || !p->requests)
		return;
	uint64_t now = mono_ns();
	struct requests_ctx rc = { p, now > back_ns ? now - back_ns : now };
	request_tracker__poll(p->requests, p->tags, on_requests, &rc);
	p->next_requests_ns = now + PIPELINE_REQUEST_POLL_NS;
}

struct pipeline *pipeline__open(const struct pipeline_opts *o, struct profile *profile,
				char *err, size_t err_len)
{
	const char *prefix = o->log_prefix ? o->log_prefix : "dynoprof";
	struct pipeline *p = calloc(1, sizeof(*p));
	int e = 0;

	if (!p)
		goto nomem;
	p->opts = *o;
	p->opts.log_prefix = prefix;
	if (!(p->sym = symbolizer__new(0)))
		goto nomem;
	if (o->symcache_bytes)
		symbolizer__set_symcache_bytes(p->sym, o->symcache_bytes);

	/* Python frames and thread tags are read from glibc's thread-specific
	 * data: without its layout, neither can be had. */
	struct py_tls_layout tls = { 0 };
	bool python = o->python, thread_tags = o->tags;
	if ((python || thread_tags) && (e = tls_layout__calibrate(&tls))) {
		fprintf(stderr, "%s: warning: cannot calibrate glibc's thread-specific data "
			"layout (%s): Python frames and thread tags are off\n", prefix,
			strerror(-e));
		python = thread_tags = false;
	}
	p->opts.python = python;
	struct sampler_opts so = {
		.freq_hz = o->freq_hz,
		.event = o->event,
		.period = o->period,
		.pids = o->pids,
		.npids = o->npids,
		.tids = o->tids,
		.ntids = o->ntids,
		.follow_children = o->follow_children,
		.cgroup_id = o->cgroup_id,
		.cgroup_level = o->cgroup_level,
		.walk_python = python,
		.thread_tags = thread_tags,
		.counting = o->counting,
		.counter_standin = o->counter_standin,
		.bpf_stats = o->bpf_stats,
		.ringbuf_bytes = o->ringbuf_bytes,
		.no_kernel_stacks = !o->kernel,
		.py_tls = tls,
		.unwind_rows = o->unwind_table_bytes / sizeof(struct unwind_row),
		.before_attach = o->unwind_table_bytes ? start_unwinding : NULL,
		.undo_before_attach = stop_unwinding,
		.before_attach_ctx = p,
	};
	p->counting_began_unix_ns = clock_ns(CLOCK_REALTIME);
	p->sampler = sampler__open(&so, on_record, p, err, err_len);
	if (!p->sampler) {
		e = errno ? -errno : -EINVAL;
		goto fail;
	}
	if (python) {
		p->pyres = py_resolver__new(0, o->warnings);
		p->pyreg = py_registry__new(sampler__set_python_process, p->sampler, 0, stderr);
		if (!p->pyres || !p->pyreg)
			goto nomem;
		if (o->share_maps_reads)
			py_registry__set_maps_source(p->pyreg, symbolizer__fresh_maps, p->sym);
	}
	/* Environment and process tags need no TLS layout: the registry runs
	 * whenever tags are on, and publishes to BPF only when threads' can be read. */
	if (o->tags) {
		struct tag_registry_opts to = {
			.env_rules = o->env_rules, .n_env_rules = o->n_env_rules,
			.publish = thread_tags ? sampler__set_tag_process : NULL,
			.publish_ctx = p->sampler,
			.maps = o->share_maps_reads ? symbolizer__fresh_maps : NULL,
			.maps_ctx = o->share_maps_reads ? p->sym : NULL,
		};
		if (!(p->tags = tag_registry__new(&to)) ||
		    !(p->requests = request_tracker__new()))
			goto nomem;
	}
	const struct counter_choice *cc = sampler__counting(p->sampler);
	if (cc && o->counts_table && !(p->counts = counts_table__new()))
		goto nomem;
	enum sample_event event = sampler__event(p->sampler);
	struct aggregate_opts ao = {
		.counts = p->counts,
		.exact_cpu = cc != NULL,
		.instructions = cc && cc->primary == COUNTER_PRIMARY_INSTRUCTIONS,
		.cycles = cc && cc->cycles,
		.period_is_ns = event == SAMPLE_EVENT_CPU_CLOCK || event == SAMPLE_EVENT_TICK,
		.interrupt_frames = event == SAMPLE_EVENT_TICK,
		.weight_by_runtime = event == SAMPLE_EVENT_TICK && cc != NULL,
		.ns_per_sample = 1000000000ull / (o->freq_hz ? o->freq_hz : 1),
		.kernel_frames = o->kernel,
		.user_frames = 1,
		.python = p->pyreg,
		.py_resolver = p->pyres,
		.python_lines = o->python_lines,
		.tags = p->tags,
		.endpoint_rule = o->endpoint_rule,
		.window_ns = o->window_ns,
		.window_origin_ns = o->window_origin_ns,
		.process_comm = o->process_comm,
		.on_sample = o->on_sample,
		.on_sample_ctx = o->on_sample_ctx,
	};
	p->agg_opts = ao;
	if (!(p->agg = aggregator__new(profile, p->sym, &ao)))
		goto nomem;
	return p;

nomem:
	e = -ENOMEM;
	snprintf(err, err_len, "out of memory");
fail:
	pipeline__free(p);
	errno = -e;
	return NULL;
}

void pipeline__free(struct pipeline *p)
{
	if (!p)
		return;
	/* The aggregator reads the registries and the sampler's maps: first out. */
	aggregator__free(p->agg);
	unwind_registry__free(p->unwind); /* publishes into the sampler's maps */
	sampler__free(p->sampler);
	py_registry__free(p->pyreg);
	py_resolver__free(p->pyres);
	tag_registry__free(p->tags);
	request_tracker__free(p->requests);
	counts_table__free(p->counts);
	symbolizer__free(p->sym);
	free(p);
}

void pipeline__prime(struct pipeline *p, bool whole_host)
{
	const struct pipeline_opts *o = &p->opts;
	/* Limited to a cgroup: its processes are found by their samples (and
	 * execs), which come from that cgroup only; a scan would find (and count
	 * the requests of) every process on the host. */
	if (o->cgroup_id)
		whole_host = false;
	for (size_t i = 0; i < o->npids; i++)
		symbolizer__touch(p->sym, (pid_t)o->pids[i]);
	if (p->tags) {
		for (size_t i = 0; i < o->npids; i++)
			tag_registry__touch(p->tags, (pid_t)o->pids[i]);
		if (!o->npids && whole_host)
			tag_registry__scan(p->tags);
	}
	if (p->pyreg) {
		struct py_process_info info;
		for (size_t i = 0; i < o->npids; i++)
			py_registry__lookup(p->pyreg, (pid_t)o->pids[i], &info);
		if (!o->npids && whole_host)
			py_registry__scan(p->pyreg);
	}
}

int pipeline__poll(struct pipeline *p, int timeout_ms)
{
	int e = sampler__poll(p->sampler, timeout_ms);
	if (e < 0 && e != -EINTR)
		return e;
	if (p->error == -ENOMEM || (p->error && !p->opts.keep_going))
		return p->error;
	p->error = 0; /* keep_going: that record was skipped */
	if (p->requests && mono_ns() >= p->next_requests_ns)
		pipeline__read_requests(p, PIPELINE_REQUEST_POLL_NS / 2);
	return e < 0 ? e : 0;
}

static int python_tracks(void *ctx, pid_t pid)
{
	return py_registry__tracks(ctx, pid);
}

void pipeline__forget_exited(struct pipeline *p)
{
	symbolizer__sweep_exited(p->sym);
	if (p->pyreg) {
		py_registry__sweep_exited(p->pyreg);
		py_resolver__retain(p->pyres, python_tracks, p->pyreg);
	}
	if (p->tags) {
		tag_registry__sweep_exited(p->tags);
		if (p->requests)
			request_tracker__retain(p->requests, p->tags);
	}
}

int64_t pipeline__counting_began_unix_ns(const struct pipeline *p)
{
	return p->counting_began_unix_ns;
}

struct sampler *pipeline__sampler(const struct pipeline *p)
{
	return p->sampler;
}

struct aggregator *pipeline__aggregator(const struct pipeline *p)
{
	return p->agg;
}

struct symbolizer *pipeline__symbolizer(const struct pipeline *p)
{
	return p->sym;
}

struct py_registry *pipeline__python(const struct pipeline *p)
{
	return p->pyreg;
}

struct unwind_registry *pipeline__unwind(const struct pipeline *p)
{
	return p->unwind;
}

struct py_resolver *pipeline__python_resolver(const struct pipeline *p)
{
	return p->pyres;
}

struct tag_registry *pipeline__tags(const struct pipeline *p)
{
	return p->tags;
}

struct counts_table *pipeline__counts(const struct pipeline *p)
{
	return p->counts;
}

const struct counter_choice *pipeline__counting(const struct pipeline *p)
{
	return sampler__counting(p->sampler);
}

size_t pipeline__value_types(const struct pipeline *p,
			     const char *types[AGGREGATE_MAX_VALUE_TYPES][2])
{
	return aggregator__value_types(&p->agg_opts, types);
}
