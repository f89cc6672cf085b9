/* launch.h - starts the command of `dynoprof record -- CMD ARGS...` held at a
 * gate, so it can be made a sampling target before its first instruction runs. */
#ifndef DYNOPROF_LAUNCH_H
#define DYNOPROF_LAUNCH_H

#include <sys/types.h>

struct launch {
	pid_t pid;      /* the child's pid; 0 when not started */
	int gate_fd;    /* write end of the pipe the child waits on; -1 after release */
	int status;     /* wait status once exited */
	int exited;     /* nonzero once reaped */
};

/* Forks a child that waits at the gate, then execs argv[0] (PATH search).
 * Returns 0 or -errno; the child exits 127 with a message when exec fails. */
int launch__start(struct launch *l, char *const argv[]);
/* Lets the child exec. Returns 0 or -errno. */
int launch__release(struct launch *l);
/* Reaps the child if it exited (non-blocking). Returns 1 if it has exited. */
int launch__poll(struct launch *l);
/* Sends sig to the child if it still runs. */
void launch__kill(struct launch *l, int sig);
/* Exit code to propagate: the child's exit status, or 128+signal. */
int launch__exit_code(const struct launch *l);

#endif
