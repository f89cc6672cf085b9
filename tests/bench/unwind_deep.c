/* unwind_deep.c - a fixed-depth native stack for bench_unwind.py (not a test).
 *
 * main -> rec x DEPTH -> leaf, where leaf spins until SECONDS have passed. Built
 * twice by the Makefile: -O2 -fomit-frame-pointer (as distributions build: the
 * CFI unwinder's work) and -O2 -fno-omit-frame-pointer (the same stack walked by
 * frame pointers), so the BPF cost per sample is compared at the same depth.
 * With libc's _start, __libc_start_main and __libc_start_call_main the stack
 * is DEPTH + 5 frames deep.
 *
 * Usage: unwind_deep DEPTH SECONDS
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The leaf: user-mode work, the clock read once per ~millisecond of it. */
__attribute__((noinline)) static unsigned long leaf(double end)
{
	volatile unsigned long x = 0;
	while (now_s() < end)
		for (unsigned long i = 0; i < 500000; i++)
			x += i * i;
	return x;
}

/* One frame per level: the volatile local gives it a frame of its own and the
 * add after the call keeps GCC from making the recursion a loop or a tail call. */
__attribute__((noinline)) static unsigned long rec(int n, double end)
{
	volatile unsigned long pad[2];
	pad[0] = (unsigned long)n;
	unsigned long r = n > 0 ? rec(n - 1, end) : leaf(end);
	return r + pad[0];
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: unwind_deep DEPTH SECONDS\n");
		return 2;
	}
	int depth = atoi(argv[1]);
	double seconds = atof(argv[2]);
	if (depth < 1 || depth > 100000 || seconds <= 0) {
		fprintf(stderr, "unwind_deep: DEPTH 1..100000, SECONDS > 0\n");
		return 2;
	}
	/* rec(depth - 1) .. rec(0): depth frames of rec. */
	return (int)(rec(depth - 1, now_s() + seconds) & 1);
}
