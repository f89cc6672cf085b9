// SPDX-License-Identifier: MIT
#include "util/textfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errmsg.h"

const char *textfile__escape(const char *s, char *buf, size_t len)
{
	size_t o = 0;
	if (!len)
		return buf;
	for (const unsigned char *p = (const unsigned char *)s; *p && o + 5 < len; p++) {
		if (*p >= 0x20 && *p < 0x7f)
			buf[o++] = (char)*p;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", *p);
	}
	buf[o] = '\0';
	return buf;
}

/* Checks that data is text made of lines no longer than max_line. */
static int check_text(const char *path, const unsigned char *d, size_t n, size_t max_line,
		      char *err, size_t errlen)
{
	if (n >= 3 && d[0] == 0xef && d[1] == 0xbb && d[2] == 0xbf) {
		errmsg__set(err, errlen, "%s:1: starts with a UTF-8 byte-order mark (invisible "
			    "bytes some editors add): save the file without it", path);
		return -EINVAL;
	}
	int lineno = 1;
	size_t start = 0;
	for (size_t i = 0; i <= n; i++) {
		unsigned char b = i < n ? d[i] : '\n';
		if (b == '\n') {
			if (i - start > max_line) {
				errmsg__set(err, errlen, "%s:%d: line longer than %zu bytes", path,
					    lineno, max_line);
				return -EFBIG;
			}
			lineno++;
			start = i + 1;
			continue;
		}
		/* A CR only ends a line (CRLF): a bare one makes a terminal show
		 * text over text, so what is read differs from what is seen. */
		if (b == '\r' && (i + 1 == n || d[i + 1] == '\n'))
			continue;
		if (b == 0 || (b < 0x20 && b != '\t') || b == 0x7f) {
			errmsg__set(err, errlen, "%s:%d: %s (byte 0x%02x) at column %zu: not a "
				    "text file", path, lineno,
				    b == 0 ? "NUL byte" : "control character", b, i - start + 1);
			return -EINVAL;
		}
	}
	return 0;
}

int textfile__read(struct textfile *t, const char *path, size_t max_bytes, size_t max_line,
		   char *err, size_t errlen)
{
	struct stat st;
	int fd = -1, e;
	size_t n = 0;

	memset(t, 0, sizeof(*t));
	/* stat first: opening a device can have effects (a tape rewinds). */
	if (stat(path, &st)) {
		e = -errno;
		errmsg__set(err, errlen, "%s: %s", path, strerror(-e));
		return e;
	}
	if (!S_ISREG(st.st_mode))
		goto not_regular;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		e = -errno;
		errmsg__set(err, errlen, "%s: %s", path, strerror(-e));
		return e;
	}
	if (fstat(fd, &st)) { /* it may have been replaced since stat() */
		e = -errno;
		errmsg__set(err, errlen, "%s: %s", path, strerror(-e));
		goto fail;
	}
	if (!S_ISREG(st.st_mode))
		goto not_regular;
	if ((size_t)st.st_size > max_bytes)
		goto too_big;
	t->data = malloc(max_bytes + 2);
	if (!t->data) {
		e = -ENOMEM;
		errmsg__set(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	/* Read one byte past the limit: a file that grew since fstat is refused too. */
	while (n <= max_bytes) {
		ssize_t r = read(fd, t->data + n, max_bytes + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = -errno;
			errmsg__set(err, errlen, "%s: %s", path, strerror(-e));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max_bytes)
		goto too_big;
	close(fd);
	fd = -1;
	t->data[n] = '\0';
	t->len = n;
	e = check_text(path, (const unsigned char *)t->data, n, max_line, err, errlen);
	if (e)
		goto fail;
	t->next = n ? t->data : NULL;
	return 0;

not_regular:
	e = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	errmsg__set(err, errlen, "%s: is %s, not a regular file", path, errmsg__file_kind(st.st_mode));
	goto fail;
too_big:
	e = -EFBIG;
	errmsg__set(err, errlen, "%s: larger than %zu bytes: not a file this reads", path,
		    max_bytes);
fail:
	if (fd >= 0)
		close(fd);
	textfile__free(t);
	return e;
}

int textfile__from_buffer(struct textfile *t, const char *name, const void *data, size_t len,
			  size_t max_bytes, size_t max_line, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (len > max_bytes) {
		errmsg__set(err, errlen, "%s: larger than %zu bytes: not a file this reads", name,
			    max_bytes);
		return -EFBIG;
	}
	t->data = malloc(len + 1);
	if (!t->data) {
		errmsg__set(err, errlen, "%s: out of memory", name);
		return -ENOMEM;
	}
	if (len)
		memcpy(t->data, data, len);
	t->data[len] = '\0';
	t->len = len;
	int e = check_text(name, (const unsigned char *)t->data, len, max_line, err, errlen);
	if (e) {
		textfile__free(t);
		return e;
	}
	t->next = len ? t->data : NULL;
	return 0;
}

char *textfile__next_line(struct textfile *t)
{
	char *line = t->next;
	if (!line)
		return NULL;
	char *nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		t->next = nl[1] ? nl + 1 : NULL;
	} else {
		t->next = NULL;
	}
	size_t len = strlen(line);
	if (len && line[len - 1] == '\r')
		line[len - 1] = '\0';
	t->lineno++;
	return line;
}

void textfile__free(struct textfile *t)
{
	if (!t)
		return;
	free(t->data);
	memset(t, 0, sizeof(*t));
}

/* A token file is small: anything bigger is not one. */
#define TOKEN_FILE_MAX_BYTES 4096

int textfile__read_token(const char *path, char *out, size_t len, char *err, size_t errlen)
{
	struct textfile t;
	int e = textfile__read(&t, path, TOKEN_FILE_MAX_BYTES, TOKEN_FILE_MAX_BYTES, err, errlen);
	if (e)
		return e;
	const char *first = textfile__next_line(&t);
	const char *line;
	while ((line = textfile__next_line(&t)))
		if (*line) {
			errmsg__set(err, errlen, "%s:%d: a token file holds one line (the token)",
				    path, t.lineno);
			e = -EINVAL;
			goto out;
		}
	if (!first || !*first) {
		errmsg__set(err, errlen, "%s: empty (no token)", path);
		e = -EINVAL;
	} else if (strlen(first) >= len) {
		errmsg__set(err, errlen, "%s: the token is longer than %zu bytes", path, len - 1);
		e = -EFBIG;
	} else {
		memcpy(out, first, strlen(first) + 1);
	}
out:
	textfile__free(&t);
	return e;
}
