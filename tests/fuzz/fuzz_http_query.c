// SPDX-License-Identifier: MIT
/* Query strings through the agent's real HTTP server (libmicrohttpd on an
 * ephemeral loopback port, started once): the input becomes the query of a
 * GET, with bytes a request line cannot hold (controls, space, non-ASCII)
 * percent-encoded and everything else ('%', '&', '=', '+', ...) sent raw, so
 * MHD's decoding and the server's parameter checks both see hostile text. The
 * route's handler reads parameters the way the agent's handlers do. A server
 * that stops answering is a finding (the receive timeout aborts). */
#include "fuzz_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "agent/http_server.h"

static void handler(void *ctx, const struct http_query *q, struct http_response *r)
{
	static const char *const names[] = { "seconds", "from", "to", "by", "endpoint",
					     "format", "service", "" };
	int64_t ns;
	double s;
	(void)ctx;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = http_query__get(q, names[i]);
		if (v) {
			http_parse_time(v, &ns);
			http_parse_seconds(v, 300, &s);
		}
	}
	size_t n = http_query__count(q);
	for (size_t i = 0; i < n; i++) {
		const char *name = http_query__name(q, i), *value = http_query__value(q, i);
		if (!name || !value)
			abort(); /* every stored parameter has both */
		strbuf__printf(&r->body, "%zu\n", strlen(name) + strlen(value));
	}
	if (http_query__name(q, n) || http_query__value(q, n))
		abort();
}

static uint16_t server_port(void)
{
	static struct http_server *server;
	static const struct http_route routes[] = { { "/q", handler, NULL } };
	if (!server) {
		struct http_server_opts o = { .address = "127.0.0.1", .port = 0 };
		char err[256];
		server = http_server__start(&o, routes, 1, err, sizeof(err));
		if (!server) {
			fprintf(stderr, "fuzz_http_query: %s\n", err);
			abort();
		}
	}
	return http_server__port(server);
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n <= 0)
			return; /* the server may close early on a refused request */
		buf += n;
		len -= (size_t)n;
	}
}

/* Sends one request on a new connection and reads the answer to EOF. Returns
 * the bytes received (the first sizeof(resp) kept); aborts when the server
 * accepts but does not answer within 10 s. */
static size_t exchange(uint16_t port, const char *req, size_t len, char *resp, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 10 };
	size_t got = 0;
	char sink[4096];
	/* Closing with a reset (linger 0) leaves no TIME_WAIT on either side:
	 * hundreds of connections a second would otherwise use up the
	 * ephemeral ports within minutes. */
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)))
		abort();
	for (int attempt = 0; connect(fd, (struct sockaddr *)&sa, sizeof(sa)); attempt++) {
		/* Ports still held by other programs' TIME_WAITs: wait, bounded. */
		if ((errno != EADDRNOTAVAIL && errno != EAGAIN) || attempt == 1000) {
			fprintf(stderr, "fuzz_http_query: connect: %s\n", strerror(errno));
			abort();
		}
		usleep(10000);
	}
	send_all(fd, req, len);
	for (;;) {
		char *to = got < cap ? resp + got : sink;
		size_t room = got < cap ? cap - got : sizeof(sink);
		ssize_t n = recv(fd, to, room, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			fprintf(stderr, "fuzz_http_query: no answer within 10 s\n");
			abort();
		}
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	uint16_t port = server_port();
	char *req = malloc(3 * size + 64), resp[4096];
	size_t len = 0;
	if (!req)
		abort();
	len += (size_t)sprintf(req, "GET /q?");
	for (size_t i = 0; i < size; i++) {
		uint8_t c = data[i];
		if (c <= 0x20 || c >= 0x7f || c == '#') {
			req[len++] = '%';
			req[len++] = hex[c >> 4];
			req[len++] = hex[c & 15];
		} else {
			req[len++] = (char)c;
		}
	}
	len += (size_t)sprintf(req + len, " HTTP/1.0\r\n\r\n");

	/* A connection closed unanswered is the server at its connection limit
	 * (connections of earlier inputs still closing): retry, bounded. */
	size_t got = 0;
	for (int attempt = 0; attempt < 300 && got == 0; attempt++) {
		if (attempt)
			usleep(10000);
		got = exchange(port, req, len, resp, sizeof(resp));
	}
	/* Every request is answered with a status line. */
	if (got < 12 || memcmp(resp, "HTTP/1.", 7)) {
		fprintf(stderr, "fuzz_http_query: no status line (%zu bytes)\n", got);
		abort();
	}
	free(req);
	return 0;
}
