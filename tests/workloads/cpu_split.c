/* cpu_split - a CPU-bound workload with a known split of CPU time between three
 * functions, so a profile of it can be checked against the truth.
 *
 * Each round calls caller_alpha/caller_beta/caller_gamma, which call burn_alpha/
 * burn_beta/burn_gamma, in a fixed interleaved pattern of work units (default
 * 5:3:2, i.e. 50/30/20). One unit is a fixed number of volatile loop iterations
 * (about 100 us on a current x86 core), so the split is fine-grained relative to
 * any sampling period. Each caller measures the thread CPU time its burn call
 * took (CLOCK_THREAD_CPUTIME_ID), which is the ground truth the tests compare
 * sample shares against.
 *
 * Usage: cpu_split [-d SECONDS | -w UNITS] [-c CPU_SECONDS] [-r A,B,G] [-o JSON_PATH]
 *                  [-t THREADS]
 *   -d SECONDS  run for this long (wall clock; default 5)
 *   -c CPU_SECONDS  stop once each worker thread has used this much CPU
 *               (CLOCK_THREAD_CPUTIME_ID), -d still bounding the run in wall
 *               time: the same amount of work on a busy machine, only slower
 *   -w UNITS    run exactly this many work units in total and exit (fixed work,
 *               for benchmarks; overrides -d)
 *   -r A,B,G    units of alpha, beta, gamma per round (default 5,3,2)
 *   -o PATH     at exit (also on SIGTERM/SIGINT) write
 *               {"burn_alpha": s, "burn_beta": s, "burn_gamma": s, ...} to PATH
 *   -t THREADS  number of worker threads running the same loop (default 1: the
 *               main thread itself works); times are summed over threads
 *
 * The work is deterministic: -w N always executes the same instructions, so wall
 * time of a -w run measures how much the environment (e.g. a profiler) slows it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Loop iterations per work unit; about 100 us each (see file comment). */
#define ITERATIONS_PER_UNIT 120000

/* Set by the SIGTERM/SIGINT handler; workers stop at the next unit boundary. */
static volatile sig_atomic_t stop_requested;

/* Per-thread accounting, summed into the JSON at exit. */
struct worker {
	pthread_t thread;        /* the worker's thread (unused for the main thread) */
	long units_alpha;        /* units per round for alpha */
	long units_beta;         /* units per round for beta */
	long units_gamma;        /* units per round for gamma */
	long units_budget;       /* total units to run; -1 means run until deadline */
	double deadline;         /* CLOCK_MONOTONIC seconds at which to stop (time mode) */
	double cpu_target;       /* thread CPU seconds at which to stop; 0: no target */
	double seconds_alpha;    /* thread CPU seconds spent inside burn_alpha */
	double seconds_beta;     /* thread CPU seconds spent inside burn_beta */
	double seconds_gamma;    /* thread CPU seconds spent inside burn_gamma */
	long units_done;         /* work units completed */
	double cpu_seconds;      /* whole thread CPU time at the end */
};

static double clock_seconds(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The three burners differ in a constant only; noinline/noclone and the distinct
 * constants keep the compiler from merging or inlining them. */
__attribute__((noinline, noclone)) void burn_alpha(void)
{
	volatile uint64_t acc = 1;

	for (long i = 0; i < ITERATIONS_PER_UNIT; i++)
		acc = acc * 6364136223846793005ULL + 1;
}

__attribute__((noinline, noclone)) void burn_beta(void)
{
	volatile uint64_t acc = 2;

	for (long i = 0; i < ITERATIONS_PER_UNIT; i++)
		acc = acc * 6364136223846793005ULL + 3;
}

__attribute__((noinline, noclone)) void burn_gamma(void)
{
	volatile uint64_t acc = 3;

	for (long i = 0; i < ITERATIONS_PER_UNIT; i++)
		acc = acc * 6364136223846793005ULL + 5;
}

__attribute__((noinline, noclone)) void caller_alpha(struct worker *w)
{
	double start = clock_seconds(CLOCK_THREAD_CPUTIME_ID);

	burn_alpha();
	w->seconds_alpha += clock_seconds(CLOCK_THREAD_CPUTIME_ID) - start;
}

__attribute__((noinline, noclone)) void caller_beta(struct worker *w)
{
	double start = clock_seconds(CLOCK_THREAD_CPUTIME_ID);

	burn_beta();
	w->seconds_beta += clock_seconds(CLOCK_THREAD_CPUTIME_ID) - start;
}

__attribute__((noinline, noclone)) void caller_gamma(struct worker *w)
{
	double start = clock_seconds(CLOCK_THREAD_CPUTIME_ID);

	burn_gamma();
	w->seconds_gamma += clock_seconds(CLOCK_THREAD_CPUTIME_ID) - start;
}

/* True when the worker must stop before starting another unit. */
static int worker_done(const struct worker *w)
{
	if (stop_requested)
		return 1;
	if (w->units_budget >= 0)
		return w->units_done >= w->units_budget;
	/* Checking the clock every unit costs ~50 ns against ~100 us of work. */
	if (clock_seconds(CLOCK_MONOTONIC) >= w->deadline)
		return 1;
	return w->cpu_target > 0 && clock_seconds(CLOCK_THREAD_CPUTIME_ID) >= w->cpu_target;
}

/* Runs rounds with the three kinds of units interleaved (Bresenham-style), so
 * no kind runs in a long streak that could alias with a sampling period. */
__attribute__((noinline, noclone)) void run_rounds(struct worker *w)
{
	long per_round = w->units_alpha + w->units_beta + w->units_gamma;

	while (!worker_done(w)) {
		long a = 0, b = 0, g = 0;

		for (long k = 1; k <= per_round && !worker_done(w); k++) {
			/* Pick the kind furthest behind its target share at step k. */
			double lag_a = (double)w->units_alpha * k / per_round - a;
			double lag_b = (double)w->units_beta * k / per_round - b;
			double lag_g = (double)w->units_gamma * k / per_round - g;

			if (lag_a >= lag_b && lag_a >= lag_g) {
				caller_alpha(w);
				a++;
			} else if (lag_b >= lag_g) {
				caller_beta(w);
				b++;
			} else {
				caller_gamma(w);
				g++;
			}
			w->units_done++;
		}
	}
	w->cpu_seconds = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
}

static void *worker_main(void *arg)
{
	run_rounds(arg);
	return NULL;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int parse_ratio(const char *s, long *a, long *b, long *g)
{
	char tail;

	if (sscanf(s, "%ld,%ld,%ld%c", a, b, g, &tail) != 3)
		return -EINVAL;
	if (*a < 0 || *b < 0 || *g < 0 || *a + *b + *g == 0)
		return -EINVAL;
	return 0;
}

static int write_json(const char *path, const struct worker *workers, int nworkers,
		      double wall_seconds)
{
	double alpha = 0, beta = 0, gamma = 0, cpu = 0;
	long units = 0;
	FILE *f;

	for (int i = 0; i < nworkers; i++) {
		alpha += workers[i].seconds_alpha;
		beta += workers[i].seconds_beta;
		gamma += workers[i].seconds_gamma;
		cpu += workers[i].cpu_seconds;
		units += workers[i].units_done;
	}
	f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "cpu_split: cannot write %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "{\"burn_alpha\": %.6f, \"burn_beta\": %.6f, \"burn_gamma\": %.6f, "
		   "\"thread_cpu\": %.6f, \"wall\": %.6f, \"units\": %ld, \"pid\": %d}\n",
		alpha, beta, gamma, cpu, wall_seconds, units, (int)getpid());
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: cpu_split [-d SECONDS | -w UNITS] [-c CPU_SECONDS] [-r A,B,G] "
			"[-o JSON] [-t THREADS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	double duration = 5.0, cpu_target = 0, start_wall;
	long budget = 0, ua = 5, ub = 3, ug = 2;
	const char *json_path = NULL;
	int nthreads = 1, opt;
	struct worker *workers;
	struct sigaction sa;

	while ((opt = getopt(argc, argv, "d:w:c:r:o:t:")) != -1) {
		switch (opt) {
		case 'd':
			duration = atof(optarg);
			break;
		case 'w':
			budget = atol(optarg);
			break;
		case 'c':
			cpu_target = atof(optarg);
			if (cpu_target <= 0)
				usage();
			break;
		case 'r':
			if (parse_ratio(optarg, &ua, &ub, &ug))
				usage();
			break;
		case 'o':
			json_path = optarg;
			break;
		case 't':
			nthreads = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || nthreads < 1 || nthreads > 256 || (budget <= 0 && duration <= 0))
		usage();

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	workers = calloc(nthreads, sizeof(*workers));
	if (!workers)
		return 1;
	start_wall = clock_seconds(CLOCK_MONOTONIC);
	for (int i = 0; i < nthreads; i++) {
		workers[i].units_alpha = ua;
		workers[i].units_beta = ub;
		workers[i].units_gamma = ug;
		/* Split a fixed budget evenly; the first threads take the remainder. */
		workers[i].units_budget = budget > 0 ? budget / nthreads + (i < budget % nthreads) : -1;
		workers[i].deadline = start_wall + duration;
		workers[i].cpu_target = cpu_target;
	}
	if (nthreads == 1) {
		run_rounds(&workers[0]);
	} else {
		for (int i = 0; i < nthreads; i++) {
			if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i])) {
				fprintf(stderr, "cpu_split: pthread_create failed\n");
				return 1;
			}
		}
		for (int i = 0; i < nthreads; i++)
			pthread_join(workers[i].thread, NULL);
	}
	if (json_path &&
	    write_json(json_path, workers, nthreads, clock_seconds(CLOCK_MONOTONIC) - start_wall))
		return 1;
	free(workers);
	return 0;
}
