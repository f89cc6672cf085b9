// SPDX-License-Identifier: MIT
/* A history query covers its whole range or is refused: store__foreach_window
 * returns -E2BIG, calling nothing, when more windows than the query's bound
 * overlap the range (it used to visit the oldest ones and stop silently);
 * store__count_range counts what a range holds. Real SQLite in a temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/store.h"

#define S_NS 1000000000LL
#define NWINDOWS 30

struct fixture {
	char dir[64];
	char path[96];
	struct store *store;
	int64_t t0;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/test_query_windows.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/history.db", f->dir);
	char err[256] = "";
	f->store = store__open(f->path, NULL, err, sizeof(err));
	if (!f->store)
		fail_msg("store__open: %s", err);
	f->t0 = ((int64_t)time(NULL) - 3600) * S_NS;
	for (int i = 0; i < NWINDOWS; i++) {
		char blob[8] = { (char)i };
		struct store_window w = { .start_ns = f->t0 + i * S_NS,
					  .end_ns = f->t0 + (i + 1) * S_NS, .samples = 1,
					  .pprof_gz = blob, .pprof_len = sizeof(blob) };
		assert_int_equal(store__put_window(f->store, &w), 0);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	store__close(f->store);
	char p[128];
	const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

struct visit {
	int n;
	int64_t last_start;
};

static int on_window(void *ctx, int64_t start_ns, int64_t end_ns, const void *blob, size_t len)
{
	struct visit *v = ctx;
	(void)end_ns, (void)blob, (void)len;
	v->n++;
	v->last_start = start_ns;
	return 0;
}

static void test_count_range(void **state)
{
	struct fixture *f = *state;
	int64_t n = -1;
	assert_int_equal(store__count_range(f->store, f->t0, f->t0 + NWINDOWS * S_NS, &n), 0);
	assert_int_equal(n, NWINDOWS);
	/* Overlap, not containment: half-covered windows at both ends count. */
	assert_int_equal(store__count_range(f->store, f->t0 + S_NS / 2, f->t0 + 5 * S_NS / 2,
					    &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store__count_range(f->store, f->t0 - 10 * S_NS, f->t0, &n), 0);
	assert_int_equal(n, 0);
}

static void test_over_the_bound_is_refused_whole(void **state)
{
	struct fixture *f = *state;
	struct visit v = { 0 };
	assert_int_equal(store__foreach_window(f->store, f->t0, f->t0 + NWINDOWS * S_NS,
					       NWINDOWS - 1, on_window, &v), -E2BIG);
	assert_int_equal(v.n, 0); /* nothing partial */
}

static void test_at_the_bound_covers_the_range(void **state)
{
	struct fixture *f = *state;
	struct visit v = { 0 };
	assert_int_equal(store__foreach_window(f->store, f->t0, f->t0 + NWINDOWS * S_NS,
					       NWINDOWS, on_window, &v), 0);
	assert_int_equal(v.n, NWINDOWS);
	/* The newest window is among them (the old bound dropped the newest). */
	assert_true(v.last_start == f->t0 + (NWINDOWS - 1) * S_NS);
	/* A narrower range under the bound works whatever the total. */
	v.n = 0;
	assert_int_equal(store__foreach_window(f->store, f->t0 + 20 * S_NS,
					       f->t0 + NWINDOWS * S_NS, 10, on_window, &v), 0);
	assert_int_equal(v.n, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_count_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_over_the_bound_is_refused_whole, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_at_the_bound_covers_the_range, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
