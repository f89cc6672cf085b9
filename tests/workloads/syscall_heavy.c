/* syscall_heavy - a workload that spends most of its CPU time in the kernel, so a
 * profile of it must be dominated by kernel frames under a syscall entry.
 *
 * read_zero_loop() reads 1 MiB buffers from /dev/zero: the kernel clears the user
 * buffer for every read, which costs far more than the syscall's user-space part.
 *
 * Usage: syscall_heavy [-d SECONDS | -n READS] [-o JSON_PATH]
 *   -d SECONDS  run for this long (wall clock; default 5)
 *   -n READS    do exactly this many 1 MiB reads and exit (fixed work)
 *   -o PATH     at exit (also on SIGTERM/SIGINT) write
 *               {"reads": N, "user_cpu": s, "system_cpu": s, "wall": s} to PATH
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Bytes per read() call. */
#define CHUNK_BYTES (1 << 20)

/* Set by the SIGTERM/SIGINT handler; the loop stops after the current read. */
static volatile sig_atomic_t stop_requested;

static double monotonic_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Reads CHUNK_BYTES from fd into buf until the deadline or max_reads (when > 0).
 * Returns the number of reads done, or -errno on a read failure. */
__attribute__((noinline, noclone)) long read_zero_loop(int fd, char *buf, double deadline,
						      long max_reads)
{
	long reads = 0;

	while (!stop_requested) {
		if (max_reads > 0 ? reads >= max_reads : monotonic_seconds() >= deadline)
			break;
		if (read(fd, buf, CHUNK_BYTES) < 0)
			return -errno;
		reads++;
	}
	return reads;
}

int main(int argc, char **argv)
{
	double duration = 5.0, start;
	const char *json_path = NULL;
	long max_reads = 0, reads;
	struct sigaction sa;
	struct rusage ru;
	char *buf;
	int fd, opt;

	while ((opt = getopt(argc, argv, "d:n:o:")) != -1) {
		switch (opt) {
		case 'd':
			duration = atof(optarg);
			break;
		case 'n':
			max_reads = atol(optarg);
			break;
		case 'o':
			json_path = optarg;
			break;
		default:
			fprintf(stderr, "usage: syscall_heavy [-d SECONDS | -n READS] [-o JSON]\n");
			return 2;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	buf = malloc(CHUNK_BYTES);
	fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0) {
		fprintf(stderr, "syscall_heavy: setup failed: %s\n", strerror(errno));
		return 1;
	}
	start = monotonic_seconds();
	reads = read_zero_loop(fd, buf, start + duration, max_reads);
	if (reads < 0) {
		fprintf(stderr, "syscall_heavy: read: %s\n", strerror((int)-reads));
		return 1;
	}
	if (json_path) {
		FILE *f = fopen(json_path, "w");

		if (!f) {
			fprintf(stderr, "syscall_heavy: cannot write %s: %s\n", json_path,
				strerror(errno));
			return 1;
		}
		getrusage(RUSAGE_SELF, &ru);
		fprintf(f, "{\"reads\": %ld, \"user_cpu\": %.6f, \"system_cpu\": %.6f, "
			   "\"wall\": %.6f, \"pid\": %d}\n",
			reads, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
			ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
			monotonic_seconds() - start, (int)getpid());
		fclose(f);
	}
	close(fd);
	free(buf);
	return 0;
}
