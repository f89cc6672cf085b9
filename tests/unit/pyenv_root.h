/* Where pyenv keeps its interpreters, found at run time for the unit tests that
 * check every installed CPython: $PYENV_ROOT, else what `pyenv root` prints
 * (pyenv on PATH), else pyenv's own default $HOME/.pyenv. Never a fixed path:
 * machines differ in whose home pyenv lives in. */
#ifndef DYNOPROF_TESTS_PYENV_ROOT_H
#define DYNOPROF_TESTS_PYENV_ROOT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes the pyenv root to out (len bytes); returns out. */
static inline const char *pyenv_root(char *out, size_t len)
{
	const char *env = getenv("PYENV_ROOT");
	FILE *p;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return out;
	}
	out[0] = '\0';
	p = popen("pyenv root 2>/dev/null", "r");
	if (p) {
		if (!fgets(out, (int)len, p))
			out[0] = '\0';
		pclose(p);
		out[strcspn(out, "\n")] = '\0';
	}
	if (!out[0])
		snprintf(out, len, "%s/.pyenv", getenv("HOME") ? getenv("HOME") : "");
	return out;
}

#endif
