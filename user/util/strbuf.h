/* strbuf.h - growable byte buffer for building text and binary output.
 *
 * A failed allocation makes the buffer sticky-failed: later appends are no-ops
 * and strbuf__error() returns -ENOMEM, so writers check once at the end.
 */
#ifndef DYNOPROF_STRBUF_H
#define DYNOPROF_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *data;   /* bytes, always NUL-terminated when len > 0 or cap > 0 */
	size_t len;   /* bytes used, excluding the terminator */
	size_t cap;   /* bytes allocated */
	int failed;   /* nonzero after an allocation failure */
};

#define STRBUF_INIT { 0 }

void strbuf__append(struct strbuf *sb, const void *data, size_t len);
void strbuf__puts(struct strbuf *sb, const char *s);
void strbuf__putc(struct strbuf *sb, char c);
__attribute__((format(printf, 2, 3)))
void strbuf__printf(struct strbuf *sb, const char *fmt, ...);
void strbuf__vprintf(struct strbuf *sb, const char *fmt, va_list ap);
/* Appends s with JSON string escaping (no surrounding quotes). */
void strbuf__json_escape(struct strbuf *sb, const char *s);
/* Appends s as a JSON string: quoted and escaped (NULL as ""). */
void strbuf__json_string(struct strbuf *sb, const char *s);
/* Appends v as a JSON number (%.6g), or null when it is not finite. */
void strbuf__json_number(struct strbuf *sb, double v);
/* Returns 0, or -ENOMEM if any append failed. */
int strbuf__error(const struct strbuf *sb);
/* Empties the buffer, keeping its allocation. */
void strbuf__reset(struct strbuf *sb);
/* Releases the allocation; the buffer is reusable (as STRBUF_INIT) afterwards. */
void strbuf__release(struct strbuf *sb);
/* Returns the string (never NULL: "" when empty). */
const char *strbuf__str(const struct strbuf *sb);

#endif
