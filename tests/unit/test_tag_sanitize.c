// SPDX-License-Identifier: MIT
/* tag_sanitize: untrusted tag bytes (read from other processes' memory) become
 * printable, valid UTF-8: valid text is kept, control characters and bytes
 * that are not valid UTF-8 become \xNN; the output is NUL-terminated within
 * its size and never splits a character or an escape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tags/tag_registry.h"

/* Sanitises in (in_len bytes) into a 256-byte buffer and compares. */
static void check(const char *in, size_t in_len, const char *want)
{
	char out[256];
	memset(out, 0x55, sizeof(out));
	tag_sanitize(in, in_len, out, sizeof(out));
	if (strcmp(out, want) != 0)
		fail_msg("sanitize gave '%s', want '%s'", out, want);
}

#define CHECK(lit, want) check(lit, sizeof(lit) - 1, want)

static void test_valid_text_kept(void **state)
{
	(void)state;
	CHECK("/api/v1/checkout?id=7", "/api/v1/checkout?id=7");
	CHECK("caf\xc3\xa9", "caf\xc3\xa9");                    /* 2 bytes */
	CHECK("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"); /* 3 bytes */
	CHECK("\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!");        /* 4 bytes */
	CHECK("\xef\xbf\xbd", "\xef\xbf\xbd");                  /* U+FFFD */
	CHECK("\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf");          /* U+10FFFF */
	CHECK("\xc2\xa0", "\xc2\xa0");                          /* U+00A0, first non-C1 */
	CHECK("", "");
}

static void test_controls_escaped(void **state)
{
	(void)state;
	CHECK("a\nb", "a\\x0ab");
	CHECK("\t\r\x1b[31m", "\\x09\\x0d\\x1b[31m");
	CHECK("x\x7f", "x\\x7f");
	/* C1 controls (U+0080..U+009F) are control characters too. */
	CHECK("a\xc2\x85z", "a\\xc2\\x85z");
	CHECK("\xc2\x9f", "\\xc2\\x9f");
}

static void test_invalid_bytes_escaped(void **state)
{
	(void)state;
	CHECK("\xff", "\\xff");
	CHECK("\x80x", "\\x80x");              /* lone continuation byte */
	CHECK("ab\xc3", "ab\\xc3");            /* truncated at the end */
	CHECK("\xc3(", "\\xc3(");              /* bad continuation */
	CHECK("\xe6\x97(", "\\xe6\\x97(");
	CHECK("\xc0\xaf", "\\xc0\\xaf");       /* overlong '/' */
	CHECK("\xc1\xbf", "\\xc1\\xbf");
	CHECK("\xe0\x80\xaf", "\\xe0\\x80\\xaf"); /* overlong, 3 bytes */
	CHECK("\xf0\x80\x80\xaf", "\\xf0\\x80\\x80\\xaf"); /* overlong, 4 bytes */
	CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80"); /* UTF-16 surrogate */
	CHECK("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* above U+10FFFF */
	CHECK("\xf5\x80\x80\x80", "\\xf5\\x80\\x80\\x80");
	/* The sequence's end is bounded by in_len, not by what follows. */
	check("\xc3\xa9", 1, "\\xc3");
}

static void test_input_bounds(void **state)
{
	(void)state;
	check("abcdef", 3, "abc");
	check("ab\0cd", 5, "ab"); /* a NUL ends the text */
	check("abc", 0, "");
}

static void test_output_bounds(void **state)
{
	(void)state;
	char out[16];

	memset(out, 'Z', sizeof(out));
	tag_sanitize("abcdef", 6, out, 4);
	assert_string_equal(out, "abc");
	assert_int_equal(out[4], 'Z');

	memset(out, 'Z', sizeof(out));
	tag_sanitize("abcdef", 6, out, 1);
	assert_string_equal(out, "");
	assert_int_equal(out[1], 'Z');

	/* Size 0: nothing is written. */
	memset(out, 'Z', sizeof(out));
	tag_sanitize("abcdef", 6, out, 0);
	assert_int_equal(out[0], 'Z');

	/* A character or an escape that does not fit is left out whole. */
	memset(out, 'Z', sizeof(out));
	tag_sanitize("ab\xc3\xa9", 4, out, 4);
	assert_string_equal(out, "ab");
	tag_sanitize("ab\xc3\xa9", 4, out, 5);
	assert_string_equal(out, "ab\xc3\xa9");
	memset(out, 'Z', sizeof(out));
	tag_sanitize("ab\n", 3, out, 6);
	assert_string_equal(out, "ab");
	assert_int_equal(out[6], 'Z');
	tag_sanitize("ab\n", 3, out, 7);
	assert_string_equal(out, "ab\\x0a");
	tag_sanitize("\xf0\x9f\x98\x80", 4, out, 4);
	assert_string_equal(out, "");
	tag_sanitize("\xf0\x9f\x98\x80", 4, out, 5);
	assert_string_equal(out, "\xf0\x9f\x98\x80");
}

/* Length of the strictly valid, non-control UTF-8 character at s, or 0. */
static size_t strict_char(const unsigned char *s)
{
	unsigned c = s[0];
	uint32_t cp;
	size_t n;
	if (c >= 0x20 && c < 0x7f)
		return 1;
	if (c >= 0xc0 && c < 0xe0) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c < 0xf0) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c < 0xf8) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t k = 1; k < n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[k] & 0x3f);
	}
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || cp < 0xa0)
		return 0;
	return n;
}

/* Random bytes (biased towards UTF-8 lead and continuation bytes): the
 * output always fits, is strictly valid UTF-8 without control characters,
 * and valid input characters survive. */
static void test_random_input_always_valid(void **state)
{
	(void)state;
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	unsigned char in[64];
	char out[96];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = 0, len = 1 + (size_t)(iter % (int)sizeof(out));
		for (; n < sizeof(in); n++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			unsigned b = (unsigned)(x >> 32) & 0xff;
			switch ((x >> 16) & 3) {
			case 0: in[n] = (unsigned char)(0x80 | (b & 0x3f)); break;
			case 1: in[n] = (unsigned char)(0xc0 | (b & 0x3f)); break;
			default: in[n] = (unsigned char)(b ? b : 'a'); break;
			}
		}
		memset(out, 'Z', sizeof(out));
		tag_sanitize((const char *)in, n, out, len);
		size_t olen = strnlen(out, len);
		assert_true(olen < len);
		for (size_t i = len; i < sizeof(out); i++)
			assert_int_equal(out[i], 'Z');
		const unsigned char *o = (const unsigned char *)out;
		for (size_t i = 0; i < olen;) {
			size_t k = strict_char(o + i);
			if (!k)
				fail_msg("iteration %d: invalid output byte 0x%02x at %zu", iter,
					 o[i], i);
			i += k;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_text_kept),
		cmocka_unit_test(test_controls_escaped),
		cmocka_unit_test(test_invalid_bytes_escaped),
		cmocka_unit_test(test_input_bounds),
		cmocka_unit_test(test_output_bounds),
		cmocka_unit_test(test_random_input_always_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
