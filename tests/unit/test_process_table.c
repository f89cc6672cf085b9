// SPDX-License-Identifier: MIT
/* Per-process tables: an exited process's entry lives until the second sweep
 * after its exit (its queued samples are read by then), live ones stay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "util/process_table.h"

static void count_evicted(void *ctx, void *value)
{
	(*(int *)ctx)++;
	free(value);
}

static void test_sweep_forgets_exited_at_the_second_sweep(void **state)
{
	(void)state;
	struct hashmap *m = hashmap__new();
	uint64_t tick = 0;
	int evicted = 0;
	assert_non_null(m);
	for (pid_t pid = 1; pid <= 4; pid++)
		assert_non_null(process_table__get(m, pid, 100, sizeof(struct process_slot), &tick,
						   count_evicted, &evicted, NULL));
	struct process_slot *gone = hashmap__get(m, &(pid_t){ 2 }, sizeof(pid_t));
	gone->exited = 1;
	/* Exit seen by this sweep: kept (samples may still be queued). */
	assert_int_equal(process_table__sweep_exited(m, count_evicted, &evicted), 0);
	assert_int_equal(hashmap__size(m), 4);
	struct process_slot *later = hashmap__get(m, &(pid_t){ 3 }, sizeof(pid_t));
	later->exited = 1;
	/* The next sweep forgets pid 2 only; pid 3 exited since the previous. */
	assert_int_equal(process_table__sweep_exited(m, count_evicted, &evicted), 1);
	assert_int_equal(evicted, 1);
	assert_null(hashmap__get(m, &(pid_t){ 2 }, sizeof(pid_t)));
	assert_non_null(hashmap__get(m, &(pid_t){ 3 }, sizeof(pid_t)));
	assert_int_equal(process_table__sweep_exited(m, count_evicted, &evicted), 1);
	assert_int_equal(hashmap__size(m), 2);
	/* Live entries are never swept. */
	assert_int_equal(process_table__sweep_exited(m, count_evicted, &evicted), 0);
	assert_int_equal(hashmap__size(m), 2);
	size_t cur = 0;
	void *v;
	while (hashmap__next(m, &cur, NULL, NULL, &v))
		free(v);
	hashmap__free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep_forgets_exited_at_the_second_sweep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
