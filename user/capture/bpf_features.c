// SPDX-License-Identifier: MIT
#include "capture/bpf_features.h"

#include <errno.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

#include "util/errmsg.h"

#define NO_REMEDY ""
#define REMEDY_NO_PYTHON "leave out the Python walk (record --no-python, agent python = false) " \
	"or upgrade the kernel"
#define REMEDY_NO_COUNTS "leave out exact counting (record --no-counts) or upgrade the kernel"
#define REMEDY_NO_TICK "use -e cpu-clock"

/* Helpers are probed in perf_event programs: the tracing programs (tp_btf,
 * iterators) cannot be probed by libbpf 1.1 without a target, and both get
 * the same tracing helpers (bpf_tracing_func_proto). */
static const struct bpf_feature ALWAYS[] = {
	{ "BPF ring buffers", "5.8", BPF_FEATURE_MAP_TYPE, BPF_MAP_TYPE_RINGBUF, NULL, NO_REMEDY },
	{ "BPF programs on the sched_process_exec tracepoint (tp_btf)", "5.5",
	  BPF_FEATURE_BTF_TYPEDEF, 0, "btf_trace_sched_process_exec", NO_REMEDY },
	{ "BPF programs on the sched_process_exit tracepoint (tp_btf)", "5.5",
	  BPF_FEATURE_BTF_TYPEDEF, 0, "btf_trace_sched_process_exit", NO_REMEDY },
	{ "the bpf_probe_read_user helper", "5.5", BPF_FEATURE_HELPER,
	  BPF_FUNC_probe_read_user, NULL, NO_REMEDY },
	{ "the bpf_get_current_task_btf helper", "5.11", BPF_FEATURE_HELPER,
	  BPF_FUNC_get_current_task_btf, NULL, NO_REMEDY },
};

static const struct bpf_feature PERF_EVENT[] = {
	{ "BPF programs on perf events", "4.9", BPF_FEATURE_PROG_TYPE, BPF_PROG_TYPE_PERF_EVENT,
	  NULL, NO_REMEDY },
};

static const struct bpf_feature TICK[] = {
	{ "BPF programs on the hrtimer_expire_entry tracepoint (tp_btf)", "5.5",
	  BPF_FEATURE_BTF_TYPEDEF, 0, "btf_trace_hrtimer_expire_entry", REMEDY_NO_TICK },
};

static const struct bpf_feature PYTHON_WALK[] = {
	{ "the bpf_loop helper", "5.17", BPF_FEATURE_HELPER, BPF_FUNC_loop, NULL,
	  REMEDY_NO_PYTHON },
};

static const struct bpf_feature COUNTING[] = {
	{ "task-local storage maps", "5.11", BPF_FEATURE_MAP_TYPE, BPF_MAP_TYPE_TASK_STORAGE,
	  NULL, REMEDY_NO_COUNTS },
	{ "BPF task iterators", "5.8", BPF_FEATURE_BTF_STRUCT, 0, "bpf_iter__task",
	  REMEDY_NO_COUNTS },
	{ "BPF programs on the sched_process_free tracepoint (tp_btf)", "5.5",
	  BPF_FEATURE_BTF_TYPEDEF, 0, "btf_trace_sched_process_free", REMEDY_NO_COUNTS },
};

static const struct bpf_feature COUNTERS[] = {
	{ "perf event array maps", "4.3", BPF_FEATURE_MAP_TYPE, BPF_MAP_TYPE_PERF_EVENT_ARRAY,
	  NULL, REMEDY_NO_COUNTS },
	{ "the bpf_perf_event_read_value helper", "4.15", BPF_FEATURE_HELPER,
	  BPF_FUNC_perf_event_read_value, NULL, REMEDY_NO_COUNTS },
	{ "BPF programs on the sched_switch tracepoint (tp_btf)", "5.5",
	  BPF_FEATURE_BTF_TYPEDEF, 0, "btf_trace_sched_switch", REMEDY_NO_COUNTS },
};

static const struct bpf_feature FOLLOW_CHILDREN[] = {
	{ "BPF programs on the sched_process_fork tracepoint (tp_btf)", "5.5",
	  BPF_FEATURE_BTF_TYPEDEF, 0, "btf_trace_sched_process_fork", NO_REMEDY },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Probes list; returns 0 or -EOPNOTSUPP naming the first feature missing. */
static int check_list(const struct bpf_feature *list, size_t n, bpf_feature_probe_fn probe,
		      void *ctx, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++) {
		const struct bpf_feature *f = &list[i];
		if (probe(ctx, f) != 0)
			continue; /* present, or the probe failed: the load will tell */
		errmsg__set(err, errlen, "this kernel lacks %s (needs Linux >= %s)%s%s", f->what,
			    f->min_kernel, f->remedy[0] ? ": " : "", f->remedy);
		return -EOPNOTSUPP;
	}
	return 0;
}

int bpf_features__check_with(const struct bpf_feature_needs *needs, bpf_feature_probe_fn probe,
			     void *ctx, char *err, size_t errlen)
{
	int e = check_list(ALWAYS, COUNT(ALWAYS), probe, ctx, err, errlen);
	if (!e && needs->perf_event)
		e = check_list(PERF_EVENT, COUNT(PERF_EVENT), probe, ctx, err, errlen);
	if (!e && needs->tick)
		e = check_list(TICK, COUNT(TICK), probe, ctx, err, errlen);
	if (!e && needs->python_walk)
		e = check_list(PYTHON_WALK, COUNT(PYTHON_WALK), probe, ctx, err, errlen);
	if (!e && needs->counting)
		e = check_list(COUNTING, COUNT(COUNTING), probe, ctx, err, errlen);
	if (!e && needs->counters)
		e = check_list(COUNTERS, COUNT(COUNTERS), probe, ctx, err, errlen);
	if (!e && needs->follow_children)
		e = check_list(FOLLOW_CHILDREN, COUNT(FOLLOW_CHILDREN), probe, ctx, err, errlen);
	return e;
}

/* The real kernel; the vmlinux BTF is loaded on first use. */
struct kernel_probe {
	struct btf *btf;  /* owned; NULL until needed */
	int btf_err;      /* -errno once loading it failed */
};

static int probe_kernel(void *ctx, const struct bpf_feature *f)
{
	struct kernel_probe *k = ctx;
	switch (f->kind) {
	case BPF_FEATURE_PROG_TYPE:
		return libbpf_probe_bpf_prog_type((enum bpf_prog_type)f->id, NULL);
	case BPF_FEATURE_MAP_TYPE:
		return libbpf_probe_bpf_map_type((enum bpf_map_type)f->id, NULL);
	case BPF_FEATURE_HELPER:
		return libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT, (enum bpf_func_id)f->id,
					       NULL);
	case BPF_FEATURE_BTF_TYPEDEF:
	case BPF_FEATURE_BTF_STRUCT:
		if (!k->btf && !k->btf_err) {
			k->btf = btf__load_vmlinux_btf();
			if (!k->btf)
				k->btf_err = -errno;
		}
		if (!k->btf)
			return k->btf_err ? k->btf_err : -EINVAL;
		return btf__find_by_name_kind(k->btf, f->btf_name,
					      f->kind == BPF_FEATURE_BTF_TYPEDEF ? BTF_KIND_TYPEDEF :
					      BTF_KIND_STRUCT) >= 0;
	}
	return -EINVAL;
}

int bpf_features__check(const struct bpf_feature_needs *needs, char *err, size_t errlen)
{
	struct kernel_probe k = { 0 };
	int e = bpf_features__check_with(needs, probe_kernel, &k, err, errlen);
	btf__free(k.btf);
	return e;
}
