/* http_get.h - a minimal blocking HTTP/1.1 GET client for `dynoprof diff
 * --agent URL`: plain http://host[:port]/path?query, a bounded body, a
 * timeout. No TLS, no redirects (agents are reached on trusted networks or
 * loopback; put a TLS proxy in front otherwise). */
#ifndef DYNOPROF_HTTP_GET_H
#define DYNOPROF_HTTP_GET_H

#include <stddef.h>

#include "util/strbuf.h"

/* Fetches url into body (appended). token: bearer token or NULL. max_bytes
 * bounds the body; timeout_s bounds each socket wait. Returns the HTTP
 * status (200...), or -errno with a message in err. */
int http_get(const char *url, const char *token, size_t max_bytes, int timeout_s,
	     struct strbuf *body, char *err, size_t errlen);

/* Appends the selectors text ("KEY=VALUE" pairs joined by '&', as typed on
 * a command line: `commit=abc&endpoint=/checkout`) to url as a query string,
 * each key and value percent-encoded (RFC 3986: unreserved characters, '/'
 * and ':' as is; an existing %XX escape is kept, so an already encoded query
 * passes unchanged; '+' becomes %2B, not a space). Empty pairs ("a=1&&b=2")
 * are skipped. Returns 0, -EINVAL for a pair without '=' or with an empty
 * key (err names it), or -ENOMEM. */
int http_get__append_query(struct strbuf *url, const char *selectors, char *err,
			   size_t errlen);

/* The start of an answer's body as one line of an error message (an agent's
 * error ends in a newline, a proxy's page has many): control characters
 * become spaces, at most len - 1 bytes (len > 0), trailing spaces dropped.
 * Returns out. */
const char *http_get__body_line(const struct strbuf *body, char *out, size_t len);

#endif
