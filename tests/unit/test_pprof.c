// SPDX-License-Identifier: MIT
/* Unit tests for the pprof writer and reader: round trips, hand-built inputs
 * (inlined frames, Go-style labels), rejection of malformed input, and a check
 * against the real consumer, `go tool pprof`. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "formats/format.h"
#include "formats/pprof.h"
#include "formats/protobuf.h"
#include "profile/profile.h"
#include "util/strbuf.h"

/* ------------------------------------------------------------ helpers */

static uint32_t add_frame(struct profile *p, enum frame_kind kind, const char *name,
			  const char *module, const char *file, uint32_t line, uint32_t mapping,
			  uint64_t address)
{
	struct frame_desc d = { .kind = kind, .name = name, .module = module, .file = file,
				.line = line, .mapping = mapping, .address = address };
	uint32_t id;
	assert_int_equal(profile__add_frame(p, &d, &id), 0);
	return id;
}

static void add_sample(struct profile *p, const uint32_t *frames, uint32_t nframes, uint32_t pid,
		       uint32_t tid, const char *comm, const char *label_key,
		       const char *label_value, uint64_t samples)
{
	const char *keys[1] = { label_key };
	const char *values[1] = { label_value };
	uint64_t v[2] = { samples, samples * 10000000 };
	struct sample_desc s = { .frames = frames, .nframes = nframes, .pid = pid, .tid = tid,
				 .comm = comm, .label_keys = keys, .label_values = values,
				 .nlabels = label_key ? 1 : 0, .values = v };
	assert_int_equal(profile__add_sample(p, &s), 0);
}

/* A profile with every kind of frame, mappings, labels and metadata. */
static struct profile *build_profile(void)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	uint32_t python_map, libc_map;
	assert_int_equal(profile__add_mapping(p, 0x400000, 0x800000, 0, "/usr/bin/python3.11",
					      "4f1c2a9e", &python_map), 0);
	assert_int_equal(profile__add_mapping(p, 0x7f0000000000, 0x7f0000200000, 0x28000,
					      "/usr/lib/x86_64-linux-gnu/libc.so.6", NULL,
					      &libc_map), 0);
	const char *py = "/usr/bin/python3.11";
	const char *libc = "/usr/lib/x86_64-linux-gnu/libc.so.6";
	uint32_t start = add_frame(p, FRAME_NATIVE, "_start", py, NULL, 0, python_map, 0x1010);
	uint32_t run_main = add_frame(p, FRAME_NATIVE, "Py_RunMain", py, NULL, 0, python_map, 0x2020);
	uint32_t eval = add_frame(p, FRAME_NATIVE, "_PyEval_EvalFrameDefault", py, "Python/ceval.c",
				  1234, python_map, 0x3030);
	uint32_t handle = add_frame(p, FRAME_PYTHON, "handle_request", NULL, "/srv/app.py", 42, 0, 0);
	uint32_t compute = add_frame(p, FRAME_PYTHON, "compute", NULL, "/srv/app.py", 10, 0, 0);
	uint32_t frozen = add_frame(p, FRAME_PYTHON, "_find_and_load", NULL,
				    "<frozen importlib._bootstrap>", 1007, 0, 0);
	uint32_t script = add_frame(p, FRAME_PYTHON, "<module>", NULL, "/usr/bin/gunicorn", 8, 0, 0);
	uint32_t memmove_ = add_frame(p, FRAME_NATIVE, "__memmove_avx_unaligned_erms", libc, NULL, 0,
				      libc_map, 0x1a2b3c);
	uint32_t entry = add_frame(p, FRAME_KERNEL, "entry_SYSCALL_64", "[kernel.kallsyms]", NULL, 0,
				   0, 0xffffffff81e00000);
	uint32_t do_syscall = add_frame(p, FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", NULL,
					0, 0, 0xffffffff81c00000);
	uint32_t nft = add_frame(p, FRAME_KERNEL, "nft_do_chain", "[nf_tables]", NULL, 0, 0,
				 0xffffffffc0a00000);
	uint32_t unknown = add_frame(p, FRAME_SPECIAL, "[unknown]", NULL, NULL, 0, 0, 0);

	const uint32_t s1[] = { start, run_main, eval, handle, compute };
	add_sample(p, s1, 5, 1234, 1235, "gunicorn", "endpoint", "/api/users", 90);
	add_sample(p, s1, 5, 1234, 1235, "gunicorn", "endpoint", "/health", 5);
	const uint32_t s2[] = { start, run_main, script, handle, frozen, memmove_ };
	add_sample(p, s2, 6, 1234, 1236, "gunicorn", NULL, NULL, 3);
	const uint32_t s3[] = { entry, do_syscall, nft };
	add_sample(p, s3, 3, 99, 99, "ksoftirqd/0", NULL, NULL, 2);
	const uint32_t s4[] = { unknown };
	add_sample(p, s4, 1, 0, 0, NULL, NULL, NULL, 1);
	add_sample(p, NULL, 0, 7, 8, "idle", NULL, NULL, 4);

	profile__set_time(p, INT64_C(1700000000123456789), INT64_C(30000000000));
	assert_int_equal(profile__set_period(p, "cpu", "nanoseconds", 10000000), 0);
	assert_int_equal(profile__add_comment(p, "dropped 3 samples: stack map full"), 0);
	return p;
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Describes every sample as a user-visible line (ids and merge order aside),
 * sorted, one per line. Caller frees. */
static char *describe_samples(const struct profile *p)
{
	size_t n = profile__sample_count(p);
	char **lines = calloc(n ? n : 1, sizeof(*lines));
	assert_non_null(lines);
	for (size_t i = 0; i < n; i++) {
		const struct profile_sample *s = profile__sample(p, i);
		struct strbuf sb = STRBUF_INIT;
		strbuf__printf(&sb, "pid=%u tid=%u comm=%s", s->pid, s->tid, profile__str(p, s->comm));
		for (uint32_t l = 0; l < s->nlabels; l++)
			strbuf__printf(&sb, " %s=%s", profile__str(p, s->labels[l].key),
				       profile__str(p, s->labels[l].value));
		strbuf__puts(&sb, " |");
		for (uint32_t f = 0; f < s->nframes; f++) {
			const struct profile_frame *fr = profile__frame(p, s->frames[f]);
			strbuf__printf(&sb, " %d:%s:%s:%s:%u", fr->kind, profile__str(p, fr->name),
				       profile__str(p, fr->module), profile__str(p, fr->file),
				       fr->line);
			if (fr->kind == FRAME_NATIVE && fr->mapping) {
				const struct profile_mapping *m = profile__mapping(p, fr->mapping - 1);
				strbuf__printf(&sb, "@%s[%s]+%#llx", profile__str(p, m->file),
					       profile__str(p, m->build_id),
					       (unsigned long long)fr->address);
			}
		}
		strbuf__puts(&sb, " |");
		for (size_t v = 0; v < profile__value_count(p); v++)
			strbuf__printf(&sb, " %llu", (unsigned long long)s->values[v]);
		assert_int_equal(strbuf__error(&sb), 0);
		lines[i] = strdup(strbuf__str(&sb));
		strbuf__release(&sb);
	}
	qsort(lines, n, sizeof(*lines), compare_strings);
	struct strbuf all = STRBUF_INIT;
	for (size_t i = 0; i < n; i++) {
		strbuf__puts(&all, lines[i]);
		strbuf__putc(&all, '\n');
		free(lines[i]);
	}
	free(lines);
	char *text = strdup(strbuf__str(&all));
	strbuf__release(&all);
	return text;
}

/* Decodes an uncompressed message into a new profile; returns it or NULL with
 * *rc set and the reason in err. */
static struct profile *decode(const void *data, size_t len, int *rc, char *err, size_t errlen)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	*rc = pprof__decode(p, data, len, err, errlen);
	if (*rc) {
		profile__free(p);
		return NULL;
	}
	return p;
}

/* Checks that a round-tripped profile reads the same as the original. */
static void assert_same_profile(const struct profile *a, const struct profile *b)
{
	assert_int_equal(profile__value_count(a), profile__value_count(b));
	for (size_t v = 0; v < profile__value_count(a); v++) {
		assert_string_equal(profile__value_type(a, v), profile__value_type(b, v));
		assert_string_equal(profile__value_unit(a, v), profile__value_unit(b, v));
		assert_int_equal(profile__total(a, v), profile__total(b, v));
	}
	assert_int_equal(profile__sample_count(a), profile__sample_count(b));
	char *da = describe_samples(a), *db = describe_samples(b);
	assert_string_equal(da, db);
	free(da);
	free(db);
	assert_int_equal(profile__start_ns(a), profile__start_ns(b));
	assert_int_equal(profile__duration_ns(a), profile__duration_ns(b));
	assert_string_equal(profile__period_type(a), profile__period_type(b));
	assert_string_equal(profile__period_unit(a), profile__period_unit(b));
	assert_int_equal(profile__period(a), profile__period(b));
	assert_int_equal(profile__comment_count(a), profile__comment_count(b));
	for (size_t i = 0; i < profile__comment_count(a); i++)
		assert_string_equal(profile__comment(a, i), profile__comment(b, i));
}

/* Reads a whole stream into a malloc'd buffer. */
static unsigned char *slurp(FILE *f, size_t *len)
{
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	long size = ftell(f);
	assert_true(size >= 0);
	rewind(f);
	unsigned char *buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
	*len = (size_t)size;
	return buf;
}

/* ------------------------------------------------------------ round trips */

static void test_round_trip_encode_decode(void **state)
{
	(void)state;
	struct profile *p = build_profile();
	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	assert_true(msg.len > 0);

	char err[256];
	int rc;
	struct profile *back = decode(msg.data, msg.len, &rc, err, sizeof(err));
	if (!back)
		fail_msg("decode failed (%d): %s", rc, err);
	assert_same_profile(p, back);

	/* Specific user-visible facts, independent of the comparison above. */
	int cpu = profile__find_value(back, "cpu");
	assert_int_equal(cpu, 1);
	assert_int_equal(profile__total(back, 0), 90 + 5 + 3 + 2 + 1 + 4);
	int found_users = 0;
	for (size_t i = 0; i < profile__sample_count(back); i++) {
		const struct profile_sample *s = profile__sample(back, i);
		const char *endpoint = profile__sample_label(back, s, "endpoint");
		if (endpoint && strcmp(endpoint, "/api/users") == 0) {
			found_users = 1;
			assert_int_equal(s->values[0], 90);
			assert_int_equal(s->pid, 1234);
			assert_string_equal(profile__str(back, s->comm), "gunicorn");
			assert_int_equal(s->nframes, 5);
			/* Root first, as the model stores it. */
			const struct profile_frame *root = profile__frame(back, s->frames[0]);
			const struct profile_frame *leaf = profile__frame(back, s->frames[4]);
			assert_string_equal(profile__str(back, root->name), "_start");
			assert_string_equal(profile__str(back, leaf->name), "compute");
			assert_int_equal(leaf->kind, FRAME_PYTHON);
			struct strbuf sb = STRBUF_INIT;
			assert_int_equal(frame__display(back, leaf, &sb), 0);
			assert_string_equal(strbuf__str(&sb), "compute (/srv/app.py:10)");
			strbuf__release(&sb);
		}
		/* pid/tid/comm come back as fields, never as labels. */
		assert_null(profile__sample_label(back, s, "pid"));
		assert_null(profile__sample_label(back, s, "comm"));
	}
	assert_true(found_users);

	/* Encoding the decoded profile again reads the same once more. */
	struct strbuf msg2 = STRBUF_INIT;
	assert_int_equal(pprof__encode(back, &msg2), 0);
	struct profile *again = decode(msg2.data, msg2.len, &rc, err, sizeof(err));
	assert_non_null(again);
	assert_same_profile(p, again);

	profile__free(again);
	profile__free(back);
	profile__free(p);
	strbuf__release(&msg);
	strbuf__release(&msg2);
}

static void test_write_is_gzip_and_reads_back(void **state)
{
	(void)state;
	struct profile *p = build_profile();
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(pprof__write(p, f), 0);
	size_t len;
	unsigned char *bytes = slurp(f, &len);
	assert_true(len > 18);
	assert_int_equal(bytes[0], 0x1f); /* gzip magic, so gunzip and pprof accept it */
	assert_int_equal(bytes[1], 0x8b);
	free(bytes);

	rewind(f);
	struct profile *back = profile__new();
	char err[256] = "";
	int rc = pprof__read(back, f, err, sizeof(err));
	if (rc)
		fail_msg("pprof__read failed (%d): %s", rc, err);
	assert_same_profile(p, back);
	fclose(f);
	profile__free(back);
	profile__free(p);
}

static void test_read_raw_uncompressed(void **state)
{
	(void)state;
	struct profile *p = build_profile();
	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(fwrite(msg.data, 1, msg.len, f), msg.len);
	rewind(f);
	struct profile *back = profile__new();
	char err[256] = "";
	assert_int_equal(pprof__read(back, f, err, sizeof(err)), 0);
	assert_same_profile(p, back);
	fclose(f);
	profile__free(back);
	profile__free(p);
	strbuf__release(&msg);
}

/* A body fetched over HTTP (diff --agent): gzipped or raw bytes in memory. */
static void test_read_buffer_gzip_or_raw(void **state)
{
	(void)state;
	struct profile *p = build_profile();
	char err[256] = "";
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(pprof__write(p, f), 0);
	size_t len;
	unsigned char *gz = slurp(f, &len);
	fclose(f);
	struct profile *back = profile__new();
	int rc = pprof__read_buffer(back, gz, len, err, sizeof(err));
	if (rc)
		fail_msg("gzipped buffer: %d %s", rc, err);
	assert_same_profile(p, back);
	profile__free(back);
	/* A truncated gzip body says so. */
	back = profile__new();
	assert_int_equal(pprof__read_buffer(back, gz, len / 2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "gzip"));
	profile__free(back);
	free(gz);

	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	back = profile__new();
	assert_int_equal(pprof__read_buffer(back, msg.data, msg.len, err, sizeof(err)), 0);
	assert_same_profile(p, back);
	profile__free(back);
	back = profile__new();
	assert_int_equal(pprof__read_buffer(back, NULL, 5, err, sizeof(err)), -EINVAL);
	profile__free(back);
	strbuf__release(&msg);
	profile__free(p);
}

/* Appends len bytes of data to out as one gzip member. */
static void gzip_member(const void *data, size_t len, struct strbuf *out)
{
	z_stream z = { 0 };
	unsigned char chunk[16384];
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)data;
	z.avail_in = (unsigned)len;
	int rc;
	do {
		z.next_out = chunk;
		z.avail_out = sizeof(chunk);
		rc = deflate(&z, Z_FINISH);
		assert_true(rc == Z_OK || rc == Z_STREAM_END);
		strbuf__append(out, chunk, sizeof(chunk) - z.avail_out);
	} while (rc != Z_STREAM_END);
	deflateEnd(&z);
}

/* A profile gzipped in two members (as `cat a.gz b.gz` makes, gunzip reads
 * them as one stream) reads as the whole; writing to a full disk
 * (/dev/full) fails with EIO rather than leaving a short file unsaid. */
static void test_gzip_members_and_full_disk(void **state)
{
	(void)state;
	struct profile *p = build_profile();
	struct strbuf msg = STRBUF_INIT, gz = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	gzip_member(msg.data, msg.len / 2, &gz);
	gzip_member(msg.data + msg.len / 2, msg.len - msg.len / 2, &gz);
	struct profile *back = profile__new();
	char err[256] = "";
	int rc = pprof__read_buffer(back, gz.data, gz.len, err, sizeof(err));
	if (rc)
		fail_msg("two gzip members: %d %s", rc, err);
	assert_same_profile(p, back);
	profile__free(back);

	FILE *full = fopen("/dev/full", "w");
	assert_non_null(full);
	assert_int_equal(pprof__write(p, full), -EIO);
	fclose(full);
	strbuf__release(&msg);
	strbuf__release(&gz);
	profile__free(p);
}

static void test_empty_profile_round_trips(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	char err[256];
	int rc;
	struct profile *back = decode(msg.data, msg.len, &rc, err, sizeof(err));
	assert_non_null(back);
	assert_int_equal(profile__sample_count(back), 0);
	assert_string_equal(profile__value_type(back, 0), "samples");
	profile__free(back);
	profile__free(p);
	strbuf__release(&msg);
}

static void test_native_addresses_in_mapping(void **state)
{
	(void)state;
	/* Frames may hold the process address (as captured) or a file-relative
	 * one; either way pprof gets the process address and reading gives the
	 * file-relative one. */
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	uint32_t map;
	assert_int_equal(profile__add_mapping(p, 0x7f0000001000, 0x7f0000200000, 0x28000,
					      "/lib/libc.so.6", NULL, &map), 0);
	uint32_t absolute = add_frame(p, FRAME_NATIVE, "memcpy", "/lib/libc.so.6", NULL, 0, map,
				      0x7f0000002345);
	uint32_t relative = add_frame(p, FRAME_NATIVE, "memset", "/lib/libc.so.6", NULL, 0, map,
				      0x29345);
	const uint32_t stack[] = { absolute, relative };
	uint64_t one = 1;
	struct sample_desc sd = { .frames = stack, .nframes = 2, .values = &one };
	assert_int_equal(profile__add_sample(p, &sd), 0);

	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	char err[128];
	int rc;
	struct profile *back = decode(msg.data, msg.len, &rc, err, sizeof(err));
	assert_non_null(back);
	const struct profile_sample *s = profile__sample(back, 0);
	assert_int_equal(s->nframes, 2);
	const struct profile_frame *a = profile__frame(back, s->frames[0]);
	const struct profile_frame *b = profile__frame(back, s->frames[1]);
	assert_string_equal(profile__str(back, a->name), "memcpy");
	assert_int_equal(a->address, 0x2345 - 0x1000 + 0x28000);
	assert_string_equal(profile__str(back, b->name), "memset");
	assert_int_equal(b->address, 0x29345);
	assert_string_equal(profile__str(back, b->module), "/lib/libc.so.6");
	profile__free(back);
	profile__free(p);
	strbuf__release(&msg);
}

/* ------------------------------------------------------------ hand-built input */

/* Builders for messages the way other pprof producers write them. */
static void put_value_type(struct strbuf *sb, uint32_t field, uint64_t type, uint64_t unit)
{
	size_t m = pb__begin_message(sb, field);
	pb__put_varint_field(sb, 1, type);
	pb__put_varint_field(sb, 2, unit);
	pb__end_message(sb, m);
}

static void put_function(struct strbuf *sb, uint64_t id, uint64_t name, uint64_t file)
{
	size_t m = pb__begin_message(sb, 5);
	pb__put_varint_field(sb, 1, id);
	pb__put_varint_field(sb, 2, name);
	pb__put_varint_field(sb, 4, file);
	pb__end_message(sb, m);
}

static void put_line(struct strbuf *sb, uint64_t function_id, uint64_t line)
{
	size_t m = pb__begin_message(sb, 4);
	pb__put_varint_field(sb, 1, function_id);
	pb__put_varint_field(sb, 2, line);
	pb__end_message(sb, m);
}

static void put_label(struct strbuf *sb, uint64_t key, uint64_t str, uint64_t num, uint64_t unit)
{
	size_t m = pb__begin_message(sb, 3);
	pb__put_varint_field(sb, 1, key);
	if (str)
		pb__put_varint_field(sb, 2, str);
	if (num)
		pb__put_varint_field(sb, 3, num);
	if (unit)
		pb__put_varint_field(sb, 4, unit);
	pb__end_message(sb, m);
}

static void put_strings(struct strbuf *sb, const char *const *strings, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pb__put_bytes_field(sb, 6, strings[i], strlen(strings[i]));
}

enum {
	S_EMPTY, S_SAMPLES, S_COUNT, S_INNER, S_OUTER, S_MAIN, S_BIN, S_SRC, S_PID, S_COMM,
	S_APP, S_SIZE, S_BYTES, S_NSTRINGS
};
static const char *const hand_strings[S_NSTRINGS] = {
	"", "samples", "count", "inner", "outer", "main", "/bin/app", "app.c", "pid", "comm",
	"app", "size", "bytes",
};

/* A Go-style profile: string table first, an inlined call, numeric labels. */
static void build_hand_profile(struct strbuf *sb, int unpacked_locations)
{
	put_strings(sb, hand_strings, S_NSTRINGS);
	put_value_type(sb, 1, S_SAMPLES, S_COUNT);
	size_t m = pb__begin_message(sb, 3);
	pb__put_varint_field(sb, 1, 1);
	pb__put_varint_field(sb, 2, 0x400000);
	pb__put_varint_field(sb, 3, 0x500000);
	pb__put_varint_field(sb, 5, S_BIN);
	pb__end_message(sb, m);
	put_function(sb, 11, S_INNER, S_SRC);
	put_function(sb, 12, S_OUTER, S_SRC);
	put_function(sb, 13, S_MAIN, S_SRC);
	/* Location 100: inner() inlined into outer(); Lines innermost first. */
	m = pb__begin_message(sb, 4);
	put_line(sb, 11, 10);
	put_line(sb, 12, 20);
	pb__put_varint_field(sb, 1, 100); /* id after the Lines: order is free */
	pb__put_varint_field(sb, 2, 1);
	pb__put_varint_field(sb, 3, 0x401234);
	pb__end_message(sb, m);
	m = pb__begin_message(sb, 4);
	pb__put_varint_field(sb, 1, 200);
	pb__put_varint_field(sb, 2, 1);
	put_line(sb, 13, 5);
	pb__end_message(sb, m);
	/* Location 300: unsymbolized, no Lines. */
	m = pb__begin_message(sb, 4);
	pb__put_varint_field(sb, 1, 300);
	pb__put_varint_field(sb, 2, 1);
	pb__put_varint_field(sb, 3, 0x400abc);
	pb__end_message(sb, m);

	m = pb__begin_message(sb, 2);
	if (unpacked_locations) {
		pb__put_varint_field(sb, 1, 300);
		pb__put_varint_field(sb, 1, 100);
		pb__put_varint_field(sb, 1, 200);
		pb__put_varint_field(sb, 2, 7);
	} else {
		const uint64_t locs[] = { 300, 100, 200 }, value = 7;
		pb__put_packed_varints(sb, 1, locs, 3);
		pb__put_packed_varints(sb, 2, &value, 1);
	}
	put_label(sb, S_PID, 0, 42, 0);
	put_label(sb, S_COMM, S_APP, 0, 0);
	put_label(sb, S_SIZE, 0, 4096, S_BYTES);
	pb__end_message(sb, m);
}

static void test_read_inlined_and_go_style(void **state)
{
	(void)state;
	for (int unpacked = 0; unpacked <= 1; unpacked++) {
		struct strbuf sb = STRBUF_INIT;
		build_hand_profile(&sb, unpacked);
		assert_int_equal(strbuf__error(&sb), 0);
		char err[256];
		int rc;
		struct profile *p = decode(sb.data, sb.len, &rc, err, sizeof(err));
		if (!p)
			fail_msg("decode failed (%d): %s", rc, err);
		char *text = describe_samples(p);
		assert_string_equal(text,
			"pid=42 tid=0 comm=app size=4096 bytes |"
			" 0:main:/bin/app:app.c:5@/bin/app[]+0"
			" 0:outer:/bin/app:app.c:20@/bin/app[]+0x1234"
			" 0:inner:/bin/app:app.c:10@/bin/app[]+0x1234"
			" 0:app+0xabc:/bin/app::0@/bin/app[]+0xabc | 7\n");
		free(text);
		profile__free(p);
		strbuf__release(&sb);
	}
}

/* Decodes msg and expects -EINVAL with `reason` in the message. */
static void expect_rejected(const struct strbuf *msg, const char *reason)
{
	char err[256] = "";
	int rc;
	/* An exact-size heap copy, so ASan catches any read past the end. */
	unsigned char *copy = malloc(msg->len ? msg->len : 1);
	assert_non_null(copy);
	if (msg->len)
		memcpy(copy, msg->data, msg->len);
	struct profile *p = decode(copy, msg->len, &rc, err, sizeof(err));
	free(copy);
	if (p)
		fail_msg("accepted input that should fail with \"%s\"", reason);
	assert_int_equal(rc, -EINVAL);
	if (!strstr(err, reason))
		fail_msg("error \"%s\" does not mention \"%s\"", err, reason);
}

static void test_inconsistent_input_rejected(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;

	expect_rejected(&sb, "string_table"); /* empty input */

	pb__put_bytes_field(&sb, 6, "x", 1);
	expect_rejected(&sb, "string_table[0]");

	strbuf__reset(&sb);
	put_strings(&sb, hand_strings, S_NSTRINGS);
	put_value_type(&sb, 1, S_SAMPLES, 99);
	expect_rejected(&sb, "out of range");

	strbuf__reset(&sb);
	put_strings(&sb, hand_strings, S_NSTRINGS);
	for (int i = 0; i < PROFILE_MAX_VALUES + 1; i++)
		put_value_type(&sb, 1, S_SAMPLES, S_COUNT);
	expect_rejected(&sb, "sample types");

	/* Sample with two values for one sample type. */
	strbuf__reset(&sb);
	put_strings(&sb, hand_strings, S_NSTRINGS);
	put_value_type(&sb, 1, S_SAMPLES, S_COUNT);
	size_t m = pb__begin_message(&sb, 2);
	const uint64_t two[] = { 1, 2 };
	pb__put_packed_varints(&sb, 2, two, 2);
	pb__end_message(&sb, m);
	expect_rejected(&sb, "values");

	/* Sample pointing at a Location that does not exist. */
	strbuf__reset(&sb);
	put_strings(&sb, hand_strings, S_NSTRINGS);
	put_value_type(&sb, 1, S_SAMPLES, S_COUNT);
	m = pb__begin_message(&sb, 2);
	pb__put_varint_field(&sb, 1, 5);
	pb__put_varint_field(&sb, 2, 1);
	pb__end_message(&sb, m);
	expect_rejected(&sb, "Location id 5");

	/* Line naming a missing Function; duplicate Location ids. */
	strbuf__reset(&sb);
	put_strings(&sb, hand_strings, S_NSTRINGS);
	m = pb__begin_message(&sb, 4);
	pb__put_varint_field(&sb, 1, 1);
	put_line(&sb, 9, 1);
	pb__end_message(&sb, m);
	expect_rejected(&sb, "Function id 9");
	m = pb__begin_message(&sb, 4);
	pb__put_varint_field(&sb, 1, 1);
	pb__end_message(&sb, m);
	expect_rejected(&sb, "duplicate Location");

	/* Function name index beyond the table. */
	strbuf__reset(&sb);
	put_strings(&sb, hand_strings, S_NSTRINGS);
	put_function(&sb, 1, 1000, 0);
	expect_rejected(&sb, "Function.name");

	/* Known field with the wrong wire type. */
	strbuf__reset(&sb);
	put_strings(&sb, hand_strings, S_NSTRINGS);
	pb__put_varint_field(&sb, 2, 1);
	expect_rejected(&sb, "wire type");

	/* Not protobuf at all. */
	strbuf__reset(&sb);
	strbuf__puts(&sb, "this is not a profile\n");
	expect_rejected(&sb, "");
	strbuf__release(&sb);
}

static void test_every_truncation_rejected(void **state)
{
	(void)state;
	struct profile *p = build_profile();
	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	/* Every proper prefix cuts a field or drops strings still referenced. */
	for (size_t cut = 0; cut < msg.len; cut++) {
		unsigned char *copy = malloc(cut ? cut : 1);
		assert_non_null(copy);
		if (cut)
			memcpy(copy, msg.data, cut);
		char err[128];
		int rc;
		struct profile *back = decode(copy, cut, &rc, err, sizeof(err));
		free(copy);
		if (back)
			fail_msg("prefix of %zu/%zu bytes accepted", cut, msg.len);
		assert_int_equal(rc, -EINVAL);
	}

	/* Truncated gzip files fail as well. */
	FILE *f = tmpfile();
	assert_non_null(f);
	assert_int_equal(pprof__write(p, f), 0);
	size_t len;
	unsigned char *gz = slurp(f, &len);
	fclose(f);
	for (size_t cut = 1; cut < len; cut++) {
		FILE *in = fmemopen(gz, cut, "r");
		assert_non_null(in);
		struct profile *back = profile__new();
		char err[128];
		int rc = pprof__read(back, in, err, sizeof(err));
		if (rc != -EINVAL)
			fail_msg("gzip prefix of %zu/%zu bytes: rc %d", cut, len, rc);
		assert_true(err[0] != '\0');
		fclose(in);
		profile__free(back);
	}
	free(gz);
	profile__free(p);
	strbuf__release(&msg);
}

static void test_corrupted_input_never_crashes(void **state)
{
	(void)state;
	struct profile *p = build_profile();
	struct strbuf msg = STRBUF_INIT;
	assert_int_equal(pprof__encode(p, &msg), 0);
	unsigned char *copy = malloc(msg.len);
	assert_non_null(copy);
	/* Each byte flipped in turn: must decode or fail cleanly (ASan/UBSan watch). */
	int rejected = 0;
	for (size_t i = 0; i < msg.len; i++) {
		memcpy(copy, msg.data, msg.len);
		copy[i] ^= 0xff;
		char err[128];
		int rc;
		struct profile *back = decode(copy, msg.len, &rc, err, sizeof(err));
		if (back)
			profile__free(back);
		else
			rejected++;
		assert_true(rc == 0 || rc == -EINVAL);
	}
	assert_true(rejected > 0);
	free(copy);

	/* Pseudo-random garbage. */
	uint64_t seed = 42;
	for (int round = 0; round < 500; round++) {
		size_t len = 1 + (size_t)(round % 200);
		unsigned char *buf = malloc(len);
		assert_non_null(buf);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			buf[i] = (unsigned char)(seed >> 56);
		}
		char err[128];
		int rc;
		struct profile *back = decode(buf, len, &rc, err, sizeof(err));
		profile__free(back);
		assert_true(rc == 0 || rc == -EINVAL);
		free(buf);
	}
	profile__free(p);
	strbuf__release(&msg);
}

static void test_bad_gzip_rejected(void **state)
{
	(void)state;
	/* gzip magic followed by junk. */
	static unsigned char junk[] = { 0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef,
					0x00, 0x03, 0xff, 0xff, 0xff, 0xff, 0x00 };
	FILE *in = fmemopen(junk, sizeof(junk), "r");
	assert_non_null(in);
	struct profile *p = profile__new();
	char err[128];
	assert_int_equal(pprof__read(p, in, err, sizeof(err)), -EINVAL);
	assert_true(err[0] != '\0');
	fclose(in);
	profile__free(p);
}

/* ------------------------------------------------------------ go tool pprof */

/* Runs a shell command and returns its output (caller frees), or NULL. */
static char *run_command(const char *cmd)
{
	FILE *pipe = popen(cmd, "r");
	if (!pipe)
		return NULL;
	struct strbuf out = STRBUF_INIT;
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0)
		strbuf__append(&out, buf, n);
	int status = pclose(pipe);
	char *text = strdup(strbuf__str(&out));
	strbuf__release(&out);
	if (status != 0) {
		print_message("command failed (status %d): %s\n%s\n", status, cmd, text);
		free(text);
		return NULL;
	}
	return text;
}

/* Writes a pprof file where hot_function clearly dominates; *path gets its name. */
static void write_go_profile(char *path, size_t path_len)
{
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	uint32_t map;
	assert_int_equal(profile__add_mapping(p, 0x400000, 0x500000, 0, "/usr/bin/worker",
					      "deadbeef", &map), 0);
	uint32_t main_ = add_frame(p, FRAME_NATIVE, "main", "/usr/bin/worker", NULL, 0, map,
				   0x1100);
	uint32_t hot = add_frame(p, FRAME_PYTHON, "hot_function", NULL, "/srv/worker.py", 12, 0, 0);
	uint32_t cold = add_frame(p, FRAME_NATIVE, "cold_function", "/usr/bin/worker", NULL, 0, map,
				  0x1200);
	uint32_t sys = add_frame(p, FRAME_KERNEL, "do_syscall_64", "[kernel.kallsyms]", NULL, 0, 0,
				 0xffffffff81c00000);
	const uint32_t hot_stack[] = { main_, hot };
	const uint32_t cold_stack[] = { main_, cold };
	const uint32_t sys_stack[] = { main_, cold, sys };
	add_sample(p, hot_stack, 2, 4242, 4243, "myworker", "endpoint", "/api", 80);
	add_sample(p, cold_stack, 2, 4242, 4243, "myworker", NULL, NULL, 15);
	add_sample(p, sys_stack, 3, 4242, 4244, "myworker", NULL, NULL, 5);
	profile__set_time(p, INT64_C(1700000000000000000), INT64_C(1000000000));
	assert_int_equal(profile__set_period(p, "cpu", "nanoseconds", 10000000), 0);

	snprintf(path, path_len, "/tmp/dynoprof-test-pprof-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "wb");
	assert_non_null(f);
	assert_int_equal(pprof__write(p, f), 0);
	assert_int_equal(fclose(f), 0);
	profile__free(p);
}

static void test_go_tool_pprof_reads_it(void **state)
{
	(void)state;
	if (system("command -v go >/dev/null 2>&1") != 0) {
		print_message("SKIP: `go` is not on PATH; cannot check with go tool pprof\n");
		skip();
	}
	/* go needs a writable cache and home; pprof must not try the network. */
	if (!getenv("HOME"))
		setenv("HOME", "/tmp", 1);
	setenv("GOCACHE", "/tmp/dynoprof-gocache", 1);
	setenv("PPROF_TMPDIR", "/tmp", 1);
	unsetenv("GOFLAGS");

	char path[64];
	write_go_profile(path, sizeof(path));
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "go tool pprof -top %s 2>&1", path);
	char *top = run_command(cmd);
	if (!top) {
		unlink(path);
		fail_msg("go tool pprof -top failed");
	}
	/* The first row after the "flat  flat%" header names the top function. */
	const char *header = strstr(top, "flat%");
	if (!header)
		fail_msg("no table in go tool pprof output:\n%s", top);
	const char *row = strchr(header, '\n');
	assert_non_null(row);
	row++;
	const char *row_end = strchr(row, '\n');
	size_t row_len = row_end ? (size_t)(row_end - row) : strlen(row);
	char first[256];
	snprintf(first, sizeof(first), "%.*s", (int)(row_len < 255 ? row_len : 255), row);
	if (!strstr(first, "hot_function"))
		fail_msg("top entry is not hot_function: \"%s\"\nfull output:\n%s", first, top);
	/* "cpu" is the default sample type: 80 samples * 10ms = 800ms flat. */
	assert_non_null(strstr(first, "800ms"));
	assert_non_null(strstr(top, "Type: cpu"));
	assert_non_null(strstr(top, "cold_function"));
	assert_non_null(strstr(top, "do_syscall_64"));
	free(top);

	snprintf(cmd, sizeof(cmd), "go tool pprof -raw %s 2>&1", path);
	char *raw = run_command(cmd);
	if (!raw) {
		unlink(path);
		fail_msg("go tool pprof -raw failed");
	}
	if (!strstr(raw, "pid:[4242]") || !strstr(raw, "comm:[myworker]") ||
	    !strstr(raw, "tid:[4243]") || !strstr(raw, "endpoint:[/api]"))
		fail_msg("labels missing from go tool pprof -raw:\n%s", raw);
	assert_non_null(strstr(raw, "[kernel.kallsyms]"));
	assert_non_null(strstr(raw, "/usr/bin/worker"));
	/* Native addresses are placed inside their mapping (0x400000 + 0x1100). */
	assert_non_null(strstr(raw, "0x401100 M=1 main"));
	free(raw);

	snprintf(cmd, sizeof(cmd), "go tool pprof -traces %s 2>&1", path);
	char *traces = run_command(cmd);
	if (!traces) {
		unlink(path);
		fail_msg("go tool pprof -traces failed");
	}
	if (!strstr(traces, "comm:") || !strstr(traces, "myworker") || !strstr(traces, "4242"))
		fail_msg("labels missing from go tool pprof -traces:\n%s", traces);
	free(traces);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_encode_decode),
		cmocka_unit_test(test_write_is_gzip_and_reads_back),
		cmocka_unit_test(test_read_raw_uncompressed),
		cmocka_unit_test(test_read_buffer_gzip_or_raw),
		cmocka_unit_test(test_gzip_members_and_full_disk),
		cmocka_unit_test(test_empty_profile_round_trips),
		cmocka_unit_test(test_native_addresses_in_mapping),
		cmocka_unit_test(test_read_inlined_and_go_style),
		cmocka_unit_test(test_inconsistent_input_rejected),
		cmocka_unit_test(test_every_truncation_rejected),
		cmocka_unit_test(test_corrupted_input_never_crashes),
		cmocka_unit_test(test_bad_gzip_rejected),
		cmocka_unit_test(test_go_tool_pprof_reads_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
