// SPDX-License-Identifier: MIT
/* `dynoprof agent` settings: the documented defaults, every key with good and
 * bad values (a bad value keeps the old one), config files with comments and
 * blank lines, errors naming FILE:LINE, and the duration/size parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/config.h"

/* Writes text to a fresh temporary file; path gets its name. */
static void write_temp(char *path, size_t len, const char *text)
{
	snprintf(path, len, "/tmp/test_config.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
}

static void test_defaults(void **state)
{
	(void)state;
	struct agent_config c;
	memset(&c, 0xab, sizeof(c));
	agent_config__defaults(&c);
	assert_string_equal(c.listen_address, "127.0.0.1");
	assert_int_equal(c.listen_port, 9464);
	assert_false(c.listen_remote);
	assert_string_equal(c.token_file, "");
	assert_int_equal(c.frequency_hz, 19);
	assert_true(c.window_s == 10);
	assert_string_equal(c.database, "/var/lib/dynoprof/history.db");
	assert_int_equal(c.retention_age_s, 7 * 86400);
	assert_int_equal(c.retention_bytes, 1LL << 30);
	assert_true(c.python);
	assert_true(c.tags);
	assert_true(c.kernel);
	assert_string_equal(c.endpoint_from, "");
	assert_int_equal(c.max_series, 1000);
	assert_true(c.max_query_s == 300);
	assert_int_equal(c.max_range_s, 7 * 86400);
	assert_true(c.deploy_check_s == 300);
	assert_true(c.deploy_min_effect == 0.02);
	assert_true(c.deploy_confidence == 0.95);
}

static void test_describe_lists_every_key(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	agent_config__describe(f);
	fclose(f);
	const char *keys[] = { "listen", "listen_remote", "token_file", "frequency", "event", "window",
			       "database", "retention_age", "retention_size", "python", "tags",
			       "kernel", "endpoint_from", "max_series", "max_query_seconds",
			       "max_query_range", "deploy_check_window",
			       "deploy_check_min_effect", "deploy_check_confidence" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		assert_non_null(strstr(text, keys[i]));
	assert_non_null(strstr(text, "127.0.0.1:9464"));
	free(text);
}

/* Sets key=value expecting success. */
static void set_ok(struct agent_config *c, const char *key, const char *value)
{
	char err[256] = "";
	int e = agent_config__set(c, key, value, err, sizeof(err));
	if (e)
		fail_msg("%s = %s: %d %s", key, value, e, err);
}

/* Sets key=value expecting -EINVAL with a message naming the key and value. */
static void set_bad(struct agent_config *c, const char *key, const char *value)
{
	char err[256] = "";
	int e = agent_config__set(c, key, value, err, sizeof(err));
	if (e != -EINVAL)
		fail_msg("%s = '%s': expected -EINVAL, got %d", key, value, e);
	assert_non_null(strstr(err, key));
	assert_non_null(strstr(err, value));
}

static void test_set_good_values(void **state)
{
	(void)state;
	struct agent_config c;
	agent_config__defaults(&c);

	set_ok(&c, "listen", "0.0.0.0:8080");
	assert_string_equal(c.listen_address, "0.0.0.0");
	assert_int_equal(c.listen_port, 8080);
	set_ok(&c, "listen", "[::1]:9464");
	assert_string_equal(c.listen_address, "::1");
	assert_int_equal(c.listen_port, 9464);
	set_ok(&c, "listen", "localhost:1");
	assert_string_equal(c.listen_address, "localhost");
	assert_int_equal(c.listen_port, 1);

	for (int i = 0; i < 2; i++) {
		const char *t = i ? "yes" : "true", *f = i ? "off" : "0";
		set_ok(&c, "listen_remote", t);
		assert_true(c.listen_remote);
		set_ok(&c, "listen_remote", f);
		assert_false(c.listen_remote);
		set_ok(&c, "python", f);
		assert_false(c.python);
		set_ok(&c, "python", t);
		assert_true(c.python);
		set_ok(&c, "tags", f);
		assert_false(c.tags);
		set_ok(&c, "kernel", f);
		assert_false(c.kernel);
		set_ok(&c, "kernel", t);
		assert_true(c.kernel);
	}

	set_ok(&c, "token_file", "/etc/dynoprof/token");
	assert_string_equal(c.token_file, "/etc/dynoprof/token");
	set_ok(&c, "token_file", "");
	assert_string_equal(c.token_file, "");
	assert_false(c.sample_on_tick);
	set_ok(&c, "event", "tick");
	assert_true(c.sample_on_tick);
	set_ok(&c, "event", "cpu-clock");
	assert_false(c.sample_on_tick);
	set_ok(&c, "frequency", "1");
	assert_int_equal(c.frequency_hz, 1);
	set_ok(&c, "frequency", "1000");
	assert_int_equal(c.frequency_hz, 1000);
	set_ok(&c, "window", "60");
	assert_true(c.window_s == 60);
	set_ok(&c, "window", "3600");
	assert_true(c.window_s == 3600);
	set_ok(&c, "database", "/tmp/h.db");
	assert_string_equal(c.database, "/tmp/h.db");
	set_ok(&c, "retention_age", "30d");
	assert_int_equal(c.retention_age_s, 30 * 86400);
	set_ok(&c, "retention_age", "60");
	assert_int_equal(c.retention_age_s, 60);
	set_ok(&c, "retention_size", "512MiB");
	assert_int_equal(c.retention_bytes, 512LL << 20);
	set_ok(&c, "retention_size", "1MiB");
	assert_int_equal(c.retention_bytes, 1LL << 20);
	set_ok(&c, "endpoint_from", "frame=myapp.dispatch");
	assert_string_equal(c.endpoint_from, "frame=myapp.dispatch");
	set_ok(&c, "max_series", "10");
	assert_int_equal(c.max_series, 10);
	set_ok(&c, "max_series", "1000000");
	assert_int_equal(c.max_series, 1000000);
	set_ok(&c, "max_query_seconds", "3600");
	assert_true(c.max_query_s == 3600);
	set_ok(&c, "max_query_range", "12h");
	assert_int_equal(c.max_range_s, 12 * 3600);
	set_ok(&c, "deploy_check_window", "10m");
	assert_true(c.deploy_check_s == 600);
	set_ok(&c, "deploy_check_window", "5");
	assert_true(c.deploy_check_s == 5);
	set_ok(&c, "deploy_check_min_effect", "0.1");
	assert_true(c.deploy_min_effect == 0.1);
	set_ok(&c, "deploy_check_confidence", "0.999");
	assert_true(c.deploy_confidence == 0.999);
}

static void test_set_bad_values_keep_old(void **state)
{
	(void)state;
	struct agent_config c, before;
	agent_config__defaults(&c);
	before = c;

	const char *bad[][2] = {
		{ "listen", "9464" },          /* no address */
		{ "listen", ":9464" },         /* empty address */
		{ "listen", "127.0.0.1:" },    /* no port */
		{ "listen", "127.0.0.1:65536" },
		{ "listen", "127.0.0.1:http" },
		{ "listen", "[::1]9464" },
		{ "listen", "[::1" },
		{ "listen_remote", "maybe" },
		{ "listen_remote", "" },
		{ "python", "TRUE!" },
		{ "tags", "2" },
		{ "kernel", "nope" },
		{ "frequency", "0" },
		{ "frequency", "1001" },
		{ "frequency", "-5" },
		{ "frequency", "19hz" },
		{ "frequency", "" },
		{ "event", "cycles" },
		{ "event", "" },
		{ "window", "0" },
		{ "window", "3601" },
		{ "window", "ten" },
		{ "database", "" },
		{ "retention_age", "59" },     /* below a minute */
		{ "retention_age", "7w" },
		{ "retention_age", "-1d" },
		{ "retention_size", "1KiB" },  /* below 1 MiB */
		{ "retention_size", "1TB" },
		{ "retention_size", "lots" },
		{ "max_series", "9" },
		{ "max_series", "1000001" },
		{ "max_query_seconds", "0" },
		{ "max_query_seconds", "3601" },
		{ "max_query_seconds", "5m" },
		{ "max_query_range", "0" },
		{ "max_query_range", "forever" },
		{ "deploy_check_window", "4" },
		{ "deploy_check_window", "2d" },
		{ "deploy_check_min_effect", "0" },
		{ "deploy_check_min_effect", "10" },
		{ "deploy_check_min_effect", "2%" },
		{ "deploy_check_min_effect", "" },
		{ "deploy_check_confidence", "1" },
		{ "deploy_check_confidence", "0.4" },
		{ "deploy_check_confidence", "95%" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_bad(&c, bad[i][0], bad[i][1]);
		if (memcmp(&c, &before, sizeof(c)) != 0)
			fail_msg("%s = '%s' was refused but changed the config", bad[i][0],
				 bad[i][1]);
	}

	/* Values too long for their field are refused, not truncated. */
	char longv[400];
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	char err[512];
	assert_int_equal(agent_config__set(&c, "token_file", longv, err, sizeof(err)), -EINVAL);
	assert_int_equal(agent_config__set(&c, "database", longv, err, sizeof(err)), -EINVAL);
	assert_int_equal(agent_config__set(&c, "endpoint_from", longv, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(agent_config__set(&c, "listen", longv, err, sizeof(err)), -EINVAL);
	assert_string_equal(c.token_file, before.token_file);
	assert_string_equal(c.database, before.database);
	assert_string_equal(c.endpoint_from, before.endpoint_from);
	assert_string_equal(c.listen_address, before.listen_address);
}

static void test_set_unknown_key(void **state)
{
	(void)state;
	struct agent_config c;
	char err[256] = "";
	agent_config__defaults(&c);
	assert_int_equal(agent_config__set(&c, "frequncy", "99", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "frequncy"));
	assert_int_equal(c.frequency_hz, 19);
}

static void test_load_file(void **state)
{
	(void)state;
	char path[64];
	write_temp(path, sizeof(path),
		   "# dynoprof agent settings\n"
		   "\n"
		   "listen = [::1]:9999\n"
		   "   frequency=99   # more samples\n"
		   "\t\n"
		   "retention_age = 12h\n"
		   "retention_size = 100MB\n"
		   "python = false\n"
		   "endpoint_from = django\n"
		   "database = /tmp/x.db");  /* last line without newline */
	struct agent_config c;
	char err[256] = "";
	agent_config__defaults(&c);
	int e = agent_config__load(&c, path, err, sizeof(err));
	if (e)
		fail_msg("load: %d %s", e, err);
	assert_string_equal(c.listen_address, "::1");
	assert_int_equal(c.listen_port, 9999);
	assert_int_equal(c.frequency_hz, 99);
	assert_int_equal(c.retention_age_s, 12 * 3600);
	assert_int_equal(c.retention_bytes, 100000000);
	assert_false(c.python);
	assert_string_equal(c.endpoint_from, "django");
	assert_string_equal(c.database, "/tmp/x.db");
	/* Keys not in the file keep their values. */
	assert_true(c.window_s == 10);
	assert_true(c.kernel);
	unlink(path);
}

/* Loads text expecting error code want with "PATH:LINE:" and needle in the message. */
static void load_bad(const char *text, int want, int line, const char *needle)
{
	char path[64], err[512] = "", prefix[96];
	write_temp(path, sizeof(path), text);
	struct agent_config c;
	agent_config__defaults(&c);
	int e = agent_config__load(&c, path, err, sizeof(err));
	unlink(path);
	if (e != want)
		fail_msg("expected %d, got %d (%s)", want, e, err);
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", err, prefix);
	if (!strstr(err, needle))
		fail_msg("message '%s' does not mention '%s'", err, needle);
}

static void test_load_errors(void **state)
{
	(void)state;
	load_bad("# ok\nwindow = 10\nfrequency = 5000\n", -EINVAL, 3, "frequency");
	load_bad("\n\nlisten 127.0.0.1:1\n", -EINVAL, 3, "key = value");
	load_bad("tags = true\nretention = 7d\n", -ENOENT, 2, "retention");
	load_bad("kernel = sometimes\n", -EINVAL, 1, "sometimes");

	/* A missing file: -ENOENT with the path. */
	struct agent_config c;
	char err[256] = "";
	agent_config__defaults(&c);
	assert_int_equal(agent_config__load(&c, "/nonexistent/dynoprof.conf", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/dynoprof.conf"));
}

static void test_parse_duration(void **state)
{
	(void)state;
	const struct { const char *text; int64_t s; } good[] = {
		{ "7d", 7 * 86400 }, { "12h", 12 * 3600 }, { "30m", 1800 }, { "45s", 45 },
		{ "3600", 3600 },    { "0", 0 },           { "1.5h", 5400 }, { "36500d", 36500LL * 86400 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t s = -1;
		if (parse_duration_s(good[i].text, &s) != 0)
			fail_msg("'%s' refused", good[i].text);
		if (s != good[i].s)
			fail_msg("'%s' gave %lld, want %lld", good[i].text, (long long)s,
				 (long long)good[i].s);
	}
	const char *bad[] = { "", "d", "7x", "7 d", "7dd", "-1", "-5m", "nan", "inf", "1e30",
			      "36501d", "seven" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t s = 42;
		if (parse_duration_s(bad[i], &s) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(s, 42);
	}
}

static void test_parse_bytes(void **state)
{
	(void)state;
	const struct { const char *text; int64_t b; } good[] = {
		{ "1GiB", 1LL << 30 }, { "512MiB", 512LL << 20 }, { "100MB", 100000000 },
		{ "4096", 4096 },      { "4096B", 4096 },         { "64KiB", 65536 },
		{ "2KB", 2000 },       { "1GB", 1000000000 },     { "0.5GiB", 1LL << 29 },
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int64_t b = -1;
		if (parse_bytes(good[i].text, &b) != 0)
			fail_msg("'%s' refused", good[i].text);
		if (b != good[i].b)
			fail_msg("'%s' gave %lld, want %lld", good[i].text, (long long)b,
				 (long long)good[i].b);
	}
	const char *bad[] = { "", "GiB", "1gib", "1 GiB", "1TiB", "-1", "-1MiB", "nan", "inf",
			      "2e15", "10XB" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t b = 42;
		if (parse_bytes(bad[i], &b) != -EINVAL)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(b, 42);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_describe_lists_every_key),
		cmocka_unit_test(test_set_good_values),
		cmocka_unit_test(test_set_bad_values_keep_old),
		cmocka_unit_test(test_set_unknown_key),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_errors),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
