// SPDX-License-Identifier: MIT
/* The web page's call tree JSON (formats/flame_json.h): the SVG's tree (root,
 * comm, stack root first, children by name), frame fields, totals per value
 * type in pre-order, pruning past max_nodes, annotations, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "formats/flame_json.h"
#include "profile/profile.h"

#include "profile_builder.h"
#include "util/strbuf.h"

/* A sample of "app", pid and tid 1. */
static void sample(struct profile *p, const uint32_t *frames, uint32_t nframes,
		   uint64_t count, uint64_t cpu)
{
	sample_in(p, "app", 1, 1, frames, nframes, count, cpu);
}

/* app: main -> b (kernel) 2; main -> a (python) -> c 3; main 1; and a
 * zero sample that must not appear. */
static struct profile *small_profile(void)
{
	struct profile *p = new_profile();
	uint32_t main_ = frame(p, FRAME_NATIVE, "main", "/bin/app", NULL, 0);
	uint32_t a = frame(p, FRAME_PYTHON, "a", NULL, "m.py", 3);
	uint32_t b = frame(p, FRAME_KERNEL, "b", "[kernel.kallsyms]", NULL, 0);
	uint32_t c = frame(p, FRAME_NATIVE, "c", NULL, NULL, 0);
	uint32_t z = frame(p, FRAME_NATIVE, "zero", NULL, NULL, 0);
	sample(p, (uint32_t[]){ main_, b }, 2, 2, 20);
	sample(p, (uint32_t[]){ main_, a, c }, 3, 3, 30);
	sample(p, (uint32_t[]){ main_ }, 1, 1, 10);
	sample(p, (uint32_t[]){ main_, z }, 2, 0, 0);
	return p;
}

static char *write_tree(const struct profile *p, const struct flame_json_opts *o)
{
	struct strbuf sb = STRBUF_INIT;
	assert_int_equal(flame_json__write(p, &sb, o), 0);
	char *s = strdup(strbuf__str(&sb));
	strbuf__release(&sb);
	return s;
}

static void test_tree(void **state)
{
	(void)state;
	struct profile *p = small_profile();
	char *s = write_tree(p, NULL);
	assert_non_null(strstr(s, "{\"value_types\": [[\"samples\", \"count\"], [\"cpu\", "
				  "\"nanoseconds\"]], \"totals\": [6, 60], \"stride\": 4, \"frames\": ["));
	/* Frames in the order the walk meets them; children by name (a < b). */
	assert_non_null(strstr(s, "\n  {\"n\": \"all\", \"k\": \"special\"},"
				  "\n  {\"n\": \"app\", \"k\": \"special\"},"
				  "\n  {\"n\": \"main\", \"k\": \"native\", \"fn\": \"main\", "
				  "\"m\": \"/bin/app\"},"
				  "\n  {\"n\": \"a (m.py:3)\", \"k\": \"python\", \"fn\": \"a\", "
				  "\"f\": \"m.py\", \"l\": 3},"
				  "\n  {\"n\": \"c\", \"k\": \"native\", \"fn\": \"c\"},"
				  "\n  {\"n\": \"b\", \"k\": \"kernel\", \"fn\": \"b\", "
				  "\"m\": \"[kernel.kallsyms]\"}],"));
	/* Pre-order: frame, depth, samples, cpu. */
	assert_non_null(strstr(s, "\"nodes\": [0,0,6,60,\n1,1,6,60,\n2,2,6,60,\n3,3,3,30,\n"
				  "4,4,3,30,\n5,3,2,20],"));
	assert_non_null(strstr(s, "\"nodes_total\": 6, \"nodes_omitted\": 0, \"omitted\": [0, 0]}"));
	assert_null(strstr(s, "zero"));
	free(s);
	profile__free(p);
}

/* Past max_nodes the heaviest nodes stay, a tree from the root. */
static void test_pruning(void **state)
{
	(void)state;
	struct profile *p = small_profile();
	struct flame_json_opts o = { .value_index = 1, .max_nodes = 4 };
	char *s = write_tree(p, &o);
	/* all 60, app 60, main 60, then a 30 (c 30 ties, b 20 lighter): 4. */
	assert_non_null(strstr(s, "\"nodes\": [0,0,6,60,\n1,1,6,60,\n2,2,6,60,\n3,3,3,30],"));
	assert_non_null(strstr(s, "\"nodes_total\": 6, \"nodes_omitted\": 2, \"omitted\": [5, 50]}"));
	free(s);
	o.max_nodes = 1;
	s = write_tree(p, &o);
	assert_non_null(strstr(s, "\"nodes\": [0,0,6,60],"));
	assert_non_null(strstr(s, "\"nodes_omitted\": 1, \"omitted\": [6, 60]}"));
	free(s);
	profile__free(p);
}

static void annotate(void *ctx, const struct profile *p, const struct profile_frame *f,
		     struct strbuf *sb)
{
	(*(int *)ctx)++;
	if (!strcmp(profile__str(p, f->name), "c"))
		strbuf__puts(sb, ", \"dv\": \"regression\"");
}

static void test_annotate(void **state)
{
	(void)state;
	struct profile *p = small_profile();
	int calls = 0;
	struct flame_json_opts o = { .annotate = annotate, .annotate_ctx = &calls };
	char *s = write_tree(p, &o);
	assert_non_null(strstr(s, "{\"n\": \"c\", \"k\": \"native\", \"fn\": \"c\", "
				  "\"dv\": \"regression\"}"));
	assert_int_equal(calls, 4); /* main, a, c, b: not "all" nor the comm */
	free(s);
	profile__free(p);
}

static void test_empty_and_errors(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	char *s = write_tree(p, NULL);
	assert_non_null(strstr(s, "\"totals\": [0], \"stride\": 3, \"frames\": [\n  {\"n\": "
				  "\"all\", \"k\": \"special\"}],\n\"nodes\": [0,0,0],"));
	free(s);
	struct strbuf sb = STRBUF_INIT;
	struct flame_json_opts o = { .value_index = 1 };
	assert_int_equal(flame_json__write(p, &sb, &o), -EINVAL);
	assert_int_equal(flame_json__write(NULL, &sb, NULL), -EINVAL);
	assert_int_equal(flame_json__write(p, NULL, NULL), -EINVAL);
	strbuf__release(&sb);
	profile__free(p);
}

/* Names are JSON-escaped. */
static void test_escaping(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	uint32_t f = frame(p, FRAME_PYTHON, "q\"uote\\\n", NULL, "a\"b.py", 1);
	uint64_t v = 1;
	struct sample_desc sd = { .frames = &f, .nframes = 1, .comm = "c\x01m", .values = &v };
	assert_int_equal(profile__add_sample(p, &sd), 0);
	char *s = write_tree(p, NULL);
	assert_non_null(strstr(s, "\"fn\": \"q\\\"uote\\\\\\n\""));
	assert_non_null(strstr(s, "\"f\": \"a\\\"b.py\""));
	assert_non_null(strstr(s, "{\"n\": \"c\\u0001m\", \"k\": \"special\"}"));
	free(s);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_pruning),
		cmocka_unit_test(test_annotate),
		cmocka_unit_test(test_empty_and_errors),
		cmocka_unit_test(test_escaping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
