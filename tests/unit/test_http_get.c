// SPDX-License-Identifier: MIT
/* The `diff --agent URL` HTTP client against a tiny in-test server on
 * 127.0.0.1: status and body, the request line and bearer header it sends,
 * non-200 statuses returned as such, refused connections, the body bound,
 * malformed and chunked responses, timeouts, and URLs it does not take. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "util/http_get.h"

/* A one-connection server: accepts, reads the request head, answers with
 * `response` (len bytes; NULL: answers nothing and waits for the client to
 * hang up), closes. */
struct server {
	int fd;                /* listening socket */
	uint16_t port;         /* its port */
	const char *response;  /* bytes to answer */
	size_t len;            /* their count */
	char request[4096];    /* the request head received */
	pthread_t thread;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	int c = accept(s->fd, NULL, NULL);
	if (c < 0)
		return NULL;
	size_t got = 0;
	while (got < sizeof(s->request) - 1) {
		ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		s->request[got] = '\0';
		if (strstr(s->request, "\r\n\r\n"))
			break;
	}
	if (s->response) {
		/* MSG_NOSIGNAL: the client may hang up early (body too large). */
		for (size_t off = 0; off < s->len;) {
			ssize_t n = send(c, s->response + off, s->len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
	} else {
		char b[64];
		while (read(c, b, sizeof(b)) > 0)
			;
	}
	close(c);
	return NULL;
}

/* Starts a server answering response (len bytes). */
static void start(struct server *s, const char *response, size_t len)
{
	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s->fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->fd, 4), 0);
	assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	s->response = response;
	s->len = len;
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void url_of(const struct server *s, const char *path, char *out, size_t len)
{
	snprintf(out, len, "http://127.0.0.1:%u%s", s->port, path);
}

#define OK_RESPONSE "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" \
		    "Content-Length: 15\r\nConnection: close\r\n\r\n{\"checks\": []}\n"

static void test_ok_with_token(void **state)
{
	(void)state;
	struct server s;
	char url[128], err[256] = "";
	start(&s, OK_RESPONSE, strlen(OK_RESPONSE));
	url_of(&s, "/debug/pprof/profile?seconds=5&tag=endpoint%3D/a", url, sizeof(url));
	struct strbuf body = STRBUF_INIT;
	strbuf__puts(&body, "before:");
	int rc = http_get(url, "s3cret", 1 << 20, 5, &body, err, sizeof(err));
	stop(&s);
	if (rc != 200)
		fail_msg("http_get: %d %s", rc, err);
	assert_string_equal(strbuf__str(&body), "before:{\"checks\": []}\n");
	assert_non_null(strstr(s.request, "GET /debug/pprof/profile?seconds=5&tag=endpoint%3D/a "
					  "HTTP/1.1\r\n"));
	assert_int_equal(strncmp(s.request, "GET ", 4), 0);
	char host[64];
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", s.port);
	assert_non_null(strstr(s.request, host));
	assert_non_null(strstr(s.request, "\r\nAuthorization: Bearer s3cret\r\n"));
	strbuf__release(&body);
}

static void test_no_token_no_path(void **state)
{
	(void)state;
	struct server s;
	char url[128], err[256] = "";
	start(&s, OK_RESPONSE, strlen(OK_RESPONSE));
	url_of(&s, "", url, sizeof(url));
	struct strbuf body = STRBUF_INIT;
	assert_int_equal(http_get(url, NULL, 1 << 20, 5, &body, err, sizeof(err)), 200);
	stop(&s);
	assert_int_equal(strncmp(s.request, "GET / HTTP/1.1\r\n", 16), 0);
	assert_null(strstr(s.request, "Authorization"));
	strbuf__release(&body);

	/* An empty token sends no header either. */
	start(&s, OK_RESPONSE, strlen(OK_RESPONSE));
	url_of(&s, "/x", url, sizeof(url));
	assert_int_equal(http_get(url, "", 1 << 20, 5, &body, err, sizeof(err)), 200);
	stop(&s);
	assert_null(strstr(s.request, "Authorization"));
	strbuf__release(&body);
}

static void test_error_status_returned(void **state)
{
	(void)state;
	const char *resp[] = {
		"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n",
		"HTTP/1.0 401 Unauthorized\r\n\r\nbad token",
	};
	const int want[] = { 404, 401 };
	const char *want_body[] = { "not found\n", "bad token" };
	for (int i = 0; i < 2; i++) {
		struct server s;
		char url[128], err[256] = "";
		start(&s, resp[i], strlen(resp[i]));
		url_of(&s, "/missing", url, sizeof(url));
		struct strbuf body = STRBUF_INIT;
		int rc = http_get(url, NULL, 1 << 20, 5, &body, err, sizeof(err));
		stop(&s);
		assert_int_equal(rc, want[i]);
		assert_string_equal(strbuf__str(&body), want_body[i]);
		strbuf__release(&body);
	}
}

static void test_connection_refused(void **state)
{
	(void)state;
	/* A port that was just free: bound, then closed without listening. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	char url[128], err[256] = "";
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", ntohs(a.sin_port));
	struct strbuf body = STRBUF_INIT;
	assert_int_equal(http_get(url, NULL, 1024, 5, &body, err, sizeof(err)), -ECONNREFUSED);
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_non_null(strstr(err, "refused"));
	assert_int_equal(body.len, 0);
	strbuf__release(&body);
}

/* A 200 response with a body of n bytes ('x'). */
static char *big_response(size_t n, size_t *len)
{
	char head[128];
	int h = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
	char *r = malloc((size_t)h + n);
	assert_non_null(r);
	memcpy(r, head, (size_t)h);
	memset(r + h, 'x', n);
	*len = (size_t)h + n;
	return r;
}

static void test_max_bytes(void **state)
{
	(void)state;
	const struct { size_t body, max; int want; } cases[] = {
		{ 1000, 1000, 200 },       /* exactly the bound */
		{ 1001, 1000, -EFBIG },    /* one byte over */
		{ 300000, 1000, -EFBIG },  /* far over */
		{ 300000, 300000, 200 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *resp = big_response(cases[i].body, &len);
		struct server s;
		char url[128], err[256] = "";
		start(&s, resp, len);
		url_of(&s, "/big", url, sizeof(url));
		struct strbuf body = STRBUF_INIT;
		int rc = http_get(url, NULL, cases[i].max, 5, &body, err, sizeof(err));
		stop(&s);
		free(resp);
		if (rc != cases[i].want)
			fail_msg("body %zu, max %zu: got %d (%s), want %d", cases[i].body,
				 cases[i].max, rc, err, cases[i].want);
		if (rc == 200) {
			assert_int_equal(body.len, cases[i].body);
		} else {
			assert_true(body.len <= cases[i].max);
			assert_non_null(strstr(err, "larger than"));
		}
		strbuf__release(&body);
	}
}

static void test_bad_responses(void **state)
{
	(void)state;
	const char *resp[] = {
		"garbage\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", /* no end of headers */
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"", /* closed without a response */
	};
	for (size_t i = 0; i < sizeof(resp) / sizeof(resp[0]); i++) {
		struct server s;
		char url[128], err[256] = "";
		start(&s, resp[i], strlen(resp[i]));
		url_of(&s, "/", url, sizeof(url));
		struct strbuf body = STRBUF_INIT;
		int rc = http_get(url, NULL, 1 << 20, 5, &body, err, sizeof(err));
		stop(&s);
		if (rc != -EPROTO)
			fail_msg("response %zu: got %d (%s), want -EPROTO", i, rc, err);
		assert_true(err[0] != '\0');
		assert_int_equal(body.len, 0);
		strbuf__release(&body);
	}
}

static void test_timeout(void **state)
{
	(void)state;
	struct server s;
	char url[128], err[256] = "";
	start(&s, NULL, 0); /* never answers */
	url_of(&s, "/slow", url, sizeof(url));
	struct strbuf body = STRBUF_INIT;
	int rc = http_get(url, NULL, 1024, 1, &body, err, sizeof(err));
	stop(&s);
	assert_true(rc == -EAGAIN || rc == -EWOULDBLOCK);
	assert_non_null(strstr(err, "timed out"));
	strbuf__release(&body);
}

static void test_bad_urls(void **state)
{
	(void)state;
	const char *urls[] = { "https://127.0.0.1/", "ftp://example.com/x", "127.0.0.1:9464/",
			       "", "http://", "http:///path" };
	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		char err[256] = "";
		struct strbuf body = STRBUF_INIT;
		int rc = http_get(urls[i], NULL, 1024, 1, &body, err, sizeof(err));
		if (rc != -EINVAL)
			fail_msg("'%s': got %d (%s), want -EINVAL", urls[i], rc, err);
		assert_true(err[0] != '\0');
		strbuf__release(&body);
	}
	char err[256] = "";
	struct strbuf body = STRBUF_INIT;
	assert_int_equal(http_get("https://agent:9464/", NULL, 1024, 1, &body, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "http://"));
	strbuf__release(&body);
}

/* diff --agent's selectors become an encoded query string. */
static void test_append_query(void **state)
{
	(void)state;
	char err[128] = "";
	struct strbuf url = STRBUF_INIT;
	strbuf__puts(&url, "http://h:1/p");
	assert_int_equal(http_get__append_query(&url, "commit=abc&endpoint=/a b&tag.k=x+y&&"
						"from=2026-11-22T10:00:00+02:00", err, sizeof(err)),
			 0);
	assert_string_equal(strbuf__str(&url), "http://h:1/p?commit=abc&endpoint=/a%20b&"
			    "tag.k=x%2By&from=2026-11-22T10:00:00%2B02:00");
	/* Already encoded stays as is; '&' and '=' inside a value need %26 / %3D. */
	strbuf__reset(&url);
	strbuf__puts(&url, "http://h/p?seconds=1");
	assert_int_equal(http_get__append_query(&url, "endpoint=%2Fa%26b&x=1=2", err,
						sizeof(err)), 0);
	assert_string_equal(strbuf__str(&url), "http://h/p?seconds=1&endpoint=%2Fa%26b&x=1%3D2");
	strbuf__reset(&url);
	assert_int_equal(http_get__append_query(&url, "commit", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "commit"));
	assert_int_equal(http_get__append_query(&url, "=x", err, sizeof(err)), -EINVAL);
	strbuf__reset(&url);
	assert_int_equal(http_get__append_query(&url, "", err, sizeof(err)), 0);
	assert_string_equal(strbuf__str(&url), "");
	strbuf__release(&url);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ok_with_token),
		cmocka_unit_test(test_no_token_no_path),
		cmocka_unit_test(test_error_status_returned),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_max_bytes),
		cmocka_unit_test(test_bad_responses),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_append_query),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
