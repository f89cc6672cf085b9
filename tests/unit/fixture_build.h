/* Builds a test's fixture binaries once per run, the same way for every test
 * that compiles them (test_elf_symtab, test_symbolizer): the sources are in
 * tests/unit/fixtures (fixtures_dir.h), the binaries go to a fresh temporary
 * directory /tmp/dynoprof-TAG-XXXXXX, built by a shell script run there
 * under `set -e` with $F naming the sources' directory and $W the work
 * directory; the directory is removed when the tests are done. */
#ifndef DYNOPROF_TESTS_FIXTURE_BUILD_H
#define DYNOPROF_TESTS_FIXTURE_BUILD_H

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixtures_dir.h"

/* Directory paths are kept short so every path built from them fits PATH_MAX. */
#define FIXTURE_DIR_MAX 1024
#define FIXTURE_TMP_PREFIX "/tmp/dynoprof-"

struct fixture_build {
	char work_dir[FIXTURE_DIR_MAX];     /* where the binaries are built ("" before) */
	char fixtures_dir[FIXTURE_DIR_MAX]; /* the sources (tests/unit/fixtures, real path) */
};

/* Makes b->work_dir (/tmp/dynoprof-TAG-XXXXXX) and runs the script (a printf
 * format) there. Returns 0, or -1 when the directory, the sources or a
 * command of the script failed (gcc prints why). */
static inline int fixture_build(struct fixture_build *b, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline int fixture_build(struct fixture_build *b, const char *tag, const char *fmt, ...)
{
	static char script[8 * PATH_MAX], cmd[9 * PATH_MAX];
	va_list ap;
	int n;

	b->work_dir[0] = '\0';
	if (fixtures_dir_find(b->fixtures_dir, sizeof(b->fixtures_dir)))
		return -1;
	snprintf(b->work_dir, sizeof(b->work_dir), FIXTURE_TMP_PREFIX "%s-XXXXXX", tag);
	if (!mkdtemp(b->work_dir)) {
		b->work_dir[0] = '\0';
		return -1;
	}
	va_start(ap, fmt);
	n = vsnprintf(script, sizeof(script), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(script))
		return -1;
	snprintf(cmd, sizeof(cmd), "set -e; cd '%s'; F='%s'; W='%s'; %s", b->work_dir,
		 b->fixtures_dir, b->work_dir, script);
	return system(cmd) == 0 ? 0 : -1;
}

/* out (PATH_MAX bytes) = the built file name. */
static inline void fixture_build__path(const struct fixture_build *b, char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", b->work_dir, name);
}

/* Removes the work directory (nothing when it was never made). */
static inline int fixture_build__remove(struct fixture_build *b)
{
	char cmd[FIXTURE_DIR_MAX + 16];

	if (strncmp(b->work_dir, FIXTURE_TMP_PREFIX, strlen(FIXTURE_TMP_PREFIX)) != 0)
		return 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", b->work_dir);
	b->work_dir[0] = '\0';
	return system(cmd) == 0 ? 0 : -1;
}

#endif
