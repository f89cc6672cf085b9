/* textfile.h - reads a small text file an operator points dynoprof at (the
 * agent's config, a token file, a thresholds file) so that it says exactly
 * what its bytes say: whole lines of any length up to a limit, never split.
 *
 * Refused, each with one message naming the file (and the line, where there
 * is one): anything but a regular file after symlinks (directories, devices,
 * FIFOs, sockets: opened non-blocking, so a FIFO never hangs), a file larger
 * than max_bytes, a line longer than max_line, NUL bytes and other control
 * characters but tab, CR and LF, and a UTF-8 byte-order mark (an editor's
 * invisible bytes that would otherwise become part of the first key).
 */
#ifndef DYNOPROF_TEXTFILE_H
#define DYNOPROF_TEXTFILE_H

#include <stddef.h>

/* A file read and checked whole. Lines are split in place. */
struct textfile {
	char *data;   /* the file's bytes, NUL-terminated (no NUL inside: refused) */
	size_t len;   /* bytes in data, without the terminating NUL */
	char *next;   /* where textfile__next_line() continues; NULL at the end */
	int lineno;   /* number of the line textfile__next_line() returned last */
};

/* Reads path into t after the checks above. Returns 0, or -errno with
 * "PATH: ..." or "PATH:LINE: ..." in err (-EISDIR, -EINVAL for a file that is
 * not regular or not text, -EFBIG past max_bytes or max_line). */
int textfile__read(struct textfile *t, const char *path, size_t max_bytes, size_t max_line,
		   char *err, size_t errlen);

/* The same checks on len bytes at data (a copy is made), named name in
 * messages: for parsers fed from memory (fuzzing, tests). */
int textfile__from_buffer(struct textfile *t, const char *name, const void *data, size_t len,
			  size_t max_bytes, size_t max_line, char *err, size_t errlen);

/* Returns the next line without its "\n" or trailing "\r" (t->lineno is its
 * number), or NULL after the last one. */
char *textfile__next_line(struct textfile *t);

/* Frees what textfile__read() allocated; NULL-safe and idempotent. */
void textfile__free(struct textfile *t);

/* Reads a one-line secret (a bearer token) from path: the file's first line
 * without its line end, which must be non-empty, fit in len - 1 bytes and be
 * the only non-empty line. Returns 0 or -errno with a message in err. */
int textfile__read_token(const char *path, char *out, size_t len, char *err, size_t errlen);

/* Writes s into buf for a message: printable ASCII as is, every other byte
 * as \xNN, cut to fit; returns buf. */
const char *textfile__escape(const char *s, char *buf, size_t len);

#endif
