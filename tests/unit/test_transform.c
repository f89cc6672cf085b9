// SPDX-License-Identifier: MIT
/* Derived profiles: tag filters ("-" = label absent), filtered copies that
 * keep frames, labels, values and capture metadata, grouped copies whose
 * stacks lead with "[key=value]" frames and the comm, merges that match value
 * types by name with a pid filter and an extra label, and foreign samples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "profile/profile.h"
#include "profile/transform.h"

/* The sample's stack as "name;name;..." (root first) with kinds as a prefix
 * letter for SPECIAL frames ("!name"). */
static void stack_text(const struct profile *p, const struct profile_sample *s, char *out,
		       size_t len)
{
	size_t o = 0;
	out[0] = '\0';
	for (uint32_t i = 0; i < s->nframes && o < len; i++) {
		const struct profile_frame *f = profile__frame(p, s->frames[i]);
		assert_non_null(f);
		o += (size_t)snprintf(out + o, len - o, "%s%s%s", i ? ";" : "",
				      f->kind == FRAME_SPECIAL ? "!" : "", profile__str(p, f->name));
	}
}

/* Finds the sample of p whose stack text is `stack` and whose label
 * `key` is `value` (NULL value: label absent). */
static const struct profile_sample *find(const struct profile *p, const char *stack,
					 const char *key, const char *value)
{
	char text[512];
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		stack_text(p, s, text, sizeof(text));
		if (strcmp(text, stack))
			continue;
		const char *v = key ? profile__sample_label(p, s, key) : NULL;
		if (!key || (value ? v && !strcmp(v, value) : !v))
			return s;
	}
	return NULL;
}

/* The source profile: samples, cpu; metadata; frames of every kind, one
 * native frame with a mapping; samples of /a, /b and untagged, pids 100/200. */
static struct profile *make_src(void)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	profile__set_time(p, 1700000000000000000LL, 5000000000LL);
	assert_int_equal(profile__set_period(p, "cpu", "nanoseconds", 52631578), 0);
	assert_int_equal(profile__add_comment(p, "dropped 3 samples"), 0);

	uint32_t map, f_main, f_view, f_sql, f_k, f_lib;
	assert_int_equal(profile__add_mapping(p, 0x400000, 0x500000, 0x1000, "/usr/bin/python3",
					      "abcdef", &map), 0);
	struct frame_desc d_main = { .kind = FRAME_NATIVE, .name = "main",
				     .module = "/usr/bin/python3", .mapping = map,
				     .address = 0x401234 };
	struct frame_desc d_view = { .kind = FRAME_PYTHON, .name = "views:checkout",
				     .file = "/app/views.py", .line = 42 };
	struct frame_desc d_sql = { .kind = FRAME_PYTHON, .name = "db:query",
				    .file = "/app/db.py", .line = 7 };
	struct frame_desc d_k = { .kind = FRAME_KERNEL, .name = "do_syscall_64",
				  .module = "[kernel.kallsyms]" };
	struct frame_desc d_lib = { .kind = FRAME_NATIVE, .name = "memcpy",
				    .module = "/lib/libc.so.6" };
	assert_int_equal(profile__add_frame(p, &d_main, &f_main), 0);
	assert_int_equal(profile__add_frame(p, &d_view, &f_view), 0);
	assert_int_equal(profile__add_frame(p, &d_sql, &f_sql), 0);
	assert_int_equal(profile__add_frame(p, &d_k, &f_k), 0);
	assert_int_equal(profile__add_frame(p, &d_lib, &f_lib), 0);

	const char *k2[] = { "endpoint", "commit" };
	const char *va[] = { "/a", "c1" }, *vb[] = { "/b", "c1" };
	const char *k1[] = { "commit" }, *v1[] = { "c1" };
	uint32_t s1[] = { f_main, f_view, f_sql, f_k };
	uint32_t s2[] = { f_main, f_view, f_lib };
	uint32_t s3[] = { f_main, f_lib };
	uint64_t v_a1[] = { 3, 30 }, v_a2[] = { 2, 20 }, v_b[] = { 5, 50 }, v_u[] = { 7, 70 };
	uint64_t v_a3[] = { 1, 10 };
	struct sample_desc s[] = {
		{ .frames = s1, .nframes = 4, .pid = 100, .tid = 101, .comm = "gunicorn",
		  .label_keys = k2, .label_values = va, .nlabels = 2, .values = v_a1 },
		{ .frames = s2, .nframes = 3, .pid = 100, .tid = 102, .comm = "gunicorn",
		  .label_keys = k2, .label_values = va, .nlabels = 2, .values = v_a2 },
		{ .frames = s2, .nframes = 3, .pid = 200, .tid = 201, .comm = "celery",
		  .label_keys = k2, .label_values = vb, .nlabels = 2, .values = v_b },
		{ .frames = s3, .nframes = 2, .pid = 200, .tid = 202, .comm = "celery",
		  .label_keys = k1, .label_values = v1, .nlabels = 1, .values = v_u },
		{ .frames = s1, .nframes = 4, .pid = 200, .tid = 203, .comm = "",
		  .label_keys = k2, .label_values = va, .nlabels = 2, .values = v_a3 },
	};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		assert_int_equal(profile__add_sample(p, &s[i]), 0);
	assert_int_equal(profile__sample_count(p), 5);
	return p;
}

static void test_filter_parse(void **state)
{
	(void)state;
	struct label_filter f;
	char t1[] = "endpoint=/checkout";
	assert_int_equal(label_filter__parse(t1, &f), 0);
	assert_string_equal(f.key, "endpoint");
	assert_string_equal(f.value, "/checkout");
	char t2[] = "q=a=b";
	assert_int_equal(label_filter__parse(t2, &f), 0);
	assert_string_equal(f.key, "q");
	assert_string_equal(f.value, "a=b");
	char t3[] = "commit=-";
	assert_int_equal(label_filter__parse(t3, &f), 0);
	assert_string_equal(f.value, "-");
	char t4[] = "endpoint=";
	assert_int_equal(label_filter__parse(t4, &f), 0);
	assert_string_equal(f.value, "");
	char b1[] = "=x", b2[] = "endpoint", b3[] = "";
	assert_int_equal(label_filter__parse(b1, &f), -EINVAL);
	assert_int_equal(label_filter__parse(b2, &f), -EINVAL);
	assert_int_equal(label_filter__parse(b3, &f), -EINVAL);
}

static void test_filter_match(void **state)
{
	(void)state;
	struct profile *p = make_src();
	const struct profile_sample *a = find(p, "main;views:checkout;db:query;do_syscall_64",
					      "endpoint", "/a");
	const struct profile_sample *u = find(p, "main;memcpy", "endpoint", NULL);
	assert_non_null(a);
	assert_non_null(u);
	struct label_filter ep_a = { "endpoint", "/a" }, ep_b = { "endpoint", "/b" };
	struct label_filter ep_none = { "endpoint", "-" }, c1 = { "commit", "c1" };
	struct label_filter both[] = { ep_a, c1 }, clash[] = { ep_a, { "commit", "c2" } };
	assert_int_equal(label_filter__match(p, a, NULL, 0), 1);
	assert_int_equal(label_filter__match(p, a, &ep_a, 1), 1);
	assert_int_equal(label_filter__match(p, a, &ep_b, 1), 0);
	assert_int_equal(label_filter__match(p, a, &ep_none, 1), 0);
	assert_int_equal(label_filter__match(p, a, both, 2), 1);
	assert_int_equal(label_filter__match(p, a, clash, 2), 0);
	assert_int_equal(label_filter__match(p, u, &ep_none, 1), 1);
	assert_int_equal(label_filter__match(p, u, &ep_a, 1), 0);
	assert_int_equal(label_filter__match(p, u, &c1, 1), 1);
	/* The same rule for a sample not yet in a profile (a live query's),
	 * given as its label arrays: the same answers for the same labels. */
	const char *a_keys[] = { "commit", "endpoint" }, *a_values[] = { "c1", "/a" };
	const char *u_keys[] = { "commit" }, *u_values[] = { "c1" };
	struct {
		const struct label_filter *f;
		size_t n;
	} sets[] = { { NULL, 0 }, { &ep_a, 1 }, { &ep_b, 1 }, { &ep_none, 1 },
		     { both, 2 }, { clash, 2 }, { &c1, 1 } };
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		assert_int_equal(label_filter__match_labels(sets[i].f, sets[i].n, a_keys, a_values, 2),
				 label_filter__match(p, a, sets[i].f, sets[i].n));
		assert_int_equal(label_filter__match_labels(sets[i].f, sets[i].n, u_keys, u_values, 1),
				 label_filter__match(p, u, sets[i].f, sets[i].n));
	}
	assert_int_equal(label_filter__match_labels(&ep_none, 1, NULL, NULL, 0), 1);
	assert_int_equal(label_filter__match_labels(&ep_a, 1, NULL, NULL, 0), 0);
	profile__free(p);
}

static void test_filtered_copy(void **state)
{
	(void)state;
	struct profile *src = make_src();
	struct label_filter f = { "endpoint", "/a" };
	struct profile *p = profile__filtered_copy(src, &f, 1);
	assert_non_null(p);

	/* Metadata and value types. */
	assert_int_equal(profile__value_count(p), 2);
	assert_string_equal(profile__value_type(p, 0), "samples");
	assert_string_equal(profile__value_unit(p, 1), "nanoseconds");
	assert_int_equal(profile__start_ns(p), 1700000000000000000LL);
	assert_int_equal(profile__duration_ns(p), 5000000000LL);
	assert_string_equal(profile__period_type(p), "cpu");
	assert_string_equal(profile__period_unit(p), "nanoseconds");
	assert_int_equal(profile__period(p), 52631578);
	assert_int_equal(profile__comment_count(p), 1);
	assert_string_equal(profile__comment(p, 0), "dropped 3 samples");

	/* Only the /a samples, whole. */
	assert_int_equal(profile__sample_count(p), 3);
	assert_int_equal(profile__total(p, 0), 6);
	assert_int_equal(profile__total(p, 1), 60);
	const struct profile_sample *s = NULL;
	for (size_t i = 0; i < profile__sample_count(p); i++)
		if (profile__sample(p, i)->tid == 101)
			s = profile__sample(p, i);
	assert_non_null(s);
	char text[512];
	stack_text(p, s, text, sizeof(text));
	assert_string_equal(text, "main;views:checkout;db:query;do_syscall_64");
	assert_int_equal(s->pid, 100);
	assert_string_equal(profile__str(p, s->comm), "gunicorn");
	assert_int_equal(s->values[0], 3);
	assert_int_equal(s->values[1], 30);
	assert_int_equal(s->nlabels, 2);
	assert_string_equal(profile__sample_label(p, s, "endpoint"), "/a");
	assert_string_equal(profile__sample_label(p, s, "commit"), "c1");

	/* Frames keep their details, the native one its mapping. */
	const struct profile_frame *fm = profile__frame(p, s->frames[0]);
	assert_int_equal(fm->kind, FRAME_NATIVE);
	assert_string_equal(profile__str(p, fm->module), "/usr/bin/python3");
	assert_int_equal(fm->address, 0x401234);
	assert_int_not_equal(fm->mapping, 0);
	const struct profile_mapping *m = profile__mapping(p, fm->mapping - 1);
	assert_non_null(m);
	assert_int_equal(m->start, 0x400000);
	assert_int_equal(m->limit, 0x500000);
	assert_int_equal(m->offset, 0x1000);
	assert_string_equal(profile__str(p, m->file), "/usr/bin/python3");
	assert_string_equal(profile__str(p, m->build_id), "abcdef");
	const struct profile_frame *fv = profile__frame(p, s->frames[1]);
	assert_int_equal(fv->kind, FRAME_PYTHON);
	assert_string_equal(profile__str(p, fv->file), "/app/views.py");
	assert_int_equal(fv->line, 42);
	const struct profile_frame *fk = profile__frame(p, s->frames[3]);
	assert_int_equal(fk->kind, FRAME_KERNEL);
	assert_string_equal(profile__str(p, fk->module), "[kernel.kallsyms]");
	profile__free(p);

	/* "-": the samples without the label. */
	struct label_filter none = { "endpoint", "-" };
	p = profile__filtered_copy(src, &none, 1);
	assert_non_null(p);
	assert_int_equal(profile__sample_count(p), 1);
	assert_int_equal(profile__total(p, 1), 70);
	profile__free(p);

	/* No filters: everything; a filter nothing matches: an empty profile
	 * that still has the value types. */
	p = profile__filtered_copy(src, NULL, 0);
	assert_non_null(p);
	assert_int_equal(profile__sample_count(p), 5);
	assert_int_equal(profile__total(p, 0), profile__total(src, 0));
	assert_int_equal(profile__total(p, 1), profile__total(src, 1));
	profile__free(p);
	struct label_filter nothing = { "endpoint", "/zzz" };
	p = profile__filtered_copy(src, &nothing, 1);
	assert_non_null(p);
	assert_int_equal(profile__sample_count(p), 0);
	assert_int_equal(profile__value_count(p), 2);
	profile__free(p);
	profile__free(src);
}

static void test_grouped_copy(void **state)
{
	(void)state;
	struct profile *src = make_src();
	const char *keys[] = { "endpoint", "commit" };
	struct profile *p = profile__grouped_copy(src, keys, 2);
	assert_non_null(p);
	assert_int_equal(profile__sample_count(p), 5);
	assert_int_equal(profile__total(p, 1), profile__total(src, 1));
	assert_int_equal(profile__period(p), 52631578);

	const struct profile_sample *s =
		find(p, "![endpoint=/a];![commit=c1];!gunicorn;main;views:checkout;db:query;"
			"do_syscall_64", NULL, NULL);
	assert_non_null(s);
	assert_string_equal(profile__str(p, s->comm), "");
	assert_int_equal(s->values[1], 30);
	assert_string_equal(profile__sample_label(p, s, "endpoint"), "/a");
	/* An absent label shows as "-". */
	s = find(p, "![endpoint=-];![commit=c1];!celery;main;memcpy", NULL, NULL);
	assert_non_null(s);
	assert_int_equal(s->values[0], 7);
	assert_non_null(find(p, "![endpoint=/b];![commit=c1];!celery;main;views:checkout;memcpy",
			     NULL, NULL));
	/* A sample without a comm still gets a comm frame. */
	int found_pid200_a = 0;
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *x = profile__sample(p, i);
		if (x->tid != 203)
			continue;
		found_pid200_a = 1;
		assert_int_equal(x->nframes, 4 + 3);
		const struct profile_frame *cf = profile__frame(p, x->frames[2]);
		assert_int_equal(cf->kind, FRAME_SPECIAL);
		assert_true(profile__str(p, cf->name)[0] != '\0');
	}
	assert_true(found_pid200_a);
	profile__free(p);

	/* No keys: only the comm frame leads. */
	p = profile__grouped_copy(src, NULL, 0);
	assert_non_null(p);
	assert_non_null(find(p, "!celery;main;memcpy", NULL, NULL));
	profile__free(p);
	profile__free(src);
}

static void test_merge(void **state)
{
	(void)state;
	struct profile *src = make_src();

	/* dst of another layout: cpu first, a type src lacks, no samples type. */
	struct profile *dst = profile__new();
	assert_non_null(dst);
	assert_int_equal(profile__add_value_type(dst, "cpu", "nanoseconds"), 0);
	assert_int_equal(profile__add_value_type(dst, "requests", "count"), 1);
	profile__set_time(dst, 42, 43);
	assert_int_equal(profile__merge(dst, src, NULL, 0, 0, NULL), 0);
	assert_int_equal(profile__sample_count(dst), 5);
	assert_int_equal(profile__total(dst, 0), profile__total(src, 1));
	assert_int_equal(profile__total(dst, 1), 0);
	assert_int_equal(profile__start_ns(dst), 42);
	assert_int_equal(profile__duration_ns(dst), 43);
	assert_int_equal(profile__comment_count(dst), 0);
	/* Merging again sums into the same samples. */
	assert_int_equal(profile__merge(dst, src, NULL, 0, 0, NULL), 0);
	assert_int_equal(profile__sample_count(dst), 5);
	assert_int_equal(profile__total(dst, 0), 2 * profile__total(src, 1));
	profile__free(dst);

	/* Empty dst takes src's value types; pid filter and label filter. */
	dst = profile__new();
	assert_non_null(dst);
	struct label_filter f = { "endpoint", "/a" };
	assert_int_equal(profile__merge(dst, src, &f, 1, 100, NULL), 0);
	assert_int_equal(profile__value_count(dst), 2);
	assert_string_equal(profile__value_type(dst, 1), "cpu");
	assert_int_equal(profile__sample_count(dst), 2);
	assert_int_equal(profile__total(dst, 0), 5);
	assert_int_equal(profile__total(dst, 1), 50);
	for (size_t i = 0; i < profile__sample_count(dst); i++)
		assert_int_equal(profile__sample(dst, i)->pid, 100);
	profile__free(dst);

	/* Extra label: replaces one of its key, is added where absent. */
	dst = profile__new();
	assert_non_null(dst);
	struct label_filter extra = { "endpoint", "/merged" };
	assert_int_equal(profile__merge(dst, src, NULL, 0, 200, &extra), 0);
	assert_int_equal(profile__sample_count(dst), 3);
	for (size_t i = 0; i < profile__sample_count(dst); i++) {
		const struct profile_sample *s = profile__sample(dst, i);
		assert_string_equal(profile__sample_label(dst, s, "endpoint"), "/merged");
		assert_string_equal(profile__sample_label(dst, s, "commit"), "c1");
		assert_int_equal(s->nlabels, 2);
	}
	struct label_filter window = { "window", "7" };
	assert_int_equal(profile__merge(dst, src, &f, 1, 100, &window), 0);
	const struct profile_sample *w =
		find(dst, "main;views:checkout;db:query;do_syscall_64", "window", "7");
	assert_non_null(w);
	assert_string_equal(profile__sample_label(dst, w, "endpoint"), "/a");
	assert_int_equal(w->values[1], 30);
	profile__free(dst);
	profile__free(src);
}

static void test_add_foreign_sample(void **state)
{
	(void)state;
	struct profile *src = make_src();
	struct profile *dst = profile__new();
	assert_non_null(dst);
	assert_int_equal(profile__add_value_type(dst, "cpu", "nanoseconds"), 0);
	assert_int_equal(profile__add_value_type(dst, "samples", "count"), 1);

	const struct profile_sample *s = find(src, "main;views:checkout;db:query;do_syscall_64",
					      "endpoint", "/a");
	assert_non_null(s);
	uint64_t vals[] = { 4, 400 }; /* src layout: samples, cpu */
	const char *k[] = { "endpoint" }, *v[] = { "/x" };
	struct sample_desc d = { .frames = s->frames, .nframes = s->nframes, .pid = 9, .tid = 10,
				 .comm = "worker", .label_keys = k, .label_values = v,
				 .nlabels = 1, .values = vals };
	assert_int_equal(profile__add_foreign_sample(dst, src, &d), 0);
	assert_int_equal(profile__add_foreign_sample(dst, src, &d), 0);
	assert_int_equal(profile__sample_count(dst), 1);
	const struct profile_sample *o = profile__sample(dst, 0);
	char text[512];
	stack_text(dst, o, text, sizeof(text));
	assert_string_equal(text, "main;views:checkout;db:query;do_syscall_64");
	assert_int_equal(o->values[0], 800);
	assert_int_equal(o->values[1], 8);
	assert_int_equal(o->pid, 9);
	assert_string_equal(profile__str(dst, o->comm), "worker");
	assert_string_equal(profile__sample_label(dst, o, "endpoint"), "/x");
	const struct profile_frame *fm = profile__frame(dst, o->frames[0]);
	assert_int_not_equal(fm->mapping, 0);
	assert_string_equal(profile__str(dst, profile__mapping(dst, fm->mapping - 1)->build_id),
			    "abcdef");
	profile__free(dst);
	profile__free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_parse),
		cmocka_unit_test(test_filter_match),
		cmocka_unit_test(test_filtered_copy),
		cmocka_unit_test(test_grouped_copy),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_add_foreign_sample),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
