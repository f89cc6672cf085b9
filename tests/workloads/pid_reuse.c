// SPDX-License-Identifier: MIT
/* pid_reuse OUT -- A_CMD [ARGS...] -- B_CMD [ARGS...]
 *
 * Runs A_CMD and waits for it; then starts B_CMD with A's pid (clone3 with
 * set_tid: needs CAP_SYS_ADMIN) and waits for it. Writes "A B" (the pids)
 * to OUT. Exits 0 when both exited 0 and B got A's pid; 3 when the pid was
 * taken meanwhile (EEXIST), 1 on other errors. For tests/integration/
 * test_hostile.py: a process reusing a pid must not inherit the tags,
 * mappings or Python state dynoprof knew under that pid.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int wait_ok(pid_t pid)
{
	int status;
	if (waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
	int sep[2] = { 0, 0 }, n = 0;
	for (int i = 2; i < argc && n < 2; i++)
		if (strcmp(argv[i], "--") == 0)
			sep[n++] = i;
	if (argc < 6 || n != 2 || sep[0] != 2 || sep[1] == sep[0] + 1 || sep[1] == argc - 1) {
		fprintf(stderr, "usage: pid_reuse OUT -- A_CMD [ARGS...] -- B_CMD [ARGS...]\n");
		return 1;
	}
	argv[sep[1]] = NULL;
	pid_t a = fork();
	if (a < 0)
		return 1;
	if (a == 0) {
		execvp(argv[sep[0] + 1], argv + sep[0] + 1);
		_exit(127);
	}
	if (!wait_ok(a))
		return 1;
	pid_t tid = a;
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.exit_signal = SIGCHLD;
	ca.set_tid = (uint64_t)(uintptr_t)&tid;
	ca.set_tid_size = 1;
	long b = syscall(SYS_clone3, &ca, sizeof(ca));
	if (b < 0) {
		fprintf(stderr, "pid_reuse: clone3 with pid %d: %s\n", (int)a, strerror(errno));
		return errno == EEXIST ? 3 : 1;
	}
	if (b == 0) {
		execvp(argv[sep[1] + 1], argv + sep[1] + 1);
		_exit(127);
	}
	int ok = wait_ok((pid_t)b);
	FILE *f = fopen(argv[1], "w");
	if (!f)
		return 1;
	fprintf(f, "%d %ld\n", (int)a, b);
	fclose(f);
	return ok && b == a ? 0 : 1;
}
