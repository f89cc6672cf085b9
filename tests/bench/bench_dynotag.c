/* bench_dynotag.c - ns per libdynotag call, linked against libdynotag.so.1 as
 * an application is (calls through the PLT). Not a test: prints figures and
 * whether the 1 us per request target holds.
 *
 *   make .output/bench/bench_dynotag && .output/bench/bench_dynotag [ITERATIONS]
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dynotag.h"

#define ROUNDS 5

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *const endpoints[4] = { "GET /orders/<id>", "POST /orders", "GET /health",
					   "GET /users/<id>/cart" };

/* One benchmarked operation: runs it n times. */
typedef void (*bench_fn)(long n, uint32_t *ids);

static void request_by_name(long n, uint32_t *ids)
{
	(void)ids;
	for (long i = 0; i < n; i++) {
		dynotag_request_begin(endpoints[i & 3]);
		dynotag_request_end();
	}
}

static void request_by_id(long n, uint32_t *ids)
{
	for (long i = 0; i < n; i++) {
		dynotag_request_begin_id(ids[i & 3]);
		dynotag_request_end();
	}
}

static void set_custom(long n, uint32_t *ids)
{
	(void)ids;
	for (long i = 0; i < n; i++)
		dynotag_set("tenant", endpoints[i & 3]);
}

static void set_clear_custom(long n, uint32_t *ids)
{
	(void)ids;
	for (long i = 0; i < n; i++) {
		dynotag_set("tenant", "acme");
		dynotag_clear("tenant");
	}
}

/* Best of ROUNDS, in ns per iteration. */
static double measure(bench_fn fn, long n, uint32_t *ids)
{
	double best = 1e18;
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = now_ns();
		fn(n, ids);
		double per = (double)(now_ns() - t0) / (double)n;
		if (per < best)
			best = per;
	}
	return best;
}

struct contended {
	long n;          /* iterations */
	double ns;       /* result: ns per iteration */
};

static void *contended_thread(void *arg)
{
	struct contended *c = arg;
	uint64_t t0 = now_ns();
	for (long i = 0; i < c->n; i++) {
		dynotag_request_begin(endpoints[0]); /* every thread, same counter */
		dynotag_request_end();
	}
	c->ns = (double)(now_ns() - t0) / (double)c->n;
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 5000000;
	uint32_t ids[4];

	if (dynotag_version() != DYNOTAG_VERSION) {
		fprintf(stderr, "bench_dynotag: library version %u, header %u\n",
			dynotag_version(), DYNOTAG_VERSION);
		return 1;
	}
	for (int i = 0; i < 4; i++)
		if (dynotag_intern(endpoints[i], &ids[i]))
			return 1;
	request_by_name(1000, ids); /* first use: record, interning */

	double by_name = measure(request_by_name, n, ids);
	printf("request_begin(name)+request_end  %7.1f ns\n", by_name);
	printf("request_begin_id+request_end     %7.1f ns\n", measure(request_by_id, n, ids));
	printf("set(key, value) (value changes)  %7.1f ns\n", measure(set_custom, n, ids));
	printf("set+clear                        %7.1f ns\n", measure(set_clear_custom, n, ids));

	enum { THREADS = 2 };
	struct contended c[THREADS];
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++) {
		c[i].n = n;
		pthread_create(&t[i], NULL, contended_thread, &c[i]);
	}
	double worst = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		if (c[i].ns > worst)
			worst = c[i].ns;
	}
	printf("same, %d threads, one endpoint   %7.1f ns (slowest thread)\n", THREADS, worst);
	printf("target <= 1000 ns per request: %s\n", by_name <= 1000 ? "met" : "MISSED");
	return by_name <= 1000 ? 0 : 1;
}
