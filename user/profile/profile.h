/* Layer profile: the profile data model that every capture produces and every
 * format reads. A leaf: it knows no BPF, symbolizer, Python or tags.
 * (Layers and their order: scripts/check-layers.sh.) */
/* profile.h - the in-memory profile every capture produces and every format reads.
 *
 * A profile is a set of samples. Each sample is a stack of interned frames (root
 * first, leaf last), the process/thread it came from, string labels (tags), and
 * one integer per value type ("samples/count", "cpu/nanoseconds", ...). Samples
 * with identical stack, pid, tid, comm and labels are merged (values summed), so
 * the profile's size is bounded by distinct stacks, not by sample count.
 *
 * Strings are interned in a table: id 0 is always "" (meaning "none").
 * Not thread-safe. All functions returning int return 0 or -errno.
 */
#ifndef DYNOPROF_PROFILE_H
#define DYNOPROF_PROFILE_H

#include <stddef.h>
#include <stdint.h>

/* Where a frame comes from; outputs colour and suffix by it. */
enum frame_kind {
	FRAME_NATIVE = 0,  /* user-space machine code (executables, shared libs) */
	FRAME_KERNEL = 1,  /* kernel or kernel module */
	FRAME_PYTHON = 2,  /* CPython interpreter frame */
	FRAME_SPECIAL = 3, /* synthetic: [unknown], [truncated], [comm], tag frames */
};

/* An interned frame. Identity is (kind, name, module, file, line); address and
 * mapping are those of the first occurrence and serve pprof Locations only. */
struct profile_frame {
	uint32_t name;     /* string id: function or display name (never 0) */
	uint32_t module;   /* string id: binary path, "[kernel.kallsyms]", kernel module; 0 none */
	uint32_t file;     /* string id: source file; 0 unknown */
	uint32_t line;     /* source line; 0 unknown */
	uint32_t mapping;  /* index into the mapping table + 1; 0 none */
	uint8_t kind;      /* enum frame_kind */
	uint8_t pad[3];    /* explicit padding, zero */
	uint64_t address;  /* a representative address as the process saw it, 0 unknown */
};

/* A mapped binary, for pprof Mapping records. */
struct profile_mapping {
	uint64_t start;    /* first mapped address (as seen in the process) */
	uint64_t limit;    /* one past the last mapped address */
	uint64_t offset;   /* file offset of start */
	uint32_t file;     /* string id: path */
	uint32_t build_id; /* string id: hex build-id; 0 unknown */
};

/* One key=value label on a sample (tags: endpoint, commit, ...). */
struct profile_label {
	uint32_t key;   /* string id */
	uint32_t value; /* string id */
};

/* Maximum number of value types per profile. */
#define PROFILE_MAX_VALUES 6

/* A merged sample. */
struct profile_sample {
	uint32_t *frames;               /* frame ids, root first, leaf last */
	uint32_t nframes;               /* number of frames */
	uint32_t pid;                   /* process id (tgid); 0 unknown */
	uint32_t tid;                   /* thread id; 0 unknown */
	uint32_t comm;                  /* string id: thread command name */
	struct profile_label *labels;   /* sorted by key id, unique keys */
	uint32_t nlabels;               /* number of labels */
	uint64_t values[PROFILE_MAX_VALUES]; /* per value type, summed over merges */
};

/* Describes a frame to intern; strings may be NULL or "" for none. */
struct frame_desc {
	enum frame_kind kind;
	const char *name;    /* required, non-empty */
	const char *module;
	const char *file;
	uint32_t line;
	uint32_t mapping;    /* as profile_frame.mapping */
	uint64_t address;
};

/* Describes a sample to add. */
struct sample_desc {
	const uint32_t *frames;   /* frame ids, root first */
	uint32_t nframes;
	uint32_t pid;
	uint32_t tid;
	const char *comm;         /* may be NULL */
	const char *const *label_keys;   /* nlabels keys, may be NULL when nlabels == 0 */
	const char *const *label_values; /* nlabels values */
	uint32_t nlabels;
	const uint64_t *values;   /* profile__value_count() values */
};

struct profile;

/* Returns a new empty profile with no value types, or NULL with errno set. */
struct profile *profile__new(void);
/* A number no other profile of this process had or will have (never 0):
 * caches of frame ids tell the profile they are valid for by it, where its
 * address could be a freed profile's. Profiles only grow, so an id stays valid
 * for the profile's life. */
uint64_t profile__serial(const struct profile *p);
/* Accepts NULL. */
void profile__free(struct profile *p);

/* Appends a value type (e.g. "samples","count" or "cpu","nanoseconds").
 * Must be called before the first sample. Returns the index or -errno
 * (-E2BIG past PROFILE_MAX_VALUES, -EBUSY once samples exist). */
int profile__add_value_type(struct profile *p, const char *type, const char *unit);
size_t profile__value_count(const struct profile *p);
/* Returns the type/unit strings of value index i. */
const char *profile__value_type(const struct profile *p, size_t i);
const char *profile__value_unit(const struct profile *p, size_t i);
/* Returns the index of value type `type`, or -1. */
int profile__find_value(const struct profile *p, const char *type);

/* Interns s (NULL means "") and stores its id in *id. */
int profile__intern(struct profile *p, const char *s, uint32_t *id);
/* Returns the string for id ("" for 0 or out of range). */
const char *profile__str(const struct profile *p, uint32_t id);

/* Interns a frame and stores its id in *id. -EINVAL when name is empty. */
int profile__add_frame(struct profile *p, const struct frame_desc *d, uint32_t *id);
size_t profile__frame_count(const struct profile *p);
const struct profile_frame *profile__frame(const struct profile *p, uint32_t id);

/* Adds (or dedups) a mapping; *index_plus_one gets the value for frame_desc.mapping. */
int profile__add_mapping(struct profile *p, uint64_t start, uint64_t limit, uint64_t offset,
			 const char *file, const char *build_id, uint32_t *index_plus_one);
size_t profile__mapping_count(const struct profile *p);
const struct profile_mapping *profile__mapping(const struct profile *p, size_t index);

/* Adds a sample, merging it into an identical existing one. */
int profile__add_sample(struct profile *p, const struct sample_desc *s);
size_t profile__sample_count(const struct profile *p);
const struct profile_sample *profile__sample(const struct profile *p, size_t i);
/* Writable values of sample i (NULL past the end), for rescaling them: a
 * sample's identity (stack, pid, tid, comm, labels) stays as it is. */
uint64_t *profile__sample_values(struct profile *p, size_t i);
/* Sum of value index v over all samples (saturating at UINT64_MAX). */
uint64_t profile__total(const struct profile *p, size_t v);
/* Values profile__add_sample clamped so that a value's sum over all samples
 * stays at most UINT64_MAX (so no sum over any subset of them wraps): nonzero
 * means the input's counts did not fit 64 bits and totals are saturated.
 * Rescaling through profile__sample_values must not raise the sums. */
uint64_t profile__saturated(const struct profile *p);

/* Capture metadata, carried into formats that have a place for it. */
void profile__set_time(struct profile *p, int64_t start_unix_ns, int64_t duration_ns);
int64_t profile__start_ns(const struct profile *p);
int64_t profile__duration_ns(const struct profile *p);
/* Sampling period (pprof period_type/period), e.g. "cpu","nanoseconds",10101010. */
int profile__set_period(struct profile *p, const char *type, const char *unit, int64_t period);
const char *profile__period_type(const struct profile *p);
const char *profile__period_unit(const struct profile *p);
int64_t profile__period(const struct profile *p);
/* Free-form comments (e.g. "dropped 3 samples: stack map full"). */
int profile__add_comment(struct profile *p, const char *comment);
size_t profile__comment_count(const struct profile *p);
const char *profile__comment(const struct profile *p, size_t i);

/* Returns the value of label `key` on sample s, or NULL. */
const char *profile__sample_label(const struct profile *p, const struct profile_sample *s,
				  const char *key);

#endif
