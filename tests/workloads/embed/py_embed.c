/* py_embed.c - an application embedding CPython through the shared
 * libpython3.X.so, for tests/integration/test_python_embedded.py.
 *
 * usage: py_embed SCRIPT ARGS...
 *
 * Initialises the interpreter with sys.argv = [SCRIPT, ARGS...], then runs,
 * with PyRun_SimpleString, a driver that executes SCRIPT as __main__ under
 * its own file name (so its frames carry SCRIPT and its lines; the driver's
 * own frame is <string>:<module>). The tests run
 * tests/workloads/py/ground_truth.py this way: hot leaves under callers, a
 * second Python thread, time.thread_time() truth. Exits with the driver's
 * status.
 *
 * Built by the test, not the Makefile: against the headers and the
 * libpython of the root the interpreter comes from (gcc -I.. -L.. -lpython3.X),
 * run inside that root.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>

#include "driver.h"

int main(int argc, char **argv)
{
	PyConfig config;
	PyStatus status;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s SCRIPT ARGS...\n", argv[0]);
		return 2;
	}
	PyConfig_InitPythonConfig(&config);
	config.parse_argv = 0;
	status = PyConfig_SetBytesArgv(&config, argc - 1, argv + 1);
	if (PyStatus_Exception(status))
		goto fail;
	status = Py_InitializeFromConfig(&config);
	if (PyStatus_Exception(status))
		goto fail;
	PyConfig_Clear(&config);
	rc = PyRun_SimpleString(driver);
	if (Py_FinalizeEx() < 0)
		rc = 120;
	return rc ? 1 : 0;
fail:
	PyConfig_Clear(&config);
	Py_ExitStatusException(status);
}
