/* pingpong - two processes bouncing one byte over a pair of pipes N times.
 *
 * Almost no computation: the cost is syscalls and context switches (wake-ups on
 * both sides), which is what a system-wide profiler adds most overhead to.
 *
 * Usage: pingpong [N]   (round trips, default 100000)
 *   Prints "pingpong: N round trips in S s (U us/trip)" to stdout on success.
 * Usage: pingpong -d SECONDS -o FILE
 *   Runs chunks of CHUNK_TRIPS round trips for SECONDS and writes one line per
 *   chunk to FILE: "START WALL CPU" (CLOCK_MONOTONIC start, wall seconds, CPU
 *   seconds of both processes), for benchmarks that compare time windows.
 *   SIGINT ends it early (after the current chunk), still writing FILE.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Reads one byte from in and writes it to out, n times (child side).
 * Returns 0 or -errno; a closed pipe ends the loop early with 0. */
__attribute__((noinline, noclone)) int pong_loop(int in, int out, long n)
{
	char byte;

	for (long i = 0; i < n; i++) {
		ssize_t got = read(in, &byte, 1);

		if (got == 0)
			return 0;
		if (got < 0 || write(out, &byte, 1) != 1)
			return -errno;
	}
	return 0;
}

/* Writes one byte to out and waits for it on in, n times (parent side).
 * Returns 0 or -errno (-EPIPE when the peer went away). */
__attribute__((noinline, noclone)) int ping_loop(int in, int out, long n)
{
	char byte = 'x';

	for (long i = 0; i < n; i++) {
		if (write(out, &byte, 1) != 1)
			return -errno;
		ssize_t got = read(in, &byte, 1);

		if (got == 0)
			return -EPIPE;
		if (got < 0)
			return -errno;
	}
	return 0;
}

#define CHUNK_TRIPS 2000

static volatile sig_atomic_t stop_requested;

static void on_sigint(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double cpu_seconds(clockid_t clock)
{
	struct timespec ts;

	if (clock_gettime(clock, &ts))
		return 0;
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Chunks of CHUNK_TRIPS round trips until `seconds` have passed, one line
 * each to out. Returns 0 or -errno. */
static int ping_chunks(int in, int wr, pid_t child, double seconds, FILE *out)
{
	clockid_t child_clock;
	double end = monotonic_seconds() + seconds;

	if (clock_getcpuclockid(child, &child_clock))
		return -ESRCH;
	for (;;) {
		double t0 = monotonic_seconds();
		double c0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) + cpu_seconds(child_clock);
		int err = ping_loop(in, wr, CHUNK_TRIPS);

		if (err)
			return err;
		double t1 = monotonic_seconds();
		double c1 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) + cpu_seconds(child_clock);

		fprintf(out, "%.6f %.9f %.9f\n", t0, t1 - t0, c1 - c0);
		if (t1 >= end || stop_requested)
			return 0;
	}
}

int main(int argc, char **argv)
{
	long n = 100000;
	double seconds = 0;
	const char *out_path = NULL;
	FILE *out = NULL;
	int to_child[2], to_parent[2], status, err;
	double start, elapsed;
	pid_t child;

	if (argc == 5 && !strcmp(argv[1], "-d") && !strcmp(argv[3], "-o")) {
		seconds = atof(argv[2]);
		out_path = argv[4];
		n = LONG_MAX;
	} else if (argc == 2) {
		n = atol(argv[1]);
	} else if (argc != 1) {
		n = 0;
	}
	if (n <= 0 || (out_path && seconds <= 0)) {
		fprintf(stderr, "usage: pingpong [N] | pingpong -d SECONDS -o FILE\n");
		return 2;
	}
	if (out_path && !(out = fopen(out_path, "w"))) {
		fprintf(stderr, "pingpong: %s: %s\n", out_path, strerror(errno));
		return 1;
	}
	if (pipe(to_child) || pipe(to_parent)) {
		fprintf(stderr, "pingpong: pipe: %s\n", strerror(errno));
		return 1;
	}
	child = fork();
	if (child < 0) {
		fprintf(stderr, "pingpong: fork: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		close(to_child[1]);
		close(to_parent[0]);
		_exit(pong_loop(to_child[0], to_parent[1], n) ? 1 : 0);
	}
	close(to_child[0]);
	close(to_parent[1]);
	if (out) {
		/* Restart the pipe calls; the flag is looked at between chunks. */
		struct sigaction sa = { .sa_handler = on_sigint, .sa_flags = SA_RESTART };

		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
	}
	start = monotonic_seconds();
	err = out ? ping_chunks(to_parent[0], to_child[1], child, seconds, out) :
		    ping_loop(to_parent[0], to_child[1], n);
	elapsed = monotonic_seconds() - start;
	close(to_child[1]);
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		err = err ? err : -ECHILD;
	if (out && fclose(out) && !err)
		err = -errno;
	if (err) {
		fprintf(stderr, "pingpong: %s\n", strerror(-err));
		return 1;
	}
	if (out)
		return 0;
	printf("pingpong: %ld round trips in %.3f s (%.2f us/trip)\n", n, elapsed,
	       elapsed * 1e6 / n);
	return 0;
}
