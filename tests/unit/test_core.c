/* Unit tests of the core data structures: hash map, profile model, /proc maps
 * parsing, id lists, and the privilege decision. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "util/privileges.h"
#include "cli/cli.h"
#include "profile/profile.h"
#include "symbolize/proc_maps.h"
#include "util/hashmap.h"

static void test_hashmap_put_get_remove(void **state)
{
	(void)state;
	struct hashmap *m = hashmap__new();
	assert_non_null(m);
	for (uintptr_t i = 1; i <= 1000; i++)
		assert_int_equal(hashmap__put(m, &i, sizeof(i), (void *)(i * 3), NULL), 0);
	assert_int_equal(hashmap__size(m), 1000);
	for (uintptr_t i = 1; i <= 1000; i++)
		assert_ptr_equal(hashmap__get(m, &i, sizeof(i)), (void *)(i * 3));
	/* Remove every other key; the rest must stay reachable (backward shift). */
	for (uintptr_t i = 1; i <= 1000; i += 2)
		assert_ptr_equal(hashmap__remove(m, &i, sizeof(i)), (void *)(i * 3));
	assert_int_equal(hashmap__size(m), 500);
	for (uintptr_t i = 1; i <= 1000; i++)
		assert_ptr_equal(hashmap__get(m, &i, sizeof(i)), i % 2 ? NULL : (void *)(i * 3));
	void *old;
	uintptr_t k = 2;
	assert_int_equal(hashmap__put(m, &k, sizeof(k), (void *)7, &old), 0);
	assert_ptr_equal(old, (void *)6);
	size_t cur = 0, n = 0;
	while (hashmap__next(m, &cur, NULL, NULL, NULL))
		n++;
	assert_int_equal(n, 500);
	hashmap__free(m);
	hashmap__free(NULL);
}

static void test_profile_merges_identical_samples(void **state)
{
	(void)state;
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	uint32_t f[2];
	struct frame_desc main_d = { .kind = FRAME_NATIVE, .name = "main", .module = "/bin/x" };
	struct frame_desc leaf_d = { .kind = FRAME_NATIVE, .name = "leaf", .module = "/bin/x" };
	assert_int_equal(profile__add_frame(p, &main_d, &f[0]), 0);
	assert_int_equal(profile__add_frame(p, &leaf_d, &f[1]), 0);
	uint32_t again;
	assert_int_equal(profile__add_frame(p, &main_d, &again), 0);
	assert_int_equal(again, f[0]);
	uint64_t v[] = { 1, 10 };
	const char *keys[] = { "endpoint" }, *vals[] = { "/a" };
	struct sample_desc s = { .frames = f, .nframes = 2, .pid = 5, .tid = 6, .comm = "x",
				 .values = v, .label_keys = keys, .label_values = vals,
				 .nlabels = 1 };
	for (int i = 0; i < 3; i++)
		assert_int_equal(profile__add_sample(p, &s), 0);
	s.tid = 7; /* another thread: another sample */
	assert_int_equal(profile__add_sample(p, &s), 0);
	assert_int_equal(profile__sample_count(p), 2);
	assert_int_equal(profile__total(p, 0), 4);
	assert_int_equal(profile__total(p, 1), 40);
	const struct profile_sample *ps = profile__sample(p, 0);
	assert_int_equal(ps->values[0], 3);
	assert_string_equal(profile__str(p, ps->comm), "x");
	assert_string_equal(profile__sample_label(p, ps, "endpoint"), "/a");
	assert_null(profile__sample_label(p, ps, "commit"));
	assert_string_equal(profile__str(p, profile__frame(p, ps->frames[1])->name), "leaf");
	/* Value types are fixed once samples exist. */
	assert_int_equal(profile__add_value_type(p, "late", "count"), -EBUSY);
	struct frame_desc bad = { .kind = FRAME_NATIVE, .name = "" };
	assert_int_equal(profile__add_frame(p, &bad, &again), -EINVAL);
	profile__free(p);
}

static void test_proc_maps_parse_keeps_executable_mappings(void **state)
{
	(void)state;
	const char *text =
		"55d0c0a00000-55d0c0a20000 r--p 00000000 fe:01 1234   /usr/bin/app\n"
		"55d0c0a20000-55d0c0a80000 r-xp 00020000 fe:01 1234   /usr/bin/app\n"
		"7f0000000000-7f0000100000 r-xp 00028000 fe:01 99     /usr/lib/libc.so.6 (deleted)\n"
		"7fff00000000-7fff00002000 r-xp 00000000 00:00 0      [vdso]\n"
		"7fff10000000-7fff10001000 rw-p 00000000 00:00 0\n";
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct proc_maps *m = proc_maps__parse(f);
	fclose(f);
	assert_non_null(m);
	assert_int_equal(proc_maps__count(m), 3);
	const struct proc_map *pm = proc_maps__find(m, 0x55d0c0a20010);
	assert_non_null(pm);
	assert_string_equal(pm->path, "/usr/bin/app");
	assert_int_equal(pm->offset, 0x20000);
	assert_int_equal(pm->inode, 1234);
	assert_int_equal(pm->dev_major, 0xfe);
	pm = proc_maps__find(m, 0x7f0000000100);
	assert_string_equal(pm->path, "/usr/lib/libc.so.6");
	assert_true(pm->deleted);
	assert_null(proc_maps__find(m, 0x55d0c0a00010)); /* not executable */
	assert_null(proc_maps__find(m, 0x55d0c0a80000)); /* end is exclusive */
	assert_string_equal(proc_maps__find(m, 0x7fff00000001)->path, "[vdso]");
	proc_maps__free(m);

	const char *bad = "garbage line\n";
	f = fmemopen((void *)bad, strlen(bad), "r");
	assert_null(proc_maps__parse(f));
	assert_int_equal(errno, EINVAL);
	fclose(f);
}

static void test_proc_maps_read_self(void **state)
{
	(void)state;
	struct proc_maps *m = proc_maps__read(getpid());
	assert_non_null(m);
	assert_non_null(proc_maps__find(m, (uint64_t)(uintptr_t)&test_proc_maps_read_self));
	proc_maps__free(m);
	assert_null(proc_maps__read(999999999));
	assert_int_equal(errno, ESRCH);
}

static void test_parse_id_list(void **state)
{
	(void)state;
	uint32_t *ids;
	size_t n;
	assert_int_equal(parse_id_list("12,34,5", &ids, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], 12);
	assert_int_equal(ids[2], 5);
	free(ids);
	assert_int_equal(parse_id_list("", &ids, &n), -EINVAL);
	assert_int_equal(parse_id_list("1,,2", &ids, &n), -EINVAL);
	assert_int_equal(parse_id_list("0", &ids, &n), -EINVAL);
	assert_int_equal(parse_id_list("-3", &ids, &n), -EINVAL);
	assert_int_equal(parse_id_list("12x", &ids, &n), -EINVAL);
	assert_int_equal(parse_id_list("99999999999", &ids, &n), -EINVAL);
}

static void test_privileges_decision(void **state)
{
	(void)state;
	assert_false(privileges__sufficient(0));
	assert_true(privileges__sufficient(1ULL << CAPBIT_SYS_ADMIN));
	assert_false(privileges__sufficient(1ULL << CAPBIT_BPF));
	assert_false(privileges__sufficient(1ULL << CAPBIT_PERFMON));
	assert_true(privileges__sufficient((1ULL << CAPBIT_BPF) | (1ULL << CAPBIT_PERFMON)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hashmap_put_get_remove),
		cmocka_unit_test(test_profile_merges_identical_samples),
		cmocka_unit_test(test_proc_maps_parse_keeps_executable_mappings),
		cmocka_unit_test(test_proc_maps_read_self),
		cmocka_unit_test(test_parse_id_list),
		cmocka_unit_test(test_privileges_decision),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
