// SPDX-License-Identifier: MIT
/* Time and duration parameters of the agent's HTTP API: unix seconds with
 * fractions, RFC 3339 with offsets and fractions, and everything a user could
 * mistype being refused rather than read as something else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <cmocka.h>

#include "agent/http_gate.h"
#include "agent/http_server.h"

#define NS 1000000000LL

static void expect_time(const char *text, int64_t want_ns)
{
	int64_t got = -1;
	int err = http_parse_time(text, &got);
	if (err || got != want_ns)
		fail_msg("'%s': err %d, got %lld, want %lld", text, err, (long long)got,
			 (long long)want_ns);
}

static void expect_bad_time(const char *text)
{
	int64_t got = 12345;
	int err = http_parse_time(text, &got);
	if (err != -EINVAL)
		fail_msg("'%s' should be refused, got err %d value %lld", text, err,
			 (long long)got);
}

static void test_unix_seconds(void **state)
{
	(void)state;
	expect_time("0", 0);
	expect_time("1732233600", 1732233600LL * NS);
	expect_time("1732233600.5", 1732233600LL * NS + 500000000);
	expect_time("1732233600.000000001", 1732233600LL * NS + 1);
	expect_time("1732233600.123456789", 1732233600LL * NS + 123456789);
	/* Digits past nanoseconds are accepted and truncated. */
	expect_time("1732233600.1234567899", 1732233600LL * NS + 123456789);
	/* The largest representable instant. */
	expect_time("9223372036.854775807", INT64_MAX);
}

static void test_rfc3339(void **state)
{
	(void)state;
	expect_time("1970-01-01T00:00:00Z", 0);
	expect_time("2026-11-22T01:00:00Z", 1795309200LL * NS);
	expect_time("2026-11-22T01:00:00+00:00", 1795309200LL * NS);
	expect_time("2026-11-22T01:00:00+02:00", 1795302000LL * NS);
	expect_time("2026-11-22T01:00:00-05:30", 1795329000LL * NS);
	expect_time("2026-11-22T01:00:00.25Z", 1795309200LL * NS + 250000000);
	expect_time("2026-11-22T01:00:00.123456789+02:00", 1795302000LL * NS + 123456789);
	/* "+02:00" typed unencoded into a URL reaches the handler as " 02:00". */
	expect_time("2026-11-22T01:00:00 02:00", 1795302000LL * NS);
	/* RFC 3339 allows lower case and a space separator. */
	expect_time("2026-11-22t01:00:00z", 1795309200LL * NS);
	expect_time("2026-11-22 01:00:00Z", 1795309200LL * NS);
	expect_time("2024-02-29T00:00:00Z", 1709164800LL * NS);
	expect_time("2000-03-01T12:34:56Z", 951914096LL * NS);
	/* A leap second lands on the next minute. */
	expect_time("2016-12-31T23:59:60Z", 1483228800LL * NS);
	expect_time("2262-04-11T23:47:16.854775807Z", INT64_MAX);
}

static void test_bad_times(void **state)
{
	(void)state;
	const char *bad[] = {
		"", "abc", "now", "-1", "+5", "-0.5", "1.", ".5", "1e9", "0x10", " 12", "12 ",
		"1732233600x", "1732233600.5s", "1,5", "inf", "nan",
		/* huge */
		"99999999999999999999", "9223372036854775807", "9223372036.854775808",
		"18446744073709551616",
		/* dates that do not exist or are out of range */
		"2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z",
		"2026-04-31T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T01:60:00Z",
		"2026-11-22T01:00:61Z", "1969-12-31T23:59:59Z", "0000-01-01T00:00:00Z",
		"1970-01-01T00:30:00+01:00", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z",
		"2262-04-11T23:47:16.854775808Z",
		/* malformed */
		"2026-11-22", "2026-11-22T01:00Z", "2026-11-22T01:00:00", "2026-11-22T1:00:00Z",
		"2026-11-22T01:00:00+0200", "2026-11-22T01:00:00+02", "2026-11-22T01:00:00+24:00",
		"2026-11-22T01:00:00+02:60", "2026-11-22T01:00:00.Z", "2026-11-22T01:00:00Zjunk",
		"2026-11-22T01:00:00Z ", "2026-11-22X01:00:00Z", "26-11-22T01:00:00Z",
		"2026/11/22T01:00:00Z", "2026-11-22T01:00:00 +02:00",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_time(bad[i]);
	int64_t ns;
	assert_int_equal(http_parse_time(NULL, &ns), -EINVAL);
	char longtext[200];
	memset(longtext, '1', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	expect_bad_time(longtext);
}

static void test_seconds(void **state)
{
	(void)state;
	double s = 0;
	assert_int_equal(http_parse_seconds("30", 600, &s), 0);
	assert_true(s == 30.0);
	assert_int_equal(http_parse_seconds("0.5", 600, &s), 0);
	assert_true(s == 0.5);
	assert_int_equal(http_parse_seconds("600", 600, &s), 0);
	assert_true(s == 600.0);
	assert_int_equal(http_parse_seconds("007", 600, &s), 0);
	assert_true(s == 7.0);

	const char *bad[] = {
		"", "0", "0.0", "-1", "+1", "600.001", "601", "1e3", "1e-3", "inf", "nan",
		"Infinity", "0x10", " 5", "5 ", "5s", "1.", ".5", "1..2",
		"999999999999999999999999999999",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = -1;
		if (http_parse_seconds(bad[i], 600, &s) != -EINVAL)
			fail_msg("seconds '%s' should be refused (got %g)", bad[i], s);
		assert_true(s == -1);
	}
	assert_int_equal(http_parse_seconds(NULL, 600, &s), -EINVAL);
}

/* Error messages quote decoded parameters: control bytes come out escaped,
 * the message stays one line, UTF-8 passes. */
static void test_error_escapes_controls(void **state)
{
	(void)state;
	struct http_response r = { .status = 200, .body = STRBUF_INIT };
	http_response__error(&r, 400, "bad pid '%s'", "1\r\nSet-Cookie: x\t\x01\x1b[31m\x7f\xc3\xa9");
	assert_int_equal(r.status, 400);
	assert_string_equal(strbuf__str(&r.body),
			    "bad pid '1\\r\\nSet-Cookie: x\\t\\x01\\x1b[31m\\x7f\xc3\xa9'\n");
	/* A second error replaces the first. */
	http_response__error(&r, 404, "%s", "plain");
	assert_string_equal(strbuf__str(&r.body), "plain\n");
	strbuf__release(&r.body);
}

/* A request head ends at its first empty line after the request line. */
static void test_head_end_skips_leading_lines(void **state)
{
	(void)state;
	const char *h = "\r\n\nGET / HTTP/1.1\r\nA: b\n\r\nbody";
	assert_int_equal(http_gate__head_end(h, strlen(h)), strlen(h) - 4);
	assert_int_equal(http_gate__head_end(h, strlen(h) - 5), 0);
	assert_int_equal(http_gate__head_end("\n\n\n", 3), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_seconds),
		cmocka_unit_test(test_rfc3339),
		cmocka_unit_test(test_bad_times),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test(test_error_escapes_controls),
		cmocka_unit_test(test_head_end_skips_leading_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
