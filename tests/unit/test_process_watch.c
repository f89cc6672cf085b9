// SPDX-License-Identifier: MIT
/* What `record` does with processes, without BPF: the command it launches
 * held at a gate (capture/launch.h) and its exit code, a process's live
 * descendants and CPU time from /proc (capture/descendants.h), and the notes
 * `record -p` prints about children left out and captures with no samples
 * (cli/pid_watch.h), on real process trees started by /bin/sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "capture/descendants.h"
#include "capture/launch.h"
#include "cli/pid_watch.h"

/* Runs argv to its end through the gate; returns its exit code. */
static int launch_run(char *const argv[])
{
	struct launch l;
	assert_int_equal(launch__start(&l, argv), 0);
	assert_true(l.pid > 0);
	/* Held at the gate: it has not exec'd yet. */
	assert_int_equal(launch__poll(&l), 0);
	assert_int_equal(launch__release(&l), 0);
	for (int i = 0; i < 10000 && !launch__poll(&l); i++)
		usleep(1000);
	assert_true(l.exited);
	return launch__exit_code(&l);
}

static void test_launch_exit_codes(void **state)
{
	(void)state;
	char *ok[] = { "true", NULL }, *three[] = { "sh", "-c", "exit 3", NULL };
	char *missing[] = { "dynoprof-no-such-command", NULL };
	assert_int_equal(launch_run(ok), 0);
	assert_int_equal(launch_run(three), 3);
	assert_int_equal(launch_run(missing), 127);
	/* Killed: 128 + the signal, as a shell says it. */
	char *sleeper[] = { "sleep", "30", NULL };
	struct launch l;
	assert_int_equal(launch__start(&l, sleeper), 0);
	assert_int_equal(launch__release(&l), 0);
	launch__kill(&l, SIGTERM);
	for (int i = 0; i < 10000 && !launch__poll(&l); i++)
		usleep(1000);
	assert_int_equal(launch__exit_code(&l), 128 + SIGTERM);
	launch__kill(&l, SIGTERM); /* gone: nothing happens */
}

/* Starts `sh -c script`; returns its pid once its children are up (want
 * live descendants, waited for boundedly). */
static pid_t tree(const char *script, size_t want)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 5000; i++) {
		struct pid_set s = { 0 };
		uint32_t root = (uint32_t)pid;
		assert_int_equal(descendants__collect(&s, &root, 1), 0);
		size_t n = s.count;
		pid_set__free(&s);
		if (n >= want + 1)
			return pid;
		usleep(1000);
	}
	fail_msg("%s: its %zu children did not show up", script, want);
	return -1;
}

static void kill_tree(pid_t root)
{
	struct pid_set s = { 0 };
	uint32_t r = (uint32_t)root;
	descendants__collect(&s, &r, 1);
	for (size_t i = 0; i < s.count; i++)
		kill((pid_t)s.pids[i], SIGKILL);
	pid_set__free(&s);
	waitpid(root, NULL, 0);
}

static void test_descendants_and_cpu(void **state)
{
	(void)state;
	pid_t root = tree("sleep 30 & (sleep 30 & wait) & wait", 3);
	struct pid_set s = { 0 };
	uint32_t r = (uint32_t)root;
	assert_int_equal(descendants__collect(&s, &r, 1), 0);
	/* The root first, then sleep, the subshell and its sleep, each once. */
	assert_int_equal(s.count, 4);
	assert_int_equal(s.pids[0], r);
	assert_int_equal(pid_set__add(&s, r), 0);
	assert_true(pid_set__has(&s, s.pids[3]));
	assert_false(pid_set__has(&s, 1));
	/* Walking again adds nothing new. */
	assert_int_equal(descendants__collect(&s, &r, 1), 0);
	assert_int_equal(s.count, 4);
	pid_set__free(&s);
	pid_set__free(NULL);

	/* CPU time: ours grows as we burn it; a gone process has none. */
	uint64_t a, b;
	assert_int_equal(proc__cpu_ns((uint32_t)getpid(), &a), 0);
	struct timespec t0, t1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	volatile uint64_t x = 0;
	do {
		for (int i = 0; i < 1000000; i++)
			x += (uint64_t)i;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	} while ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 50000000L);
	assert_int_equal(proc__cpu_ns((uint32_t)getpid(), &b), 0);
	assert_true(b > a);
	kill_tree(root);
	assert_int_equal(proc__cpu_ns(r, &a), -ENOENT);

	/* The bound: past DESCENDANTS_MAX ids, -E2BIG. */
	struct pid_set big = { 0 };
	int e = 0;
	for (uint32_t p = 1; p <= DESCENDANTS_MAX + 1 && e >= 0; p++)
		e = pid_set__add(&big, p);
	assert_int_equal(e, -E2BIG);
	assert_int_equal(big.count, DESCENDANTS_MAX);
	pid_set__free(&big);
}

static char text[4096];

static const char *note(const struct pid_watch *w, int children_note, bool children)
{
	text[0] = '\0';
	FILE *f = fmemopen(text, sizeof(text), "w");
	assert_non_null(f);
	if (children_note)
		pid_watch__note_children(w, f);
	else
		pid_watch__explain_no_samples(w, children, 99, 10.0, f);
	fclose(f);
	return text;
}

static void expect(const char *have, const char *want)
{
	if (!strstr(have, want))
		fail_msg("no \"%s\" in: %s", want, have);
}

static void test_pid_watch_notes(void **state)
{
	(void)state;
	/* An idle root with idle children. */
	pid_t root = tree("sleep 30 & sleep 30 & wait", 2);
	uint32_t r = (uint32_t)root;
	struct pid_watch w;
	assert_int_equal(pid_watch__start(&w, &r, 1), 0);
	assert_int_equal(w.nroots, 1);
	assert_int_equal(w.procs.count, 3);
	char want[64];
	snprintf(want, sizeof(want), "PID %d has 2 descendant processes", (int)root);
	expect(note(&w, 1, false), want);
	expect(text, "add --children");
	expect(note(&w, 0, false), "used no CPU during the capture");
	expect(text, "its child processes used none either");
	expect(note(&w, 0, true), "nor did its descendants");
	pid_watch__free(&w);
	kill_tree(root);

	/* No children at all: nothing to note; said when it had no samples.
	 * (exec: `sh -c "sleep 30"` forks sleep as its child, some time after
	 * tree() has seen the root alone.) */
	root = tree("exec sleep 30", 0);
	r = (uint32_t)root;
	assert_int_equal(pid_watch__start(&w, &r, 1), 0);
	assert_string_equal(note(&w, 1, false), "");
	expect(note(&w, 0, false), "it has no child processes");
	pid_watch__free(&w);
	kill_tree(root);

	/* The root idle, a child busy: --children is the answer; with
	 * --children already, the CPU was too little for the rate. */
	root = tree("(i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); done; sleep 30) & wait", 1);
	r = (uint32_t)root;
	assert_int_equal(pid_watch__start(&w, &r, 1), 0);
	uint32_t child = w.procs.pids[1];
	uint64_t start = 0, now = 0;
	assert_int_equal(proc__cpu_ns(child, &start), 0);
	for (int i = 0; i < 5000 && !proc__cpu_ns(child, &now) && now < start + 30000000; i++)
		usleep(1000);
	if (now < start + 30000000)
		fail_msg("the busy child used no CPU in 5 s");
	expect(note(&w, 0, false), "add --children to profile them");
	expect(text, "its 1 child process used");
	expect(note(&w, 0, true), "too little to be sampled at 99 Hz");
	pid_watch__free(&w);
	pid_watch__free(NULL);
	kill_tree(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_launch_exit_codes),
		cmocka_unit_test(test_descendants_and_cpu),
		cmocka_unit_test(test_pid_watch_notes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
