/* fuzz_util.h - small helpers shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * Harnesses feed the parsers the way dynoprof does: through a FILE (fmemopen),
 * a path (a memfd opened again through /proc/self/fd/N) or a NUL-terminated
 * string. Nothing here may hide a parser's bug: helpers abort on their own
 * failures, so a crash is always the parser's or the harness's. */
#ifndef DYNOPROF_FUZZ_UTIL_H
#define DYNOPROF_FUZZ_UTIL_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* A FILE reading data[0..size) (fmemopen refuses size 0: /dev/null then). */
static inline FILE *fuzz_file(const uint8_t *data, size_t size)
{
	FILE *f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	if (!f)
		abort();
	return f;
}

/* A NUL-terminated copy of data (embedded NULs cut it short, as C sees it). */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Writes data into one memfd kept for the process and returns a path that
 * opens it ("/proc/self/fd/N"), for parsers that only take paths. */
static inline const char *fuzz_path(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz-input", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	return path;
}

#endif
