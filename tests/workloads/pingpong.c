/* pingpong - two processes bouncing one byte over a pair of pipes N times.
 *
 * Almost no computation: the cost is syscalls and context switches (wake-ups on
 * both sides), which is what a system-wide profiler adds most overhead to.
 *
 * Usage: pingpong [N]   (round trips, default 100000)
 * Prints "pingpong: N round trips in S s (U us/trip)" to stdout on success.
 */
#include <errno.h>
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

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	int to_child[2], to_parent[2], status, err;
	double start, elapsed;
	pid_t child;

	if (argc > 2 || n <= 0) {
		fprintf(stderr, "usage: pingpong [N]\n");
		return 2;
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
	start = monotonic_seconds();
	err = ping_loop(to_parent[0], to_child[1], n);
	elapsed = monotonic_seconds() - start;
	close(to_child[1]);
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		err = err ? err : -ECHILD;
	if (err) {
		fprintf(stderr, "pingpong: %s\n", strerror(-err));
		return 1;
	}
	printf("pingpong: %ld round trips in %.3f s (%.2f us/trip)\n", n, elapsed,
	       elapsed * 1e6 / n);
	return 0;
}
