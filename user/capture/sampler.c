// SPDX-License-Identifier: MIT
#include "capture/sampler.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "capture/bpf_features.h"
#include "util/privileges.h"
#include "symbolize/ksyms.h"
#include "util/errmsg.h"
#include "util/remote.h" /* mono_ns */
#include "sample.skel.h"
#include "util/clock.h"

struct sampler {
	struct sample_bpf *skel;      /* loaded BPF objects */
	struct ring_buffer *rb;        /* consumer of the events map */
	int *perf_fds;                 /* one sampling event per CPU; -1 when offline */
	struct bpf_link **links;       /* program attachments, per CPU */
	int ncpus;                     /* possible CPUs (array sizes) */
	int nattached;                 /* CPUs actually sampled */
	enum sample_event event;       /* event in use */
	char reason[160];              /* why this event (see sampler__event_reason) */
	sampler_record_fn fn;          /* user callback */
	void *ctx;                     /* its context */
	int stop_value;                /* non-zero value the callback returned */
	bool counting;                 /* counters opened */
	struct counter_choice counters;/* what they count */
	int *counter_fds;              /* ncpus * COUNTER_SLOTS counting events; -1 none */
	int stats_fd;                  /* BPF_ENABLE_STATS handle; -1 none */
};

static int open_perf_event(enum sample_event ev, unsigned freq, uint64_t period, int cpu)
{
	struct perf_event_attr attr = {
		.size = sizeof(attr),
		.freq = period ? 0 : 1,
		.sample_freq = freq,
	};
	if (period)
		attr.sample_period = period;
	if (ev == SAMPLE_EVENT_CYCLES) {
		attr.type = PERF_TYPE_HARDWARE;
		attr.config = PERF_COUNT_HW_CPU_CYCLES;
	} else if (ev == SAMPLE_EVENT_INSTRUCTIONS) {
		attr.type = PERF_TYPE_HARDWARE;
		attr.config = PERF_COUNT_HW_INSTRUCTIONS;
	} else {
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_CPU_CLOCK;
	}
	int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int paranoid_level(void)
{
	FILE *f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	int level = 2;
	if (f) {
		if (fscanf(f, "%d", &level) != 1)
			level = 2;
		fclose(f);
	}
	return level;
}

/* Picks the event: AUTO tries cycles on CPU 0 and falls back to cpu-clock. */
static int choose_event(struct sampler *s, const struct sampler_opts *opts, int first_cpu)
{
	s->event = opts->event;
	s->reason[0] = '\0';
	if (opts->event != SAMPLE_EVENT_AUTO)
		return 0;
	int fd = open_perf_event(SAMPLE_EVENT_CYCLES, opts->freq_hz, opts->period, first_cpu);
	if (fd >= 0) {
		close(fd);
		s->event = SAMPLE_EVENT_CYCLES;
		snprintf(s->reason, sizeof(s->reason), "hardware cycles counter available");
		return 0;
	}
	s->event = SAMPLE_EVENT_CPU_CLOCK;
	snprintf(s->reason, sizeof(s->reason),
		 "hardware cycles counter not available (%s): sampling on CPU time",
		 strerror(-fd));
	return 0;
}

/* CPU numbers at or above this are not a CPU list (the kernel's NR_CPUS is at
 * most 8192). */
#define MAX_CPU_ID 65536

/* Parses a CPU list like "0-3,5" (sysfs format) into a bool array. */
static int read_online_cpus(bool **mask_out, int *n_out)
{
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	char *buf = NULL; /* whole line: a sparse list of many CPUs is long */
	size_t cap = 0;
	if (!f)
		return -errno;
	if (getline(&buf, &cap, f) < 0) {
		free(buf);
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	int n = 0;
	bool *mask = NULL;
	for (char *p = buf; *p && *p != '\n';) {
		char *end;
		long a = strtol(p, &end, 10), b = a;
		if (end == p || a < 0)
			goto bad;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p || b < a)
				goto bad;
		}
		if (b >= MAX_CPU_ID)
			goto bad;
		if (b >= n) {
			bool *m = realloc(mask, (size_t)(b + 1) * sizeof(bool));
			if (!m) {
				free(buf);
				free(mask);
				return -ENOMEM;
			}
			memset(m + n, 0, (size_t)(b + 1 - n) * sizeof(bool));
			mask = m;
			n = (int)b + 1;
		}
		for (long c = a; c <= b; c++)
			mask[c] = true;
		p = end;
		if (*p == ',')
			p++;
	}
	free(buf);
	*mask_out = mask;
	*n_out = n;
	return 0;
bad:
	free(buf);
	free(mask);
	return -EINVAL;
}

static int on_ringbuf_record(void *ctx, void *data, size_t size)
{
	struct sampler *s = ctx;
	int r = s->fn(s->ctx, data, size);
	if (r)
		s->stop_value = r;
	return r;
}

/* Opens this CPU's counting events and hands them to the BPF program. */
static int open_counters(struct sampler *s, int cpu)
{
	enum counter_probe primary = s->counters.primary == COUNTER_PRIMARY_INSTRUCTIONS ?
				     COUNTER_PROBE_INSTRUCTIONS : COUNTER_PROBE_CPU_CLOCK;
	int *fds = &s->counter_fds[cpu * COUNTER_SLOTS];
	uint32_t key = (uint32_t)cpu;
	if (s->counters.primary == COUNTER_PRIMARY_NONE)
		return 0;
	fds[COUNTER_PRIMARY] = counters__open_real(primary, cpu, NULL);
	if (fds[COUNTER_PRIMARY] < 0)
		return fds[COUNTER_PRIMARY];
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.counter_primary), &key,
				&fds[COUNTER_PRIMARY], BPF_ANY))
		return -errno;
	if (!s->counters.cycles)
		return 0;
	fds[COUNTER_CYCLES] = counters__open_real(COUNTER_PROBE_CYCLES, cpu, NULL);
	if (fds[COUNTER_CYCLES] < 0)
		return fds[COUNTER_CYCLES];
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.counter_cycles), &key,
				&fds[COUNTER_CYCLES], BPF_ANY))
		return -errno;
	return 0;
}

/* Runs an iter/task program's link to the end; returns 0 or -errno. */
static int run_task_iterator(struct bpf_link *link, char *buf, size_t bufsize,
			     int (*fn)(void *ctx, const char *rec, size_t size), void *ctx)
{
	if (!link)
		return -ENOENT;
	int fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		return -errno;
	int err = 0;
	for (;;) {
		ssize_t n = read(fd, buf, bufsize);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (fn && (err = fn(ctx, buf, (size_t)n)))
			break;
	}
	close(fd);
	return err;
}

/* Starts exact counting now: every accounted thread alive gets its CPU time
 * so far as its baseline, threads born from now on count from zero. */
static int start_counting(struct sampler *s)
{
	char buf[256];
	s->skel->bss->counting_since_ns = mono_ns();
	return run_task_iterator(s->skel->links.snapshot_task_counts, buf, sizeof(buf), NULL,
				 NULL);
}

/* Opens the sampling event on cpu and attaches the program to it. Returns 0
 * or -errno with a message in err. */
static int attach_sampling_event(struct sampler *s, const struct sampler_opts *opts, int cpu,
				 char *err, size_t errlen)
{
	int e, fd = open_perf_event(s->event, opts->freq_hz, opts->period, cpu);
	if (fd < 0) {
		e = fd;
		if (e == -EACCES || e == -EPERM)
			errmsg__set(err, errlen, "perf_event_open refused on CPU %d (%s; "
				"kernel.perf_event_paranoid=%d): run as root, or "
				"`sysctl kernel.perf_event_paranoid=-1`",
				cpu, strerror(-e), paranoid_level());
		else if ((e == -ENOENT || e == -EOPNOTSUPP || e == -ENODEV) &&
			 s->event != SAMPLE_EVENT_CPU_CLOCK)
			errmsg__set(err, errlen, "the %s event is not available on this machine "
				"(%s: no hardware PMU exposed, e.g. a VM): use -e cpu-clock",
				sampler__event_name(s), strerror(-e));
		else
			errmsg__set(err, errlen, "perf_event_open(%s) failed on CPU %d: %s",
				sampler__event_name(s), cpu, strerror(-e));
		return e;
	}
	s->perf_fds[cpu] = fd;
	s->links[cpu] = bpf_program__attach_perf_event(s->skel->progs.sample_stack, fd);
	if (!s->links[cpu]) {
		e = -errno;
		errmsg__set(err, errlen, "attaching to perf event on CPU %d failed: %s", cpu,
			strerror(-e));
		return e;
	}
	return 0;
}

/* The function of the per-CPU scheduler tick's hrtimer (renamed in 6.10). */
static const char *const TICK_FUNCTIONS[] = { "tick_nohz_handler", "tick_sched_timer" };

/* Readies sampling on the scheduler tick (before load). Returns 0 or -errno
 * with a message in err. */
static int setup_tick_sampling(struct sampler *s, const struct sampler_opts *opts, char *err,
			       size_t errlen)
{
	if (opts->period) {
		errmsg__set(err, errlen, "-e tick samples at a frequency: use -F HZ, not -c");
		return -EINVAL;
	}
	struct ksyms *ks = ksyms__load(NULL);
	if (!ks) {
		int e = -errno;
		errmsg__set(err, errlen, "-e tick needs kernel symbols: cannot read /proc/kallsyms "
			"(%s)", strerror(-e));
		return e;
	}
	uint64_t addr = 0;
	for (size_t i = 0; i < sizeof(TICK_FUNCTIONS) / sizeof(TICK_FUNCTIONS[0]) && !addr; i++)
		if (ksyms__find(ks, TICK_FUNCTIONS[i], &addr))
			addr = 0;
	ksyms__free(ks);
	if (!addr) {
		errmsg__set(err, errlen, "-e tick: this kernel's tick timer function (%s or %s) "
			"is not in /proc/kallsyms: use -e cpu-clock", TICK_FUNCTIONS[0],
			TICK_FUNCTIONS[1]);
		return -ENOENT;
	}
	s->skel->rodata->tick_function = addr;
	s->skel->rodata->tick_sample_ns = 1000000000ull / opts->freq_hz;
	return 0;
}

static int fill_filter_map(int map_fd, const uint32_t *ids, size_t n)
{
	uint8_t one = 1;
	for (size_t i = 0; i < n; i++)
		if (bpf_map_update_elem(map_fd, &ids[i], &one, BPF_ANY))
			return -errno;
	return 0;
}

/* Loads only the programs the mode runs: one the kernel would reject then
 * blocks only the modes that use it, and unused ones cost no verification.
 * on_exec and on_exit always run (mappings, exits; on_exit also flushes an
 * exiting thread's counts). bpf_object__attach_skeleton skips programs not
 * loaded. */
static void set_autoload(struct sampler *s, const struct bpf_feature_needs *needs)
{
	struct sample_bpf *k = s->skel;
	bpf_program__set_autoload(k->progs.sample_stack, needs->perf_event);
	bpf_program__set_autoload(k->progs.sample_on_tick, needs->tick);
	bpf_program__set_autoload(k->progs.on_fork, needs->follow_children);
	bpf_program__set_autoload(k->progs.on_switch, needs->counters);
	bpf_program__set_autoload(k->progs.on_free, needs->counting);
	bpf_program__set_autoload(k->progs.snapshot_task_counts, needs->counting);
	bpf_program__set_autoload(k->progs.dump_task_counts, needs->counting);
	bpf_program__set_autoload(k->progs.flush_unsampled, needs->counting);
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("DYNOPROF_DEBUG"))
		return vfprintf(stderr, fmt, ap);
	if (level == LIBBPF_DEBUG && getenv("DYNOPROF_DEBUG_BPF"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

size_t sampler__ringbuf_bytes_for(unsigned freq_hz, unsigned ncpus)
{
	if (!ncpus) {
		int n = libbpf_num_possible_cpus();
		ncpus = n > 0 ? (unsigned)n : 1;
	}
	uint64_t need = (uint64_t)freq_hz * ncpus * sizeof(struct profile_sample_event) *
			SAMPLER_RINGBUF_SLACK_S;
	size_t bytes = SAMPLER_RINGBUF_MIN_BYTES;
	while (bytes < need && bytes < SAMPLER_RINGBUF_DEFAULT_BYTES)
		bytes *= 2;
	return bytes;
}

struct sampler *sampler__open(const struct sampler_opts *opts, sampler_record_fn fn,
			      void *ctx, char *err, size_t errlen)
{
	struct sampler *s = NULL;
	int e = 0;
	bool prepared = false; /* before_attach ran and succeeded */

	libbpf_set_print(libbpf_quiet);
	if (opts->freq_hz < 1 || opts->freq_hz > SAMPLER_MAX_FREQ_HZ) {
		errmsg__set(err, errlen, "frequency %u Hz out of range: use -F 1..%d",
			opts->freq_hz, SAMPLER_MAX_FREQ_HZ);
		e = -EINVAL;
		goto fail;
	}
	e = privileges__check(err, errlen);
	if (e)
		goto fail;
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		errmsg__set(err, errlen, "this kernel has no BTF (/sys/kernel/btf/vmlinux missing): "
			"boot a kernel built with CONFIG_DEBUG_INFO_BTF=y");
		e = -ENOTSUP;
		goto fail;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		e = -ENOMEM;
		errmsg__set(err, errlen, "out of memory");
		goto fail;
	}
	s->fn = fn;
	s->ctx = ctx;
	s->stats_fd = -1;
	s->ncpus = libbpf_num_possible_cpus();
	if (s->ncpus <= 0) {
		e = s->ncpus ? s->ncpus : -EINVAL;
		errmsg__set(err, errlen, "cannot count CPUs: %s", strerror(-e));
		goto fail;
	}
	s->perf_fds = malloc(sizeof(int) * (size_t)s->ncpus);
	s->links = calloc((size_t)s->ncpus, sizeof(*s->links));
	if (!s->perf_fds || !s->links) {
		e = -ENOMEM;
		errmsg__set(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < s->ncpus; i++)
		s->perf_fds[i] = -1;
	s->counter_fds = malloc(sizeof(int) * (size_t)s->ncpus * COUNTER_SLOTS);
	if (!s->counter_fds) {
		e = -ENOMEM;
		errmsg__set(err, errlen, "out of memory");
		goto fail;
	}
	for (int i = 0; i < s->ncpus * COUNTER_SLOTS; i++)
		s->counter_fds[i] = -1;

	s->skel = sample_bpf__open();
	if (!s->skel) {
		e = -errno;
		errmsg__set(err, errlen, "cannot open BPF object: %s", strerror(-e));
		goto fail;
	}
	s->skel->rodata->filter_pids = opts->npids > 0;
	s->skel->rodata->filter_tids = opts->ntids > 0;
	s->skel->rodata->follow_children = opts->follow_children;
	s->skel->rodata->filter_cgroup = opts->cgroup_id != 0;
	s->skel->rodata->cgroup_id = opts->cgroup_id;
	s->skel->rodata->cgroup_level = opts->cgroup_level;
	s->skel->rodata->walk_python = opts->walk_python;
	s->skel->rodata->kernel_stacks = !opts->no_kernel_stacks;
	s->skel->rodata->thread_tags = opts->thread_tags;
	if (opts->walk_python || opts->thread_tags) {
		s->skel->rodata->tls.specific_1stblock = opts->py_tls.specific_1stblock;
		s->skel->rodata->tls.entry_size = opts->py_tls.entry_size;
		s->skel->rodata->tls.data_offset = opts->py_tls.data_offset;
	}
	if (opts->counting) {
		e = counters__choose(counters__open_real, NULL, 0, opts->counter_standin,
				     &s->counters);
		if (e) {
			errmsg__set(err, errlen, "%s", s->counters.reason);
			goto fail;
		}
		s->counting = true;
		s->skel->rodata->counting = true;
		s->skel->rodata->counter_open[COUNTER_PRIMARY] =
			s->counters.primary != COUNTER_PRIMARY_NONE;
		s->skel->rodata->counter_open[COUNTER_CYCLES] = s->counters.cycles;
	}
	if (opts->unwind_rows) {
		s->skel->rodata->unwind_cfi = true;
		/* A rule cache (64 KiB) and a stack snapshot (4 KiB) per CPU, only
		 * when unwinding. */
		bpf_map__set_max_entries(s->skel->maps.unwind_rule_cache, (uint32_t)s->ncpus);
		bpf_map__set_max_entries(s->skel->maps.unwind_stack_snap, (uint32_t)s->ncpus);
	}
	bpf_map__set_max_entries(s->skel->maps.counter_primary, (uint32_t)s->ncpus);
	bpf_map__set_max_entries(s->skel->maps.counter_cycles, (uint32_t)s->ncpus);
	size_t rb_bytes = opts->ringbuf_bytes ? opts->ringbuf_bytes : SAMPLER_RINGBUF_DEFAULT_BYTES;
	e = bpf_map__set_max_entries(s->skel->maps.events, (uint32_t)rb_bytes);
	if (e) {
		errmsg__set(err, errlen, "cannot size ring buffer: %s", strerror(-e));
		goto fail;
	}
	/* CPU time comes from the scheduler's own per-task sums; only counting
	 * events (PMU, or the stand-in) need a program at every context switch.
	 * Without them it would cost a call per switch for nothing. */
	bool switch_hook = s->counting && (s->skel->rodata->counter_open[COUNTER_PRIMARY] ||
					   s->skel->rodata->counter_open[COUNTER_CYCLES]);
	struct bpf_feature_needs needs = {
		.perf_event = opts->event != SAMPLE_EVENT_TICK,
		.tick = opts->event == SAMPLE_EVENT_TICK,
		.python_walk = s->skel->rodata->walk_python,
		.counting = s->counting,
		.counters = switch_hook,
		.follow_children = opts->follow_children && opts->npids > 0,
	};
	set_autoload(s, &needs);
	e = bpf_features__check(&needs, err, errlen);
	if (e)
		goto fail;
	if (opts->event == SAMPLE_EVENT_TICK && (e = setup_tick_sampling(s, opts, err, errlen)))
		goto fail;
	e = sample_bpf__load(s->skel);
	if (e) {
		if (e == -EPERM || e == -EACCES)
			errmsg__set(err, errlen, "loading BPF programs was refused (%s): run as root "
				"or with CAP_BPF and CAP_PERFMON", strerror(-e));
		else
			errmsg__set(err, errlen, "loading BPF programs failed: %s (rerun with "
				"DYNOPROF_DEBUG_BPF=1 for the verifier log)", strerror(-e));
		goto fail;
	}
	e = fill_filter_map(bpf_map__fd(s->skel->maps.targets), opts->pids, opts->npids);
	if (!e)
		e = fill_filter_map(bpf_map__fd(s->skel->maps.target_tids), opts->tids, opts->ntids);
	if (e) {
		errmsg__set(err, errlen, "cannot fill target maps: %s", strerror(-e));
		goto fail;
	}

	/* What must be in the maps before the first sample (the targets'
	 * unwind tables) goes in now. */
	if (opts->before_attach && (e = opts->before_attach(opts->before_attach_ctx, s))) {
		errmsg__set(err, errlen, "cannot prepare sampling: %s", strerror(-e));
		goto fail;
	}
	prepared = opts->before_attach != NULL;
	bool *online = NULL;
	int nonline = 0;
	e = read_online_cpus(&online, &nonline);
	if (e) {
		errmsg__set(err, errlen, "cannot read online CPUs: %s", strerror(-e));
		goto fail;
	}
	int first_cpu = 0;
	while (first_cpu < nonline && !online[first_cpu])
		first_cpu++;
	choose_event(s, opts, first_cpu);
	for (int cpu = 0; cpu < nonline && cpu < s->ncpus; cpu++) {
		if (!online[cpu])
			continue;
		/* On the tick the tick program samples: no event of our own. */
		if (s->event != SAMPLE_EVENT_TICK && (e = attach_sampling_event(s, opts, cpu, err,
									    errlen))) {
			free(online);
			goto fail;
		}
		s->nattached++;
		if (s->counting && (e = open_counters(s, cpu))) {
			errmsg__set(err, errlen, "opening counting events on CPU %d failed: %s", cpu,
				strerror(-e));
			free(online);
			goto fail;
		}
	}
	free(online);

	e = sample_bpf__attach(s->skel); /* the exec/exit/fork tracepoints */
	if (e) {
		errmsg__set(err, errlen, "attaching process tracepoints failed: %s", strerror(-e));
		goto fail;
	}
	if (s->counting && (e = start_counting(s))) {
		errmsg__set(err, errlen, "cannot start exact counting: %s", strerror(-e));
		goto fail;
	}
	if (opts->bpf_stats)
		s->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME); /* best effort */
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.events), on_ringbuf_record, s, NULL);
	if (!s->rb) {
		e = -errno;
		errmsg__set(err, errlen, "cannot open ring buffer: %s", strerror(-e));
		goto fail;
	}
	return s;

fail:
	if (prepared && opts->undo_before_attach)
		opts->undo_before_attach(opts->before_attach_ctx);
	sampler__free(s);
	errno = e < 0 ? -e : EINVAL;
	return NULL;
}

int sampler__add_pid(struct sampler *s, uint32_t pid)
{
	uint8_t one = 1;
	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.targets), &pid, &one, BPF_ANY))
		return -errno;
	return 0;
}

int sampler__set_python_process(void *sampler, uint32_t pid, const struct py_proc *info)
{
	struct sampler *s = sampler;
	int fd = bpf_map__fd(s->skel->maps.py_procs);
	if (!info)
		return bpf_map_delete_elem(fd, &pid) && errno != ENOENT ? -errno : 0;
	return bpf_map_update_elem(fd, &pid, info, BPF_ANY) ? -errno : 0;
}

int sampler__set_unwind_process(void *sampler, uint32_t pid, const struct unwind_proc *info)
{
	struct sampler *s = sampler;
	int fd = bpf_map__fd(s->skel->maps.unwind_procs);
	if (!info)
		return bpf_map_delete_elem(fd, &pid) && errno != ENOENT ? -errno : 0;
	return bpf_map_update_elem(fd, &pid, info, BPF_ANY) ? -errno : 0;
}

int sampler__unwind_table_put(void *sampler, uint32_t slot, const struct unwind_row *rows,
			      size_t nrows)
{
	struct sampler *s = sampler;
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_INNER_MAP);
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	uint32_t *keys = NULL;
	int fd = -1, err;
	if (!nrows || nrows > UINT32_MAX)
		return -EINVAL;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "unwind_file", sizeof(uint32_t),
			    sizeof(struct unwind_row), (uint32_t)nrows, &mo);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	if (!(keys = malloc(nrows * sizeof(*keys)))) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nrows; i++)
		keys[i] = (uint32_t)i;
	/* One syscall for the file's rows; the kernel copies them. No mapping
	 * is kept: the agent's resident memory does not hold the tables. */
	uint32_t count = (uint32_t)nrows;
	if (bpf_map_update_batch(fd, keys, rows, &count, &bo) || count != nrows) {
		err = errno ? -errno : -EIO;
		goto out;
	}
	err = bpf_map_update_elem(bpf_map__fd(s->skel->maps.unwind_tables), &slot, &fd,
				  BPF_ANY) ? -errno : 0;
out:
	free(keys);
	if (fd >= 0)
		close(fd); /* the outer map holds the table now */
	return err;
}

int sampler__unwind_table_drop(void *sampler, uint32_t slot)
{
	struct sampler *s = sampler;
	int fd = bpf_map__fd(s->skel->maps.unwind_tables);
	return bpf_map_delete_elem(fd, &slot) && errno != ENOENT ? -errno : 0;
}

int sampler__set_tag_process(void *sampler, uint32_t pid, const struct tag_proc *info)
{
	struct sampler *s = sampler;
	int fd = bpf_map__fd(s->skel->maps.tag_procs);
	if (!info)
		return bpf_map_delete_elem(fd, &pid) && errno != ENOENT ? -errno : 0;
	return bpf_map_update_elem(fd, &pid, info, BPF_ANY) ? -errno : 0;
}

int sampler__bpf_stats(const struct sampler *s, uint64_t *run_time_ns, uint64_t *run_count)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);
	/* The sampling program of the mode (the other one is not loaded). */
	struct bpf_program *prog = s->event == SAMPLE_EVENT_TICK ? s->skel->progs.sample_on_tick :
				   s->skel->progs.sample_stack;
	if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
		return -errno;
	*run_time_ns = info.run_time_ns;
	*run_count = info.run_cnt;
	return 0;
}

const struct counter_choice *sampler__counting(const struct sampler *s)
{
	return s->counting ? &s->counters : NULL;
}

struct task_counts_visit {
	void (*fn)(void *ctx, uint32_t tid, const struct task_counts *tc);
	void *ctx;
};

static int visit_task_counts(void *ctx, const char *recs, size_t size)
{
	const struct task_counts_visit *v = ctx;
	if (size % sizeof(struct task_counts_record))
		return -EIO; /* records are written whole */
	for (size_t off = 0; off < size; off += sizeof(struct task_counts_record)) {
		struct task_counts_record rec;
		memcpy(&rec, recs + off, sizeof(rec));
		v->fn(v->ctx, rec.tid, &rec.counts);
	}
	return 0;
}

int sampler__foreach_task_counts(struct sampler *s,
				 void (*fn)(void *ctx, uint32_t tid, const struct task_counts *tc),
				 void *ctx)
{
	struct task_counts_visit visit = { .fn = fn, .ctx = ctx };
	/* Whole records only: the buffer holds a multiple of them. */
	char buf[64 * sizeof(struct task_counts_record)];
	return run_task_iterator(s->skel->links.dump_task_counts, buf, sizeof(buf),
				 visit_task_counts, &visit);
}

/* Most records one read keeps (40 bytes each): far more threads than a
 * host runs. */
#define MAX_UNSAMPLED_RECORDS (1u << 20)

struct unsampled_buffer {
	struct unsampled_record *recs; /* owned */
	size_t n, cap;
};

static int collect_unsampled(void *ctx, const char *recs, size_t size)
{
	struct unsampled_buffer *b = ctx;
	if (size % sizeof(struct unsampled_record))
		return -EIO; /* records are written whole */
	size_t more = size / sizeof(struct unsampled_record);
	if (b->n + more > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->n + more)
			cap *= 2;
		if (cap > MAX_UNSAMPLED_RECORDS)
			return -E2BIG;
		void *grown = realloc(b->recs, cap * sizeof(*b->recs));
		if (!grown)
			return -ENOMEM;
		b->recs = grown;
		b->cap = cap;
	}
	memcpy(b->recs + b->n, recs, size);
	b->n += more;
	return 0;
}

int sampler__read_unsampled(struct sampler *s, struct unsampled_record **recs, size_t *n)
{
	*recs = NULL;
	*n = 0;
	if (!s->counting)
		return -ENOENT;
	struct unsampled_buffer b = { 0 };
	/* Whole records only: the buffer holds a multiple of them. */
	char buf[128 * sizeof(struct unsampled_record)];
	int err = run_task_iterator(s->skel->links.flush_unsampled, buf, sizeof(buf),
				    collect_unsampled, &b);
	/* -E2BIG: what was kept is handed over. */
	if (err && err != -E2BIG) {
		free(b.recs);
		return err;
	}
	*recs = b.recs;
	*n = b.n;
	return err;
}

int sampler__poll(struct sampler *s, int timeout_ms)
{
	s->stop_value = 0;
	/* BPF wakes us only for news; poll then drain whatever else is there. */
	int n = ring_buffer__poll(s->rb, timeout_ms);
	if (n >= 0 && !s->stop_value) {
		int m = ring_buffer__consume(s->rb);
		n = m < 0 ? m : n + m;
	}
	if (s->stop_value)
		return s->stop_value;
	return n;
}

int sampler__drain(struct sampler *s)
{
	s->stop_value = 0;
	int n = ring_buffer__consume(s->rb);
	if (s->stop_value)
		return s->stop_value;
	return n;
}

int sampler__drops(struct sampler *s, uint64_t out[DROP_REASON_COUNT])
{
	int fd = bpf_map__fd(s->skel->maps.drops);
	uint64_t *percpu = calloc((size_t)s->ncpus, sizeof(uint64_t));
	if (!percpu)
		return -ENOMEM;
	for (uint32_t r = 0; r < DROP_REASON_COUNT; r++) {
		out[r] = 0;
		if (bpf_map_lookup_elem(fd, &r, percpu))
			continue;
		for (int c = 0; c < s->ncpus; c++)
			out[r] += percpu[c];
	}
	free(percpu);
	return 0;
}

unsigned sampler__tick_hz(struct sampler *s)
{
	if (s->event != SAMPLE_EVENT_TICK)
		return 0;
	struct tick_clock *clocks = calloc((size_t)s->ncpus, sizeof(*clocks));
	uint32_t zero = 0;
	uint64_t tick_ns = 0;
	if (clocks && !bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.tick_clocks), &zero, clocks))
		for (int c = 0; c < s->ncpus; c++)
			if (clocks[c].tick_ns && (!tick_ns || clocks[c].tick_ns < tick_ns))
				tick_ns = clocks[c].tick_ns;
	free(clocks);
	return tick_ns ? (unsigned)((1000000000ull + tick_ns / 2) / tick_ns) : 0;
}

const char *sampler__event_name(const struct sampler *s)
{
	switch (s->event) {
	case SAMPLE_EVENT_CYCLES: return "cycles";
	case SAMPLE_EVENT_INSTRUCTIONS: return "instructions";
	case SAMPLE_EVENT_TICK: return "tick";
	default: return "cpu-clock";
	}
}

const char *sampler__event_reason(const struct sampler *s)
{
	return s->reason;
}

enum sample_event sampler__event(const struct sampler *s)
{
	return s->event;
}

int sampler__cpu_count(const struct sampler *s)
{
	return s->nattached;
}

/* Every drop reason's metric label and its words for a summary: the one table
 * (indexed by enum drop_reason). */
static const struct {
	const char *label;  /* dynoprof_agent_samples_dropped_total{reason=...} */
	const char *text;   /* what record's summary says */
} drop_reasons[] = {
	[DROP_RINGBUF_FULL] = { "ringbuf_full", "ring buffer full (sample lost)" },
	[DROP_KSTACK_ERROR] = { "kernel_stack", "kernel stack unreadable (sample kept)" },
	[DROP_USTACK_ERROR] = { "user_stack", "user stack unreadable (sample kept)" },
	[DROP_EVENT_RINGBUF_FULL] = { "event_lost", "exec/exit notification lost" },
	[DROP_PY_READ_ERROR] = { "python_read",
		"Python frame unreadable (sample kept, walk cut short)" },
	[DROP_PY_TRUNCATED] = { "python_truncated",
		"Python stack deeper than the walk reaches (outermost cut, marked [truncated])" },
	[DROP_TAG_RACE] = { "tag_race", "thread was writing its tags (sample kept untagged)" },
	[DROP_TAG_READ_ERROR] = { "tag_read",
		"thread tag record unreadable (sample kept untagged)" },
	[DROP_COUNTER_BACKWARDS] = { "counter_backwards",
		"counter read behind its checkpoint (delta taken as 0)" },
	[DROP_FORK_UNTRACKED] = { "fork_untracked",
		"child of a target not tracked (targets map full: its samples lost)" },
	[DROP_PY_TORN] = { "python_torn",
		"Python frame chain caught mid-update (outermost cut, marked [truncated])" },
	[DROP_UNWIND_NO_CFI] = { "unwind_no_cfi",
		"native unwind met code without CFI (stack ends with [unwind: no CFI])" },
	[DROP_UNWIND_READ] = { "unwind_read",
		"native unwind could not read the stack (ends with [unwind: stack unreadable])" },
	[DROP_UNWIND_BAD_FRAME] = { "unwind_bad_frame",
		"native unwind found an impossible frame (ends with [unwind: bad frame])" },
	[DROP_UNWIND_TRUNCATED] = { "unwind_truncated",
		"native stack deeper than the frame cap (outermost cut, marked [truncated])" },
	[DROP_UNWIND_PENDING] = { "unwind_pending",
		"process's unwind tables not built yet (leaf kept, then [unwind: tables pending])" },
};
_Static_assert(sizeof(drop_reasons) / sizeof(drop_reasons[0]) == DROP_REASON_COUNT,
	       "a label and a text for every drop reason");

const char *sampler__drop_reason_name(int reason)
{
	return reason >= 0 && reason < DROP_REASON_COUNT && drop_reasons[reason].text ?
	       drop_reasons[reason].text : "unknown";
}

const char *sampler__drop_reason_label(int reason)
{
	return reason >= 0 && reason < DROP_REASON_COUNT && drop_reasons[reason].label ?
	       drop_reasons[reason].label : "unknown";
}

void sampler__free(struct sampler *s)
{
	if (!s)
		return;
	ring_buffer__free(s->rb);
	for (int i = 0; s->links && i < s->ncpus; i++)
		bpf_link__destroy(s->links[i]);
	for (int i = 0; s->perf_fds && i < s->ncpus; i++)
		if (s->perf_fds[i] >= 0)
			close(s->perf_fds[i]);
	for (int i = 0; s->counter_fds && i < s->ncpus * COUNTER_SLOTS; i++)
		if (s->counter_fds[i] >= 0)
			close(s->counter_fds[i]);
	free(s->counter_fds);
	if (s->stats_fd >= 0)
		close(s->stats_fd);
	sample_bpf__destroy(s->skel);
	free(s->links);
	free(s->perf_fds);
	free(s);
}
