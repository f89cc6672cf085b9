/* http_gate.h - admits a connection to the HTTP server only once its whole
 * request head has arrived, within an absolute deadline.
 *
 * One thread accepts on the listening socket and watches every connection
 * that has not yet sent a complete head (epoll, no thread per connection),
 * peeking (MSG_PEEK) so the bytes stay for the server that parses them. A
 * connection is refused with a short HTTP answer and closed when:
 *   - its head is not complete head_timeout_ms after accept (408); bytes
 *     trickling in do not extend the deadline;
 *   - its head grows past max_head_bytes (431);
 *   - it is the oldest waiting connection of its client address when that
 *     address opens one more than max_pending_per_addr, or the oldest of all
 *     when max_pending are waiting (503): a flood of idle sockets pushes out
 *     its own oldest, so a new request (whose head comes at once) gets in;
 *   - admit() says the server is busy (503);
 *   - the process is out of file descriptors (503, through a reserved fd).
 * Each refusal is counted (http_gate__stats).
 */
#ifndef DYNOPROF_HTTP_GATE_H
#define DYNOPROF_HTTP_GATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct http_gate_opts {
	unsigned max_pending;          /* connections waiting for their head (> 0) */
	unsigned max_pending_per_addr; /* of them from one client address (> 0) */
	unsigned head_timeout_ms;      /* accept to complete head, absolute (> 0) */
	size_t max_head_bytes;         /* request line + headers (> 0) */
};

/* Refusals since start (each closed the connection after a short answer). */
struct http_gate_stats {
	uint64_t head_timeout;   /* 408: head not complete in time */
	uint64_t head_too_large; /* 431: head over max_head_bytes */
	uint64_t evicted;        /* 503: pushed out by the pending limits */
	uint64_t busy;           /* 503: admit() refused (server at its limit) */
	uint64_t fd_limit;       /* 503: no file descriptor left to accept with */
};

/* Called on the gate's thread with a connection whose head is complete.
 * Returns 0 when it took *fd (the gate forgets it), or -EBUSY to have the
 * gate answer 503 on *fd (which admit may have replaced with a duplicate)
 * and close it. */
typedef int (*http_gate_admit_fn)(void *ctx, int *fd, const struct sockaddr *addr,
				  socklen_t addrlen);

struct http_gate;

/* Starts the gate's thread on listen_fd (non-blocking, listening; still the
 * caller's to close after http_gate__stop). NULL + errno, message in err. */
struct http_gate *http_gate__start(int listen_fd, const struct http_gate_opts *opts,
				   http_gate_admit_fn admit, void *ctx, char *err,
				   size_t errlen);
/* Stops the thread and closes every waiting connection. NULL ok. */
void http_gate__stop(struct http_gate *g);
/* Refusal counts so far (thread-safe). */
void http_gate__stats(const struct http_gate *g, struct http_gate_stats *out);

/* Where the request head in buf[0, len) ends (bytes up to and including
 * its empty line), or 0 while incomplete. Leading empty lines are skipped
 * (as HTTP servers do); a line may end in CRLF or LF. */
size_t http_gate__head_end(const char *buf, size_t len);

#endif
