/* bpf_features.h - the kernel features the BPF programs of a mode need
 * (program and map types, helpers, BTF tracepoints and iterators), probed
 * before load: a kernel that lacks one is named in one line with the Linux
 * version that brought it, instead of a verifier error after every program
 * was tried. Only what the mode loads is probed (see sampler.c's autoload).
 */
#ifndef DYNOPROF_BPF_FEATURES_H
#define DYNOPROF_BPF_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

/* What a mode loads, as the sampler decides it. */
struct bpf_feature_needs {
	bool perf_event;   /* sample_stack on a perf event (every event but the tick) */
	bool tick;         /* sample_on_tick on the scheduler tick's hrtimer */
	bool python_walk;  /* the CPython frame walk (bpf_loop) */
	bool counting;     /* exact CPU time: task storage, task iterators, on_free */
	bool counters;     /* counting events read at every switch (on_switch) */
	bool follow_children; /* on_fork adds targets' children */
};

/* How a feature is probed. */
enum bpf_feature_kind {
	BPF_FEATURE_PROG_TYPE, /* libbpf_probe_bpf_prog_type(id) */
	BPF_FEATURE_MAP_TYPE,  /* libbpf_probe_bpf_map_type(id) */
	BPF_FEATURE_HELPER,    /* libbpf_probe_bpf_helper(perf_event programs, id) */
	BPF_FEATURE_BTF_TYPEDEF, /* a typedef in the kernel's BTF (btf_trace_X: the
				  * tracepoint X that tp_btf programs attach to) */
	BPF_FEATURE_BTF_STRUCT,  /* a struct in the kernel's BTF (bpf_iter__task:
				  * the task iterator) */
};

/* One feature a program needs. */
struct bpf_feature {
	const char *what;        /* "the bpf_loop helper": completes "this kernel lacks" */
	const char *min_kernel;  /* first Linux version with it, "5.17" */
	enum bpf_feature_kind kind; /* how it is probed */
	int id;                  /* program type, map type or helper id (by kind) */
	const char *btf_name;    /* the BTF type's name (BTF kinds) */
	const char *remedy;      /* what the user can do short of a new kernel ("" none) */
};

/* Probes one feature: 1 present, 0 absent, -errno when the probe itself failed
 * (the feature is then taken as present: the load will tell). */
typedef int (*bpf_feature_probe_fn)(void *ctx, const struct bpf_feature *f);

/* Probes what needs asks for with the real kernel. Returns 0, or -EOPNOTSUPP
 * with "this kernel lacks X (needs Linux >= N.M): remedy" in err. */
int bpf_features__check(const struct bpf_feature_needs *needs, char *err, size_t errlen);

/* Same with probe as the kernel (tests). */
int bpf_features__check_with(const struct bpf_feature_needs *needs, bpf_feature_probe_fn probe,
			     void *ctx, char *err, size_t errlen);

#endif
