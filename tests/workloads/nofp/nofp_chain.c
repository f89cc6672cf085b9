/* nofp_chain.c - a known native call chain built the way distributions build
 * (-O2 -fomit-frame-pointer, PIE), for the CFI unwinder's tests
 * (tests/integration/test_unwind.py). Runs one mode for SECONDS, then exits:
 *   chain    main -> chain_a -> chain_b -> chain_c (leaf)
 *   recurse  main -> recurse (200 deep, or DEPTH) -> recurse_leaf
 *   signal   main -> chain_a -> chain_b -> chain_c, and a SIGALRM handler every
 *            5 ms spins in signal_handler -> signal_work (leaf)
 *   plt      main -> call_lib -> lib_entry (libnofp.so, through the PLT) ->
 *            lib_mid -> lib_leaf
 *   vdso     main -> vdso_loop -> clock_gettime (the vdso's, through libc)
 *   realign  main -> realign_work (64-byte-aligned locals and a variable-length
 *            array: GCC realigns its stack through a DRAP register, its CFA
 *            the expression *(rbp - 8)) -> chain_c
 *   late     chain, until SIGUSR1: then libnofp_late.so (beside the program) is
 *            dlopen()ed and main -> call_late -> lib_entry -> lib_mid -> lib_leaf
 *            runs in it: a library mapped after the process was published
 * Every function keeps work after its call (no tail calls), so each caller is
 * on the stack truly. */
#include <dlfcn.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "nofp.h"

static volatile uint64_t sink;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

NOINLINE uint64_t chain_c(uint64_t n)
{
	return NOFP_SPIN(n);
}

NOINLINE uint64_t chain_b(uint64_t n)
{
	uint64_t h = chain_c(n);
	sink = h;
	return h * 5 + 3;
}

NOINLINE uint64_t chain_a(uint64_t n)
{
	uint64_t h = chain_b(n);
	sink = h;
	return h * 7 + 1;
}

NOINLINE uint64_t recurse_leaf(uint64_t n)
{
	return chain_c(n) + 1;
}

NOINLINE uint64_t recurse(int depth, uint64_t n)
{
	uint64_t h = depth > 1 ? recurse(depth - 1, n) : recurse_leaf(n);
	sink = h;
	return h + (uint64_t)depth;
}

NOINLINE uint64_t signal_work(uint64_t n)
{
	uint64_t h = 7;
	for (uint64_t i = 0; i < n; i++)
		h = (h ^ (i << 3)) * 0x100000001b3ull;
	return h;
}

NOINLINE void signal_handler(int sig)
{
	(void)sig;
	sink = signal_work(2000000) + 1;
}

NOINLINE uint64_t call_lib(uint64_t n)
{
	uint64_t h = lib_entry(n);
	sink = h;
	return h + 11;
}

NOINLINE uint64_t call_late(uint64_t (*entry)(uint64_t), uint64_t n)
{
	uint64_t h = entry(n);
	sink = h;
	return h + 13;
}

static volatile sig_atomic_t load_late;

static void on_usr1(int sig)
{
	(void)sig;
	load_late = 1;
}

/* libnofp_late.so's lib_entry, from the directory of this program. */
static uint64_t (*open_late(void))(uint64_t)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
	if (n <= 0)
		exit(3);
	path[n] = 0;
	char *slash = strrchr(path, '/');
	strcpy(slash ? slash + 1 : path, "libnofp_late.so");
	void *lib = dlopen(path, RTLD_NOW);
	void *entry = lib ? dlsym(lib, "lib_entry") : NULL;
	if (!entry) {
		fprintf(stderr, "nofp_chain: %s\n", dlerror());
		exit(3);
	}
	return (uint64_t (*)(uint64_t))entry;
}

NOINLINE uint64_t vdso_loop(int n)
{
	uint64_t h = 0;
	for (int i = 0; i < n; i++) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		h += (uint64_t)ts.tv_nsec;
	}
	return h;
}

NOINLINE uint64_t realign_work(int n)
{
	uint64_t v[8] __attribute__((aligned(64)));
	uint64_t w[n];
	for (int i = 0; i < 8; i++)
		v[i] = (uint64_t)n + (uint64_t)i;
	for (int i = 0; i < n; i++)
		w[i] = (uint64_t)i * 3;
	uint64_t h = chain_c(200000 + (v[n & 7] & 1) + (w[n - 1] & 1));
	sink = h;
	return h + v[3];
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: nofp_chain chain|recurse|signal|plt|vdso|realign|late SECONDS "
			"[DEPTH]\n");
		return 2;
	}
	const char *mode = argv[1];
	double end = now() + atof(argv[2]);
	int depth = argc > 3 ? atoi(argv[3]) : 200;
	if (!strcmp(mode, "signal")) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = signal_handler;
		sigaction(SIGALRM, &sa, NULL);
		struct itimerval it = { { 0, 5000 }, { 0, 5000 } };
		setitimer(ITIMER_REAL, &it, NULL);
	}
	uint64_t (*late)(uint64_t) = NULL;
	if (!strcmp(mode, "late"))
		signal(SIGUSR1, on_usr1);
	printf("ready\n");
	fflush(stdout);
	uint64_t total = 0;
	while (now() < end) {
		if (!strcmp(mode, "recurse"))
			total += recurse(depth, 200000);
		else if (!strcmp(mode, "plt"))
			total += call_lib(200000);
		else if (!strcmp(mode, "vdso"))
			total += vdso_loop(10000);
		else if (!strcmp(mode, "realign"))
			total += realign_work(depth % 64 + 8);
		else if (late)
			total += call_late(late, 200000);
		else if (load_late && !late)
			late = open_late();
		else
			total += chain_a(200000);
	}
	sink = total;
	return 0;
}
