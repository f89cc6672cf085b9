/* test_proc_maps_query.c - proc_maps__read (PROCMAP_QUERY where the kernel
 * has it) gives exactly what the text of /proc/PID/maps gives: every
 * executable mapping with its range, offset, file identity and path, a
 * deleted file's too; a process that is gone reads as ESRCH. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "symbolize/proc_maps.h"

static void assert_same_as_text(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	struct proc_maps *text = proc_maps__parse(f);
	fclose(f);
	struct proc_maps *read = proc_maps__read(pid);
	assert_non_null(text);
	assert_non_null(read);
	assert_int_equal(proc_maps__count(read), proc_maps__count(text));
	assert_true(proc_maps__count(read) > 0);
	for (size_t i = 0; i < proc_maps__count(read); i++) {
		const struct proc_map *a = proc_maps__at(read, i), *b = proc_maps__at(text, i);
		assert_int_equal(a->start, b->start);
		assert_int_equal(a->end, b->end);
		assert_int_equal(a->offset, b->offset);
		assert_int_equal(a->inode, b->inode);
		assert_int_equal(a->dev_major, b->dev_major);
		assert_int_equal(a->dev_minor, b->dev_minor);
		assert_string_equal(a->path, b->path);
		assert_int_equal(a->deleted, b->deleted);
	}
	proc_maps__free(read);
	proc_maps__free(text);
}

static void test_read_matches_the_text(void **state)
{
	(void)state;
	/* An executable mapping of a file deleted since: marked, path kept. */
	char file[] = "/tmp/dynoprof-maps-XXXXXX";
	int fd = mkstemp(file);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 8192), 0);
	void *x = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 4096 * 0);
	assert_true(x != MAP_FAILED);
	close(fd);
	unlink(file);
	assert_same_as_text(getpid());
	struct proc_maps *m = proc_maps__read(getpid());
	assert_non_null(m);
	const struct proc_map *pm = proc_maps__find(m, (uint64_t)(uintptr_t)x + 10);
	assert_non_null(pm);
	assert_string_equal(pm->path, file);
	assert_int_equal(pm->deleted, 1);
	proc_maps__free(m);
	munmap(x, 8192);

	/* Another process (exec'd), and one that is gone. */
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		execlp("sleep", "sleep", "60", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) { /* until it exec'd: sleep's own mapping */
		m = proc_maps__read(child);
		int has_sleep = 0;
		for (size_t j = 0; m && j < proc_maps__count(m); j++)
			has_sleep |= strstr(proc_maps__at(m, j)->path, "sleep") != NULL;
		proc_maps__free(m);
		if (has_sleep)
			break;
		usleep(10000);
	}
	assert_same_as_text(child);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	errno = 0;
	assert_null(proc_maps__read(child));
	assert_int_equal(errno, ESRCH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_matches_the_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
