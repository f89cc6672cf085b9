// SPDX-License-Identifier: MIT
#include "capture/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

int launch__start(struct launch *l, char *const argv[])
{
	int gate[2];
	l->pid = 0;
	l->gate_fd = -1;
	l->exited = 0;
	l->status = 0;
	if (pipe2(gate, O_CLOEXEC))
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(gate[0]);
		close(gate[1]);
		return -e;
	}
	if (pid == 0) {
		char c;
		close(gate[1]);
		/* EOF without a byte means the profiler gave up: do not run. */
		if (read(gate[0], &c, 1) != 1)
			_exit(126);
		close(gate[0]);
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "dynoprof: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(gate[0]);
	l->pid = pid;
	l->gate_fd = gate[1];
	return 0;
}

int launch__release(struct launch *l)
{
	int err = 0;
	if (l->gate_fd < 0)
		return -EINVAL;
	if (write(l->gate_fd, "g", 1) != 1)
		err = -errno;
	close(l->gate_fd);
	l->gate_fd = -1;
	return err;
}

int launch__poll(struct launch *l)
{
	if (l->exited)
		return 1;
	if (!l->pid)
		return 0;
	int status;
	pid_t r = waitpid(l->pid, &status, WNOHANG);
	if (r == l->pid) {
		l->exited = 1;
		l->status = status;
		return 1;
	}
	return 0;
}

void launch__kill(struct launch *l, int sig)
{
	if (l->gate_fd >= 0) {
		close(l->gate_fd); /* an unreleased child exits on EOF */
		l->gate_fd = -1;
	}
	if (l->pid && !l->exited)
		kill(l->pid, sig);
}

int launch__exit_code(const struct launch *l)
{
	if (!l->exited)
		return 0;
	if (WIFEXITED(l->status))
		return WEXITSTATUS(l->status);
	if (WIFSIGNALED(l->status))
		return 128 + WTERMSIG(l->status);
	return 1;
}
