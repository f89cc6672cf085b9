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
#include <sys/stat.h>

#include <cmocka.h>

#include "agent/config.h"
#include "util/textfile.h"

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

/* Writes n bytes (NULs allowed) to a fresh temporary file; path gets its name. */
static void write_temp_bytes(char *path, size_t len, const char *data, size_t n)
{
	snprintf(path, len, "/tmp/test_config.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
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
			       "kernel", "unwind_table_mb", "endpoint_from", "max_series", "max_query_seconds",
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
	set_ok(&c, "window", "30s");             /* durations take units everywhere */
	assert_true(c.window_s == 30);
	set_ok(&c, "window", "1m");
	assert_true(c.window_s == 60);
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
	set_ok(&c, "max_query_seconds", "5m");
	assert_true(c.max_query_s == 300);
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
		{ "window", "1.5" },           /* whole seconds */
		{ "window", "1500ms" },
		{ "window", "2h" },
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
		{ "max_query_seconds", "2h" },
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


/* Loads n bytes expecting error want, "PATH:LINE: " (line > 0) or "PATH: "
 * (line 0) and needle in the message, and c exactly as it was. */
static void load_bad_bytes(const char *data, size_t n, int want, int line, const char *needle)
{
	char path[64], err[512] = "", prefix[96];
	struct agent_config c, before;
	write_temp_bytes(path, sizeof(path), data, n);
	agent_config__defaults(&c);
	c.frequency_hz = 77; /* not a default: a failed load must not reset it */
	before = c;
	int e = agent_config__load(&c, path, err, sizeof(err));
	unlink(path);
	if (e != want)
		fail_msg("expected %d, got %d (%s)", want, e, err);
	if (line)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("message '%s' does not start with '%s'", err, prefix);
	if (!strstr(err, needle))
		fail_msg("message '%s' does not mention '%s'", err, needle);
	if (memcmp(&c, &before, sizeof(c)) != 0)
		fail_msg("a refused file (%s) changed the config", err);
}

/* A comment longer than any old line buffer stays one comment: its tail is
 * never read as a setting of its own. */
static void test_load_long_lines(void **state)
{
	(void)state;
	char path[64], err[512] = "";
	/* Padded with spaces, so that 1,023-byte pieces of it are blank lines
	 * and the last one is exactly the setting: what an fgets() into 1,024
	 * bytes took as live. */
	size_t n = 5 * 1023;
	char *text = malloc(n + 200);
	assert_non_null(text);
	memset(text, ' ', n);
	memcpy(text, "# old: ", 7);
	strcpy(text + n, "listen_remote = true\nwindow = 5\n");
	write_temp(path, sizeof(path), text);
	struct agent_config c;
	agent_config__defaults(&c);
	int e = agent_config__load(&c, path, err, sizeof(err));
	unlink(path);
	if (e)
		fail_msg("load: %d %s", e, err);
	assert_false(c.listen_remote);
	assert_true(c.window_s == 5);

	/* A long value is taken whole: too long for its field, refused on its line. */
	n = 5000;
	memset(text, 'x', n);
	memcpy(text, "window = 5\nendpoint_from = frame=", 33);
	strcpy(text + n, "\n");
	load_bad_bytes(text, strlen(text), -EINVAL, 2, "endpoint_from");

	/* A line past the limit is refused with its number, not split. */
	free(text);
	n = AGENT_CONFIG_MAX_LINE + 10;
	text = malloc(n + 64);
	assert_non_null(text);
	strcpy(text, "window = 5\n\n#");
	memset(text + 13, 'y', n);
	strcpy(text + 13 + n, "\nlisten_remote = true\n");
	load_bad_bytes(text, strlen(text), -EFBIG, 3, "longer than");
	free(text);

	/* A file past the size limit is refused before it is read. */
	n = AGENT_CONFIG_MAX_BYTES + 1;
	text = malloc(n);
	assert_non_null(text);
	memset(text, '\n', n);
	load_bad_bytes(text, n, -EFBIG, 0, "larger than");
	free(text);
}

static void test_load_binary(void **state)
{
	(void)state;
	static const char nul_value[] = "frequency = 50\0junk\n";
	load_bad_bytes(nul_value, sizeof(nul_value) - 1, -EINVAL, 1, "NUL byte");
	static const char nul_later[] = "# ok\nwindow = 5\n\0\0\0\0";
	load_bad_bytes(nul_later, sizeof(nul_later) - 1, -EINVAL, 3, "NUL byte");
	char zeros[4096] = { 0 };
	load_bad_bytes(zeros, sizeof(zeros), -EINVAL, 1, "not a text file");
	static const char bom[] = "\xef\xbb\xbfwindow = 5\n";
	load_bad_bytes(bom, sizeof(bom) - 1, -EINVAL, 1, "byte-order mark");
	static const char esc[] = "window = 5\nlisten_remote = false\x1b[2K\n";
	load_bad_bytes(esc, sizeof(esc) - 1, -EINVAL, 2, "control character");
	/* A bare CR hides what comes before it on a terminal. */
	static const char cr[] = "listen_remote = true #\r# nothing here\n";
	load_bad_bytes(cr, sizeof(cr) - 1, -EINVAL, 1, "control character");
	/* CRLF line ends are fine. */
	char path[64], err[512] = "";
	write_temp(path, sizeof(path), "window = 7\r\nkernel = false\r\n");
	struct agent_config c;
	agent_config__defaults(&c);
	int e = agent_config__load(&c, path, err, sizeof(err));
	unlink(path);
	if (e)
		fail_msg("CRLF: %d %s", e, err);
	assert_true(c.window_s == 7);
	assert_false(c.kernel);
}

static void test_load_trailing_junk(void **state)
{
	(void)state;
	const char *bad[] = {
		"frequency = 50 junk\n", "frequency = 50junk\n", "frequency = +50\n",
		"frequency = 0x10\n", "frequency = 5 0\n", "window = 5s junk\n",
		"window = 1e1\n", "retention_size = 1e9\n", "retention_age = 7d junk\n",
		"retention_age = 0x10d\n", "listen_remote = true false\n",
		"listen_remote = true # ok\nkernel = false true\n",
		"deploy_check_confidence = 0.99x\n", "deploy_check_min_effect = 1.2.3\n",
		"deploy_check_min_effect = 0.05 0.1\n", "max_query_range = inf\n",
		"listen = 127.0.0.1:9464 x\n", "listen = 127.0.0.1:+80\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int line = strchr(bad[i], '\n')[1] ? 2 : 1;
		load_bad_bytes(bad[i], strlen(bad[i]), -EINVAL, line, "bad value");
	}
	/* A key said twice is refused: which one would win is not obvious. */
	static const char twice[] = "listen_remote = false\nwindow = 5\nlisten_remote = true\n";
	load_bad_bytes(twice, sizeof(twice) - 1, -EINVAL, 3, "already set on line 1");
	/* An unknown key is shown with its invisible bytes. */
	static const char odd[] = "window\xc2\xa0= 5\n";
	load_bad_bytes(odd, sizeof(odd) - 1, -ENOENT, 1, "window\\xc2\\xa0");
}

static void test_load_not_a_file(void **state)
{
	(void)state;
	struct agent_config c, before;
	char dir[64] = "/tmp/test_config_dir.XXXXXX", path[96], err[512];
	assert_non_null(mkdtemp(dir));
	agent_config__defaults(&c);
	c.window_s = 42;
	before = c;

	assert_int_equal(agent_config__load(&c, dir, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "a directory"));
	/* A FIFO is refused without waiting for a writer. */
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(agent_config__load(&c, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a FIFO"));
	unlink(path);
	assert_int_equal(agent_config__load(&c, "/dev/null", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "a character device"));
	/* Whoever could write it could make the agent listen anywhere. */
	snprintf(path, sizeof(path), "%s/open.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("window = 5\n", f);
	fclose(f);
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(agent_config__load(&c, path, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "writable by every user"));
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(agent_config__load(&c, path, err, sizeof(err)), 0);
	assert_true(c.window_s == 5);
	c.window_s = 42;
	unlink(path);
	rmdir(dir);
	assert_memory_equal(&c, &before, sizeof(c));
}

/* A file with good lines and one bad one changes nothing: what a SIGHUP
 * reload relies on to keep every old setting. */
static void test_load_failure_keeps_everything(void **state)
{
	(void)state;
	static const char text[] = "frequency = 99\nwindow = 20\nmax_query_seconds = 60\n"
				   "listen_remote = true\nbogus = 1\n";
	load_bad_bytes(text, sizeof(text) - 1, -ENOENT, 5, "bogus");
	static const char text2[] = "max_query_seconds = 60\nwindow = 0\n";
	load_bad_bytes(text2, sizeof(text2) - 1, -EINVAL, 2, "window");
}

/* agent_config__parse: the same parser fed from memory (what a fuzzer calls). */
static void test_parse_from_memory(void **state)
{
	(void)state;
	struct agent_config c, before;
	char err[512] = "";
	agent_config__defaults(&c);
	static const char good[] = "window = 3\n# c\r\nkernel = off";
	assert_int_equal(agent_config__parse(&c, "mem", good, sizeof(good) - 1, err, sizeof(err)),
			 0);
	assert_true(c.window_s == 3);
	assert_false(c.kernel);
	before = c;
	static const char nul[] = "window = 4\0\n";
	assert_int_equal(agent_config__parse(&c, "mem", nul, sizeof(nul) - 1, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "mem:1: NUL byte"));
	assert_int_equal(agent_config__parse(&c, "mem", "", 0, err, sizeof(err)), 0);
	assert_memory_equal(&c, &before, sizeof(c));
}

/* The config `make install` ships loads as it is (make runs the tests from the
 * top of the tree). */
static void test_shipped_config_loads(void **state)
{
	(void)state;
	struct agent_config c;
	char err[512] = "";
	agent_config__defaults(&c);
	int e = agent_config__load(&c, "scripts/agent.conf", err, sizeof(err));
	if (e)
		fail_msg("scripts/agent.conf: %d %s", e, err);
	assert_false(c.listen_remote);
}

static void test_token_file(void **state)
{
	(void)state;
	char path[64], err[512], tok[64];
	static const struct { const char *data; size_t n; int want; const char *tok; } cases[] = {
		{ "s3cret\n", 7, 0, "s3cret" },
		{ "s3cret\r\n\n", 9, 0, "s3cret" },
		{ "s3cret", 6, 0, "s3cret" },
		{ "s3\0cret\n", 8, -EINVAL, NULL },   /* a NUL must not shorten it */
		{ "s3cret\nother\n", 13, -EINVAL, NULL },
		{ "\n\n", 2, -EINVAL, NULL },
		{ "", 0, -EINVAL, NULL },
		{ "0123456789012345678901234567890123456789012345678901234567890123456789\n", 71,
		  -EFBIG, NULL },                       /* longer than the buffer: not cut */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_temp_bytes(path, sizeof(path), cases[i].data, cases[i].n);
		strcpy(tok, "unchanged");
		int e = textfile__read_token(path, tok, sizeof(tok), err, sizeof(err));
		unlink(path);
		if (e != cases[i].want)
			fail_msg("case %zu: expected %d, got %d (%s)", i, cases[i].want, e, err);
		assert_string_equal(tok, cases[i].tok ? cases[i].tok : "unchanged");
		if (e)
			assert_non_null(strstr(err, path));
	}
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
		cmocka_unit_test(test_load_long_lines),
		cmocka_unit_test(test_load_binary),
		cmocka_unit_test(test_load_trailing_junk),
		cmocka_unit_test(test_load_not_a_file),
		cmocka_unit_test(test_load_failure_keeps_everything),
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_shipped_config_loads),
		cmocka_unit_test(test_parse_from_memory),
		cmocka_unit_test(test_parse_duration),
		cmocka_unit_test(test_parse_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
