// SPDX-License-Identifier: MIT
/* Unit tests for agent/tagset.c: the canonical, bounded "other tags" of a
 * history group, the store's tag filter text, and the per-window budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "agent/tagset.h"
#include "profile/profile.h"

static const char *set_of(const char *const *keys, const char *const *values, size_t n,
			  struct tagset_drops *d)
{
	static struct strbuf out = STRBUF_INIT;
	assert_int_equal(tagset__json(keys, values, n, &out, d), 0);
	return strbuf__str(&out);
}

/* Keys sorted bytewise, each once (the first value wins), group keys and
 * the diff time slot left out; the same labels in any order give one text. */
static void test_canonical(void **state)
{
	(void)state;
	const char *k1[] = { "service", "flag", "env", "endpoint", "commit", "window", "flag" };
	const char *v1[] = { "shop", "on", "prod", "/a", "c1", "17", "off" };
	const char *k2[] = { "env", "flag" };
	const char *v2[] = { "prod", "on" };
	struct tagset_drops d;
	assert_string_equal(set_of(k1, v1, 7, &d), "{\"env\":\"prod\",\"flag\":\"on\"}");
	assert_int_equal(d.pairs + d.bytes, 0);
	assert_string_equal(set_of(k2, v2, 2, NULL), "{\"env\":\"prod\",\"flag\":\"on\"}");
	/* Nothing but group keys, or nothing: the empty set. */
	assert_string_equal(set_of(k1, v1, 1, NULL), "{}");
	assert_string_equal(set_of(NULL, NULL, 0, NULL), "{}");
	/* Quotes, backslashes and non-ASCII are JSON-escaped, not cut. */
	const char *k3[] = { "a\"b", "z" };
	const char *v3[] = { "c\\d", "\xc3\xa9t\xc3\xa9" };
	assert_string_equal(set_of(k3, v3, 2, NULL),
			    "{\"a\\\"b\":\"c\\\\d\",\"z\":\"\xc3\xa9t\xc3\xa9\"}");
}

/* At most TAGSET_MAX_PAIRS pairs (the smallest keys) and TAGSET_MAX_BYTES of
 * text: the rest is dropped and counted by reason. */
static void test_bounds(void **state)
{
	(void)state;
	char names[20][8];
	const char *keys[20], *values[20];
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "k%02d", 19 - i);
		keys[i] = names[i];
		values[i] = "v";
	}
	struct tagset_drops d;
	const char *s = set_of(keys, values, 20, &d);
	assert_int_equal(d.pairs, 20 - TAGSET_MAX_PAIRS);
	assert_int_equal(d.bytes, 0);
	assert_true(!strncmp(s, "{\"k00\":\"v\",\"k01\":\"v\",", 20));
	assert_non_null(strstr(s, "\"k07\":\"v\"}"));
	assert_null(strstr(s, "k08"));

	/* A value longer than the set may hold is dropped; the next key still
	 * fits. */
	static char big[TAGSET_MAX_BYTES + 10];
	memset(big, 'x', sizeof(big) - 1);
	const char *kb[] = { "a", "b", "c" };
	const char *vb[] = { "1", big, "3" };
	s = set_of(kb, vb, 3, &d);
	assert_string_equal(s, "{\"a\":\"1\",\"c\":\"3\"}");
	assert_int_equal(d.bytes, 1);
	assert_int_equal(d.pairs, 0);
	assert_true(strlen(s) <= TAGSET_MAX_BYTES);
}

/* The filter text: other tags only, "-" as null; none: "". */
static void test_filter_json(void **state)
{
	(void)state;
	struct strbuf out = STRBUF_INIT;
	size_t n = 9;
	struct label_filter f[] = { { "service", "shop" }, { "flag", "on" }, { "region", "-" },
				    { "q\"", "x" } };
	assert_int_equal(tagset__filter_json(f, 4, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(strbuf__str(&out), "{\"flag\":\"on\",\"region\":null,\"q\\\"\":\"x\"}");
	assert_int_equal(tagset__filter_json(f, 1, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_string_equal(strbuf__str(&out), "");
	strbuf__release(&out);
}

/* A window admits TAGSET_MAX_PER_WINDOW distinct non-empty sets; a new one
 * past that is the overflow set (flagged), a known one and the empty set
 * still pass. */
static void test_window_budget(void **state)
{
	(void)state;
	struct tagset_window *w = tagset_window__new();
	char text[64];
	int over = -1;
	assert_non_null(w);
	for (int i = 0; i < TAGSET_MAX_PER_WINDOW; i++) {
		snprintf(text, sizeof(text), "{\"user\":\"%d\"}", i);
		assert_string_equal(tagset_window__admit(w, text, &over), text);
		assert_int_equal(over, 0);
	}
	assert_string_equal(tagset_window__admit(w, "{\"user\":\"new\"}", &over), TAGSET_OVERFLOW);
	assert_int_equal(over, 1);
	assert_string_equal(tagset_window__admit(w, "{\"user\":\"7\"}", &over), "{\"user\":\"7\"}");
	assert_int_equal(over, 0);
	assert_string_equal(tagset_window__admit(w, TAGSET_EMPTY, &over), TAGSET_EMPTY);
	assert_int_equal(over, 0);
	tagset_window__free(w);
	tagset_window__free(NULL);
}

/* A profile sample's labels give its set. */
static void test_of_sample(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_true(profile__add_value_type(p, "samples", "count") >= 0);
	struct frame_desc fd = { .kind = FRAME_NATIVE, .name = "main" };
	uint32_t frame;
	assert_int_equal(profile__add_frame(p, &fd, &frame), 0);
	const char *keys[] = { "endpoint", "flag", "env" }, *values[] = { "/a", "on", "prod" };
	uint64_t v[1] = { 1 };
	struct sample_desc d = { .frames = &frame, .nframes = 1, .pid = 1, .comm = "app",
				 .label_keys = keys, .label_values = values, .nlabels = 3,
				 .values = v };
	assert_int_equal(profile__add_sample(p, &d), 0);
	struct strbuf out = STRBUF_INIT;
	assert_int_equal(tagset__of_sample(p, profile__sample(p, 0), &out, NULL), 0);
	assert_string_equal(strbuf__str(&out), "{\"env\":\"prod\",\"flag\":\"on\"}");
	strbuf__release(&out);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_filter_json),
		cmocka_unit_test(test_window_budget),
		cmocka_unit_test(test_of_sample),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
