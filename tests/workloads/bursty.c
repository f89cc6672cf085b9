/* bursty - threads that run in short bursts between sleeps next to one that
 * never sleeps, each measuring its own CPU time: the ground truth for how a
 * sampler splits a process's CPU between its threads.
 *
 * Thread 0 (the main thread) spins without a break. Threads 1..N each loop:
 * burn BURST_US of their own CPU time (CLOCK_THREAD_CPUTIME_ID, the clock of
 * Python's time.thread_time()), then sleep SLEEP_US. Short bursts that start
 * when a sleep ends fall between scheduler ticks most of the time, which is
 * what `record -e tick` must still account for.
 *
 * Usage: bursty [-d SECONDS] [-t BURSTY_THREADS] [-b BURST_US] [-s SLEEP_US] -o JSON
 *   At exit (after -d, default 5, or on SIGTERM/SIGINT) writes
 *   {"threads": [{"tid": 12, "bursty": false, "cpu_ns": 123}, ...]} to JSON.
 *   Prints "ready" on stdout once every thread runs.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64

static volatile sig_atomic_t stop_requested;

struct worker {
	pthread_t thread; /* the pthread (unused for the main thread) */
	pid_t tid;        /* kernel thread id */
	int bursty;       /* sleeps between bursts */
	uint64_t cpu_ns;  /* its CPU time at the end */
	volatile int up;  /* running */
};

static struct worker workers[MAX_THREADS + 1];
static long burst_us = 500, sleep_us = 1500;

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void spin_until(uint64_t cpu_ns)
{
	volatile uint64_t x = 0;
	while (thread_cpu_ns() < cpu_ns && !stop_requested)
		for (int i = 0; i < 2000; i++)
			x += (uint64_t)i;
}

static void *run_bursty(void *arg)
{
	struct worker *w = arg;
	w->tid = (pid_t)syscall(SYS_gettid);
	w->up = 1;
	struct timespec nap = { .tv_sec = sleep_us / 1000000, .tv_nsec = (sleep_us % 1000000) * 1000 };
	while (!stop_requested) {
		spin_until(thread_cpu_ns() + (uint64_t)burst_us * 1000);
		nanosleep(&nap, NULL);
	}
	w->cpu_ns = thread_cpu_ns();
	return NULL;
}

int main(int argc, char **argv)
{
	double seconds = 5;
	int nbursty = 3;
	const char *out = NULL;
	int c;
	while ((c = getopt(argc, argv, "d:t:b:s:o:")) != -1) {
		switch (c) {
		case 'd': seconds = atof(optarg); break;
		case 't': nbursty = atoi(optarg); break;
		case 'b': burst_us = atol(optarg); break;
		case 's': sleep_us = atol(optarg); break;
		case 'o': out = optarg; break;
		default:
			fprintf(stderr, "usage: bursty [-d S] [-t N] [-b US] [-s US] -o JSON\n");
			return 2;
		}
	}
	if (!out || nbursty < 0 || nbursty > MAX_THREADS || burst_us <= 0 || sleep_us < 0) {
		fprintf(stderr, "usage: bursty [-d S] [-t N] [-b US] [-s US] -o JSON\n");
		return 2;
	}
	struct sigaction sa = { .sa_handler = on_stop };
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	workers[0].tid = (pid_t)syscall(SYS_gettid);
	for (int i = 1; i <= nbursty; i++) {
		workers[i].bursty = 1;
		if (pthread_create(&workers[i].thread, NULL, run_bursty, &workers[i])) {
			perror("pthread_create");
			return 1;
		}
	}
	for (int i = 1; i <= nbursty; i++)
		while (!workers[i].up)
			usleep(1000);
	printf("ready\n");
	fflush(stdout);
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	volatile uint64_t x = 0;
	do {
		for (int i = 0; i < 100000; i++)
			x += (uint64_t)i;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (!stop_requested && (double)(now.tv_sec - start.tv_sec) +
		 (double)(now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
	stop_requested = 1;
	workers[0].cpu_ns = thread_cpu_ns();
	for (int i = 1; i <= nbursty; i++)
		pthread_join(workers[i].thread, NULL);
	FILE *f = fopen(out, "w");
	if (!f) {
		perror(out);
		return 1;
	}
	fprintf(f, "{\"threads\": [");
	for (int i = 0; i <= nbursty; i++)
		fprintf(f, "%s{\"tid\": %d, \"bursty\": %s, \"cpu_ns\": %llu}", i ? ", " : "",
			(int)workers[i].tid, workers[i].bursty ? "true" : "false",
			(unsigned long long)workers[i].cpu_ns);
	fprintf(f, "]}\n");
	return fclose(f) ? 1 : 0;
}
