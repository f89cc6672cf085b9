// SPDX-License-Identifier: MIT
#include "strbuf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(struct strbuf *sb, size_t extra)
{
	if (sb->failed)
		return -1;
	if (sb->len + extra + 1 <= sb->cap)
		return 0;
	size_t cap = sb->cap ? sb->cap : 64;
	while (cap < sb->len + extra + 1)
		cap *= 2;
	char *p = realloc(sb->data, cap);
	if (!p) {
		sb->failed = 1;
		return -1;
	}
	sb->data = p;
	sb->cap = cap;
	return 0;
}

void strbuf__append(struct strbuf *sb, const void *data, size_t len)
{
	if (reserve(sb, len))
		return;
	if (len) /* data may be NULL when len is 0: memcpy's arguments may not */
		memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

void strbuf__puts(struct strbuf *sb, const char *s)
{
	strbuf__append(sb, s, strlen(s));
}

void strbuf__putc(struct strbuf *sb, char c)
{
	strbuf__append(sb, &c, 1);
}

void strbuf__vprintf(struct strbuf *sb, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || reserve(sb, (size_t)n))
		return;
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	sb->len += (size_t)n;
}

void strbuf__printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	strbuf__vprintf(sb, fmt, ap);
	va_end(ap);
}

void strbuf__json_escape(struct strbuf *sb, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': strbuf__puts(sb, "\\\""); break;
		case '\\': strbuf__puts(sb, "\\\\"); break;
		case '\n': strbuf__puts(sb, "\\n"); break;
		case '\r': strbuf__puts(sb, "\\r"); break;
		case '\t': strbuf__puts(sb, "\\t"); break;
		default:
			if (*p < 0x20)
				strbuf__printf(sb, "\\u%04x", *p);
			else
				strbuf__putc(sb, (char)*p);
		}
	}
}

void strbuf__json_string(struct strbuf *sb, const char *s)
{
	strbuf__putc(sb, '"');
	strbuf__json_escape(sb, s ? s : "");
	strbuf__putc(sb, '"');
}

void strbuf__json_number(struct strbuf *sb, double v)
{
	if (isfinite(v))
		strbuf__printf(sb, "%.6g", v);
	else
		strbuf__puts(sb, "null");
}

int strbuf__error(const struct strbuf *sb)
{
	return sb->failed ? -ENOMEM : 0;
}

void strbuf__reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->data)
		sb->data[0] = '\0';
}

void strbuf__release(struct strbuf *sb)
{
	free(sb->data);
	memset(sb, 0, sizeof(*sb));
}

const char *strbuf__str(const struct strbuf *sb)
{
	return sb->data ? sb->data : "";
}
