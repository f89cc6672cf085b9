/* http_server.h - the agent's HTTP server (libmicrohttpd): GET routes to
 * handlers, query parameters, optional bearer token, bounded requests.
 *
 * Loopback only unless allow_remote is set (listening elsewhere needs an
 * explicit flag). Unknown paths answer 404, other methods 405, a missing or
 * wrong token 401 (but on opts.public_paths); handlers answer 400 with a
 * message for bad parameters.
 * Requests are bounded: head size (431), parameter count and length, a
 * parameter given twice (400), connections waiting for their request head
 * (max_pending, max_pending_per_addr: the oldest is pushed out, 503), an
 * absolute deadline from accept for the whole head (408: trickling bytes do
 * not extend it), requests in progress (max_connections, 503), idle time
 * after the head (timeout_s). Every response closes its connection (no
 * keep-alive). Handlers run on the server's threads (one per request in
 * progress) and may block (e.g. `?seconds=N` collection), up to
 * max_handler_seconds.
 */
#ifndef DYNOPROF_HTTP_SERVER_H
#define DYNOPROF_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/strbuf.h"

/* The parsed query string of a request. */
struct http_query;

/* Value of parameter name, or NULL. A name occurs at most once: the
 * server answers 400 to a query that repeats one. */
const char *http_query__get(const struct http_query *q, const char *name);
/* Number of parameters, and the i-th name/value. */
size_t http_query__count(const struct http_query *q);
const char *http_query__name(const struct http_query *q, size_t i);
const char *http_query__value(const struct http_query *q, size_t i);

/* What a handler answers. body is empty and status 200 on entry. */
struct http_response {
	int status;                   /* HTTP status */
	const char *content_type;     /* static string, e.g. "text/plain; version=0.0.4" */
	const char *content_encoding; /* NULL or "gzip" (body already compressed) */
	const char *content_disposition; /* NULL or a static value */
	const char *cache_control;    /* NULL ("no-store") or a static value */
	const char *csp;              /* NULL (none) or a static Content-Security-Policy */
	struct strbuf body;           /* response bytes (owned by the server) */
};

/* Sets status and a one-line plain-text message body (for 4xx/5xx). */
void http_response__error(struct http_response *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

typedef void (*http_handler_fn)(void *ctx, const struct http_query *q,
				struct http_response *r);

struct http_route {
	const char *path;        /* exact path, e.g. "/metrics" */
	http_handler_fn handler;
	void *ctx;
};

struct http_server_opts {
	const char *address;     /* listen address (default "127.0.0.1") */
	uint16_t port;           /* 0 binds an ephemeral port (tests); the agent's is 9464 */
	bool allow_remote;       /* required for a non-loopback address */
	const char *token;       /* bearer token required when non-NULL/non-empty */
	unsigned max_connections;/* requests in progress at once, default 64 */
	unsigned timeout_s;      /* idle timeout once the head is in, default 30 */
	unsigned max_pending;    /* connections waiting for their head, default 512 */
	unsigned max_pending_per_addr; /* of them per client address, default 128 */
	unsigned head_timeout_ms;/* accept to complete head, absolute; default 10000 */
	const char *const *public_paths; /* NULL-terminated routes served without the
				  * token: static code holding no data (the web
				  * page and its assets), so a browser can load
				  * it and then ask the user for the token */
	const char *const *blocking_paths; /* NULL-terminated routes whose handlers may
				  * take long (collections): they get at most
				  * max_connections less an eighth at once (503
				  * beyond), so the others always find a slot */
};

/* Connections refused since start, by reason (each got a short answer). */
struct http_server_stats {
	uint64_t head_timeout;   /* 408: head not complete within head_timeout_ms */
	uint64_t head_too_large; /* 431: head over 16 KiB */
	uint64_t evicted;        /* 503: oldest waiting one pushed out by the pending limits */
	uint64_t busy;           /* 503: max_connections requests in progress */
	uint64_t fd_limit;       /* 503: out of file descriptors */
};

struct http_server;

/* Starts serving routes (copied; ctx pointers are the caller's and must
 * outlive the server). opts NULL means all defaults on port 9464. address is
 * an IPv4 or IPv6 literal ("::1" or "[::1]"; "localhost" is 127.0.0.1).
 * Returns NULL + errno with a message in err (e.g.
 * "address 0.0.0.0 is not loopback: pass --listen-remote to allow it" EPERM,
 * "port 9464 is in use on 127.0.0.1:9464 (...)" EADDRINUSE). */
struct http_server *http_server__start(const struct http_server_opts *opts,
				       const struct http_route *routes, size_t nroutes,
				       char *err, size_t errlen);
/* Stops listening, waits for running handlers to return (a handler blocked
 * in a collection must watch the agent's own stop flag), frees. NULL ok. */
void http_server__stop(struct http_server *s);
/* Refusals so far (thread-safe; zeros for NULL). */
void http_server__stats(const struct http_server *s, struct http_server_stats *out);
/* The port actually bound (useful with port 0 in tests). */
uint16_t http_server__port(const struct http_server *s);

/* Parses a time parameter: unix seconds ("1732233600", fractions allowed) or
 * RFC 3339 ("2026-11-22T01:00:00Z", "...+02:00", fractional seconds; "... 02:00"
 * too, as an unencoded '+' reaches a handler as a space). 0 or
 * -EINVAL (garbage, trailing junk, before 1970, or past what int64 ns holds:
 * 2262-04-11T23:47:16.854775807Z). */
int http_parse_time(const char *text, int64_t *unix_ns);
/* Parses a positive duration in plain decimal seconds ("30", "0.5"), at
 * most max_s. 0 or -EINVAL (no exponents, signs, inf or nan). */
int http_parse_seconds(const char *text, double max_s, double *seconds);

#endif
