// SPDX-License-Identifier: MIT
/* Unit tests for the protobuf wire-format writer and reader. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats/protobuf.h"

/* Encodes v and checks the exact bytes, then decodes them back. */
static void check_varint(uint64_t v, const uint8_t *expected, size_t expected_len)
{
	struct strbuf sb = STRBUF_INIT;
	pb__put_varint(&sb, v);
	assert_int_equal(strbuf__error(&sb), 0);
	assert_int_equal(sb.len, expected_len);
	assert_memory_equal(sb.data, expected, expected_len);

	struct pb_reader r;
	uint64_t back = 12345;
	pb__reader_init(&r, sb.data, sb.len);
	assert_int_equal(pb__read_varint(&r, &back), 0);
	assert_true(back == v);
	assert_false(pb__reader_more(&r));

	/* Every proper prefix is a truncated varint. */
	for (size_t cut = 0; cut < sb.len; cut++) {
		pb__reader_init(&r, sb.data, cut);
		assert_int_equal(pb__read_varint(&r, &back), -EINVAL);
	}
	strbuf__release(&sb);
}

static void test_varint_edges(void **state)
{
	(void)state;
	check_varint(0, (const uint8_t[]){ 0x00 }, 1);
	check_varint(1, (const uint8_t[]){ 0x01 }, 1);
	check_varint(127, (const uint8_t[]){ 0x7f }, 1);
	check_varint(128, (const uint8_t[]){ 0x80, 0x01 }, 2);
	check_varint(300, (const uint8_t[]){ 0xac, 0x02 }, 2);
	check_varint(16383, (const uint8_t[]){ 0xff, 0x7f }, 2);
	check_varint(16384, (const uint8_t[]){ 0x80, 0x80, 0x01 }, 3);
	check_varint(UINT64_C(1) << 63,
		     (const uint8_t[]){ 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 },
		     10);
	check_varint(UINT64_MAX,
		     (const uint8_t[]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 },
		     10);
	/* A negative int64, as pprof's int64 fields carry it: 10 bytes. */
	check_varint((uint64_t)(int64_t)-1,
		     (const uint8_t[]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01 },
		     10);
}

static void test_varint_overflow_rejected(void **state)
{
	(void)state;
	struct pb_reader r;
	uint64_t v;
	/* 11 bytes: longer than any 64-bit value. */
	const uint8_t too_long[] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	pb__reader_init(&r, too_long, sizeof(too_long));
	assert_int_equal(pb__read_varint(&r, &v), -EINVAL);
	/* 10 bytes whose last carries more than bit 63. */
	const uint8_t overflow[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 };
	pb__reader_init(&r, overflow, sizeof(overflow));
	assert_int_equal(pb__read_varint(&r, &v), -EINVAL);
	/* Empty input. */
	pb__reader_init(&r, NULL, 0);
	assert_int_equal(pb__read_varint(&r, &v), -EINVAL);
	assert_false(pb__reader_more(&r));
}

static void test_fields_round_trip(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	pb__put_varint_field(&sb, 1, 150);
	pb__put_bytes_field(&sb, 2, "testing", 7);
	pb__put_bytes_field(&sb, 3, NULL, 0);
	const uint64_t packed[] = { 3, 270, 86942, UINT64_MAX };
	pb__put_packed_varints(&sb, 4, packed, 4);
	pb__put_packed_varints(&sb, 5, packed, 0); /* writes nothing */
	pb__put_varint_field(&sb, PB_MAX_FIELD_NUMBER, 7);
	assert_int_equal(strbuf__error(&sb), 0);
	/* The classic examples from the protobuf encoding guide. */
	assert_memory_equal(sb.data, "\x08\x96\x01", 3);
	assert_memory_equal(sb.data + 3, "\x12\x07testing", 9);

	struct pb_reader r;
	struct pb_field f;
	pb__reader_init(&r, sb.data, sb.len);
	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.number, 1);
	assert_int_equal(f.wire, PB_WIRE_VARINT);
	assert_int_equal(f.value, 150);

	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.number, 2);
	assert_int_equal(f.wire, PB_WIRE_LEN);
	assert_int_equal(f.len, 7);
	assert_memory_equal(f.data, "testing", 7);

	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.number, 3);
	assert_int_equal(f.len, 0);

	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.number, 4);
	struct pb_reader values;
	assert_int_equal(pb__field_varints(&f, &values), 0);
	for (size_t i = 0; i < 4; i++) {
		uint64_t v;
		assert_true(pb__reader_more(&values));
		assert_int_equal(pb__read_varint(&values, &v), 0);
		assert_true(v == packed[i]);
	}
	assert_false(pb__reader_more(&values));

	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.number, PB_MAX_FIELD_NUMBER);
	assert_int_equal(f.value, 7);
	assert_int_equal(pb__next_field(&r, &f), 0);
	strbuf__release(&sb);
}

static void test_unpacked_repeated_varint(void **state)
{
	(void)state;
	/* An encoder may write a repeated varint one value per field. */
	struct strbuf sb = STRBUF_INIT;
	pb__put_varint_field(&sb, 1, 128);
	struct pb_reader r, values;
	struct pb_field f;
	uint64_t v;
	pb__reader_init(&r, sb.data, sb.len);
	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(pb__field_varints(&f, &values), 0);
	assert_int_equal(pb__read_varint(&values, &v), 0);
	assert_int_equal(v, 128);
	assert_false(pb__reader_more(&values));
	strbuf__release(&sb);

	/* Fixed-width fields are no varint list. */
	const uint8_t fixed32[] = { 0x0d, 1, 2, 3, 4 };
	pb__reader_init(&r, fixed32, sizeof(fixed32));
	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.wire, PB_WIRE_FIXED32);
	assert_int_equal(f.value, 0x04030201);
	assert_int_equal(pb__field_varints(&f, &values), -EINVAL);
}

static void test_nested_messages(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	/* Outer body > 127 bytes (2-byte length), inner small and empty ones. */
	size_t outer = pb__begin_message(&sb, 7);
	size_t inner = pb__begin_message(&sb, 1);
	pb__put_varint_field(&sb, 1, 42);
	pb__end_message(&sb, inner);
	char big[300];
	memset(big, 'x', sizeof(big));
	pb__put_bytes_field(&sb, 2, big, sizeof(big));
	size_t empty = pb__begin_message(&sb, 3);
	pb__end_message(&sb, empty);
	pb__end_message(&sb, outer);
	pb__put_varint_field(&sb, 8, 1);
	assert_int_equal(strbuf__error(&sb), 0);

	struct pb_reader r, r2, r3;
	struct pb_field f, g, h;
	pb__reader_init(&r, sb.data, sb.len);
	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.number, 7);
	assert_int_equal(f.len, 2 + 2 + 3 + 300 + 2);

	pb__reader_init(&r2, f.data, f.len);
	assert_int_equal(pb__next_field(&r2, &g), 1);
	assert_int_equal(g.number, 1);
	pb__reader_init(&r3, g.data, g.len);
	assert_int_equal(pb__next_field(&r3, &h), 1);
	assert_int_equal(h.value, 42);
	assert_int_equal(pb__next_field(&r3, &h), 0);
	assert_int_equal(pb__next_field(&r2, &g), 1);
	assert_int_equal(g.len, 300);
	assert_int_equal(pb__next_field(&r2, &g), 1);
	assert_int_equal(g.number, 3);
	assert_int_equal(g.len, 0);
	assert_int_equal(pb__next_field(&r2, &g), 0);

	assert_int_equal(pb__next_field(&r, &f), 1);
	assert_int_equal(f.number, 8);
	assert_int_equal(pb__next_field(&r, &f), 0);
	strbuf__release(&sb);
}

static void test_malformed_fields(void **state)
{
	(void)state;
	struct pb_reader r;
	struct pb_field f;
	const struct {
		const char *what;
		const uint8_t bytes[8];
		size_t len;
	} cases[] = {
		{ "field number 0", { 0x00, 0x01 }, 2 },
		{ "group start", { 0x0b }, 1 },
		{ "group end", { 0x0c }, 1 },
		{ "wire type 6", { 0x0e, 0x00 }, 2 },
		{ "wire type 7", { 0x0f, 0x00 }, 2 },
		{ "truncated key", { 0x80 }, 1 },
		{ "truncated varint value", { 0x08, 0x80 }, 2 },
		{ "missing varint value", { 0x08 }, 1 },
		{ "length past the end", { 0x12, 0x05, 'a', 'b' }, 4 },
		{ "huge length", { 0x12, 0xff, 0xff, 0xff, 0xff, 0x0f, 'a' }, 7 },
		{ "truncated length", { 0x12, 0x80 }, 2 },
		{ "truncated fixed64", { 0x09, 1, 2, 3, 4, 5, 6, 7 }, 8 },
		{ "truncated fixed32", { 0x0d, 1, 2, 3 }, 4 },
		{ "field number too large", { 0xf8, 0xff, 0xff, 0xff, 0x1f, 0 }, 6 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pb__reader_init(&r, cases[i].bytes, cases[i].len);
		int rc = pb__next_field(&r, &f);
		if (rc != -EINVAL)
			fail_msg("%s: got %d, expected -EINVAL", cases[i].what, rc);
	}
}

static void test_garbage_never_reads_out_of_bounds(void **state)
{
	(void)state;
	/* Random bytes in exactly-sized heap buffers: ASan flags any overread. */
	uint64_t seed = 0x9e3779b97f4a7c15u;
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(round % 64);
		uint8_t *buf = malloc(len ? len : 1);
		assert_non_null(buf);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 6364136223846793005u + 1442695040888963407u;
			buf[i] = (uint8_t)(seed >> 56);
		}
		struct pb_reader r;
		struct pb_field f;
		int rc;
		pb__reader_init(&r, buf, len);
		while ((rc = pb__next_field(&r, &f)) > 0) {
			assert_true(f.data == NULL || (f.data >= buf && f.data + f.len <= buf + len));
			struct pb_reader values;
			if (pb__field_varints(&f, &values) == 0) {
				uint64_t v;
				while (pb__reader_more(&values) && pb__read_varint(&values, &v) == 0)
					;
			}
		}
		assert_true(rc == 0 || rc == -EINVAL);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint_edges),
		cmocka_unit_test(test_varint_overflow_rejected),
		cmocka_unit_test(test_fields_round_trip),
		cmocka_unit_test(test_unpacked_repeated_varint),
		cmocka_unit_test(test_nested_messages),
		cmocka_unit_test(test_malformed_fields),
		cmocka_unit_test(test_garbage_never_reads_out_of_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
