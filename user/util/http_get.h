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

#endif
