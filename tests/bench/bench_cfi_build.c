/* bench_cfi_build.c - what one file's unwind table costs to build (run by
 * bench_unwind.py; not a test).
 *
 * For each FILE: the wall time of cfi_table__from_fd() - the per-file step the
 * unwind registry's worker runs for a file it has not seen (unwind_registry.c,
 * file_for) - the rows it yields (8 bytes each in the BPF row table), and this
 * process's resident memory while the table is held (VmRSS change) and at its
 * peak during the build (VmHWM after clearing it: libelf's buffers, the
 * unsorted rows). The build runs RUNS times; the first is reported apart (the
 * file's pages may not be cached yet).
 *
 * Output, one line per file:
 *   file=PATH rows=N fdes=N first_ms=X median_ms=X rss_kib=N peak_kib=N
 * Usage: bench_cfi_build RUNS FILE...   (exit 1 if a file cannot be built)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "unwind/cfi_table.h"

#define MAX_RUNS 50

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* A "Key:   N kB" line of /proc/self/status, in KiB; -1 if absent. */
static long status_kib(const char *key)
{
	char line[256];
	long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* Resets VmHWM to the current RSS (proc(5), clear_refs "5"). */
static void reset_peak(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "5", 1) != 1)
			fprintf(stderr, "bench_cfi_build: clear_refs: %s\n", strerror(errno));
		close(fd);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int bench_file(const char *path, int runs)
{
	double ms[MAX_RUNS];
	size_t rows = 0;
	unsigned long long fdes = 0;
	long rss_kib = 0, peak_kib = 0;
	for (int i = 0; i < runs; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "bench_cfi_build: %s: %s\n", path, strerror(errno));
			return -1;
		}
		reset_peak();
		long before = status_kib("VmRSS");
		double t0 = now_ms();
		struct cfi_table *t = cfi_table__from_fd(fd);
		ms[i] = now_ms() - t0;
		int err = errno;
		close(fd);
		if (!t) {
			fprintf(stderr, "bench_cfi_build: %s: no table: %s\n", path, strerror(err));
			return -1;
		}
		if (i == 0) {
			rss_kib = status_kib("VmRSS") - before;
			peak_kib = status_kib("VmHWM") - before;
			rows = cfi_table__count(t);
			fdes = (unsigned long long)cfi_table__stats(t)->fdes;
		}
		cfi_table__free(t);
	}
	double first = ms[0];
	qsort(ms, (size_t)runs, sizeof(ms[0]), cmp_double);
	printf("file=%s rows=%zu fdes=%llu first_ms=%.1f median_ms=%.1f rss_kib=%ld peak_kib=%ld\n",
	       path, rows, fdes, first, ms[runs / 2], rss_kib, peak_kib);
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_cfi_build RUNS FILE...\n");
		return 2;
	}
	int runs = atoi(argv[1]);
	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "bench_cfi_build: RUNS 1..%d\n", MAX_RUNS);
		return 2;
	}
	int rc = 0;
	for (int i = 2; i < argc; i++)
		if (bench_file(argv[i], runs))
			rc = 1;
	return rc;
}
