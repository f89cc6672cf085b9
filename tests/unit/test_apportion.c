// SPDX-License-Identifier: MIT
/* Exact per-process CPU totals spread over samples: each process's samples
 * sum to its total exactly (no rounding drift, even with awkward ratios and
 * totals past 2^64 / weight), keep their shares, and processes without a
 * total or without weight stay as they were, except that a process with
 * only [unsampled] samples gets its total on them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "aggregate/apportion.h"
#include "aggregate/counts.h"
#include "profile/profile.h"

/* Adds a one-frame sample "name" of pid with the given cpu weight. */
static void add(struct profile *p, uint32_t pid, const char *name, const char *endpoint,
		uint64_t cpu)
{
	uint32_t frame;
	struct frame_desc d = { .kind = FRAME_NATIVE, .name = name };
	assert_int_equal(profile__add_frame(p, &d, &frame), 0);
	const char *keys[] = { "endpoint" }, *values[] = { endpoint };
	uint64_t v[2] = { 1, cpu };
	struct sample_desc s = { .frames = &frame, .nframes = 1, .pid = pid, .tid = pid,
				 .comm = "app", .label_keys = keys, .label_values = values,
				 .nlabels = endpoint ? 1 : 0, .values = v };
	assert_int_equal(profile__add_sample(p, &s), 0);
}

static struct profile *make(void)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	return p;
}

static uint64_t cpu_of(const struct profile *p, uint32_t pid, const char *endpoint)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		const char *e = profile__sample_label(p, s, "endpoint");
		if (s->pid == pid && (!endpoint || (e && !strcmp(e, endpoint))))
			sum += s->values[1];
	}
	return sum;
}

static void test_shares_kept_and_sum_exact(void **state)
{
	(void)state;
	struct profile *p = make();
	/* pid 10: /light 1 part, /heavy 2 parts (weights 10 ms each sample). */
	add(p, 10, "a", "/light", 10000000);
	add(p, 10, "b", "/heavy", 10000000);
	add(p, 10, "c", "/heavy", 10000000);
	/* pid 20 has no total: untouched. */
	add(p, 20, "a", "/light", 5000000);
	struct cpu_totals *t = cpu_totals__new();
	assert_non_null(t);
	assert_int_equal(cpu_totals__add(t, 10, 1000000000), 0);
	assert_int_equal(cpu_totals__add(t, 10, 1), 0); /* 1e9 + 1: not divisible by 3 */
	assert_int_equal(cpu_totals__get(t, 10), 1000000001ULL);
	assert_int_equal(cpu_totals__get(t, 99), 0);
	assert_int_equal(cpu_totals__apportion(t, p), 0);
	assert_int_equal(cpu_of(p, 10, NULL), 1000000001ULL);
	uint64_t light = cpu_of(p, 10, "/light"), heavy = cpu_of(p, 10, "/heavy");
	assert_true(light == 333333333ULL || light == 333333334ULL);
	assert_int_equal(light + heavy, 1000000001ULL);
	assert_int_equal(cpu_of(p, 20, NULL), 5000000);
	/* Sample counts are not touched. */
	assert_int_equal(profile__total(p, 0), 4);
	cpu_totals__free(t);
	profile__free(p);
}

static void test_no_drift_over_many_samples(void **state)
{
	(void)state;
	struct profile *p = make();
	char name[16];
	/* 997 distinct samples of uneven weight; a total that divides nothing. */
	uint64_t weight = 0;
	for (int i = 0; i < 997; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		add(p, 7, name, NULL, 1000 + (uint64_t)(i % 13) * 77);
		weight += 1000 + (uint64_t)(i % 13) * 77;
	}
	struct cpu_totals *t = cpu_totals__new();
	assert_non_null(t);
	/* Large enough that total * weight overflows 64 bits. */
	uint64_t total = 18000000000000000000ULL / 7;
	assert_int_equal(cpu_totals__add(t, 7, total), 0);
	assert_int_equal(cpu_totals__apportion(t, p), 0);
	assert_int_equal(cpu_of(p, 7, NULL), total);
	/* Each sample within one unit of its exact share. */
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		long double exact = (long double)total * (1000 + (long double)(i % 13) * 77) / weight;
		assert_true(s->values[1] + 1.0L >= exact && s->values[1] <= exact + 1.0L);
	}
	cpu_totals__free(t);
	profile__free(p);
}

static void test_zero_weight_and_bad_value(void **state)
{
	(void)state;
	struct profile *p = make();
	add(p, 5, "requests", "/a", 0); /* e.g. a request-count pseudo-sample */
	struct cpu_totals *t = cpu_totals__new();
	assert_non_null(t);
	assert_int_equal(cpu_totals__add(t, 5, 12345), 0);
	assert_int_equal(cpu_totals__apportion(t, p), 0);
	assert_int_equal(cpu_of(p, 5, NULL), 0); /* no share to keep */
	struct profile *no_cpu = profile__new(); /* no "cpu" value type */
	assert_non_null(no_cpu);
	assert_int_equal(profile__add_value_type(no_cpu, "samples", "count"), 0);
	assert_int_equal(cpu_totals__apportion(t, no_cpu), -EINVAL);
	profile__free(no_cpu);
	cpu_totals__clear(t);
	assert_int_equal(cpu_totals__get(t, 5), 0);
	assert_int_equal(cpu_totals__add(t, 5, 1), 0);
	assert_int_equal(cpu_totals__get(t, 5), 1);
	cpu_totals__free(t);
	cpu_totals__free(NULL);
	profile__free(p);
}

/* Adds an [unsampled] sample of pid (CPU no stack sample took), as the
 * aggregator does: one special frame, every value 0. */
static void add_unsampled(struct profile *p, uint32_t pid, const char *endpoint)
{
	uint32_t frame;
	struct frame_desc d = { .kind = FRAME_SPECIAL, .name = CPU_UNSAMPLED_FRAME };
	assert_int_equal(profile__add_frame(p, &d, &frame), 0);
	const char *keys[] = { "service" }, *values[] = { endpoint };
	uint64_t v[2] = { 0, 0 };
	struct sample_desc s = { .frames = &frame, .nframes = 1, .pid = pid, .tid = pid,
				 .comm = "app", .label_keys = keys, .label_values = values,
				 .nlabels = endpoint ? 1 : 0, .values = v };
	assert_int_equal(profile__add_sample(p, &s), 0);
}

static uint64_t unsampled_cpu(const struct profile *p, uint32_t pid)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		if (s->pid == pid && cpu_totals__is_unsampled(p, s))
			sum += s->values[1];
	}
	return sum;
}

static void test_unsampled_process_gets_its_total(void **state)
{
	(void)state;
	struct profile *p = make();
	/* pid 7: never sampled; its CPU came from exit and flush records, under
	 * two label sets (tags changed): split evenly, summing exactly. */
	add_unsampled(p, 7, "a");
	add_unsampled(p, 7, "b");
	add_unsampled(p, 7, "b"); /* merges with the previous one */
	/* pid 8: sampled, and with an [unsampled] sample added before its first
	 * sample: the samples carry everything, the [unsampled] one stays 0. */
	add_unsampled(p, 8, NULL);
	add(p, 8, "main", "/x", 10000000);
	add(p, 8, "work", "/x", 30000000);
	/* pid 9: only a request-count pseudo-sample (weight 0, not [unsampled]):
	 * it gets nothing, as before. */
	add(p, 9, "[requests]", "/x", 0);
	struct cpu_totals *t = cpu_totals__new();
	assert_non_null(t);
	assert_int_equal(cpu_totals__add(t, 7, 1000001), 0);
	assert_int_equal(cpu_totals__add_sample(t, 8, 50), 0);
	assert_int_equal(cpu_totals__add_sample(t, 8, 40), 0);
	assert_int_equal(cpu_totals__add(t, 8, 10), 0);
	assert_int_equal(cpu_totals__add(t, 9, 777), 0);
	assert_int_equal(cpu_totals__samples(t, 7), 0);
	assert_int_equal(cpu_totals__samples(t, 8), 2);
	assert_int_equal(cpu_totals__get(t, 8), 100);
	assert_int_equal(cpu_totals__apportion(t, p), 0);
	assert_int_equal(cpu_of(p, 7, NULL), 1000001);
	assert_int_equal(unsampled_cpu(p, 7), 1000001);
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		if (s->pid == 7) /* 500000 and 500001: even halves */
			assert_true(s->values[1] == 500000 || s->values[1] == 500001);
		assert_int_equal(s->values[0], !cpu_totals__is_unsampled(p, s)); /* no sample count */
	}
	assert_int_equal(cpu_of(p, 8, NULL), 100);
	assert_int_equal(unsampled_cpu(p, 8), 0);
	assert_int_equal(cpu_of(p, 8, "/x"), 100);
	assert_int_equal(cpu_of(p, 9, NULL), 0);
	cpu_totals__free(t);
	profile__free(p);
}

static void test_seal_keeps_a_reused_pid_apart(void **state)
{
	(void)state;
	struct profile *p = make();
	struct cpu_totals *t = cpu_totals__new();
	assert_non_null(t);
	/* Process A (pid 5) exits: two samples weighing 30 ms, 10 ms of CPU. */
	add(p, 5, "a_main", "/a", 20000000);
	add(p, 5, "a_work", "/a", 10000000);
	assert_int_equal(cpu_totals__add_sample(t, 5, 10000000), 0);
	assert_int_equal(cpu_totals__seal(t, p, 5), 0);
	assert_int_equal(cpu_totals__get(t, 5), 0);
	/* Process B gets pid 5 in the same window: one sample, 40 ms. */
	add(p, 5, "b_main", "/b", 10000000);
	assert_int_equal(cpu_totals__add_sample(t, 5, 40000000), 0);
	assert_int_equal(cpu_totals__apportion(t, p), 0);
	assert_int_equal(cpu_of(p, 5, "/a"), 10000000);
	assert_int_equal(cpu_of(p, 5, "/b"), 40000000);
	/* Without the seal, one 50 ms total over 40 ms of weight would have
	 * given A 37.5 ms. A clear forgets the seals. */
	cpu_totals__clear(t);
	assert_int_equal(cpu_totals__add(t, 5, 8), 0);
	assert_int_equal(cpu_totals__apportion(t, p), 0);
	assert_int_equal(cpu_of(p, 5, NULL), 8);
	cpu_totals__free(t);
	profile__free(p);
}

static void test_counts_table_totals(void **state)
{
	(void)state;
	struct profile *p = make();
	add(p, 100, "main", "/x", 4000000);
	add(p, 100, "other", "/y", 4000000);
	struct counts_table *c = counts_table__new();
	assert_non_null(c);
	/* Two threads of process 100: 3 ms + 5 ms. */
	struct task_counts tc = { .pid = 100, .cpu_ns = 3000000 };
	assert_int_equal(counts_table__add(c, 100, &tc), 0);
	tc.cpu_ns = 5000000;
	assert_int_equal(counts_table__add(c, 101, &tc), 0);
	assert_int_equal(counts_table__apportion(c, p), 0);
	assert_int_equal(cpu_of(p, 100, "/x"), 4000000);
	assert_int_equal(cpu_of(p, 100, "/y"), 4000000);
	tc.cpu_ns = 7000000; /* thread 101 grew: the total is now 10 ms */
	assert_int_equal(counts_table__add(c, 101, &tc), 0);
	assert_int_equal(counts_table__apportion(c, p), 0);
	assert_int_equal(cpu_of(p, 100, NULL), 10000000);
	assert_int_equal(cpu_of(p, 100, "/x"), 5000000);
	counts_table__free(c);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shares_kept_and_sum_exact),
		cmocka_unit_test(test_no_drift_over_many_samples),
		cmocka_unit_test(test_zero_weight_and_bad_value),
		cmocka_unit_test(test_unsampled_process_gets_its_total),
		cmocka_unit_test(test_seal_keeps_a_reused_pid_apart),
		cmocka_unit_test(test_counts_table_totals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
