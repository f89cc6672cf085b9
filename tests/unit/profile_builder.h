/* The unit tests' way to build a profile by hand: frames, samples with a
 * count and a CPU value, and an empty profile with those two value types.
 * Used by the tests of the formats (test_flame_json, test_top, test_folded,
 * test_speedscope); include after <cmocka.h>. */
#ifndef DYNOPROF_TESTS_PROFILE_BUILDER_H
#define DYNOPROF_TESTS_PROFILE_BUILDER_H

#include <stdint.h>

#include "profile/profile.h"

/* Adds (or finds) a frame and returns its id. */
static inline uint32_t frame(struct profile *p, enum frame_kind kind, const char *name,
			     const char *module, const char *file, uint32_t line)
{
	struct frame_desc d = {
		.kind = kind, .name = name, .module = module, .file = file, .line = line,
	};
	uint32_t id;
	assert_int_equal(profile__add_frame(p, &d, &id), 0);
	return id;
}

/* Adds a sample of comm, pid, tid with values { count, cpu }. */
static inline void sample_in(struct profile *p, const char *comm, uint32_t pid, uint32_t tid,
			     const uint32_t *frames, uint32_t nframes, uint64_t count,
			     uint64_t cpu)
{
	uint64_t values[2] = { count, cpu };
	struct sample_desc s = {
		.frames = frames, .nframes = nframes, .pid = pid, .tid = tid,
		.comm = comm, .values = values,
	};
	assert_int_equal(profile__add_sample(p, &s), 0);
}

/* A new profile with the value types samples/count (0) and cpu/nanoseconds (1). */
static inline struct profile *new_profile(void)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	return p;
}

#endif
