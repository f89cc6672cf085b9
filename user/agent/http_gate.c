// SPDX-License-Identifier: MIT
/* http_gate.c - request heads are awaited here, cheaply and with a deadline,
 * before a connection costs the HTTP server a thread.
 *
 * Waiting connections sit in a fixed table (max_pending slots) scanned
 * linearly: the table is small, and a linear scan for "oldest of this
 * address" and "earliest deadline" is cheaper than keeping indexes right.
 * Sockets are registered edge-triggered: peeked bytes stay readable, so a
 * level-triggered registration would report them forever.
 */
#include "agent/http_gate.h"
#include "util/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* epoll tags for the two fds that are not waiting connections. */
#define TAG_LISTEN UINT32_MAX
#define TAG_STOP (UINT32_MAX - 1)
/* Connections accepted per wake-up: waiting ones get served in between. */
#define ACCEPT_BATCH 128
/* Bytes of unread request a refusal drains before closing: closing with
 * unread data sends a reset, which can destroy the answer in flight. */
#define DRAIN_BYTES 65536

struct pending {
	int fd;                        /* -1: free slot */
	struct sockaddr_storage addr;  /* client address (port ignored when compared) */
	socklen_t addrlen;             /* bytes of addr */
	uint64_t seq;                  /* accept order: lower is older */
	int64_t deadline_ms;           /* CLOCK_MONOTONIC ms the head must be in by */
};

struct http_gate {
	struct http_gate_opts opts;    /* limits (defaults applied by the caller) */
	int listen_fd;                 /* the caller's listening socket */
	int epoll_fd;                  /* listen, stop and every waiting socket */
	int stop_fd;                   /* eventfd: written to stop the thread */
	int reserve_fd;                /* /dev/null, closed to accept when out of fds */
	struct pending *slots;         /* max_pending slots */
	unsigned npending;             /* slots in use */
	uint64_t next_seq;             /* next accept's seq */
	char *peek;                    /* max_head_bytes + 1 scratch (thread's own) */
	http_gate_admit_fn admit;      /* hands complete heads over */
	void *admit_ctx;               /* its context */
	pthread_t thread;              /* the gate's thread */
	struct http_gate_stats stats;  /* refusals (atomic adds, atomic loads) */
};

static int64_t now_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000;
}

size_t http_gate__head_end(const char *buf, size_t len)
{
	size_t i = 0;
	while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
		i++;
	for (; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

static void count(uint64_t *counter)
{
	__atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

/* Answers status with a one-line body and closes fd. Best effort: the
 * socket is non-blocking and the answer small enough for its buffer. */
static void refuse(int fd, int status, const char *reason, const char *body)
{
	char msg[512], drain[4096];
	int n = snprintf(msg, sizeof(msg),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\nCache-Control: no-store\r\n"
			 "\r\n%s",
			 status, reason, strlen(body), body);
	if (n > 0 && (size_t)n < sizeof(msg))
		(void)!send(fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	shutdown(fd, SHUT_WR);
	for (size_t total = 0; total < DRAIN_BYTES;) {
		ssize_t got = recv(fd, drain, sizeof(drain), MSG_DONTWAIT);
		if (got <= 0)
			break;
		total += (size_t)got;
	}
	close(fd);
}

static void release(struct http_gate *g, struct pending *p)
{
	epoll_ctl(g->epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
	p->fd = -1;
	g->npending--;
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return true;
}

/* Oldest waiting connection, of addr's address when addr is given. */
static struct pending *oldest(struct http_gate *g, const struct sockaddr_storage *addr,
			      unsigned *same)
{
	struct pending *best = NULL;
	*same = 0;
	for (unsigned i = 0; i < g->opts.max_pending; i++) {
		struct pending *p = &g->slots[i];
		if (p->fd < 0 || (addr && !same_address(&p->addr, addr)))
			continue;
		(*same)++;
		if (!best || p->seq < best->seq)
			best = p;
	}
	return best;
}

static void evict(struct http_gate *g, struct pending *p)
{
	char body[160];
	int fd = p->fd;
	snprintf(body, sizeof(body),
		 "too many connections waiting to send a request (limits: %u, %u per client "
		 "address): retry\n", g->opts.max_pending, g->opts.max_pending_per_addr);
	release(g, p);
	count(&g->stats.evicted);
	refuse(fd, 503, "Service Unavailable", body);
}

/* Looks at what p has sent so far: admits a complete head, refuses an
 * oversized one, closes one whose client gave up. */
static void examine(struct http_gate *g, struct pending *p, bool hangup)
{
	ssize_t n = recv(p->fd, g->peek, g->opts.max_head_bytes + 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) && !hangup)
		return;
	if (n <= 0) { /* closed or failed before a head: nobody to answer */
		int fd = p->fd;
		release(g, p);
		close(fd);
		return;
	}
	/* The whole head so far is scanned again: it is at most max_head_bytes,
	 * which the peek has just copied anyway. */
	size_t len = (size_t)n, end = http_gate__head_end(g->peek, len);
	int fd = p->fd;
	if (end) {
		struct sockaddr_storage addr = p->addr;
		socklen_t addrlen = p->addrlen;
		release(g, p);
		if (g->admit(g->admit_ctx, &fd, (struct sockaddr *)&addr, addrlen)) {
			count(&g->stats.busy);
			refuse(fd, 503, "Service Unavailable",
			       "busy: too many requests in progress: retry\n");
		}
		return;
	}
	if (len > g->opts.max_head_bytes) {
		char body[96];
		snprintf(body, sizeof(body), "request head longer than %zu bytes\n",
			 g->opts.max_head_bytes);
		release(g, p);
		count(&g->stats.head_too_large);
		refuse(fd, 431, "Request Header Fields Too Large", body);
		return;
	}
	if (hangup) { /* half-closed without a complete head: it never will be */
		release(g, p);
		close(fd);
	}
}

static void expire(struct http_gate *g, int64_t now)
{
	char body[96];
	snprintf(body, sizeof(body), "request head not complete within %u ms of connecting\n",
		 g->opts.head_timeout_ms);
	for (unsigned i = 0; i < g->opts.max_pending; i++) {
		struct pending *p = &g->slots[i];
		if (p->fd < 0 || p->deadline_ms > now)
			continue;
		int fd = p->fd;
		release(g, p);
		count(&g->stats.head_timeout);
		refuse(fd, 408, "Request Timeout", body);
	}
}

/* accept4, falling back on the reserved fd to refuse when out of fds.
 * Returns the new fd, or -1 when there is nothing (more) to accept. */
static int accept_one(struct http_gate *g, struct sockaddr_storage *addr, socklen_t *addrlen)
{
	*addrlen = sizeof(*addr);
	int fd = accept4(g->listen_fd, (struct sockaddr *)addr, addrlen,
			 SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0 || (errno != EMFILE && errno != ENFILE))
		return fd;
	if (g->reserve_fd >= 0) {
		close(g->reserve_fd);
		g->reserve_fd = -1;
		fd = accept4(g->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			count(&g->stats.fd_limit);
			refuse(fd, 503, "Service Unavailable",
			       "the agent is out of file descriptors: retry later\n");
		}
		g->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	return -1;
}

static void accept_some(struct http_gate *g)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage addr;
		socklen_t addrlen;
		int fd = accept_one(g, &addr, &addrlen);
		if (fd < 0)
			return;
		unsigned same, all;
		struct pending *p = oldest(g, &addr, &same);
		if (same >= g->opts.max_pending_per_addr) {
			evict(g, p);
		} else if (g->npending >= g->opts.max_pending) {
			p = oldest(g, NULL, &all);
			evict(g, p);
		}
		for (p = g->slots; p->fd >= 0; p++)
			; /* a slot is free: at most max_pending - 1 are in use here */
		*p = (struct pending){ .fd = fd, .addr = addr, .addrlen = addrlen,
				       .seq = g->next_seq++,
				       .deadline_ms = now_ms() + g->opts.head_timeout_ms };
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP | EPOLLET,
					  .data.u32 = (uint32_t)(p - g->slots) };
		if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
			p->fd = -1;
			count(&g->stats.busy);
			refuse(fd, 503, "Service Unavailable", "busy: retry\n");
			continue;
		}
		g->npending++;
	}
}

static void *gate_thread(void *arg)
{
	struct http_gate *g = arg;
	struct epoll_event events[64];
	for (;;) {
		int64_t now = now_ms(), next = now + 60000;
		for (unsigned i = 0; i < g->opts.max_pending; i++)
			if (g->slots[i].fd >= 0 && g->slots[i].deadline_ms < next)
				next = g->slots[i].deadline_ms;
		int n = epoll_wait(g->epoll_fd, events, 64, next > now ? (int)(next - now) : 0);
		if (n < 0 && errno != EINTR)
			break; /* cannot happen with valid fds; leave rather than spin */
		for (int i = 0; i < n; i++) {
			uint32_t tag = events[i].data.u32;
			if (tag == TAG_STOP)
				return NULL;
			if (tag == TAG_LISTEN) {
				accept_some(g);
				continue;
			}
			struct pending *p = &g->slots[tag];
			if (p->fd >= 0)
				examine(g, p, events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR));
		}
		expire(g, now_ms());
	}
	return NULL;
}

static void gate_free(struct http_gate *g)
{
	if (!g)
		return;
	for (unsigned i = 0; g->slots && i < g->opts.max_pending; i++)
		if (g->slots[i].fd >= 0)
			close(g->slots[i].fd);
	if (g->epoll_fd >= 0)
		close(g->epoll_fd);
	if (g->stop_fd >= 0)
		close(g->stop_fd);
	if (g->reserve_fd >= 0)
		close(g->reserve_fd);
	free(g->slots);
	free(g->peek);
	free(g);
}

struct http_gate *http_gate__start(int listen_fd, const struct http_gate_opts *opts,
				   http_gate_admit_fn admit, void *ctx, char *err,
				   size_t errlen)
{
	int e = 0;
	struct http_gate *g = NULL;
	if (listen_fd < 0 || !opts || !admit || !opts->max_pending ||
	    !opts->max_pending_per_addr || !opts->head_timeout_ms || !opts->max_head_bytes) {
		e = EINVAL;
		snprintf(err, errlen, "invalid HTTP connection limits");
		goto fail;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		e = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	g->opts = *opts;
	g->listen_fd = listen_fd;
	g->epoll_fd = g->stop_fd = g->reserve_fd = -1;
	g->admit = admit;
	g->admit_ctx = ctx;
	g->slots = calloc(opts->max_pending, sizeof(*g->slots));
	g->peek = malloc(opts->max_head_bytes + 1);
	if (!g->slots || !g->peek) {
		e = ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < opts->max_pending; i++)
		g->slots[i].fd = -1;
	g->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	g->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	g->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (g->epoll_fd < 0 || g->stop_fd < 0 || g->reserve_fd < 0) {
		e = errno;
		snprintf(err, errlen, "cannot set up the HTTP connection gate: %s", strerror(e));
		goto fail;
	}
	struct epoll_event lev = { .events = EPOLLIN, .data.u32 = TAG_LISTEN };
	struct epoll_event sev = { .events = EPOLLIN, .data.u32 = TAG_STOP };
	if (epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, listen_fd, &lev) ||
	    epoll_ctl(g->epoll_fd, EPOLL_CTL_ADD, g->stop_fd, &sev)) {
		e = errno;
		snprintf(err, errlen, "cannot watch the HTTP listening socket: %s", strerror(e));
		goto fail;
	}
	e = pthread_create(&g->thread, NULL, gate_thread, g);
	if (e) {
		snprintf(err, errlen, "cannot start the HTTP connection thread: %s", strerror(e));
		goto fail;
	}
	return g;
fail:
	gate_free(g);
	errno = e;
	return NULL;
}

void http_gate__stop(struct http_gate *g)
{
	if (!g)
		return;
	uint64_t one = 1;
	(void)!write(g->stop_fd, &one, sizeof(one));
	pthread_join(g->thread, NULL);
	gate_free(g);
}

void http_gate__stats(const struct http_gate *g, struct http_gate_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!g)
		return;
	out->head_timeout = __atomic_load_n(&g->stats.head_timeout, __ATOMIC_RELAXED);
	out->head_too_large = __atomic_load_n(&g->stats.head_too_large, __ATOMIC_RELAXED);
	out->evicted = __atomic_load_n(&g->stats.evicted, __ATOMIC_RELAXED);
	out->busy = __atomic_load_n(&g->stats.busy, __ATOMIC_RELAXED);
	out->fd_limit = __atomic_load_n(&g->stats.fd_limit, __ATOMIC_RELAXED);
}
