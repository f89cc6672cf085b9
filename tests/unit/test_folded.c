// SPDX-License-Identifier: MIT
/* Folded stack text: exact lines, naming rules, escaping, tags, round trip,
 * and the reader's errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "formats/folded.h"
#include "formats/format.h"
#include "profile/profile.h"

#include "profile_builder.h"
#include "util/strbuf.h"

/* Writes p with opts and returns the text (caller frees). */
static char *write_folded(const struct profile *p, const struct folded_opts *opts)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(folded__write(p, out, opts), 0);
	fclose(out);
	return text;
}

/* Reads text into a new profile, asserting success. */
static struct profile *read_folded(const char *text, const struct folded_read_opts *opts)
{
	struct profile *p = profile__new();
	char err[128];
	assert_non_null(p);
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(in);
	int ret = folded__read(p, in, opts, err, sizeof(err));
	if (ret)
		fail_msg("folded__read: %d %s", ret, err);
	fclose(in);
	return p;
}

/* A profile with every kind of frame, used by several tests. */
static struct profile *mixed_profile(void)
{
	struct profile *p = new_profile();
	uint32_t f[] = {
		frame(p, FRAME_NATIVE, "main", "/usr/bin/python3.11", NULL, 0),
		frame(p, FRAME_PYTHON, "handler", NULL, "app.py", 12),
		frame(p, FRAME_NATIVE, "libc.so.6+0x1234", "/lib/libc.so.6", NULL, 0),
		frame(p, FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", NULL, 0),
		frame(p, FRAME_KERNEL, "nft_do_chain", "nf_tables", NULL, 0),
	};
	uint32_t g[] = {
		f[0],
		frame(p, FRAME_SPECIAL, "[unknown]", NULL, NULL, 0),
	};
	sample_in(p, "python3", 10, 10, f, 5, 3, 30000000);
	sample_in(p, "python3", 10, 11, f, 5, 2, 20000000); /* other thread: merges */
	sample_in(p, "python3", 10, 10, g, 2, 1, 10000000);
	sample_in(p, "worker", 10, 12, f, 2, 4, 0);
	return p;
}

static void test_exact_lines(void **state)
{
	(void)state;
	struct profile *p = mixed_profile();
	char *text = write_folded(p, NULL);
	assert_string_equal(text,
		"python3;main;[unknown] 1\n"
		"python3;main;handler (app.py:12);libc.so.6+0x1234;do_syscall_64_[k];"
		"nft_do_chain [nf_tables]_[k] 5\n"
		"worker;main;handler (app.py:12) 4\n");
	free(text);
	profile__free(p);
}

static void test_value_index_and_no_comm(void **state)
{
	(void)state;
	struct profile *p = mixed_profile();
	struct folded_opts opts = FOLDED_OPTS_INIT;
	opts.value_index = 1;
	opts.comm_prefix = 0;
	char *text = write_folded(p, &opts);
	/* worker's cpu is 0: left out. */
	assert_string_equal(text,
		"main;[unknown] 10000000\n"
		"main;handler (app.py:12);libc.so.6+0x1234;do_syscall_64_[k];"
		"nft_do_chain [nf_tables]_[k] 50000000\n");
	free(text);

	opts.value_index = 2;
	FILE *out = fopen("/dev/null", "w");
	assert_int_equal(folded__write(p, out, &opts), -EINVAL);
	fclose(out);
	profile__free(p);
}

static void test_identical_display_merges(void **state)
{
	(void)state;
	struct profile *p = new_profile();
	/* Same display, different identity (module): one line. */
	uint32_t a = frame(p, FRAME_NATIVE, "f", "/bin/a", NULL, 0);
	uint32_t b = frame(p, FRAME_NATIVE, "f", "/bin/b", NULL, 0);
	sample_in(p, "x", 1, 1, &a, 1, 2, 0);
	sample_in(p, "x", 1, 1, &b, 1, 5, 0);
	char *text = write_folded(p, NULL);
	assert_string_equal(text, "x;f 7\n");
	free(text);
	profile__free(p);
}

static void test_frame_display_rules(void **state)
{
	(void)state;
	struct profile *p = new_profile();
	struct {
		uint32_t id;
		const char *want;
	} cases[] = {
		{ frame(p, FRAME_KERNEL, "ext4_read", "[kernel.kallsyms]", NULL, 0), "ext4_read_[k]" },
		{ frame(p, FRAME_KERNEL, "schedule", NULL, NULL, 0), "schedule_[k]" },
		{ frame(p, FRAME_KERNEL, "xfs_iread", "[xfs]", NULL, 0), "xfs_iread [xfs]_[k]" },
		{ frame(p, FRAME_KERNEL, "nvme_irq", "/lib/modules/6.1/nvme.ko.zst", NULL, 0),
		  "nvme_irq [nvme]_[k]" },
		{ frame(p, FRAME_PYTHON, "run", NULL, "/srv/app/main.py", 7), "run (/srv/app/main.py:7)" },
		{ frame(p, FRAME_PYTHON, "run", NULL, "main.py", 0), "run (main.py)" },
		{ frame(p, FRAME_PYTHON, "<module>", NULL, NULL, 0), "<module>" },
		{ frame(p, FRAME_SPECIAL, "[truncated]", NULL, NULL, 0), "[truncated]" },
		{ frame(p, FRAME_NATIVE, "memcpy", "/lib/libc.so.6", "string.c", 30), "memcpy" },
	};
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		strbuf__reset(&sb);
		assert_int_equal(frame__display(p, profile__frame(p, cases[i].id), &sb), 0);
		assert_string_equal(strbuf__str(&sb), cases[i].want);
	}
	strbuf__reset(&sb);
	frame__display_flags(p, profile__frame(p, cases[2].id),
			     FRAME_DISPLAY_NO_KERNEL_SUFFIX, &sb);
	assert_string_equal(strbuf__str(&sb), "xfs_iread [xfs]");
	strbuf__release(&sb);
	profile__free(p);
}

static void test_escaping(void **state)
{
	(void)state;
	struct profile *p = new_profile();
	uint32_t f[] = {
		frame(p, FRAME_NATIVE, "operator;weird", NULL, NULL, 0),
		frame(p, FRAME_PYTHON, "gen\nexpr", NULL, "a;b.py", 3),
	};
	sample_in(p, "my;comm", 1, 1, f, 2, 1, 0);
	char *text = write_folded(p, NULL);
	assert_string_equal(text, "my:comm;operator:weird;gen expr (a:b.py:3) 1\n");

	/* Still parses into the same number of frames. */
	struct profile *q = read_folded(text, NULL);
	assert_int_equal(profile__sample_count(q), 1);
	assert_int_equal(profile__sample(q, 0)->nframes, 2);
	free(text);
	profile__free(q);
	profile__free(p);
}

static void test_round_trip(void **state)
{
	(void)state;
	struct profile *p = mixed_profile();
	char *first = write_folded(p, NULL);
	struct profile *q = read_folded(first, NULL);
	char *second = write_folded(q, NULL);
	assert_string_equal(first, second);

	/* The reader recovered what the text says about each frame. */
	assert_int_equal(profile__value_count(q), 1);
	assert_string_equal(profile__value_type(q, 0), "samples");
	assert_int_equal(profile__total(q, 0), 10);
	int found = 0;
	for (size_t i = 0; i < profile__frame_count(q); i++) {
		const struct profile_frame *f = profile__frame(q, (uint32_t)i);
		const char *name = profile__str(q, f->name);
		if (strcmp(name, "nft_do_chain") == 0) {
			assert_int_equal(f->kind, FRAME_KERNEL);
			assert_string_equal(profile__str(q, f->module), "nf_tables");
			found++;
		} else if (strcmp(name, "do_syscall_64") == 0) {
			assert_int_equal(f->kind, FRAME_KERNEL);
			found++;
		} else if (strcmp(name, "handler") == 0) {
			assert_int_equal(f->kind, FRAME_PYTHON);
			assert_string_equal(profile__str(q, f->file), "app.py");
			assert_int_equal(f->line, 12);
			found++;
		} else if (strcmp(name, "[unknown]") == 0) {
			assert_int_equal(f->kind, FRAME_SPECIAL);
			found++;
		} else if (strcmp(name, "libc.so.6+0x1234") == 0) {
			assert_int_equal(f->kind, FRAME_NATIVE);
			found++;
		}
	}
	assert_int_equal(found, 5);
	for (size_t i = 0; i < profile__sample_count(q); i++) {
		const char *comm = profile__str(q, profile__sample(q, i)->comm);
		assert_true(strcmp(comm, "python3") == 0 || strcmp(comm, "worker") == 0);
	}
	free(first);
	free(second);
	profile__free(q);
	profile__free(p);
}

static void test_read_external_text(void **state)
{
	(void)state;
	/* flamegraph.pl-style input: CRLF, blank and comment lines, spaces in
	 * frames, a C++ signature that must stay native, no trailing newline. */
	const char *text =
		"# comment\r\n"
		"\r\n"
		"java;start_thread;foo(void (*)(int));bar baz 7\r\n"
		"java;json.loads (<frozen json>) 2";
	struct profile *p = read_folded(text, NULL);
	assert_int_equal(profile__sample_count(p), 2);
	const struct profile_sample *s = profile__sample(p, 0);
	assert_string_equal(profile__str(p, s->comm), "java");
	assert_int_equal(s->nframes, 3);
	assert_int_equal(s->values[0], 7);
	const struct profile_frame *f = profile__frame(p, s->frames[1]);
	assert_int_equal(f->kind, FRAME_NATIVE);
	assert_string_equal(profile__str(p, f->name), "foo(void (*)(int))");
	assert_string_equal(profile__str(p, profile__frame(p, s->frames[2])->name), "bar baz");
	s = profile__sample(p, 1);
	f = profile__frame(p, s->frames[0]);
	assert_int_equal(f->kind, FRAME_PYTHON);
	assert_string_equal(profile__str(p, f->name), "json.loads");
	assert_string_equal(profile__str(p, f->file), "<frozen json>");
	assert_int_equal(f->line, 0);
	profile__free(p);

	/* Without a comm prefix every frame is a stack frame. */
	struct folded_read_opts opts = FOLDED_READ_OPTS_INIT;
	opts.comm_prefix = 0;
	p = read_folded("a;b 3\nc 1\n", &opts);
	assert_int_equal(profile__sample_count(p), 2);
	assert_int_equal(profile__sample(p, 0)->nframes, 2);
	assert_string_equal(profile__str(p, profile__sample(p, 0)->comm), "");
	assert_int_equal(profile__sample(p, 1)->nframes, 1);
	struct folded_opts wopts = FOLDED_OPTS_INIT;
	wopts.comm_prefix = 0;
	char *out = write_folded(p, &wopts);
	assert_string_equal(out, "a;b 3\nc 1\n");
	free(out);
	profile__free(p);
}

static void test_tags(void **state)
{
	(void)state;
	const char *text =
		"[endpoint=/checkout];python3;main;work 4\n"
		"python3;[endpoint=/cart];[region=eu];main;work 1\n"
		"python3;main;work 2\n";
	struct profile *p = read_folded(text, NULL);
	assert_int_equal(profile__sample_count(p), 3);
	const struct profile_sample *s = profile__sample(p, 0);
	assert_string_equal(profile__str(p, s->comm), "python3");
	assert_int_equal(s->nframes, 2);
	assert_string_equal(profile__sample_label(p, s, "endpoint"), "/checkout");
	s = profile__sample(p, 1);
	assert_int_equal(s->nframes, 2);
	assert_string_equal(profile__sample_label(p, s, "endpoint"), "/cart");
	assert_string_equal(profile__sample_label(p, s, "region"), "eu");
	assert_null(profile__sample_label(p, profile__sample(p, 2), "endpoint"));

	/* Label frames go first, sorted by key; off by default. */
	struct folded_opts opts = FOLDED_OPTS_INIT;
	opts.label_frames = 1;
	char *out = write_folded(p, &opts);
	assert_string_equal(out,
		"[endpoint=/cart];[region=eu];python3;main;work 1\n"
		"[endpoint=/checkout];python3;main;work 4\n"
		"python3;main;work 2\n");
	free(out);
	out = write_folded(p, NULL);
	assert_string_equal(out, "python3;main;work 7\n");
	free(out);
	profile__free(p);
}

/* Reads text expecting -EINVAL and an error naming want. */
static void expect_error(const char *text, const char *want)
{
	struct profile *p = profile__new();
	char err[128];
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	assert_int_equal(folded__read(p, in, NULL, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
	fclose(in);
	profile__free(p);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_error("a;b 1\nc;d\n", "line 2: missing sample count");
	expect_error("a;b 1\n\n# c\nc;d x\n", "line 4: bad sample count");
	expect_error("a;b 1.5\n", "line 1: bad sample count");
	expect_error("a;b 99999999999999999999999\n", "line 1: bad sample count");
	expect_error("a;;b 1\n", "line 1: empty frame");
	expect_error("a;b; 1\n", "line 1: empty frame");
	expect_error(" 1\n", "line 1: empty stack");

	/* A line past FOLDED_MAX_LINE is refused rather than buffered. */
	size_t long_len = FOLDED_MAX_LINE + 16;
	char *long_text = malloc(long_len + 1);
	assert_non_null(long_text);
	memcpy(long_text, "ok 1\n", 5);
	memset(long_text + 5, 'a', long_len - 5);
	memcpy(long_text + long_len - 2, " 1", 2);
	long_text[long_len] = '\0';
	expect_error(long_text, "line 2: line longer than");
	free(long_text);

	/* A NUL byte is refused: it once joined two lines into one ("a;b 5c;d 7"). */
	{
		static const char nul[] = "x;y 1\na;b 5\0junk\nc;d 7\n";
		struct profile *q = profile__new();
		char qerr[128];
		FILE *qin = fmemopen((void *)nul, sizeof(nul) - 1, "r");
		assert_int_equal(folded__read(q, qin, NULL, qerr, sizeof(qerr)), -EINVAL);
		if (!strstr(qerr, "line 2: NUL byte"))
			fail_msg("error '%s' lacks 'line 2: NUL byte'", qerr);
		fclose(qin);
		profile__free(q);
	}

	/* A tiny error buffer is truncated, not overrun. */
	struct profile *p = profile__new();
	char err[8];
	FILE *in = fmemopen("x\n", 2, "r");
	assert_int_equal(folded__read(p, in, NULL, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "line 1:");
	fclose(in);
	profile__free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_lines),
		cmocka_unit_test(test_value_index_and_no_comm),
		cmocka_unit_test(test_identical_display_merges),
		cmocka_unit_test(test_frame_display_rules),
		cmocka_unit_test(test_escaping),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_read_external_text),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
