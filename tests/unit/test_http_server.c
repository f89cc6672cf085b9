// SPDX-License-Identifier: MIT
/* The agent's HTTP server, started for real on 127.0.0.1 (ephemeral port)
 * and queried with curl: bodies and headers, 404/405/400/401, query strings
 * (repeated, URL-encoded, over the limits), address checks, and a blocked
 * handler not holding up other requests. Needs curl (scripts/deps.sh test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <time.h>
#include <zlib.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/http_gate.h"
#include "agent/http_server.h"
#include "util/strbuf.h"

#include "curl_client.h"

/* ---- handlers ---- */

static void hello_handler(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)q;
	r->content_type = "text/plain; version=0.0.4";
	strbuf__printf(&r->body, "hello from %s\n", (const char *)ctx);
}

/* Echoes every parameter as name=value lines, then first(a). */
static void echo_handler(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	for (size_t i = 0; i < http_query__count(q); i++)
		strbuf__printf(&r->body, "%s=%s\n", http_query__name(q, i), http_query__value(q, i));
	const char *a = http_query__get(q, "a");
	strbuf__printf(&r->body, "first a: %s\n", a ? a : "(none)");
}

static void seconds_handler(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	double seconds;
	const char *text = http_query__get(q, "seconds");
	if (!text || http_parse_seconds(text, 600, &seconds)) {
		http_response__error(r, 400, "seconds must be a number in (0, 600], got '%s'",
				     text ? text : "");
		return;
	}
	strbuf__printf(&r->body, "collecting for %g s\n", seconds);
}

/* A real gzip body, sent with Content-Encoding: gzip. */
static void gzip_handler(void *ctx, const struct http_query *q, struct http_response *r)
{
	(void)ctx;
	(void)q;
	const char *text = "compressed hello\n";
	unsigned char out[256];
	z_stream z = { 0 };
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)text;
	z.avail_in = (unsigned)strlen(text);
	z.next_out = out;
	z.avail_out = sizeof(out);
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	strbuf__append(&r->body, out, sizeof(out) - z.avail_out);
	deflateEnd(&z);
	r->content_type = "application/octet-stream";
	r->content_encoding = "gzip";
	r->content_disposition = "attachment; filename=\"profile.pb.gz\"";
}

/* Blocks until released (or 20 s), the way ?seconds=N collection does. */
struct slow_ctx {
	sem_t entered;   /* posted when the handler starts blocking */
	sem_t release;   /* posted by the test to let it answer */
};

static void slow_handler(void *ctx, const struct http_query *q, struct http_response *r)
{
	struct slow_ctx *slow = ctx;
	struct timespec deadline;
	(void)q;
	sem_post(&slow->entered);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 20;
	if (sem_timedwait(&slow->release, &deadline))
		strbuf__puts(&r->body, "slow timed out\n");
	else
		strbuf__puts(&r->body, "slow done\n");
}

/* ---- fixture ---- */

struct fixture {
	struct http_server *server;  /* on 127.0.0.1, ephemeral port */
	struct slow_ctx slow;        /* /slow's semaphores */
	char base[64];               /* "http://127.0.0.1:PORT" */
};

static struct http_route routes_for(struct fixture *fx, size_t i)
{
	struct http_route routes[] = {
		{ "/metrics", hello_handler, "metrics" },
		{ "/echo", echo_handler, NULL },
		{ "/debug/pprof/profile", seconds_handler, NULL },
		{ "/gz", gzip_handler, NULL },
		{ "/slow", slow_handler, &fx->slow },
	};
	return routes[i];
}

#define NROUTES 5

static struct fixture *start_with(const struct http_server_opts *given)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	sem_init(&fx->slow.entered, 0, 0);
	sem_init(&fx->slow.release, 0, 0);
	struct http_route routes[NROUTES];
	for (size_t i = 0; i < NROUTES; i++)
		routes[i] = routes_for(fx, i);
	struct http_server_opts opts = *given;
	char err[256] = "";
	fx->server = http_server__start(&opts, routes, NROUTES, err, sizeof(err));
	if (!fx->server)
		fail_msg("start: %s (%s)", err, strerror(errno));
	assert_true(http_server__port(fx->server) > 0);
	snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%u",
		 http_server__port(fx->server));
	return fx;
}

static struct fixture *start(const char *token)
{
	struct http_server_opts opts = { .address = "127.0.0.1", .port = 0, .token = token };
	return start_with(&opts);
}

static void stop(struct fixture *fx)
{
	http_server__stop(fx->server);
	sem_destroy(&fx->slow.entered);
	sem_destroy(&fx->slow.release);
	free(fx);
}

static int setup(void **state)
{
	if (system("command -v curl >/dev/null 2>&1")) {
		fprintf(stderr, "curl is needed for these tests (scripts/deps.sh test)\n");
		return -1;
	}
	*state = start(NULL);
	return 0;
}

static int teardown(void **state)
{
	stop(*state);
	return 0;
}

/* ---- raw sockets ---- */

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const struct fixture *fx)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(http_server__port(fx->server)) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Reads what the server sends until it closes (or timeout_ms in all);
 * returns the bytes kept (at most len - 1). */
static size_t read_until_closed(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;
	double end = mono_s() + timeout_ms / 1000.0;
	while (mono_s() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)((end - mono_s()) * 1000) + 1) != 1)
			break;
		char chunk[512];
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got <= 0)
			return n;
		size_t keep = (size_t)got < len - 1 - n ? (size_t)got : len - 1 - n;
		memcpy(buf + n, chunk, keep);
		n += keep;
	}
	fail_msg("the server did not close the connection within %d ms", timeout_ms);
	return n;
}

/* ---- tests ---- */

static void test_get_200_with_body_and_headers(void **state)
{
	struct fixture *fx = *state;
	struct reply r = curl("'%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello from metrics\n");
	expect_header(&r, "Content-Type", "text/plain; version=0.0.4");
	expect_header(&r, "Cache-Control", "no-store");
	expect_header(&r, "Content-Length", "19");
	reply_free(&r);

	/* HEAD: same status and headers, no body. */
	r = curl("-I '%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	expect_header(&r, "Content-Type", "text/plain; version=0.0.4");
	reply_free(&r);
}

static void test_gzip_body_and_disposition(void **state)
{
	struct fixture *fx = *state;
	struct reply r = curl("--compressed '%s/gz'", fx->base);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "compressed hello\n");
	expect_header(&r, "Content-Encoding", "gzip");
	expect_header(&r, "Content-Disposition", "attachment; filename=\"profile.pb.gz\"");
	reply_free(&r);
}

static void test_unknown_path_404(void **state)
{
	struct fixture *fx = *state;
	struct reply r = curl("'%s/x'", fx->base);
	assert_int_equal(r.status, 404);
	assert_string_equal(r.body, "not found: /x; try /metrics, /echo, /debug/pprof/profile, "
				    "/gz, /slow\n");
	expect_header(&r, "Content-Type", "text/plain; charset=utf-8");
	reply_free(&r);

	/* Prefixes and trailing slashes are other paths. */
	r = curl("'%s/metrics/'", fx->base);
	assert_int_equal(r.status, 404);
	reply_free(&r);

	/* What is echoed back stays one printable line. */
	r = curl("'%s/a%%0Ab%%1B'", fx->base);
	assert_int_equal(r.status, 404);
	assert_non_null(strstr(r.body, "not found: /a?b?; try"));
	reply_free(&r);
}

static void test_other_methods_405(void **state)
{
	struct fixture *fx = *state;
	const char *methods[] = { "POST", "PUT", "DELETE", "OPTIONS" };
	for (size_t i = 0; i < 4; i++) {
		struct reply r = curl("-X %s '%s/metrics'", methods[i], fx->base);
		assert_int_equal(r.status, 405);
		expect_header(&r, "Allow", "GET, HEAD");
		assert_non_null(strstr(r.body, "not allowed"));
		reply_free(&r);
	}
	/* With an upload: answered without reading it. */
	struct reply r = curl("--data-binary 'some body' '%s/metrics'", fx->base);
	assert_int_equal(r.status, 405);
	reply_free(&r);
	/* The server still serves afterwards. */
	r = curl("'%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
}

static void test_handler_400(void **state)
{
	struct fixture *fx = *state;
	struct reply r = curl("'%s/debug/pprof/profile?seconds=abc'", fx->base);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "seconds must be a number in (0, 600], got 'abc'\n");
	expect_header(&r, "Content-Type", "text/plain; charset=utf-8");
	reply_free(&r);

	r = curl("'%s/debug/pprof/profile?seconds=1e9'", fx->base);
	assert_int_equal(r.status, 400);
	reply_free(&r);

	r = curl("'%s/debug/pprof/profile?seconds=30'", fx->base);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "collecting for 30 s\n");
	reply_free(&r);
}

static void test_query_parameters(void **state)
{
	struct fixture *fx = *state;
	/* Names keep their order; %XX is decoded; no '=' is an empty value;
	 * '+' is a space (form encoding), which http_parse_time takes as '+'. */
	struct reply r = curl("'%s/echo?a=1&b=x%%20y&flag&amp=%%26%%3D&utf=%%C3%%A9&t=2026-11-22T01:00:00+02:00'",
			      fx->base);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "a=1\n"
				    "b=x y\n"
				    "flag=\n"
				    "amp=&=\n"
				    "utf=\xc3\xa9\n"
				    "t=2026-11-22T01:00:00 02:00\n"
				    "first a: 1\n");
	reply_free(&r);
	/* A name given twice is refused, whatever the values: no first-wins. */
	r = curl("'%s/echo?a=1&b=2&a=1'", fx->base);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "query parameter 'a' is given twice\n");
	reply_free(&r);
	r = curl("'%s/echo?flag&flag'", fx->base);
	assert_int_equal(r.status, 400);
	reply_free(&r);
	r = curl("'%s/echo?t=2026-11-22T01:00:00%%2B02:00&s=a+b'", fx->base);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "t=2026-11-22T01:00:00+02:00\ns=a b\nfirst a: (none)\n");
	reply_free(&r);

	r = curl("'%s/echo'", fx->base);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "first a: (none)\n");
	reply_free(&r);
}

static void test_query_limits_400(void **state)
{
	struct fixture *fx = *state;
	/* 65 parameters. */
	struct strbuf url = STRBUF_INIT;
	strbuf__printf(&url, "%s/echo?", fx->base);
	for (int i = 0; i < 65; i++)
		strbuf__printf(&url, "%sp%d=%d", i ? "&" : "", i, i);
	struct reply r = curl("'%s'", strbuf__str(&url));
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "too many query parameters (at most 64)\n");
	reply_free(&r);

	/* 64 is fine. */
	strbuf__reset(&url);
	strbuf__printf(&url, "%s/echo?", fx->base);
	for (int i = 0; i < 64; i++)
		strbuf__printf(&url, "%sp%d=%d", i ? "&" : "", i, i);
	r = curl("'%s'", strbuf__str(&url));
	assert_int_equal(r.status, 200);
	reply_free(&r);

	/* A NUL byte in a value. */
	r = curl("'%s/echo?name=a%%00b'", fx->base);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "query parameter 'name' contains a NUL byte\n");
	reply_free(&r);
	strbuf__release(&url);
}

/* Long URLs go through a file: the command line buffer is small. */
static struct reply curl_long_url(const struct fixture *fx, const char *path_prefix,
				  size_t filler)
{
	char config[] = "/tmp/dynoprof_test_curl_XXXXXX";
	int fd = mkstemp(config);
	assert_true(fd >= 0);
	FILE *f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "url = \"%s%s", fx->base, path_prefix);
	for (size_t i = 0; i < filler; i++)
		fputc('v', f);
	fprintf(f, "\"\n");
	fclose(f);
	struct reply r = curl("-K %s", config);
	unlink(config);
	return r;
}

static void test_long_values(void **state)
{
	struct fixture *fx = *state;
	struct reply r = curl_long_url(fx, "/echo?big=", 4096);
	assert_int_equal(r.status, 200);
	reply_free(&r);

	r = curl_long_url(fx, "/echo?big=", 4097);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "query parameter 'big' is too long (at most 4096 bytes)\n");
	reply_free(&r);

	/* Past the per-connection memory, MHD refuses the request line itself. */
	r = curl_long_url(fx, "/echo?big=", 100000);
	assert_true(r.status == 414 || r.status == 431 || r.status == 400);
	reply_free(&r);

	r = curl("'%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
}

static void test_blocked_handler_does_not_stall_others(void **state)
{
	struct fixture *fx = *state;
	char args[200];
	snprintf(args, sizeof(args), "'%s/slow'", fx->base);
	FILE *slow = start_curl(args);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	assert_int_equal(sem_timedwait(&fx->slow.entered, &deadline), 0);

	/* While /slow blocks, other requests are answered at once. */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 3; i++) {
		struct reply r = curl("--max-time 3 '%s/metrics'", fx->base);
		assert_int_equal(r.status, 200);
		reply_free(&r);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 3);

	sem_post(&fx->slow.release);
	struct reply r = finish_curl(slow);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "slow done\n");
	reply_free(&r);
}

static void test_connection_limit(void **state)
{
	(void)state;
	struct http_server_opts opts = { .address = "127.0.0.1", .max_connections = 1 };
	struct fixture *fx = start_with(&opts);
	char args[200];
	snprintf(args, sizeof(args), "'%s/slow'", fx->base);
	FILE *slow = start_curl(args);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	assert_int_equal(sem_timedwait(&fx->slow.entered, &deadline), 0);

	/* The only slot is taken: the next request is refused, and says why. */
	struct reply r = curl("--max-time 5 '%s/metrics' 2>/dev/null", fx->base);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "busy: too many requests in progress: retry\n");
	reply_free(&r);
	struct http_server_stats st;
	http_server__stats(fx->server, &st);
	assert_int_equal(st.busy, 1);

	sem_post(&fx->slow.release);
	r = finish_curl(slow);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	/* The slot is free again once that connection has closed. */
	for (int i = 0; i < 50; i++) {
		r = curl("--max-time 5 '%s/metrics' 2>/dev/null", fx->base);
		int status = r.status;
		reply_free(&r);
		if (status == 200)
			break;
		assert_true(i < 49);
		usleep(20000);
	}
	stop(fx);
}

static void test_idle_connection_timeout(void **state)
{
	(void)state;
	struct http_server_opts opts = { .address = "127.0.0.1", .head_timeout_ms = 1000 };
	struct fixture *fx = start_with(&opts);
	int fd = connect_to(fx);
	/* Half a request line, then silence: the server answers 408 and hangs up. */
	assert_int_equal(write(fd, "GET /met", 8), 8);
	double t0 = mono_s();
	char buf[512];
	size_t n = read_until_closed(fd, buf, sizeof(buf), 5000);
	double waited = mono_s() - t0;
	if (waited < 0.8 || waited > 3)
		fail_msg("closed after %.2f s, want about 1 s", waited);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "HTTP/1.1 408 Request Timeout\r\n"));
	assert_non_null(strstr(buf, "request head not complete within 1000 ms of connecting\n"));
	close(fd);
	struct http_server_stats st;
	http_server__stats(fx->server, &st);
	assert_int_equal(st.head_timeout, 1);
	stop(fx);
}

/* Blocking routes leave quick ones a slot: with 2 connections, one /slow
 * at a time; a second is refused (503) while /metrics is still answered. */
static void test_blocking_routes_leave_room(void **state)
{
	(void)state;
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	sem_init(&fx->slow.entered, 0, 0);
	sem_init(&fx->slow.release, 0, 0);
	struct http_route routes[] = {
		{ "/metrics", hello_handler, "metrics" },
		{ "/slow", slow_handler, &fx->slow },
	};
	static const char *const blocking[] = { "/slow", NULL };
	struct http_server_opts opts = { .address = "127.0.0.1", .max_connections = 2,
					 .blocking_paths = blocking };
	char err[256] = "";
	fx->server = http_server__start(&opts, routes, 2, err, sizeof(err));
	assert_non_null(fx->server);
	snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%u", http_server__port(fx->server));
	char args[200];
	snprintf(args, sizeof(args), "'%s/slow'", fx->base);
	FILE *slow = start_curl(args);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	assert_int_equal(sem_timedwait(&fx->slow.entered, &deadline), 0);

	struct reply r = curl("--max-time 5 '%s/slow'", fx->base);
	assert_int_equal(r.status, 503);
	assert_string_equal(r.body, "busy: 1 requests to /slow and other long-running routes "
				    "in progress: retry\n");
	reply_free(&r);
	r = curl("--max-time 5 '%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);

	sem_post(&fx->slow.release);
	r = finish_curl(slow);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	/* Its slot is back once its response is sent. */
	for (int i = 0; i < 50; i++) {
		sem_post(&fx->slow.release);
		r = curl("--max-time 5 '%s/slow'", fx->base);
		int status = r.status;
		reply_free(&r);
		if (status == 200)
			break;
		assert_true(i < 49);
		usleep(20000);
	}
	stop(fx);
}

/* gcc --coverage's runtime (make coverage), absent from other builds. */
extern void __gcov_dump(void) __attribute__((weak));

/* Out of file descriptors, the server still answers new connections, with a
 * 503 saying so, and serves again once descriptors are free. The server runs
 * in a child whose RLIMIT_NOFILE is 48 (soft and hard: it cannot raise it). */
static void test_out_of_fds_refuses_clearly(void **state)
{
	(void)state;
	int ready[2], done[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = { 48, 48 };
		struct http_route route = { "/metrics", hello_handler, "child" };
		struct http_server_opts opts = { .address = "127.0.0.1", .max_pending = 200,
						 .max_pending_per_addr = 200,
						 .head_timeout_ms = 30000 };
		char err[256];
		close(ready[0]);
		close(done[1]);
		if (setrlimit(RLIMIT_NOFILE, &rl))
			_exit(2);
		struct http_server *srv = http_server__start(&opts, &route, 1, err, sizeof(err));
		uint16_t port = srv ? http_server__port(srv) : 0;
		if (write(ready[1], &port, sizeof(port)) != sizeof(port))
			_exit(3);
		char c;
		(void)!read(done[0], &c, 1); /* until the parent closes it */
		http_server__stop(srv);
		/* What the child ran counts in `make coverage` (gcov's
		 * counters are written at exit(), which _exit() skips). */
		if (__gcov_dump)
			__gcov_dump();
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	uint16_t port = 0;
	assert_int_equal(read(ready[0], &port, sizeof(port)), sizeof(port));
	assert_true(port > 0);
	struct fixture fx = { 0 };
	snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%u", port);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fds[80], refused = 0;
	for (int i = 0; i < 80; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		assert_int_equal(write(fds[i], "GET /", 5), 5);
	}
	for (int i = 0; i < 80; i++) {
		struct pollfd pfd = { .fd = fds[i], .events = POLLIN };
		char buf[512];
		ssize_t n = poll(&pfd, 1, i ? 100 : 2000) == 1 ? read(fds[i], buf, sizeof(buf) - 1) : 0;
		if (n > 0) {
			buf[n] = '\0';
			if (strstr(buf, " 503 ") && strstr(buf, "out of file descriptors"))
				refused++;
		}
	}
	for (int i = 0; i < 80; i++)
		close(fds[i]);
	/* About 80 less the 40-odd descriptors the child had to spare. */
	if (refused < 20)
		fail_msg("%d of 80 connections refused for want of descriptors", refused);
	struct reply r = { .status = -1 };
	for (int i = 0; i < 50 && r.status != 200; i++) {
		reply_free(&r);
		r = curl("--max-time 5 '%s/metrics' 2>/dev/null", fx.base);
		if (r.status != 200)
			usleep(50000);
	}
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello from child\n");
	reply_free(&r);
	close(done[1]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
}

/* Bytes trickling in do not extend the deadline: it runs from accept. */
static void test_trickle_cannot_extend_deadline(void **state)
{
	(void)state;
	struct http_server_opts opts = { .address = "127.0.0.1", .head_timeout_ms = 1000 };
	struct fixture *fx = start_with(&opts);
	int fd = connect_to(fx);
	const char *head = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
	double t0 = mono_s();
	size_t sent = 0;
	char buf[512];
	ssize_t n = 0;
	/* One byte every 100 ms: the head is never complete, its deadline holds. */
	while (sent < strlen(head) && mono_s() - t0 < 5) {
		if (write(fd, head + sent, 1) != 1)
			break;
		sent++;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, 100) == 1)
			break;
	}
	n = (ssize_t)read_until_closed(fd, buf, sizeof(buf), 5000);
	double closed = mono_s() - t0;
	if (closed < 0.8 || closed > 2.5)
		fail_msg("closed after %.2f s (%zu bytes sent), want about 1 s", closed, sent);
	buf[n] = '\0';
	assert_non_null(strstr(buf, " 408 "));
	close(fd);
	stop(fx);
}

/* Idle sockets from one address past its limit push out its own oldest;
 * requests keep being answered, and a head too large is refused. */
static void test_pending_limits(void **state)
{
	(void)state;
	struct http_server_opts opts = { .address = "127.0.0.1", .max_pending = 8,
					 .max_pending_per_addr = 4, .head_timeout_ms = 20000 };
	struct fixture *fx = start_with(&opts);
	int fds[20];
	for (int i = 0; i < 20; i++) {
		fds[i] = connect_to(fx);
		assert_int_equal(write(fds[i], "GET /", 5), 5);
	}
	/* The 16 oldest were pushed out with a 503 (the newest 4 wait). */
	for (int i = 0; i < 16; i++) {
		char buf[512];
		size_t n = read_until_closed(fds[i], buf, sizeof(buf), 5000);
		buf[n] = '\0';
		if (!strstr(buf, " 503 ") || !strstr(buf, "too many connections waiting"))
			fail_msg("socket %d: '%s'", i, buf);
	}
	for (int k = 0; k < 3; k++) {
		struct reply r = curl("--max-time 3 '%s/metrics'", fx->base);
		assert_int_equal(r.status, 200);
		expect_header(&r, "Connection", "close");
		reply_free(&r);
	}
	struct http_server_stats st;
	http_server__stats(fx->server, &st);
	/* The first request pushed out one more; the next found a free place. */
	assert_int_equal(st.evicted, 16 + 1);
	for (int i = 0; i < 20; i++)
		close(fds[i]);

	/* 16 KiB of headers and no end: 431. */
	int fd = connect_to(fx);
	char line[1024];
	memset(line, 'h', sizeof(line));
	memcpy(line, "X-Big: ", 7);
	line[sizeof(line) - 2] = '\r';
	line[sizeof(line) - 1] = '\n';
	assert_int_equal(write(fd, "GET / HTTP/1.1\r\n", 16), 16);
	for (int i = 0; i < 17; i++)
		assert_int_equal(write(fd, line, sizeof(line)), (ssize_t)sizeof(line));
	char buf[512];
	size_t n = read_until_closed(fd, buf, sizeof(buf), 5000);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "HTTP/1.1 431 "));
	close(fd);
	http_server__stats(fx->server, &st);
	assert_int_equal(st.head_too_large, 1);
	stop(fx);
}

/* A client from src (a loopback address: 127.x.y.z or ::1) connected to
 * port on dst (same family), having sent "GET /" and no more. */
static int waiting_client(const char *src, const char *dst, uint16_t port)
{
	struct sockaddr_storage from = { 0 }, to = { 0 };
	socklen_t len;
	int family = strchr(dst, ':') ? AF_INET6 : AF_INET;
	if (family == AF_INET6) {
		struct sockaddr_in6 *f6 = (void *)&from, *t6 = (void *)&to;
		f6->sin6_family = t6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, src, &f6->sin6_addr), 1);
		assert_int_equal(inet_pton(AF_INET6, dst, &t6->sin6_addr), 1);
		t6->sin6_port = htons(port);
		len = sizeof(*t6);
	} else {
		struct sockaddr_in *f4 = (void *)&from, *t4 = (void *)&to;
		f4->sin_family = t4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, src, &f4->sin_addr), 1);
		assert_int_equal(inet_pton(AF_INET, dst, &t4->sin_addr), 1);
		t4->sin_port = htons(port);
		len = sizeof(*t4);
	}
	int fd = socket(family, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&from, len), 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, len), 0);
	assert_int_equal(write(fd, "GET /", 5), 5);
	return fd;
}

/* Fails unless the server answered fd 503 "too many connections waiting". */
static void expect_pushed_out(int fd)
{
	char buf[512];
	size_t n = read_until_closed(fd, buf, sizeof(buf), 5000);
	buf[n] = '\0';
	if (!strstr(buf, " 503 ") || !strstr(buf, "too many connections waiting"))
		fail_msg("'%s'", buf);
}

/* The limit on all waiting connections holds across client addresses
 * (127.0.0.1, .2, .3: each under its own limit), pushing out the oldest;
 * the per-address limit tells IPv6 addresses apart too; a client that
 * closes before sending its request just goes. */
static void test_pending_limits_across_addresses(void **state)
{
	(void)state;
	struct http_server_opts opts = { .address = "127.0.0.1", .max_pending = 4,
					 .max_pending_per_addr = 8, .head_timeout_ms = 20000 };
	struct fixture *fx = start_with(&opts);
	uint16_t port = http_server__port(fx->server);
	const char *from[] = { "127.0.0.1", "127.0.0.2", "127.0.0.3" };
	int fds[6];
	for (int i = 0; i < 6; i++)
		fds[i] = waiting_client(from[i % 3], "127.0.0.1", port);
	expect_pushed_out(fds[0]);
	expect_pushed_out(fds[1]);
	struct http_server_stats st;
	http_server__stats(fx->server, &st);
	assert_int_equal(st.evicted, 2);
	for (int i = 0; i < 6; i++)
		close(fds[i]);
	/* Connected and closed without a word: nobody to answer, the server
	 * serves on. (Closed ones the gate has not looked at yet may still be
	 * pushed out: evicted is not checked again.) */
	for (int i = 0; i < 3; i++)
		close(connect_to(fx));
	struct reply r = curl("--max-time 5 '%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	http_server__stats(fx->server, &st);
	assert_int_equal(st.head_timeout, 0);
	stop(fx);

	struct http_server_opts v6 = { .address = "[::1]", .max_pending = 8,
				       .max_pending_per_addr = 2, .head_timeout_ms = 20000 };
	struct http_route route = { "/metrics", hello_handler, "v6" };
	char err[256];
	struct http_server *s = http_server__start(&v6, &route, 1, err, sizeof(err));
	if (!s) {
		assert_true(errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL);
		return; /* no IPv6 on this host */
	}
	for (int i = 0; i < 4; i++)
		fds[i] = waiting_client("::1", "::1", http_server__port(s));
	expect_pushed_out(fds[0]);
	expect_pushed_out(fds[1]);
	http_server__stats(s, &st);
	assert_int_equal(st.evicted, 2);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
	http_server__stop(s);
}

static void test_head_end(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t end;
	} cases[] = {
		{ "GET / HTTP/1.1\r\n\r\n", 18 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n\r\nextra", 27 },
		{ "GET / HTTP/1.1\n\n", 16 },
		{ "GET / HTTP/1.1\nHost: a\r\n\r\n", 26 },
		{ "GET / HTTP/1.1\r\nHost: a\r\n", 0 },
		{ "GET / HTTP/1.1\r\n\r", 0 },
		{ "GET / HTTP/1.1", 0 },
		/* Leading empty lines are skipped, not taken for the end. */
		{ "\r\n\r\n\n\n", 0 },
		{ "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22 },
		{ "", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t got = http_gate__head_end(cases[i].text, strlen(cases[i].text));
		if (got != cases[i].end)
			fail_msg("case %zu: got %zu, want %zu", i, got, cases[i].end);
	}
}

/* Error bodies quoting decoded input show control bytes escaped. */
static void test_error_bodies_escape_controls(void **state)
{
	struct fixture *fx = *state;
	struct reply r = curl("'%s/debug/pprof/profile?seconds=1%%0D%%0AX-Injected:%%20yes%%01%%7F'",
			      fx->base);
	assert_int_equal(r.status, 400);
	assert_string_equal(r.body, "seconds must be a number in (0, 600], got "
				    "'1\\r\\nX-Injected: yes\\x01\\x7f'\n");
	char *injected = header(&r, "X-Injected");
	assert_null(injected);
	reply_free(&r);
}

static void test_bearer_token(void **state)
{
	(void)state;
	struct fixture *fx = start("s3cret-token");
	struct reply r = curl("'%s/metrics'", fx->base);
	assert_int_equal(r.status, 401);
	expect_header(&r, "WWW-Authenticate", "Bearer realm=\"dynoprof\"");
	assert_null(strstr(r.body, "hello"));
	reply_free(&r);

	const char *wrong[] = { "Bearer s3cret", "Bearer s3cret-token2", "Basic s3cret-token",
				"s3cret-token", "Bearer " };
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		r = curl("-H 'Authorization: %s' '%s/metrics'", wrong[i], fx->base);
		if (r.status != 401)
			fail_msg("'%s' got %d", wrong[i], r.status);
		reply_free(&r);
	}
	/* Unknown paths also need the token: the route list is not for strangers. */
	r = curl("'%s/nope'", fx->base);
	assert_int_equal(r.status, 401);
	reply_free(&r);

	r = curl("-H 'Authorization: Bearer s3cret-token' '%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello from metrics\n");
	reply_free(&r);
	/* The scheme is case-insensitive (RFC 7235). */
	r = curl("-H 'Authorization: bearer s3cret-token' '%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	/* Spaces after the scheme are not part of the token. */
	r = curl("-H 'Authorization: Bearer    s3cret-token' '%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	stop(fx);
}

/* public_paths (the web page) answer without the token; every other route,
 * and an unknown path, still needs it. */
static void test_public_paths(void **state)
{
	(void)state;
	static const char *const public_paths[] = { "/echo", NULL };
	struct http_server_opts opts = { .address = "127.0.0.1", .port = 0,
					 .token = "s3cret-token", .public_paths = public_paths };
	struct fixture *fx = start_with(&opts);
	struct reply r = curl("'%s/echo?a=1'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	r = curl("-H 'Authorization: Bearer wrong' '%s/echo'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	r = curl("'%s/metrics'", fx->base);
	assert_int_equal(r.status, 401);
	reply_free(&r);
	r = curl("'%s/echo/more'", fx->base);
	assert_int_equal(r.status, 401);
	reply_free(&r);
	stop(fx);
}

static void test_addresses(void **state)
{
	struct fixture *fx = *state;
	struct http_route route = { "/metrics", hello_handler, "v6" };
	char err[256];

	const char *remote[] = { "0.0.0.0", "::", "10.1.2.3", "[::]" };
	for (size_t i = 0; i < 4; i++) {
		struct http_server_opts opts = { .address = remote[i], .port = 0 };
		err[0] = '\0';
		errno = 0;
		assert_null(http_server__start(&opts, &route, 1, err, sizeof(err)));
		assert_int_equal(errno, EPERM);
		if (!strstr(err, "is not loopback: pass --listen-remote to allow it"))
			fail_msg("%s: %s", remote[i], err);
	}

	struct http_server_opts name = { .address = "example.com", .port = 0 };
	assert_null(http_server__start(&name, &route, 1, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "not an IP address"));

	/* The port the fixture holds is taken. */
	struct http_server_opts taken = { .address = "127.0.0.1",
					  .port = http_server__port(fx->server) };
	assert_null(http_server__start(&taken, &route, 1, err, sizeof(err)));
	assert_int_equal(errno, EADDRINUSE);
	assert_non_null(strstr(err, "is in use"));

	struct http_server_opts local = { .address = "localhost", .port = 0 };
	struct http_server *s = http_server__start(&local, &route, 1, err, sizeof(err));
	assert_non_null(s);
	struct reply r = curl("'http://127.0.0.1:%u/metrics'", http_server__port(s));
	assert_int_equal(r.status, 200);
	reply_free(&r);
	http_server__stop(s);

	/* IPv6 loopback, where the host has IPv6 ("[::1]" as in URLs). */
	struct http_server_opts v6 = { .address = "[::1]", .port = 0 };
	s = http_server__start(&v6, &route, 1, err, sizeof(err));
	if (!s) {
		assert_true(errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL);
		return;
	}
	r = curl("-g 'http://[::1]:%u/metrics'", http_server__port(s));
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello from v6\n");
	reply_free(&r);
	http_server__stop(s);
	http_server__stop(NULL);
}

/* Starting fails with one clear line, and no server, for an address no
 * interface of this host has (192.0.2.1, TEST-NET-1: nothing is sent), a
 * route without a leading '/', and no routes. */
static void test_start_errors(void **state)
{
	(void)state;
	struct http_route route = { "/metrics", hello_handler, "x" };
	char err[256];

	struct http_server_opts absent = { .address = "192.0.2.1", .port = 0,
					   .allow_remote = true };
	errno = 0;
	assert_null(http_server__start(&absent, &route, 1, err, sizeof(err)));
	assert_int_equal(errno, EADDRNOTAVAIL);
	assert_string_equal(err, "cannot listen on 192.0.2.1:0: no interface of this host has "
			    "that address");

	struct http_server_opts opts = { .address = "127.0.0.1", .port = 0 };
	struct http_route relative[] = { { "/metrics", hello_handler, "x" },
					 { "metrics", hello_handler, "x" } };
	errno = 0;
	assert_null(http_server__start(&opts, relative, 2, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "a route needs a path starting with '/' and a handler");

	errno = 0;
	assert_null(http_server__start(&opts, NULL, 1, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_string_equal(err, "no routes");
}

/* With a low soft RLIMIT_NOFILE, starting raises it (within the hard limit)
 * so the connections it admits fit; the limit is put back afterwards. */
static void test_raises_fd_limit(void **state)
{
	(void)state;
	struct rlimit old, low, now;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	if (old.rlim_max != RLIM_INFINITY && old.rlim_max < 2048)
		fail_msg("hard RLIMIT_NOFILE %llu: too low for this test",
			 (unsigned long long)old.rlim_max);
	low = old;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	struct http_server_opts opts = { .address = "127.0.0.1", .port = 0 };
	struct fixture *fx = start_with(&opts);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &now), 0);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	if (now.rlim_cur <= 1024)
		fail_msg("soft RLIMIT_NOFILE left at %llu", (unsigned long long)now.rlim_cur);
	struct reply r = curl("'%s/metrics'", fx->base);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_200_with_body_and_headers),
		cmocka_unit_test(test_gzip_body_and_disposition),
		cmocka_unit_test(test_unknown_path_404),
		cmocka_unit_test(test_other_methods_405),
		cmocka_unit_test(test_handler_400),
		cmocka_unit_test(test_query_parameters),
		cmocka_unit_test(test_query_limits_400),
		cmocka_unit_test(test_long_values),
		cmocka_unit_test(test_blocked_handler_does_not_stall_others),
		cmocka_unit_test(test_connection_limit),
		cmocka_unit_test(test_idle_connection_timeout),
		cmocka_unit_test(test_trickle_cannot_extend_deadline),
		cmocka_unit_test(test_blocking_routes_leave_room),
		cmocka_unit_test(test_out_of_fds_refuses_clearly),
		cmocka_unit_test(test_pending_limits),
		cmocka_unit_test(test_pending_limits_across_addresses),
		cmocka_unit_test(test_head_end),
		cmocka_unit_test(test_error_bodies_escape_controls),
		cmocka_unit_test(test_bearer_token),
		cmocka_unit_test(test_public_paths),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_start_errors),
		cmocka_unit_test(test_raises_fd_limit),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
