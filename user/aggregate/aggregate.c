// SPDX-License-Identifier: MIT
#include "aggregate/aggregate.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unwind_abi.h" /* bpf/unwind_abi.h: the unwinder's marker frames */
#include "aggregate/relabel.h"
#include "util/hashmap.h"
#include "util/clock.h"

/* How often (sample time) held requests are looked up in their processes'
 * request logs. */
#define RELABEL_RESOLVE_NS 100000000ull

/* Frame ids of one sample: kernel + user + Python frames + markers. */
#define MAX_SAMPLE_FRAMES (PROFILE_MAX_FRAMES + PROFILE_MAX_UFRAMES + PY_MAX_FRAMES + 8)

struct aggregator {
	struct profile *profile;     /* borrowed: where samples go */
	struct symbolizer *sym;      /* borrowed */
	struct aggregate_opts opts;  /* weights and frame selection */
	struct aggregate_stats stats;/* counters */
	struct cpu_totals *exact;    /* exact_cpu without counts: per-process CPU the
				      * samples of the current profile carried (else NULL) */
	struct hashmap *freed;       /* with exact: pids (-> (void *)1) whose process
				      * ended (its leader was freed) since the last
				      * apportion: a later event of the pid is a new
				      * process's */
	uint32_t frames[MAX_SAMPLE_FRAMES]; /* scratch for one sample */
	uint32_t chain[PROFILE_MAX_UFRAMES]; /* native frames leafward of Python */
	struct relabel_buffer *relabel; /* with tags: samples of requests whose
				      * endpoint is not known yet (else NULL) */
	uint64_t relabel_resolved_ns; /* sample time of the last log look-up */
};

struct aggregator *aggregator__new(struct profile *p, struct symbolizer *sym,
				   const struct aggregate_opts *opts)
{
	struct aggregator *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->profile = p;
	a->sym = sym;
	a->opts = *opts;
	/* With a counts table the caller has complete totals to apportion by
	 * (counts_table__apportion): summing the samples' would be wasted. */
	if (opts->exact_cpu && !opts->counts &&
	    (!(a->exact = cpu_totals__new()) || !(a->freed = hashmap__new()))) {
		cpu_totals__free(a->exact);
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	if (opts->tags && !(a->relabel = relabel_buffer__new(RELABEL_MAX_SAMPLES))) {
		aggregator__free(a);
		errno = ENOMEM;
		return NULL;
	}
	if (profile__value_count(p) == 0) {
		const char *types[AGGREGATE_MAX_VALUE_TYPES][2];
		size_t n = aggregator__value_types(opts, types);
		int e = 0;
		for (size_t i = 0; i < n && e >= 0; i++)
			e = profile__add_value_type(p, types[i][0], types[i][1]);
		if (e < 0) {
			aggregator__free(a);
			errno = -e;
			return NULL;
		}
	}
	return a;
}

size_t aggregator__value_types(const struct aggregate_opts *opts,
			       const char *types[AGGREGATE_MAX_VALUE_TYPES][2])
{
	size_t n = 0;
	types[n][0] = "samples", types[n++][1] = "count";
	types[n][0] = "cpu", types[n++][1] = "nanoseconds";
	if (opts->exact_cpu && opts->instructions)
		types[n][0] = "instructions", types[n++][1] = "count";
	if (opts->exact_cpu && opts->cycles)
		types[n][0] = "cycles", types[n++][1] = "count";
	if (opts->tags)
		types[n][0] = "requests", types[n++][1] = "count";
	return n;
}

void aggregator__free(struct aggregator *a)
{
	if (!a)
		return;
	cpu_totals__free(a->exact);
	hashmap__free(a->freed);
	relabel_buffer__free(a->relabel);
	free(a);
}

static int resolve_held(struct aggregator *a, bool everything, uint32_t only_pid);

/* With exact totals: when pid's process ended in this window (its leader
 * was freed: the pid is free for reuse), this event is a new process's with
 * the same pid, and the first one's samples get its time now
 * (cpu_totals__seal), so one total is never spread over two processes'
 * samples. */
static int split_reused_pid(struct aggregator *a, uint32_t pid)
{
	if (!a->exact || !a->freed || !hashmap__size(a->freed) ||
	    !hashmap__remove(a->freed, &pid, sizeof(pid)))
		return 0;
	/* The first process's held requests go to its samples first. */
	int err = a->relabel ? resolve_held(a, true, pid) : 0;
	return err ? err : cpu_totals__seal(a->exact, a->profile, pid);
}

static int add_special(struct profile *p, const char *name, uint32_t *id)
{
	struct frame_desc d = { .kind = FRAME_SPECIAL, .name = name };
	return profile__add_frame(p, &d, id);
}

/* The name of a marker frame the CFI unwinder ends a stack with
 * (bpf/unwind_abi.h), or NULL for a real address. */
static const char *unwind_marker(uint64_t addr)
{
	if (addr < UNWIND_MARKER_BASE || addr >= UNWIND_MARKER_MAX)
		return NULL;
	switch (addr - UNWIND_MARKER_BASE) {
	case UNWIND_END_NO_CFI: return "[unwind: no CFI]";
	case UNWIND_END_READ: return "[unwind: stack unreadable]";
	case UNWIND_END_PENDING: return "[unwind: tables pending]";
	default: return "[unwind: bad frame]";
	}
}

/* A user frame: the marker's name, or the address symbolized. */
static int user_frame(struct aggregator *a, pid_t pid, uint64_t addr, int is_return,
		      uint32_t *id)
{
	const char *marker = unwind_marker(addr);
	if (marker)
		return add_special(a->profile, marker, id);
	return symbolizer__user_frame(a->sym, pid, addr, is_return, a->profile, id);
}

static int is_unknown(const struct profile *p, uint32_t id)
{
	return strcmp(profile__str(p, profile__frame(p, id)->name), "[unknown]") == 0;
}

/* Labels a sample taken at time_ns (CLOCK_MONOTONIC) with its time slot,
 * the label `diff` resamples on. It has a reserved slot; a process's own
 * `window` tag is replaced (counted). buf holds the value. */
static void put_window(struct aggregator *a, struct tag_labels *labels, uint64_t time_ns,
		       char *buf, size_t len)
{
	uint64_t t = time_ns > a->opts.window_origin_ns ? time_ns - a->opts.window_origin_ns : 0;
	snprintf(buf, len, "%" PRIu64, t / a->opts.window_ns);
	for (unsigned i = 0; i < labels->count; i++)
		if (strcmp(labels->keys[i], "window") == 0)
			a->stats.window_tags_replaced++;
	tag_labels__put(labels, "window", buf); /* reserved: cannot fail */
}

/* Adds a finished sample (with the exact ns it carried) to the profile, the
 * process's exact total and the on_sample receiver. */
static int emit_sample(void *ctx, const struct sample_desc *s, uint64_t exact_ns)
{
	struct aggregator *a = ctx;
	int err = profile__add_sample(a->profile, s);
	if (!err && a->exact && s->pid)
		err = cpu_totals__add_sample(a->exact, s->pid, exact_ns);
	if (!err) {
		a->stats.samples++;
		if (a->opts.on_sample)
			a->opts.on_sample(a->opts.on_sample_ctx, a->profile, s,
					  a->opts.exact_cpu ? exact_ns : 0);
	}
	return err;
}

/* Releases held requests (of only_pid; 0: of every process) whose endpoint
 * the request logs have; with everything, also the rest as `unresolved`
 * (relabel_lost). 0 or -errno. */
static int resolve_held(struct aggregator *a, bool everything, uint32_t only_pid)
{
	size_t n = relabel_buffer__requests(a->relabel);
	if (!n)
		return 0;
	struct relabel_key *keys = malloc(n * sizeof(*keys));
	uint32_t *numbers = malloc(n * sizeof(*numbers));
	const char **endpoints = malloc(n * sizeof(*endpoints));
	int err = 0;
	if (!keys || !numbers || !endpoints) {
		err = -ENOMEM;
		goto out;
	}
	n = relabel_buffer__list(a->relabel, keys, n);
	for (size_t i = 0; i < n && !err;) {
		size_t j = i;
		while (j < n && keys[j].pid == keys[i].pid) {
			numbers[j - i] = keys[j].request;
			j++;
		}
		if (only_pid && keys[i].pid != only_pid) {
			i = j;
			continue;
		}
		if (tag_registry__request_endpoints(a->opts.tags, (pid_t)keys[i].pid, numbers,
						    j - i, endpoints))
			memset(endpoints, 0, (j - i) * sizeof(*endpoints));
		for (size_t k = i; k < j && !err; k++) {
			const char *endpoint = endpoints[k - i];
			if (!endpoint && !everything)
				continue;
			bool abandoned = endpoint == tag_request_abandoned;
			int r = relabel_buffer__release(a->relabel, keys[k], abandoned ? NULL :
							endpoint ? endpoint : TAG_ENDPOINT_UNRESOLVED,
							emit_sample, a);
			if (r < 0)
				err = r;
			else if (abandoned)
				a->stats.relabel_abandoned += (uint64_t)r;
			else if (!endpoint)
				a->stats.relabel_lost += (uint64_t)r;
			else if (strcmp(endpoint, TAG_ENDPOINT_UNRESOLVED) == 0)
				a->stats.relabel_unresolved += (uint64_t)r;
			else
				a->stats.relabel_resolved += (uint64_t)r;
		}
		i = j;
	}
out:
	free(keys);
	free(numbers);
	free(endpoints);
	return err;
}

int aggregator__flush_requests(struct aggregator *a)
{
	return a->relabel ? resolve_held(a, true, 0) : 0;
}

/* A sample of an open request: held while its endpoint is unknown (0: held,
 * 1: add it now: it has its endpoint, or could not be held), and when it has
 * its endpoint, the request's held samples go out with it. */
static int relabel_sample(struct aggregator *a, const struct profile_sample_event *e,
			  struct sample_desc *s, bool has_endpoint, const char *endpoint)
{
	if (has_endpoint) {
		struct relabel_key key = { .pid = e->hdr.pid, .request = e->request };
		int r = relabel_buffer__requests(a->relabel) ?
			relabel_buffer__release(a->relabel, key, endpoint, emit_sample, a) : 0;
		if (r < 0)
			return r;
		a->stats.relabel_resolved += (uint64_t)r;
		return 1;
	}
	size_t nvalues = profile__value_count(a->profile);
	int err = relabel_buffer__hold(a->relabel, e->request, s, nvalues,
				       a->opts.exact_cpu ? e->delta_ns : 0);
	if (err == -ENOSPC) {
		a->stats.relabel_overflow++;
		return 1;
	}
	if (err)
		return err;
	a->stats.relabel_held++;
	if (e->hdr.time_ns - a->relabel_resolved_ns >= RELABEL_RESOLVE_NS) {
		a->relabel_resolved_ns = e->hdr.time_ns;
		return resolve_held(a, false, 0);
	}
	return 0;
}

static int add_sample(struct aggregator *a, const struct profile_sample_event *e, size_t size)
{
	size_t header = offsetof(struct profile_sample_event, stack);
	int klen = e->kstack_len > 0 ? e->kstack_len : 0;
	int ulen = e->ustack_len > 0 ? e->ustack_len : 0;
	if (klen > PROFILE_MAX_FRAMES || ulen > PROFILE_MAX_UFRAMES ||
	    size < header + (size_t)(klen + ulen) * 8) {
		a->stats.bad_records++;
		return 0;
	}
	if (e->kstack_len < 0)
		a->stats.kstack_missing++;
	if (e->ustack_len < 0)
		a->stats.ustack_missing++;

	uint32_t npy = e->py_len;
	if (npy > PY_MAX_FRAMES ||
	    size < header + (size_t)(klen + ulen) * 8 + (size_t)npy * sizeof(struct py_frame)) {
		a->stats.bad_records++;
		return 0;
	}
	const __u64 *kstack = e->stack;
	const __u64 *ustack = e->stack + klen;
	const struct py_frame *pyframes = (const struct py_frame *)(e->stack + klen + ulen);
	uint32_t n = 0;
	int err = 0;
	pid_t pid = (pid_t)e->hdr.pid;

	struct py_process_info py;
	int is_python = 0, py_process = 0;
	if (a->opts.python && pid > 0) {
		err = py_registry__lookup(a->opts.python, pid, &py);
		if (err < 0)
			return err;
		py_process = err == 1;
		is_python = py_process && npy > 0;
		err = 0;
	}
	/* BPF keeps only PY_NATIVE_FRAMES native frames of a Python process:
	 * a user stack that long may have been cut (else 127 walking frame
	 * pointers, 128 through CFI: from 127 on). */
	int ucap = py_process ? PY_NATIVE_FRAMES : PROFILE_MAX_FRAMES;
	if (is_python && a->opts.user_frames) {
		a->stats.python_samples++;
		if (e->py_status == PY_WALK_TRUNCATED || e->py_status == PY_WALK_TORN) {
			if (e->py_status == PY_WALK_TORN)
				a->stats.python_torn++;
			else
				a->stats.python_truncated++;
			err = add_special(a->profile, "[truncated]", &a->frames[n++]);
		} else if (e->py_status == PY_WALK_READ_ERROR) {
			a->stats.python_read_errors++;
			err = add_special(a->profile, "[python: stack partly unreadable]",
					  &a->frames[n++]);
		}
		for (int i = (int)npy - 1; i >= 0 && !err; i--)
			err = py_resolver__frame(a->opts.py_resolver, pid, py.layout,
						 &pyframes[i], a->opts.python_lines, a->profile,
						 &a->frames[n++]);
		/* Native frames from the leaf up to the first interpreter frame: what
		 * the Python leaf called (C extensions, libraries). Frame-pointer
		 * unwinding through code built without them yields [unknown]: stop. */
		uint32_t nchain = 0;
		int i;
		for (i = 0; i < ulen && !err; i++) {
			uint32_t id;
			err = user_frame(a, pid, ustack[i], i > 0, &id);
			if (err)
				break;
			if (unwind_marker(ustack[i])) { /* the unwind ended before the interpreter */
				a->chain[nchain++] = id;
				break;
			}
			const struct profile_frame *f = profile__frame(a->profile, id);
			const char *module = profile__str(a->profile, f->module);
			if (strcmp(module, py.interpreter) == 0 ||
			    strcmp(profile__str(a->profile, f->name), "[unknown]") == 0)
				break;
			a->chain[nchain++] = id;
		}
		/* The cap ended the chain before the interpreter: frames between
		 * the Python leaf and the chain are missing. */
		if (!err && i == ulen && ulen >= ucap) {
			a->stats.native_truncated++;
			err = add_special(a->profile, "[truncated]", &a->frames[n++]);
		}
		while (nchain && !err)
			a->frames[n++] = a->chain[--nchain];
	} else if (a->opts.user_frames) {
		/* Root first: user frames from outermost (last) to innermost. */
		if (ulen >= ucap) {
			a->stats.native_truncated++;
			err = add_special(a->profile, "[truncated]", &a->frames[n++]);
		}
		for (int i = ulen - 1; i >= 0 && !err; i--) {
			err = user_frame(a, pid, ustack[i], i > 0, &a->frames[n++]);
			/* Code built without frame pointers leaves a run of garbage
			 * return addresses: show such a run as one [unknown]. */
			if (!err && n >= 2 && a->frames[n - 1] == a->frames[n - 2] &&
			    is_unknown(a->profile, a->frames[n - 1]))
				n--;
		}
		if (!err && e->ustack_len < 0 && pid)
			err = add_special(a->profile, "[user stack unavailable]", &a->frames[n++]);
	}
	/* Then kernel frames, outermost first. */
	if (a->opts.kernel_frames) {
		/* Sampled inside the timer interrupt: only what is below its entry
		 * is the interrupted code (nothing, if the unwind never got there). */
		int first = 0;
		if (a->opts.interrupt_frames) {
			first = klen;
			for (int i = 0; i < klen; i++)
				if (symbolizer__is_interrupt_entry(a->sym, kstack[i], i > 0)) {
					first = i + 1;
					break;
				}
		}
		/* A full kernel stack lost its outermost frames (the entry). */
		if (klen == PROFILE_MAX_FRAMES && first < klen && !err) {
			a->stats.kernel_truncated++;
			err = add_special(a->profile, "[truncated]", &a->frames[n++]);
		}
		for (int i = klen - 1; i >= first && !err; i--)
			err = symbolizer__kernel_frame(a->sym, kstack[i], i > 0, a->profile,
						       &a->frames[n++]);
	}
	if (err)
		return err;
	if (n == 0) {
		err = add_special(a->profile, "[no stack]", &a->frames[n++]);
		if (err)
			return err;
	}

	char comm[PROFILE_COMM_LEN + 1];
	memcpy(comm, a->opts.process_comm ? e->group_comm : e->hdr.comm, PROFILE_COMM_LEN);
	comm[PROFILE_COMM_LEN] = '\0';
	uint64_t ns = a->opts.weight_by_runtime ? e->delta_ns :
		      a->opts.period_is_ns ? e->period : a->opts.ns_per_sample;
	uint64_t values[PROFILE_MAX_VALUES] = { 1, ns };
	if (a->opts.exact_cpu) {
		/* Counters since the thread's last sample, read at this sample.
		 * CPU time weighs by the period until apportioned. */
		size_t v = 2;
		if (a->opts.instructions)
			values[v++] = e->delta[COUNTER_PRIMARY];
		if (a->opts.cycles)
			values[v++] = e->delta[COUNTER_CYCLES];
	}

	struct tag_labels labels = { .count = 0 };
	if (a->opts.tags) {
		err = tag_registry__labels_inherit(a->opts.tags, pid, (pid_t)e->ppid,
						   e->tag_status, e->tags, e->tag_count, &labels);
		if (err)
			return err;
		if (e->tag_status == TAG_READ_RACE)
			a->stats.tag_races++;
	}
	/* A whole request's sample: its endpoint, if any, is decided below. */
	bool in_request = a->relabel && e->tag_status == TAG_READ_OK && e->request;
	const char *endpoint = NULL;
	for (unsigned i = 0; in_request && i < labels.count; i++)
		if (strcmp(labels.keys[i], "endpoint") == 0)
			endpoint = labels.values[i];
	if (a->opts.endpoint_rule && !in_request) {
		int has_endpoint = 0;
		for (unsigned i = 0; i < labels.count; i++)
			has_endpoint |= strcmp(labels.keys[i], "endpoint") == 0;
		const char *inferred = has_endpoint ? NULL :
			endpoint_rule__apply(a->opts.endpoint_rule, a->profile, a->frames, n);
		/* endpoint has a reserved slot: this cannot fail. */
		if (inferred && !tag_labels__put(&labels, "endpoint", inferred))
			a->stats.inferred_endpoints++;
	}
	if (labels.count)
		a->stats.tagged_samples++;
	char window[24];
	if (a->opts.window_ns)
		put_window(a, &labels, e->hdr.time_ns, window, sizeof(window));
	if ((err = split_reused_pid(a, e->hdr.pid)))
		return err;
	struct sample_desc s = {
		.frames = a->frames, .nframes = n, .pid = e->hdr.pid, .tid = e->hdr.tid,
		.comm = comm, .values = values, .label_keys = labels.keys,
		.label_values = labels.values, .nlabels = labels.count,
	};
	if (in_request) {
		err = relabel_sample(a, e, &s, endpoint != NULL, endpoint);
		if (err <= 0)
			return err;
		/* Not held: could not be (counted), or it has its endpoint. */
		if (!endpoint && !tag_labels__put(&labels, "endpoint", TAG_ENDPOINT_UNRESOLVED))
			s.nlabels = labels.count;
	}
	return emit_sample(a, &s, e->delta_ns);
}

int aggregator__record(struct aggregator *a, const void *data, size_t size)
{
	const struct profile_event_header *h = data;
	if (size < sizeof(*h)) {
		a->stats.bad_records++;
		return 0;
	}
	switch (h->type) {
	case PROFILE_EVENT_SAMPLE:
		if (size < offsetof(struct profile_sample_event, stack)) {
			a->stats.bad_records++;
			return 0;
		}
		return add_sample(a, data, size);
	case PROFILE_EVENT_EXEC:
		a->stats.execs++;
		symbolizer__note_exec(a->sym, (pid_t)h->pid);
		if (a->opts.python)
			py_registry__note_exec(a->opts.python, (pid_t)h->pid);
		if (a->opts.tags)
			tag_registry__note_exec(a->opts.tags, (pid_t)h->pid, h->time_ns);
		return 0;
	case PROFILE_EVENT_EXIT:
		a->stats.exits++;
		symbolizer__note_exit(a->sym, (pid_t)h->pid);
		if (a->opts.python)
			py_registry__note_exit(a->opts.python, (pid_t)h->pid);
		if (a->opts.tags)
			tag_registry__note_exit(a->opts.tags, (pid_t)h->pid);
		return 0;
	case PROFILE_EVENT_TASK_COUNTS: {
		const struct profile_task_counts_event *tc = data;
		if (size < sizeof(*tc)) {
			a->stats.bad_records++;
			return 0;
		}
		/* Sent at a thread's exit: a leader's memory is gone by then. */
		if (a->exact && a->opts.tags && h->tid == h->pid && tc->unsampled.unsampled_ns) {
			int err = tag_registry__note_leader_exit(a->opts.tags, (pid_t)h->pid);
			if (err)
				return err;
		}
		if (a->exact)
			return aggregator__add_unsampled(a, &tc->unsampled);
		return a->opts.counts ? counts_table__add(a->opts.counts, h->tid, &tc->counts) : 0;
	}
	case PROFILE_EVENT_UNSAMPLED: {
		const struct profile_unsampled_event *u = data;
		if (size < sizeof(*u)) {
			a->stats.bad_records++;
			return 0;
		}
		if (!a->exact)
			return 0;
		/* A leader freed: its process is gone (its memory long since). */
		int err = a->opts.tags && u->unsampled.pid && u->unsampled.tid == u->unsampled.pid &&
			  u->unsampled.unsampled_ns ?
			  tag_registry__note_leader_exit(a->opts.tags, (pid_t)u->unsampled.pid) : 0;
		if (err)
			return err;
		err = aggregator__add_unsampled(a, &u->unsampled);
		/* Its leader freed: the process is over, the pid free. Nothing of
		 * it comes after this record, so its tags can go too: a new process
		 * forked with the pid (no exec to tell) must not get them. */
		if (err || !u->unsampled.pid || u->unsampled.tid != u->unsampled.pid)
			return err;
		if (a->opts.tags)
			tag_registry__note_exec(a->opts.tags, (pid_t)u->unsampled.pid, 0);
		if (a->freed && hashmap__put(a->freed, &u->unsampled.pid, sizeof(u->unsampled.pid),
					     (void *)1, NULL))
			err = -ENOMEM;
		return err;
	}
	default:
		a->stats.bad_records++;
		return 0;
	}
}

int aggregator__set_profile(struct aggregator *a, struct profile *p)
{
	const struct profile *old = a->profile;
	/* Held samples' frame ids are the old profile's: they go there. */
	int flushed = aggregator__flush_requests(a);
	if (flushed)
		return flushed;
	if (profile__value_count(p) == 0) {
		for (size_t v = 0; v < profile__value_count(old); v++) {
			int r = profile__add_value_type(p, profile__value_type(old, v),
							profile__value_unit(old, v));
			if (r < 0)
				return r;
		}
	}
	if (profile__value_count(p) != profile__value_count(old))
		return -EINVAL;
	a->profile = p;
	return 0;
}

int aggregator__apportion(struct aggregator *a)
{
	int err = aggregator__flush_requests(a);
	if (err || !a->exact)
		return err;
	err = cpu_totals__apportion(a->exact, a->profile);
	cpu_totals__clear(a->exact);
	hashmap__free(a->freed);
	a->freed = hashmap__new(); /* NULL: pid reuse goes unnoticed */
	return err;
}

/* Labels of a process-level sample of pid (its tags, then the window of
 * now_mono_ns); window must outlive the labels' use. */
static int process_labels(struct aggregator *a, pid_t pid, pid_t ppid, uint64_t now_mono_ns,
			  struct tag_labels *labels, char window[24])
{
	labels->count = 0;
	if (a->opts.tags) {
		int err = tag_registry__labels_inherit(a->opts.tags, pid, ppid, TAG_READ_NONE, NULL,
						       0, labels);
		if (err)
			return err;
	}
	/* As a stack sample's: a process's own `window` tag is replaced (and
	 * counted), never a second `window` label beside the time slot. */
	if (a->opts.window_ns)
		put_window(a, labels, now_mono_ns, window, 24);
	return 0;
}

int aggregator__add_unsampled(struct aggregator *a, const struct unsampled_record *r)
{
	if (!a->exact || !r->pid || !r->unsampled_ns)
		return 0;
	a->stats.unsampled_ns += r->unsampled_ns;
	struct tag_labels labels;
	char window[24];
	int err = split_reused_pid(a, r->pid);
	if (!err)
		err = process_labels(a, (pid_t)r->pid, (pid_t)r->ppid, mono_ns(), &labels,
				     window);
	uint32_t frame;
	if (!err)
		err = add_special(a->profile, CPU_UNSAMPLED_FRAME, &frame);
	if (err)
		return err;
	char comm[PROFILE_COMM_LEN + 1];
	memcpy(comm, r->group_comm, PROFILE_COMM_LEN);
	comm[PROFILE_COMM_LEN] = '\0';
	uint64_t values[PROFILE_MAX_VALUES] = { 0 };
	struct sample_desc s = { .frames = &frame, .nframes = 1, .pid = r->pid, .tid = r->pid,
				 .comm = comm, .label_keys = labels.keys,
				 .label_values = labels.values, .nlabels = labels.count,
				 .values = values };
	/* Where the process has stack samples, they carry the time (apportioned
	 * by their shares); an [unsampled] sample would only add a 0 row. */
	if (!cpu_totals__samples(a->exact, r->pid))
		err = profile__add_sample(a->profile, &s);
	if (!err)
		err = cpu_totals__add(a->exact, r->pid, r->unsampled_ns);
	if (!err && a->opts.on_sample)
		a->opts.on_sample(a->opts.on_sample_ctx, a->profile, &s, r->unsampled_ns);
	return err;
}


int aggregator__add_requests(struct aggregator *a, pid_t pid, const char *endpoint,
			     uint64_t requests, uint64_t now_mono_ns)
{
	int vr = profile__find_value(a->profile, "requests");
	if (!a->opts.tags || vr < 0)
		return -EINVAL;
	struct tag_labels labels = { .count = 0 };
	int err = tag_registry__labels(a->opts.tags, pid, TAG_READ_NONE, NULL, 0, &labels);
	if (err)
		return err;
	/* The endpoint of the requests, not any thread's (a reserved slot). */
	if (tag_labels__put(&labels, "endpoint", endpoint))
		return -ENOSPC; /* cannot happen: the budget reserves it */
	char window[24];
	if (a->opts.window_ns)
		put_window(a, &labels, now_mono_ns, window, sizeof(window));
	uint32_t frame;
	err = add_special(a->profile, "[requests]", &frame);
	if (err)
		return err;
	uint64_t values[PROFILE_MAX_VALUES] = { 0 };
	values[vr] = requests;
	struct sample_desc s = { .frames = &frame, .nframes = 1, .pid = (uint32_t)pid,
				 .comm = "", .label_keys = labels.keys,
				 .label_values = labels.values, .nlabels = labels.count,
				 .values = values };
	return profile__add_sample(a->profile, &s);
}

void aggregator__stats(const struct aggregator *a, struct aggregate_stats *out)
{
	*out = a->stats;
}
