// SPDX-License-Identifier: MIT
/* util/file_cache: one verdict per file, dropped when the file changes, bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/file_cache.h"

struct verdict {
	int kind;       /* what the caller decided */
	char why[32];   /* and why */
};

static struct stat file_stat(ino_t ino, off_t size, time_t mtime)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_dev = 8;
	st.st_ino = ino;
	st.st_size = size;
	st.st_mtim.tv_sec = mtime;
	st.st_mtim.tv_nsec = 5;
	return st;
}

static void test_hit_and_stale(void **state)
{
	(void)state;
	struct file_cache cache = FILE_CACHE_INIT(sizeof(struct verdict), 16);
	struct verdict in = {.kind = 3, .why = "an interpreter"}, out;
	struct stat st = file_stat(100, 4096, 1000);

	assert_int_equal(file_cache__get(&cache, &st, &out), 0);
	file_cache__put(&cache, &st, &in);
	memset(&out, 0, sizeof(out));
	assert_int_equal(file_cache__get(&cache, &st, &out), 1);
	assert_int_equal(out.kind, 3);
	assert_string_equal(out.why, "an interpreter");

	/* The same inode rewritten in place (new size, or new mtime) is a miss. */
	struct stat grown = file_stat(100, 8192, 1000), touched = file_stat(100, 4096, 1001);
	assert_int_equal(file_cache__get(&cache, &grown, &out), 0);
	assert_int_equal(file_cache__get(&cache, &touched, &out), 0);
	/* Another file is a miss; storing it again replaces, never duplicates. */
	struct stat other = file_stat(101, 4096, 1000);
	assert_int_equal(file_cache__get(&cache, &other, &out), 0);
	file_cache__put(&cache, &touched, &in);
	assert_int_equal(file_cache__size(&cache), 1);
	assert_int_equal(file_cache__get(&cache, &st, &out), 0);
	assert_int_equal(file_cache__get(&cache, &touched, &out), 1);
	file_cache__clear(&cache);
	assert_int_equal(file_cache__size(&cache), 0);
	assert_int_equal(file_cache__get(&cache, &touched, &out), 0);
	file_cache__clear(&cache);
}

static void test_bounded(void **state)
{
	(void)state;
	struct file_cache cache = FILE_CACHE_INIT(sizeof(struct verdict), 8);
	struct verdict in = {.kind = 1}, out;

	for (ino_t ino = 1; ino <= 1000; ino++) {
		struct stat st = file_stat(ino, 1, 1);
		in.kind = (int)ino;
		file_cache__put(&cache, &st, &in);
		assert_true(file_cache__size(&cache) <= 8);
		assert_int_equal(file_cache__get(&cache, &st, &out), 1);
		assert_int_equal(out.kind, (int)ino);
	}
	file_cache__clear(&cache); /* LSan checks nothing is left */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_and_stale),
		cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
