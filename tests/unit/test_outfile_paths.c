// SPDX-License-Identifier: MIT
/* The output path policy (util/outfile.h) on the paths a user may type:
 * symbolic links it follows (in directories no one else can write: a
 * private one, or a sticky one whose link is ours), with relative and
 * absolute targets and chains; loops, a file used as a directory, names
 * and paths too long, an empty path and a trailing slash refused with one
 * line naming the path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "util/outfile.h"

static char dir[] = "/tmp/dynoprof-outpaths-XXXXXX";

static const char *at(const char *name)
{
	static char buf[4][PATH_MAX];
	static int next;
	char *p = buf[next++ % 4];
	snprintf(p, PATH_MAX, "%s/%s", dir, name);
	return p;
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) && chmod(dir, 0700) == 0 ? 0 : -1; /* private */
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Writes text to path through outfile; returns 0 or -errno (message in err). */
static int write_text(const char *path, const char *text, char *err, size_t len)
{
	struct outfile *o = outfile__open(path, err, len);
	if (!o)
		return -errno;
	fputs(text, outfile__stream(o));
	return outfile__commit(o, err, len);
}

static void expect_refused(const char *path, int want_errno, const char *says)
{
	char err[512] = "";
	int e = outfile__check(path, 0, err, sizeof(err));
	if (e != -want_errno || !strstr(err, says) || strchr(err, '\n'))
		fail_msg("%.80s: %d %s (want %d, %s)", path, e, err, -want_errno, says);
}

static void test_links_followed_in_private_dirs(void **state)
{
	(void)state;
	char err[512], buf[64];
	assert_int_equal(mkdir(at("real"), 0700), 0);
	/* A relative link to a directory, an absolute one, a chain. */
	assert_int_equal(symlink("real", at("rel")), 0);
	assert_int_equal(symlink(at("real"), at("abs")), 0);
	assert_int_equal(symlink("rel", at("chain")), 0);
	assert_int_equal(write_text(at("rel/a.txt"), "one", err, sizeof(err)), 0);
	assert_int_equal(write_text(at("abs/b.txt"), "two", err, sizeof(err)), 0);
	assert_int_equal(write_text(at("chain/c.txt"), "three", err, sizeof(err)), 0);
	/* A link to the file itself: the file is replaced, the link stays. */
	assert_int_equal(symlink("real/a.txt", at("alink")), 0);
	assert_int_equal(write_text(at("alink"), "four", err, sizeof(err)), 0);
	FILE *f = fopen(at("real/a.txt"), "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "four");
	struct stat st;
	assert_int_equal(lstat(at("alink"), &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	f = fopen(at("real/c.txt"), "r");
	assert_non_null(f);
	fclose(f);
	/* A relative path from here. */
	char cwd[PATH_MAX];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	assert_int_equal(outfile__check("rel/d.txt", 0, err, sizeof(err)), 0);
	assert_int_equal(chdir(cwd), 0);
}

static void test_bad_paths_refused(void **state)
{
	(void)state;
	assert_int_equal(symlink("loop2", at("loop1")), 0);
	assert_int_equal(symlink("loop1", at("loop2")), 0);
	expect_refused(at("loop1/x.svg"), ELOOP, "cannot write");
	FILE *f = fopen(at("plain"), "w");
	assert_non_null(f);
	fclose(f);
	expect_refused(at("plain/x.svg"), ENOTDIR, "is not a directory");
	expect_refused(at("sub/"), EISDIR, "directory");
	expect_refused("/", EISDIR, "directory");
	expect_refused("", EINVAL, "empty output path");
	char name[NAME_MAX + 8];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	expect_refused(at(name), ENAMETOOLONG, "longer than");
	static char longpath[PATH_MAX + 16];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	for (size_t i = 100; i < sizeof(longpath) - 1; i += 100)
		longpath[i] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	expect_refused(longpath, ENAMETOOLONG, "path too long");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_links_followed_in_private_dirs),
		cmocka_unit_test(test_bad_paths_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
