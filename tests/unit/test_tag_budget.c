// SPDX-License-Identifier: MIT
/* The label budget of one sample (tags/tag_registry.h): each source capped
 * where it enters and the excess counted; `endpoint` and `window` always fit.
 * The registry is exercised on a real child process whose environment carries
 * the hostile tags (read back from /proc/PID/environ, as in production). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "tags/tag_registry.h"

static char keys[TAG_MAX_LABELS + 4][16];

static void test_reserved_slots_always_fit(void **state)
{
	(void)state;
	struct tag_labels l = { .count = 0 };
	unsigned others = TAG_MAX_LABELS - TAG_RESERVED_LABELS;
	for (unsigned i = 0; i < others; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%u", i);
		assert_int_equal(tag_labels__put(&l, keys[i], "v"), 0);
	}
	/* The sources' share is full: one more ordinary key is refused. */
	assert_int_equal(tag_labels__put(&l, "one_more", "v"), -ENOSPC);
	assert_int_equal(l.count, others);
	/* Replacing an existing key needs no slot. */
	assert_int_equal(tag_labels__put(&l, "k3", "w"), 0);
	assert_string_equal(l.values[3], "w");
	assert_int_equal(tag_labels__put(&l, "endpoint", "/a"), 0);
	assert_int_equal(tag_labels__put(&l, "window", "7"), 0);
	assert_int_equal(l.count, TAG_MAX_LABELS);
	assert_int_equal(tag_labels__put(&l, "endpoint", "/b"), 0); /* replaced */
	assert_int_equal(tag_labels__put(&l, "another", "v"), -ENOSPC);
	assert_int_equal(l.count, TAG_MAX_LABELS);
	assert_string_equal(l.keys[TAG_MAX_LABELS - 2], "endpoint");
	assert_string_equal(l.values[TAG_MAX_LABELS - 2], "/b");
}

static void test_endpoint_from_a_source_leaves_window_room(void **state)
{
	(void)state;
	struct tag_labels l = { .count = 0 };
	/* endpoint arrives among the sources' labels: it uses a reserved slot,
	 * the others still get the sources' full share, window still fits. */
	assert_int_equal(tag_labels__put(&l, "endpoint", "/a"), 0);
	for (unsigned i = 0; i < TAG_MAX_LABELS - TAG_RESERVED_LABELS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%u", i);
		assert_int_equal(tag_labels__put(&l, keys[i], "v"), 0);
	}
	assert_int_equal(tag_labels__put(&l, "x", "v"), -ENOSPC);
	assert_int_equal(tag_labels__put(&l, "window", "1"), 0);
	assert_int_equal(l.count, TAG_MAX_LABELS);
}

/* Starts `sleep 30` with envp; returns its pid once it has exec'd. */
static pid_t spawn_with_env(char **envp)
{
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[] = { "sleep", "30", NULL };
		execve("/bin/sleep", argv, envp);
		int e = errno;
		if (write(pfd[1], &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	int e = 0;
	/* The pipe closes at exec (O_CLOEXEC): environ is the new image's. */
	if (read(pfd[0], &e, sizeof(e)) != 0)
		fail_msg("execve: %s", strerror(e));
	close(pfd[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_env_tags_capped_and_counted(void **state)
{
	(void)state;
	/* 100 DYNOPROF_TAGS pairs plus service and commit. */
	size_t cap = 100 * 16 + 32;
	char *tags = malloc(cap);
	assert_non_null(tags);
	size_t o = (size_t)snprintf(tags, cap, "DYNOPROF_TAGS=");
	for (int i = 0; i < 100; i++)
		o += (size_t)snprintf(tags + o, cap - o, "%se%d=v%d", i ? "," : "", i, i);
	char *envp[] = { "DYNOPROF_SERVICE=svc", "GIT_COMMIT=abc", tags, NULL };
	pid_t pid = spawn_with_env(envp);

	struct tag_registry *r = tag_registry__new(NULL);
	assert_non_null(r);
	struct tag_labels l;
	assert_int_equal(tag_registry__labels(r, pid, TAG_READ_NONE, NULL, 0, &l), 0);
	assert_int_equal(l.count, TAG_MAX_ENV_LABELS);
	struct tag_registry_stats st;
	tag_registry__stats(r, &st);
	/* 102 tags offered, 16 kept (rules in order: commit, service, then pairs). */
	assert_int_equal(st.env_dropped, 102 - TAG_MAX_ENV_LABELS);
	assert_string_equal(l.keys[0], "commit");
	assert_string_equal(l.keys[1], "service");
	/* Room for the reserved labels remains. */
	assert_int_equal(tag_labels__put(&l, "endpoint", "/x"), 0);
	assert_int_equal(tag_labels__put(&l, "window", "0"), 0);

	/* An exec notified after the entry was read (its sample came first):
	 * the entry is the new image's already; not read (nor counted) again. */
	tag_registry__note_exec(r, pid, 1);
	assert_int_equal(tag_registry__labels(r, pid, TAG_READ_NONE, NULL, 0, &l), 0);
	tag_registry__stats(r, &st);
	assert_int_equal(st.env_dropped, 102 - TAG_MAX_ENV_LABELS);
	/* An exec after the read: forgotten and read again. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	tag_registry__note_exec(r, pid, (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec);
	assert_int_equal(tag_registry__labels(r, pid, TAG_READ_NONE, NULL, 0, &l), 0);
	assert_int_equal(l.count, TAG_MAX_ENV_LABELS);
	tag_registry__stats(r, &st);
	assert_int_equal(st.env_dropped, 2 * (102 - TAG_MAX_ENV_LABELS));
	tag_registry__free(r);
	reap(pid);
	free(tags);
}

static void test_long_and_invalid_values_cut_and_counted(void **state)
{
	(void)state;
	/* One string may be at most 128 KiB (MAX_ARG_STRLEN): three near that
	 * make an environment past the 256 KiB dynoprof reads. */
	size_t big = 120 * 1024;
	char *var[3];
	const char *names[] = { "DYNOPROF_SERVICE=", "FILLER=", "DYNOPROF_ENV=" };
	for (int i = 0; i < 3; i++) {
		var[i] = malloc(big + 32);
		assert_non_null(var[i]);
		int o = snprintf(var[i], 32, "%s", names[i]);
		memset(var[i] + o, 'a', big);
		var[i][o + big] = '\0';
	}
	char *envp[] = { "DYNOPROF_TAGS=bad=\xff\xfe\x01,ok=1", var[0], var[1], var[2], NULL };
	pid_t pid = spawn_with_env(envp);

	struct tag_registry *r = tag_registry__new(NULL);
	assert_non_null(r);
	struct tag_labels l;
	assert_int_equal(tag_registry__labels(r, pid, TAG_READ_NONE, NULL, 0, &l), 0);
	struct tag_registry_stats st;
	tag_registry__stats(r, &st);
	/* The environment is longer than what is read: counted. The service
	 * value (first, cut by the read) is cut to TAG_TEXT_MAX: counted. */
	assert_int_equal(st.truncated, 2);
	int seen_bad = 0;
	for (unsigned i = 0; i < l.count; i++) {
		if (strcmp(l.keys[i], "bad") == 0) {
			assert_string_equal(l.values[i], "\\xff\\xfe\\x01");
			seen_bad = 1;
		}
		assert_true(strlen(l.values[i]) < TAG_TEXT_MAX);
		if (strcmp(l.keys[i], "service") == 0)
			assert_int_equal(strspn(l.values[i], "a"), strlen(l.values[i]));
		assert_true(strcmp(l.keys[i], "env") != 0); /* past the read: unseen */
	}
	assert_true(seen_bad);
	tag_registry__free(r);
	reap(pid);
	for (int i = 0; i < 3; i++)
		free(var[i]);
}

static void test_sanitize_reports_cut(void **state)
{
	(void)state;
	char out[8];
	assert_false(tag_sanitize("abc", 3, out, sizeof(out)));
	assert_true(tag_sanitize("abcdefghij", 10, out, sizeof(out)));
	assert_string_equal(out, "abcdefg");
	/* A NUL ends the text: nothing after it was cut. */
	assert_false(tag_sanitize("ab\0cdefghij", 11, out, sizeof(out)));
	/* An escape that does not fit cuts the text. */
	assert_true(tag_sanitize("abcde\x01", 6, out, sizeof(out)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reserved_slots_always_fit),
		cmocka_unit_test(test_endpoint_from_a_source_leaves_window_room),
		cmocka_unit_test(test_env_tags_capped_and_counted),
		cmocka_unit_test(test_long_and_invalid_values_cut_and_counted),
		cmocka_unit_test(test_sanitize_reports_cut),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
