/* Where the unit tests' fixture sources are: tests/unit/fixtures, found from
 * the source tree (make unit-test runs there) or from the test binary's own
 * place (.output/tests/), so a test runs from either. */
#ifndef DYNOPROF_TESTS_FIXTURES_DIR_H
#define DYNOPROF_TESTS_FIXTURES_DIR_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Writes the directory's real path to out (len bytes). Returns 0, or -1 when
 * neither place has it or it does not fit. */
static inline int fixtures_dir_find(char *out, size_t len)
{
	char exe[1024], candidate[PATH_MAX], real[PATH_MAX];
	const char *path = "tests/unit/fixtures";
	ssize_t n;

	if (!realpath(path, real)) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return -1;
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		snprintf(candidate, sizeof(candidate), "%s/../../tests/unit/fixtures", exe);
		if (!realpath(candidate, real))
			return -1;
	}
	if (strlen(real) >= len)
		return -1;
	strcpy(out, real);
	return 0;
}

#endif
