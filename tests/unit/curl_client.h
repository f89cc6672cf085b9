/* The unit tests' HTTP client: curl (scripts/deps.sh test installs it), run
 * through popen with `-sS -i --max-time 30` and the caller's arguments (shell
 * words: quote URLs; a later --max-time wins), its answer split into status,
 * headers and body. Used by test_http_server and test_handlers: a real client
 * that is not ours, against the agent's server on loopback. */
#ifndef DYNOPROF_TESTS_CURL_CLIENT_H
#define DYNOPROF_TESTS_CURL_CLIENT_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/strbuf.h"

/* What curl printed for one request. */
struct reply {
	int status;     /* HTTP status of the last response curl printed, -1 on failure */
	char *headers;  /* raw header block of that response */
	char *body;     /* body bytes (NUL-terminated) */
	size_t body_len;
};

static inline void reply_free(struct reply *r)
{
	free(r->headers);
	free(r->body);
}

/* Starts curl with args; finish_curl() reads its answer. */
static inline FILE *start_curl(const char *args)
{
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "curl -sS -i --max-time 30 %s", args);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	return f;
}

static inline struct reply finish_curl(FILE *f)
{
	struct strbuf out = STRBUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		strbuf__append(&out, chunk, n);
	int rc = pclose(f);
	struct reply r = { .status = -1 };
	const char *text = strbuf__str(&out);
	/* Skip interim responses (100 Continue): take the last header block. */
	const char *start = text, *end;
	while ((end = strstr(start, "\r\n\r\n"))) {
		const char *next = end + 4;
		if (strncmp(next, "HTTP/", 5))
			break;
		start = next;
	}
	if (rc == 0 && !strncmp(start, "HTTP/", 5)) {
		r.status = atoi(strchr(start, ' ') + 1);
		end = strstr(start, "\r\n\r\n");
		size_t hlen = end ? (size_t)(end - start) + 2 : strlen(start);
		r.headers = strndup(start, hlen);
		const char *body = end ? end + 4 : start + hlen;
		r.body_len = out.len - (size_t)(body - text);
		r.body = malloc(r.body_len + 1);
		assert_non_null(r.body);
		memcpy(r.body, body, r.body_len);
		r.body[r.body_len] = '\0';
	}
	strbuf__release(&out);
	return r;
}

/* Runs curl with args (a printf format) and returns its reply. */
static inline struct reply curl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static inline struct reply curl(const char *fmt, ...)
{
	char args[1800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return finish_curl(start_curl(args));
}

/* Value of header name in r (case-insensitive name), or NULL; caller frees. */
static inline char *header(const struct reply *r, const char *name)
{
	size_t n = strlen(name);
	for (const char *line = r->headers; line && *line;) {
		const char *eol = strstr(line, "\r\n");
		if (!eol)
			break;
		if (!strncasecmp(line, name, n) && line[n] == ':') {
			const char *v = line + n + 1;
			while (*v == ' ')
				v++;
			return strndup(v, (size_t)(eol - v));
		}
		line = eol + 2;
	}
	return NULL;
}

static inline void expect_header(const struct reply *r, const char *name, const char *want)
{
	char *got = header(r, name);
	if (!got || strcmp(got, want))
		fail_msg("header %s: got '%s', want '%s'\n%s", name, got ? got : "(absent)", want,
			 r->headers ? r->headers : "");
	free(got);
}

#endif
