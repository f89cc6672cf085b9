/* short_lived - burns CPU in short_lived_burn() for a short time, then exits.
 *
 * Used to check that a process which exits in the middle of a capture is still
 * symbolized: by the time the profiler writes its output, /proc/PID is gone.
 *
 * Usage: short_lived [SECONDS]   (CPU seconds to burn, default 1)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double thread_cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Burns CPU until `seconds` of thread CPU time have been used since the call. */
__attribute__((noinline, noclone)) void short_lived_burn(double seconds)
{
	double end = thread_cpu_seconds() + seconds;
	volatile uint64_t acc = 7;

	while (thread_cpu_seconds() < end) {
		for (int i = 0; i < 100000; i++)
			acc = acc * 6364136223846793005ULL + 11;
	}
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1.0;

	if (argc > 2 || seconds <= 0) {
		fprintf(stderr, "usage: short_lived [SECONDS]\n");
		return 2;
	}
	short_lived_burn(seconds);
	return 0;
}
