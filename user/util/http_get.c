// SPDX-License-Identifier: MIT
#include "util/http_get.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

int http_get(const char *url, const char *token, size_t max_bytes, int timeout_s,
	     struct strbuf *body, char *err, size_t errlen)
{
	char host[256], port[8] = "80";
	const char *p = url, *path;
	if (strncmp(p, "http://", 7) != 0) {
		snprintf(err, errlen, "only http:// URLs are supported: %s", url);
		return -EINVAL;
	}
	p += 7;
	path = strchr(p, '/');
	size_t hostlen = path ? (size_t)(path - p) : strlen(p);
	if (!path)
		path = "/";
	if (hostlen == 0 || hostlen >= sizeof(host)) {
		snprintf(err, errlen, "bad URL: %s", url);
		return -EINVAL;
	}
	memcpy(host, p, hostlen);
	host[hostlen] = '\0';
	char *colon = host[0] == '[' ? strstr(host, "]:") : strrchr(host, ':');
	if (colon) {
		snprintf(port, sizeof(port), "%s", colon + (host[0] == '[' ? 2 : 1));
		*(host[0] == '[' ? colon + 1 : colon) = '\0';
	}
	char *h = host;
	if (h[0] == '[') { /* IPv6 literal */
		h++;
		h[strcspn(h, "]")] = '\0';
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int gai = getaddrinfo(h, port, &hints, &ai);
	if (gai) {
		snprintf(err, errlen, "cannot resolve %s: %s", h, gai_strerror(gai));
		return -EHOSTUNREACH;
	}
	int fd = -1, e = ECONNREFUSED;
	for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		struct timeval tv = { .tv_sec = timeout_s };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen)) {
			e = errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to %s:%s: %s", h, port, strerror(e));
		return -e;
	}
	struct strbuf req = STRBUF_INIT, resp = STRBUF_INIT;
	/* Host is the URL's authority as written, port included (RFC 9112 3.2). */
	strbuf__printf(&req, "GET %s HTTP/1.1\r\nHost: %.*s\r\nConnection: close\r\n"
		       "User-Agent: dynoprof\r\n", path, (int)hostlen, url + 7);
	if (token && *token)
		strbuf__printf(&req, "Authorization: Bearer %s\r\n", token);
	strbuf__puts(&req, "\r\n");
	int rc = 0;
	/* MSG_NOSIGNAL: a peer that hung up is an error here, not a SIGPIPE. */
	if (strbuf__error(&req) || send(fd, req.data, req.len, MSG_NOSIGNAL) != (ssize_t)req.len) {
		snprintf(err, errlen, "sending the request to %s failed", url);
		rc = -EIO;
	}
	char buf[65536];
	while (!rc) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "reading from %s failed: %s", url,
				 errno == EAGAIN ? "timed out" : strerror(errno));
			break;
		}
		if (n == 0)
			break;
		if (resp.len + (size_t)n > max_bytes + 65536) {
			rc = -EFBIG;
			snprintf(err, errlen, "response from %s is larger than %zu bytes", url,
				 max_bytes);
			break;
		}
		strbuf__append(&resp, buf, (size_t)n);
	}
	close(fd);
	strbuf__release(&req);
	if (!rc && strbuf__error(&resp))
		rc = -ENOMEM;
	const char *hdr_end = rc ? NULL : strstr(strbuf__str(&resp), "\r\n\r\n");
	int status = 0;
	if (!rc && (!hdr_end || sscanf(strbuf__str(&resp), "HTTP/1.%*d %d", &status) != 1)) {
		snprintf(err, errlen, "malformed HTTP response from %s", url);
		rc = -EPROTO;
	}
	if (!rc) {
		/* Bodies from the agent are sent whole with Content-Length (or until
		 * close); chunked encoding is refused rather than misread. */
		const char *te = strcasestr(strbuf__str(&resp), "\r\ntransfer-encoding: chunked");
		if (te && te < hdr_end) {
			snprintf(err, errlen, "chunked responses are not supported (%s)", url);
			rc = -EPROTO;
		} else {
			/* The read loop allows max_bytes plus room for the headers;
			 * the bound itself is on the body. */
			size_t off = (size_t)(hdr_end + 4 - resp.data);
			if (resp.len - off > max_bytes) {
				snprintf(err, errlen, "response from %s is larger than %zu bytes",
					 url, max_bytes);
				rc = -EFBIG;
			} else {
				strbuf__append(body, resp.data + off, resp.len - off);
				rc = status;
			}
		}
	}
	strbuf__release(&resp);
	return rc;
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static void append_encoded(struct strbuf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || c == '/' || c == ':' ||
		    (c == '%' && i + 2 < len && is_hex(s[i + 1]) && is_hex(s[i + 2])))
			strbuf__putc(out, (char)c);
		else
			strbuf__printf(out, "%%%02X", c);
	}
}

int http_get__append_query(struct strbuf *url, const char *selectors, char *err,
			   size_t errlen)
{
	const char *p = selectors ? selectors : "";
	int first = !strchr(strbuf__str(url), '?');
	while (*p) {
		size_t len = strcspn(p, "&");
		const char *eq = memchr(p, '=', len);
		if (len && (!eq || eq == p)) {
			snprintf(err, errlen, "bad selector '%.*s': expected KEY=VALUE", (int)len, p);
			return -EINVAL;
		}
		if (len) {
			strbuf__putc(url, first ? '?' : '&');
			first = 0;
			append_encoded(url, p, (size_t)(eq - p));
			strbuf__putc(url, '=');
			append_encoded(url, eq + 1, len - (size_t)(eq - p) - 1);
		}
		p += len;
		if (*p == '&')
			p++;
	}
	return strbuf__error(url);
}

const char *http_get__body_line(const struct strbuf *body, char *out, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < body->len && n + 1 < len; i++) {
		unsigned char c = (unsigned char)body->data[i];
		out[n++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
	}
	while (n && out[n - 1] == ' ')
		n--;
	out[n] = '\0';
	return out;
}
