/* py_dlopen.c - an application loading CPython with dlopen (as plugin hosts
 * do), for tests/integration/test_python_embedded.py.
 *
 * usage: py_dlopen LIBPYTHON SCRIPT ARGS...
 *
 * dlopen(LIBPYTHON, RTLD_NOW | RTLD_GLOBAL), then, through dlsym, what
 * py_embed.c does: sys.argv = [SCRIPT, ARGS...] and a driver running SCRIPT
 * as __main__. Only the stable ABI's plain functions are used, so no header
 * is needed: built with the host's gcc alone.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "driver.h"

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s LIBPYTHON SCRIPT ARGS...\n", argv[0]);
		return 2;
	}
	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!lib) {
		fprintf(stderr, "py_dlopen: %s\n", dlerror());
		return 1;
	}
	void (*initialize)(void) = (void (*)(void))dlsym(lib, "Py_Initialize");
	int (*run)(const char *) = (int (*)(const char *))dlsym(lib, "PyRun_SimpleString");
	int (*finalize)(void) = (int (*)(void))dlsym(lib, "Py_FinalizeEx");
	if (!initialize || !run || !finalize) {
		fprintf(stderr, "py_dlopen: %s lacks Py_Initialize/PyRun_SimpleString\n", argv[1]);
		return 1;
	}
	initialize();
	/* sys.argv from Python itself: PySys_SetArgv is gone from newer APIs. */
	size_t len = 64;
	for (int i = 2; i < argc; i++)
		len += 4 * strlen(argv[i]) + 8;
	char *set_argv = malloc(len);
	if (!set_argv)
		return 1;
	size_t at = (size_t)snprintf(set_argv, len, "import sys\nsys.argv = [");
	for (int i = 2; i < argc; i++) {
		at += (size_t)snprintf(set_argv + at, len - at, "%s'", i > 2 ? ", " : "");
		for (const char *p = argv[i]; *p; p++)
			at += (size_t)snprintf(set_argv + at, len - at, "\\x%02x", (unsigned char)*p);
		at += (size_t)snprintf(set_argv + at, len - at, "'");
	}
	snprintf(set_argv + at, len - at, "]\n");
	int rc = run(set_argv) || run(driver);
	free(set_argv);
	if (finalize() < 0)
		rc = 1;
	return rc;
}
