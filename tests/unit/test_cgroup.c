// SPDX-License-Identifier: MIT
/* cgroup__resolve: `--cgroup` names (a cgroup2 directory, or a name under the
 * cgroup2 mount) to the id and depth the BPF filter compares; anything else
 * is one line naming what was tried. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/cgroup.h"

/* The cgroup2 mount of this host (unified or hybrid), from /proc/self/mounts. */
static int cgroup2_mount(char *out, size_t len)
{
	char line[4096], dev[256], dir[1024], type[64];
	FILE *f = fopen("/proc/self/mounts", "r");
	int found = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%255s %1023s %63s", dev, dir, type) == 3 &&
		    !strcmp(type, "cgroup2") && (!found || !strcmp(dir, "/sys/fs/cgroup"))) {
			snprintf(out, len, "%s", dir);
			found = 1;
		}
	if (f)
		fclose(f);
	return found;
}

static void test_root_and_child(void **state)
{
	(void)state;
	char root[1024], err[512], child[1200];
	struct cgroup_ref ref;
	struct stat st;
	if (!cgroup2_mount(root, sizeof(root)))
		skip();
	assert_int_equal(cgroup__resolve(root, &ref, err, sizeof(err)), 0);
	assert_int_equal(ref.level, 0);
	assert_int_equal(stat(root, &st), 0);
	assert_true(ref.id == (uint64_t)st.st_ino && ref.id != 0);
	/* A child made here (root only): by path and by name, depth 1. */
	snprintf(child, sizeof(child), "%s/dynoprof-unit-%d", root, (int)getpid());
	if (mkdir(child, 0755))
		skip();
	char name[64];
	snprintf(name, sizeof(name), "/dynoprof-unit-%d", (int)getpid());
	assert_int_equal(cgroup__resolve(child, &ref, err, sizeof(err)), 0);
	assert_int_equal(ref.level, 1);
	uint64_t id = ref.id;
	assert_int_equal(cgroup__resolve(name, &ref, err, sizeof(err)), 0);
	assert_true(ref.id == id && ref.level == 1);
	assert_int_equal(cgroup__resolve(name + 1, &ref, err, sizeof(err)), 0);
	assert_true(ref.id == id);
	rmdir(child);
}

static void test_not_a_cgroup(void **state)
{
	(void)state;
	char err[512];
	struct cgroup_ref ref;
	assert_int_equal(cgroup__resolve("/tmp", &ref, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no cgroup v2 '/tmp'"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(cgroup__resolve("no-such-cgroup-here", &ref, err, sizeof(err)), -ENOENT);
	assert_int_equal(cgroup__resolve("", &ref, err, sizeof(err)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_root_and_child),
		cmocka_unit_test(test_not_a_cgroup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
