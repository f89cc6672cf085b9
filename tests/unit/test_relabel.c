// SPDX-License-Identifier: MIT
/* The whole-request re-labelling buffer (user/aggregate/relabel.h): held
 * samples come back with their request's endpoint, in arrival order, with
 * their frames, values, comm and other labels intact; an `endpoint` label is
 * replaced, not doubled; requests are told apart by pid and number; the
 * bound refuses (-ENOSPC) rather than grows; release of an unknown request
 * is a no-op; freeing with samples held leaks nothing (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aggregate/relabel.h"

/* What a release handed out. */
struct seen {
	int count;
	uint32_t tids[8];
	uint64_t values0[8];
	uint64_t exact[8];
	char endpoint[8][32];
	char other[8][32];       /* value of label "tenant", or "" */
	uint32_t nlabels[8];
	uint32_t frames0[8];
	char comm[8][16];
};

static int collect(void *ctx, const struct sample_desc *s, uint64_t exact_ns)
{
	struct seen *seen = ctx;
	int i = seen->count++;
	assert_true(i < 8);
	seen->tids[i] = s->tid;
	seen->values0[i] = s->values[0];
	seen->exact[i] = exact_ns;
	seen->nlabels[i] = s->nlabels;
	seen->frames0[i] = s->nframes ? s->frames[0] : 0;
	snprintf(seen->comm[i], sizeof(seen->comm[i]), "%s", s->comm ? s->comm : "");
	seen->endpoint[i][0] = seen->other[i][0] = '\0';
	int endpoints = 0;
	for (uint32_t k = 0; k < s->nlabels; k++) {
		if (strcmp(s->label_keys[k], "endpoint") == 0) {
			endpoints++;
			snprintf(seen->endpoint[i], 32, "%s", s->label_values[k]);
		} else if (strcmp(s->label_keys[k], "tenant") == 0) {
			snprintf(seen->other[i], 32, "%s", s->label_values[k]);
		}
	}
	assert_int_equal(endpoints, 1);
	return 0;
}

/* Records a sample without requiring an endpoint label. */
static int count_only(void *ctx, const struct sample_desc *s, uint64_t exact_ns)
{
	struct seen *seen = ctx;
	int i = seen->count++;
	seen->nlabels[i] = s->nlabels;
	seen->exact[i] = exact_ns;
	seen->other[i][0] = '\0';
	for (uint32_t k = 0; k < s->nlabels; k++) {
		assert_string_not_equal(s->label_keys[k], "endpoint");
		if (strcmp(s->label_keys[k], "tenant") == 0)
			snprintf(seen->other[i], 32, "%s", s->label_values[k]);
	}
	return 0;
}

static int fail_emit(void *ctx, const struct sample_desc *s, uint64_t exact_ns)
{
	(void)ctx, (void)s, (void)exact_ns;
	return -EIO;
}

/* Holds one sample of (pid, request) from thread tid with value v. */
static int hold(struct relabel_buffer *b, uint32_t pid, uint32_t tid, uint32_t request,
		uint64_t v, int with_endpoint)
{
	uint32_t frames[3] = { 100 + tid, 7, 9 };
	uint64_t values[2] = { v, 2 * v };
	const char *keys[2] = { "tenant", "endpoint" };
	const char *vals[2] = { "acme", "-stale-" };
	struct sample_desc s = {
		.frames = frames, .nframes = 3, .pid = pid, .tid = tid, .comm = "gunicorn",
		.label_keys = keys, .label_values = vals, .nlabels = with_endpoint ? 2 : 1,
		.values = values,
	};
	return relabel_buffer__hold(b, request, &s, 2, v * 10);
}

static void test_release_relabels_in_order(void **state)
{
	(void)state;
	struct relabel_buffer *b = relabel_buffer__new(16);
	assert_non_null(b);
	assert_int_equal(hold(b, 10, 11, 5, 1, 0), 0);
	assert_int_equal(hold(b, 10, 11, 6, 2, 0), 0);  /* the next request */
	assert_int_equal(hold(b, 10, 11, 5, 3, 0), 0);
	assert_int_equal(hold(b, 20, 21, 5, 4, 0), 0);  /* same number, other process */
	assert_int_equal(relabel_buffer__samples(b), 4);
	assert_int_equal(relabel_buffer__requests(b), 3);

	struct relabel_key keys[8];
	assert_int_equal(relabel_buffer__list(b, keys, 8), 3);
	assert_int_equal(keys[0].pid, 10);
	assert_int_equal(keys[0].request, 5);
	assert_int_equal(keys[1].pid, 10);
	assert_int_equal(keys[1].request, 6);
	assert_int_equal(keys[2].pid, 20);
	assert_int_equal(relabel_buffer__list(b, keys, 1), 1);

	struct seen seen = { 0 };
	assert_int_equal(relabel_buffer__release(b, (struct relabel_key){ 10, 5 }, "orders/<id>/",
						 collect, &seen), 2);
	assert_int_equal(seen.count, 2);
	assert_int_equal(seen.values0[0], 1);
	assert_int_equal(seen.values0[1], 3);
	assert_int_equal(seen.exact[1], 30);
	assert_string_equal(seen.endpoint[0], "orders/<id>/");
	assert_string_equal(seen.other[0], "acme");
	assert_int_equal(seen.nlabels[0], 2);
	assert_int_equal(seen.frames0[0], 111);
	assert_string_equal(seen.comm[0], "gunicorn");
	assert_int_equal(relabel_buffer__samples(b), 2);
	/* Gone once released. */
	assert_int_equal(relabel_buffer__release(b, (struct relabel_key){ 10, 5 }, "x",
						 collect, &seen), 0);
	assert_int_equal(seen.count, 2);
	relabel_buffer__free(b); /* two still held: freed (ASan checks) */
}

static void test_endpoint_label_is_replaced(void **state)
{
	(void)state;
	struct relabel_buffer *b = relabel_buffer__new(4);
	assert_int_equal(hold(b, 1, 1, 9, 5, 1), 0);
	struct seen seen = { 0 };
	assert_int_equal(relabel_buffer__release(b, (struct relabel_key){ 1, 9 }, "unresolved",
						 collect, &seen), 1);
	assert_string_equal(seen.endpoint[0], "unresolved");
	assert_int_equal(seen.nlabels[0], 2);
	relabel_buffer__free(b);
}

/* endpoint NULL (an abandoned request): the labels stay as they were. */
static void test_release_without_endpoint(void **state)
{
	(void)state;
	struct relabel_buffer *b = relabel_buffer__new(4);
	assert_int_equal(hold(b, 1, 1, 9, 5, 0), 0);
	struct seen seen = { 0 };
	assert_int_equal(relabel_buffer__release(b, (struct relabel_key){ 1, 9 }, NULL,
						 count_only, &seen), 1);
	assert_int_equal(seen.count, 1);
	assert_int_equal(seen.nlabels[0], 1);
	assert_string_equal(seen.other[0], "acme");
	relabel_buffer__free(b);
}

static void test_bound_and_errors(void **state)
{
	(void)state;
	assert_null(relabel_buffer__new(0));
	struct relabel_buffer *b = relabel_buffer__new(2);
	assert_int_equal(hold(b, 1, 1, 1, 1, 0), 0);
	assert_int_equal(hold(b, 1, 1, 2, 1, 0), 0);
	assert_int_equal(hold(b, 1, 1, 1, 1, 0), -ENOSPC);
	assert_int_equal(hold(b, 1, 1, 0, 1, 0), -EINVAL);
	assert_int_equal(relabel_buffer__samples(b), 2);
	/* An emitter's error is returned; the request is forgotten anyway. */
	assert_int_equal(relabel_buffer__release(b, (struct relabel_key){ 1, 1 }, "a", fail_emit,
						 NULL), -EIO);
	assert_int_equal(relabel_buffer__samples(b), 1);
	assert_int_equal(hold(b, 1, 1, 3, 1, 0), 0);
	relabel_buffer__free(b);
	relabel_buffer__free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_release_relabels_in_order),
		cmocka_unit_test(test_endpoint_label_is_replaced),
		cmocka_unit_test(test_release_without_endpoint),
		cmocka_unit_test(test_bound_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
