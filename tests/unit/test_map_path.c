/* test_map_path.c - a mapping's path as a chrooted process sees it, and the
 * file behind it opened through /proc/PID/root, for a real process chrooted
 * into a temporary directory (run as root: chroot needs CAP_SYS_CHROOT).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "symbolize/map_path.h"

/* A child chrooted into dir, paused until killed; 0 when chroot is refused. */
static pid_t start_chrooted(const char *dir)
{
	int fds[2];
	char ok = 0;
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		char c = chroot(dir) == 0 && chdir("/") == 0 ? 'y' : 'n';
		if (write(fds[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (read(fds[0], &ok, 1) != 1)
		ok = 0;
	close(fds[0]);
	if (ok != 'y') {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 0;
	}
	return pid;
}

static void test_chrooted_process(void **state)
{
	(void)state;
	char dir[] = "/tmp/dynoprof-map-path-XXXXXX", lib[PATH_MAX], buf[PATH_MAX + 64];
	char out[PATH_MAX];
	struct stat st, want;

	assert_non_null(mkdtemp(dir));
	snprintf(lib, sizeof(lib), "%s/lib.so", dir);
	FILE *f = fopen(lib, "w");
	assert_non_null(f);
	fputs("not ELF", f);
	fclose(f);
	assert_int_equal(stat(lib, &want), 0);

	pid_t pid = start_chrooted(dir);
	if (!pid) {
		unlink(lib);
		rmdir(dir);
		skip(); /* not root */
	}
	/* maps show our path of its files: the root's prefix goes */
	assert_string_equal(map_path__in_root(pid, lib, out, sizeof(out)), "/lib.so");
	/* a path outside its root (or a namesake prefix) stays as it is */
	char other[PATH_MAX];
	snprintf(other, sizeof(other), "%sx/lib.so", dir);
	assert_string_equal(map_path__in_root(pid, other, out, sizeof(out)), other);
	assert_string_equal(map_path__in_root(pid, "/usr/lib/libc.so.6", out, sizeof(out)),
			    "/usr/lib/libc.so.6");

	struct proc_map m = {.start = 0x1000, .end = 0x2000, .inode = want.st_ino, .path = lib};
	assert_int_equal(map_path__open_path(pid, &m, buf, sizeof(buf), &st), 0);
	char expect[PATH_MAX + 64];
	snprintf(expect, sizeof(expect), "/proc/%d/root/lib.so", (int)pid);
	assert_string_equal(buf, expect);
	assert_int_equal(st.st_ino, want.st_ino);

	/* another inode at that path: not that file (and no such mapping) */
	m.inode = want.st_ino + 1;
	assert_int_not_equal(map_path__open_path(pid, &m, buf, sizeof(buf), &st), 0);

	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(lib);
	rmdir(dir);
}

static void test_host_process_unchanged(void **state)
{
	(void)state;
	char out[PATH_MAX];
	assert_string_equal(map_path__in_root(getpid(), "/usr/lib/x.so", out, sizeof(out)),
			    "/usr/lib/x.so");
	/* a process that is gone: nothing to strip */
	assert_string_equal(map_path__in_root(0x3fffffff, "/a/b", out, sizeof(out)), "/a/b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chrooted_process),
		cmocka_unit_test(test_host_process_unchanged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
