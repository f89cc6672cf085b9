/* test_py_detect.c - Python detection against real interpreters (run as root).
 *
 * Every installed CPython (pyenv 3.6-3.13: small PIE executable + libpython
 * .so; Debian's /usr/bin/python3.11: non-PIE, libpython linked in) is started
 * running a sleep loop; py_detect must name its version, find _PyRuntime inside
 * the interpreter file's mappings and read back an initialised TSS key.
 * Interpreters not installed on a machine are skipped. Timings of py_detect
 * (cold cache / warm cache) are printed. Refusals say why: old versions (by
 * name or by the missing _PyRuntime), free-threaded and debug builds; an
 * executable named python3.X without its runtime yet is retried; a zombie
 * has no executable. The registry (py_registry.h) over the same processes:
 * one warning per refused process, publish/withdraw, bounded, swept.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <elf.h>

#include <cmocka.h>

#include "pyenv_root.h"

#include "symbolize/elf_dynsym.h"
#include "python/py_detect.h"
#include "python/py_registry.h"
#include "python/tls_layout.h"
#include "symbolize/proc_maps.h"

#define DEBIAN_PYTHON "/usr/bin/python3.11"

/* Prints "r" once the interpreter is up, then idles. */
static const char *const sleep_loop =
	"import sys, time\nsys.stdout.write('r')\nsys.stdout.flush()\n"
	"while True:\n    time.sleep(0.05)\n";

/* offsetof(_PyRuntimeState, [gilstate.]autoTSSkey) per minor (x86_64). */
static int tss_offset(int minor)
{
	switch (minor) {
	case 8: return 1392;
	case 9: return 584;
	case 10: return 584;
	case 11: return 592;
	case 12: return 1544;
	case 13: return 2160;
	default: return -1;
	}
}

/* offsetof(_PyRuntimeState, interpreters.head) per minor. */
static int interpreters_head_offset(int minor)
{
	return minor >= 13 ? 632 : minor >= 11 ? 40 : 32;
}

static uint64_t read_u64(pid_t pid, uint64_t addr)
{
	uint64_t value = 0;
	struct iovec local = {.iov_base = &value, .iov_len = sizeof(value)};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = sizeof(value)};
	assert_int_equal(process_vm_readv(pid, &local, 1, &remote, 1, 0), sizeof(value));
	return value;
}

/* What BPF will do for a sample of the target's main thread: from its fsbase,
 * through the calibrated glibc layout and the TSS key, to its PyThreadState,
 * whose interp (offset 16 in 3.8-3.13) must be the runtime's interpreter. */
static void check_thread_state_reachable(pid_t pid, const struct py_target *t, int key)
{
	struct py_tls_layout layout;
	struct user_regs_struct regs;
	int status;

	assert_int_equal(tls_layout__calibrate(&layout), 0);
	assert_int_equal(ptrace(PTRACE_ATTACH, pid, NULL, NULL), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(ptrace(PTRACE_GETREGS, pid, NULL, &regs), 0);
	assert_int_equal(ptrace(PTRACE_DETACH, pid, NULL, NULL), 0);
	uint64_t tstate = read_u64(pid, regs.fs_base + layout.specific_1stblock +
					    (uint64_t)key * layout.entry_size + layout.data_offset);
	assert_int_not_equal(tstate, 0);
	uint64_t interp = read_u64(pid, t->runtime_addr + interpreters_head_offset(t->minor));
	assert_int_not_equal(interp, 0);
	assert_int_equal(read_u64(pid, tstate + 16), interp);
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Finds pyenv's build of 3.minor (under `pyenv root`, found at run time): writes
 * its prefix (e.g. ROOT/versions/3.12.1) to out; 0 when not installed. */
static int pyenv_prefix(int minor, char *out, size_t len)
{
	char root[PATH_MAX / 2], pattern[PATH_MAX];
	glob_t found;
	int ok = 0;

	snprintf(pattern, sizeof(pattern), "%s/versions/3.%d.*/bin/python3.%d",
		 pyenv_root(root, sizeof(root)), minor, minor);
	if (glob(pattern, 0, NULL, &found) == 0 && found.gl_pathc > 0 &&
	    access(found.gl_pathv[0], X_OK) == 0) {
		char *bin = strstr(found.gl_pathv[0], "/bin/python3.");

		snprintf(out, len, "%.*s", (int)(bin - found.gl_pathv[0]), found.gl_pathv[0]);
		ok = 1;
	}
	globfree(&found);
	return ok;
}

/* Finds the pyenv interpreter for 3.minor; 0 when not installed. */
static int pyenv_python(int minor, char *out, size_t len)
{
	char prefix[PATH_MAX / 2];

	if (!pyenv_prefix(minor, prefix, sizeof(prefix)))
		return 0;
	snprintf(out, len, "%s/bin/python3.%d", prefix, minor);
	return 1;
}

/* Starts argv (with extra environment entries env, a NULL-terminated list or
 * NULL) and waits for its
 * first stdout byte (wait_byte) or for exec (!wait_byte). Returns the pid. */
static pid_t spawn(char *const argv[], char *const env[], int wait_byte)
{
	int out_pipe[2], exec_pipe[2];
	assert_int_equal(pipe2(out_pipe, O_CLOEXEC), 0);
	assert_int_equal(pipe2(exec_pipe, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(out_pipe[1], STDOUT_FILENO);
		for (size_t i = 0; env && env[i]; i++)
			putenv(env[i]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out_pipe[1]);
	close(exec_pipe[1]);
	struct pollfd pfd = {.fd = wait_byte ? out_pipe[0] : exec_pipe[0], .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 20000), 1);
	char c;
	ssize_t n = read(pfd.fd, &c, 1);
	if (wait_byte)
		assert_int_equal(n, 1);
	else
		assert_int_equal(n, 0); /* EOF: exec closed the pipe */
	close(out_pipe[0]);
	close(exec_pipe[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Returns nonzero when addr lies in a mapping (any permission) of path, or in
 * the anonymous mapping right after one (the file's .bss beyond its last
 * file-backed page: _PyRuntime is zero-initialised before 3.11). */
static int address_in_file(pid_t pid, uint64_t addr, const char *path)
{
	char maps_path[64], line[PATH_MAX + 128];
	uint64_t file_end = 0;
	int found = 0;
	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(maps_path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		uint64_t start, end;
		int path_at = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %*s %*s %*s %n", &start, &end,
			   &path_at) < 2)
			continue;
		line[strcspn(line, "\n")] = '\0';
		const char *mapped = path_at ? line + path_at : "";
		int of_file = strncmp(mapped, path, strlen(path)) == 0;
		int bss = !mapped[0] && start == file_end;
		if (addr >= start && addr < end && (of_file || bss))
			found = 1;
		file_end = of_file ? end : 0;
	}
	fclose(f);
	return found;
}

/* Runs py_detect on pid with fresh maps; reports the cold/warm times. */
static int detect(pid_t pid, struct py_target *t, char *reason, size_t reasonlen,
		  const char *label)
{
	struct proc_maps *maps = proc_maps__read(pid);
	assert_non_null(maps);
	py_detect__flush_cache();
	double t0 = now_us();
	int err = py_detect(pid, maps, t, reason, reasonlen);
	double t1 = now_us();
	struct py_target again;
	char reason2[256];
	int err2 = py_detect(pid, maps, &again, reason2, sizeof(reason2));
	double t2 = now_us();
	assert_int_equal(err2, err);
	if (!err)
		assert_int_equal(again.runtime_addr, t->runtime_addr);
	proc_maps__free(maps);
	double t3 = now_us();
	maps = proc_maps__read(pid);
	double t4 = now_us();
	proc_maps__free(maps);
	printf("  %-28s py_detect=%d  cold %7.1f us  warm %6.1f us  (proc_maps__read %6.1f us)\n",
	       label, err, t1 - t0, t2 - t1, t4 - t3);
	return err;
}

static void check_supported(const char *python, int minor, int shared)
{
	char *argv[] = {(char *)python, "-c", (char *)sleep_loop, NULL};
	struct py_target t;
	char reason[256];
	int key = -1;

	pid_t pid = spawn(argv, NULL, 1);
	int err = detect(pid, &t, reason, sizeof(reason), python);
	if (err)
		print_error("%s: %s\n", python, reason);
	assert_int_equal(err, 0);
	assert_int_equal(t.major, 3);
	assert_int_equal(t.minor, minor);
	assert_int_equal(t.version_index, PY_V3_8 + (minor - 8));
	assert_int_equal(!!(t.flags & PY_TARGET_SHARED), shared);
	assert_int_equal(t.flags & ~PY_TARGET_SHARED, 0);
	if (minor >= 11) {
		assert_int_equal(t.version_source, PY_VERSION_FROM_MEMORY);
		assert_true(t.micro >= 0);
		assert_int_equal(t.version_hex >> 16, 0x0300 | minor);
	}
	if (shared)
		assert_non_null(strstr(path_basename(t.path), "libpython3."));
	else
		assert_string_equal(t.path, python);
	assert_true(address_in_file(pid, t.runtime_addr, t.path));
	assert_int_equal(py_read_tss_key(pid, &t, tss_offset(minor), &key), 0);
	assert_true(key >= 0 && key < TLS_LAYOUT_MAX_KEY);
	printf("    Python %d.%d (micro %d), TSS key %d\n", t.major, t.minor, t.micro, key);
	check_thread_state_reachable(pid, &t, key);
	reap(pid);
	assert_int_equal(py_read_tss_key(pid, &t, tss_offset(minor), &key), -ESRCH);
}

static void check_pyenv(int minor)
{
	char python[PATH_MAX];
	if (!pyenv_python(minor, python, sizeof(python)))
		skip();
	check_supported(python, minor, 1);
}

static void test_pyenv_3_8(void **state) { (void)state; check_pyenv(8); }
static void test_pyenv_3_9(void **state) { (void)state; check_pyenv(9); }
static void test_pyenv_3_10(void **state) { (void)state; check_pyenv(10); }
static void test_pyenv_3_11(void **state) { (void)state; check_pyenv(11); }
static void test_pyenv_3_12(void **state) { (void)state; check_pyenv(12); }
static void test_pyenv_3_13(void **state) { (void)state; check_pyenv(13); }

static void test_debian_static_python(void **state)
{
	(void)state;
	if (access(DEBIAN_PYTHON, X_OK) != 0)
		skip();
	check_supported(DEBIAN_PYTHON, 11, 0);
}

static void check_refused(int minor)
{
	char python[PATH_MAX], reason[256], expect[16];
	struct py_target t;
	if (!pyenv_python(minor, python, sizeof(python)))
		skip();
	char *argv[] = {python, "-c", (char *)sleep_loop, NULL};
	pid_t pid = spawn(argv, NULL, 1);
	assert_int_equal(detect(pid, &t, reason, sizeof(reason), python), -ENOTSUP);
	printf("    reason: %s\n", reason);
	snprintf(expect, sizeof(expect), "Python 3.%d", minor);
	assert_non_null(strstr(reason, expect));
	assert_non_null(strstr(reason, "not supported"));
	assert_int_equal(t.minor, minor);
	reap(pid);
}

static void test_python_3_6_refused(void **state) { (void)state; check_refused(6); }
static void test_python_3_7_refused(void **state) { (void)state; check_refused(7); }

static void test_not_python(void **state)
{
	char *argv[] = {"/bin/sleep", "30", NULL};
	struct py_target t;
	char reason[256];
	(void)state;

	pid_t pid = spawn(argv, NULL, 0);
	assert_int_equal(detect(pid, &t, reason, sizeof(reason), "/bin/sleep"), -ENOENT);
	/* warm: the verdict on /usr/bin/sleep is cached */
	struct proc_maps *maps = proc_maps__read(pid);
	assert_non_null(maps);
	double t0 = now_us();
	for (int i = 0; i < 100; i++)
		assert_int_equal(py_detect(pid, maps, &t, reason, sizeof(reason)), -ENOENT);
	double per_call = (now_us() - t0) / 100;
	printf("    not Python, cached: %.1f us per call\n", per_call);
	assert_true(per_call < 1000);
	proc_maps__free(maps);
	reap(pid);
	/* ourselves: a big ASan binary, not Python either */
	maps = proc_maps__read(getpid());
	assert_int_equal(py_detect(getpid(), maps, &t, reason, sizeof(reason)), -ENOENT);
	proc_maps__free(maps);
}

static void test_gone_process(void **state)
{
	char *argv[] = {"/bin/true", NULL};
	struct py_target t;
	char reason[256];
	(void)state;

	pid_t pid = spawn(argv, NULL, 0);
	struct proc_maps *maps = proc_maps__read(getpid());
	waitpid(pid, NULL, 0);
	assert_int_equal(py_detect(pid, maps, &t, reason, sizeof(reason)), -ESRCH);
	proc_maps__free(maps);
}

/* Runs the 3.x pyenv interpreter with a copy of its libpython named
 * lib_name preloaded (it satisfies the executable's DT_NEEDED by soname);
 * deletes the copy once mapped when delete_copy. */
static pid_t spawn_with_copied_lib(int minor, const char *lib_name, int delete_copy,
				   char *copy_path, size_t copy_len)
{
	char python[PATH_MAX], lib[PATH_MAX], dir[] = "/tmp/py_detect_XXXXXX", cmd[3 * PATH_MAX];
	static char preload[PATH_MAX + 16];
	if (!pyenv_python(minor, python, sizeof(python)))
		return -1;
	snprintf(lib, sizeof(lib), "%s", python);
	char *bin = strstr(lib, "/bin/");
	snprintf(bin, sizeof(lib) - (size_t)(bin - lib), "/lib/libpython3.%d.so.1.0", minor);
	assert_non_null(mkdtemp(dir));
	snprintf(copy_path, copy_len, "%s/%s", dir, lib_name);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", lib, copy_path);
	assert_int_equal(system(cmd), 0);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", copy_path);
	char *env[] = {preload, NULL};
	char *argv[] = {python, "-c", (char *)sleep_loop, NULL};
	pid_t pid = spawn(argv, env, 1);
	if (delete_copy) {
		unlink(copy_path);
		rmdir(dir);
	}
	return pid;
}

static void cleanup_copy(const char *copy_path)
{
	char dir[PATH_MAX];
	unlink(copy_path);
	snprintf(dir, sizeof(dir), "%s", copy_path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

/* Runs 3.minor with its libpython copied as lib_name: refused (-ENOTSUP)
 * with a reason saying says, flag set. */
static void check_renamed_lib_refused(int minor, const char *lib_name, const char *says,
				      unsigned flag)
{
	char copy[PATH_MAX], reason[256], label[64];
	struct py_target t;

	pid_t pid = spawn_with_copied_lib(minor, lib_name, 0, copy, sizeof(copy));
	if (pid < 0)
		skip();
	snprintf(label, sizeof(label), "3.%d as %s", minor, lib_name);
	assert_int_equal(detect(pid, &t, reason, sizeof(reason), label), -ENOTSUP);
	printf("    reason: %s\n", reason);
	assert_non_null(strstr(reason, says));
	assert_true(t.flags & flag);
	reap(pid);
	cleanup_copy(copy);
}

static void test_free_threaded_name_refused(void **state)
{
	(void)state;
	check_renamed_lib_refused(13, "libpython3.13t.so.1.0", "free-threaded",
				  PY_TARGET_FREE_THREADED);
}

static void test_deleted_library_still_detected(void **state)
{
	char copy[PATH_MAX], reason[256];
	struct py_target t;
	int key;
	(void)state;

	pid_t pid = spawn_with_copied_lib(12, "libpython3.12.so.1.0", 1, copy, sizeof(copy));
	if (pid < 0)
		skip();
	int err = detect(pid, &t, reason, sizeof(reason), "3.12, libpython deleted");
	if (err)
		print_error("%s\n", reason);
	assert_int_equal(err, 0);
	assert_int_equal(t.minor, 12);
	assert_string_equal(t.path, copy);
	assert_true(address_in_file(pid, t.runtime_addr, copy));
	assert_int_equal(py_read_tss_key(pid, &t, tss_offset(12), &key), 0);
	reap(pid);
}

/* Runs pyenv's 3.minor as an embedding application would ship it: the
 * executable copied as dir/appserver and lib_file (under its lib/) copied as
 * dir/libpython.so, preloaded; names without a version. *lib gets the copy's
 * path. Returns the pid, or -1 when 3.minor is not installed. */
static pid_t spawn_as_appserver(int minor, const char *lib_file, char *dir, char *lib,
				size_t len)
{
	char exe[PATH_MAX], cmd[4 * PATH_MAX], prefix[PATH_MAX / 2];
	static char preload[PATH_MAX + 16], home[PATH_MAX + 16];
	if (!pyenv_prefix(minor, prefix, sizeof(prefix)))
		return -1;
	assert_non_null(mkdtemp(dir));
	snprintf(exe, sizeof(exe), "%s/appserver", dir);
	snprintf(lib, len, "%s/libpython.so", dir);
	snprintf(cmd, sizeof(cmd), "cp '%s/bin/python3.%d' '%s' && cp '%s/lib/%s' '%s'", prefix,
		 minor, exe, prefix, lib_file, lib);
	assert_int_equal(system(cmd), 0);
	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
	snprintf(home, sizeof(home), "PYTHONHOME=%s", prefix);
	char *env[] = {preload, home, NULL};
	char *argv[] = {exe, "-c", (char *)sleep_loop, NULL};
	return spawn(argv, env, 1);
}

static void remove_appserver(const char *dir, const char *lib)
{
	char exe[PATH_MAX];
	snprintf(exe, sizeof(exe), "%s/appserver", dir);
	unlink(exe);
	unlink(lib);
	rmdir(dir);
}

/* An embedding application ("appserver") with an unversioned libpython: the
 * version comes from which API functions the library defines. */
static void test_version_from_symbols(void **state)
{
	char dir[] = "/tmp/py_detect_XXXXXX", lib[PATH_MAX], reason[256];
	struct py_target t;
	int key;
	(void)state;

	pid_t pid = spawn_as_appserver(9, "libpython3.9.so.1.0", dir, lib, sizeof(lib));
	if (pid < 0)
		skip();
	int err = detect(pid, &t, reason, sizeof(reason), "3.9 as appserver+libpython.so");
	if (err)
		print_error("%s\n", reason);
	assert_int_equal(err, 0);
	assert_int_equal(t.minor, 9);
	assert_int_equal(t.version_source, PY_VERSION_FROM_SYMBOLS);
	assert_string_equal(t.path, lib);
	assert_int_equal(py_read_tss_key(pid, &t, tss_offset(9), &key), 0);
	reap(pid);
	remove_appserver(dir, lib);
}

/* The same with 3.6 (no _PyRuntime) and no version in any name: refused as
 * a Python before 3.7, naming the library, its native frames kept. */
static void test_unnamed_old_python_refused(void **state)
{
	char dir[] = "/tmp/py_detect_XXXXXX", lib[PATH_MAX], reason[256];
	struct py_target t;
	(void)state;

	pid_t pid = spawn_as_appserver(6, "libpython3.6m.so.1.0", dir, lib, sizeof(lib));
	if (pid < 0)
		skip();
	assert_int_equal(detect(pid, &t, reason, sizeof(reason), "3.6 as appserver"), -ENOTSUP);
	printf("    reason: %s\n", reason);
	assert_non_null(strstr(reason, "Python before 3.7 (no _PyRuntime) is not supported"));
	assert_non_null(strstr(reason, lib));
	assert_true(t.flags & PY_TARGET_SHARED);
	reap(pid);
	remove_appserver(dir, lib);
}

/* A libpython whose name carries the "d" ABI flag (a --with-pydebug
 * build): refused, the build named. */
static void test_debug_build_name_refused(void **state)
{
	(void)state;
	check_renamed_lib_refused(12, "libpython3.12d.so.1.0", "is a debug build, not supported",
				  PY_TARGET_DEBUG_BUILD);
}

/* An executable named python3.12 with no libpython mapped (here a copy of
 * sleep; in life an interpreter before ld.so mapped its library): "retry
 * later" (-EAGAIN), not "not Python" for good. */
static void test_python_named_without_runtime_is_retried(void **state)
{
	char dir[] = "/tmp/py_detect_XXXXXX", exe[PATH_MAX], cmd[2 * PATH_MAX], reason[256];
	struct py_target t;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(exe, sizeof(exe), "%s/python3.12", dir);
	snprintf(cmd, sizeof(cmd), "cp /bin/sleep '%s'", exe);
	assert_int_equal(system(cmd), 0);
	char *argv[] = {exe, "30", NULL};
	pid_t pid = spawn(argv, NULL, 0);
	assert_int_equal(detect(pid, &t, reason, sizeof(reason), "sleep as python3.12"), -EAGAIN);
	assert_string_equal(reason, "python3.12: no Python runtime mapped yet, retry later");
	reap(pid);
	unlink(exe);
	rmdir(dir);
}

/* A zombie (exited, not reaped) has no executable: -ENOENT, saying so. */
static void test_zombie(void **state)
{
	char *argv[] = {"/bin/true", NULL};
	struct py_target t;
	char reason[256], path[64], stat_line[256];
	(void)state;

	pid_t pid = spawn(argv, NULL, 0);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int zombie = 0;
	for (int i = 0; i < 1000 && !zombie; i++) {
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		if (fgets(stat_line, sizeof(stat_line), f))
			zombie = strstr(stat_line, ") Z ") != NULL;
		fclose(f);
		if (!zombie)
			usleep(10000);
	}
	assert_true(zombie);
	struct proc_maps *maps = proc_maps__read(getpid());
	assert_non_null(maps);
	assert_int_equal(py_detect(pid, maps, &t, reason, sizeof(reason)), -ENOENT);
	assert_string_equal(reason, "no executable (kernel thread or zombie)");
	proc_maps__free(maps);
	waitpid(pid, NULL, 0);
}

/* A process in another mount namespace (as in a container): its files exist
 * only under /proc/PID/root. */
static void test_other_mount_namespace(void **state)
{
	char dir[] = "/tmp/py_detect_XXXXXX", script[4 * PATH_MAX], reason[256], expect[PATH_MAX];
	char prefix[PATH_MAX / 2];
	struct py_target t;
	int key;
	(void)state;

	if (!pyenv_prefix(12, prefix, sizeof(prefix)) || access("/usr/bin/unshare", X_OK))
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(script, sizeof(script),
		 "mount --bind '%s' %s && LD_LIBRARY_PATH=%s/lib "
		 "exec %s/bin/python3.12 -c \"$0\"", prefix, dir, dir, dir);
	char *argv[] = {"/usr/bin/unshare", "-m", "/bin/sh", "-c", script, (char *)sleep_loop,
			NULL};
	pid_t pid = spawn(argv, NULL, 1);
	int err = detect(pid, &t, reason, sizeof(reason), "3.12 in a mount namespace");
	if (err)
		print_error("%s\n", reason);
	assert_int_equal(err, 0);
	assert_int_equal(t.minor, 12);
	snprintf(expect, sizeof(expect), "%s/lib/libpython3.12.so.1.0", dir);
	assert_string_equal(t.path, expect);
	assert_int_equal(access(expect, F_OK), -1); /* not visible from here */
	assert_int_equal(py_read_tss_key(pid, &t, tss_offset(12), &key), 0);
	reap(pid);
	rmdir(dir);
}

/* elf_dynsym on its own: data symbols, ET_EXEC vs ET_DYN, bias arithmetic. */
static void test_elf_dynsym(void **state)
{
	char python[PATH_MAX], lib[PATH_MAX];
	struct elf_sym_value v;
	uint64_t bias;
	(void)state;

	if (access(DEBIAN_PYTHON, R_OK) == 0) {
		struct elf_dynsym *f = elf_dynsym__open(DEBIAN_PYTHON);
		assert_non_null(f);
		assert_int_equal(elf_dynsym__type(f), ET_EXEC);
		assert_int_equal(elf_dynsym__find(f, "_PyRuntime", ELF_DYNSYM_ALL, &v), 0);
		assert_true(v.size > 1000);
		assert_int_equal(elf_dynsym__find(f, "Py_Version", ELF_DYNSYM_DYNAMIC, &v), 0);
		uint64_t version = 0;
		assert_int_equal(elf_dynsym__read(f, v.value, &version, sizeof(version)), 0);
		assert_int_equal(version >> 16, 0x030b);
		assert_int_equal(elf_dynsym__find(f, "no_such_symbol_anywhere", ELF_DYNSYM_ALL, &v),
				 -ENOENT);
		/* imported, not defined here */
		assert_int_equal(elf_dynsym__find(f, "malloc", ELF_DYNSYM_ALL, &v), -ENOENT);
		const struct elf_load_segment *text = elf_dynsym__segment(f, 1);
		assert_non_null(text);
		assert_int_equal(elf_dynsym__load_bias(f, text->vaddr & ~0xfffULL,
						       text->offset & ~0xfffULL, &bias),
				 0);
		assert_int_equal(bias, 0);
		elf_dynsym__free(f);
	}
	char prefix[PATH_MAX / 2];

	if (!pyenv_python(12, python, sizeof(python)) || !pyenv_prefix(12, prefix, sizeof(prefix)))
		return;
	snprintf(lib, sizeof(lib), "%s/lib/libpython3.12.so.1.0", prefix);
	struct elf_dynsym *f = elf_dynsym__open(lib);
	assert_non_null(f);
	assert_int_equal(elf_dynsym__type(f), ET_DYN);
	const char *names[] = {"_PyRuntime", "PyCode_Type", "_PyEval_EvalFrameDefault",
			       "_PyEval_EvalFrameDefault.cold", "absent_name"};
	struct elf_sym_value vals[5];
	/* .dynsym only: the .cold part is a local .symtab symbol */
	assert_int_equal(elf_dynsym__find_many(f, names, 5, ELF_DYNSYM_DYNAMIC, vals), 3);
	assert_int_equal(elf_dynsym__find_many(f, names, 5, ELF_DYNSYM_ALL, vals), 4);
	assert_true(vals[0].found && vals[1].found && vals[2].found && vals[3].found);
	assert_false(vals[4].found);
	assert_true(vals[2].size > 0);
	/* a mapping of the text segment at 0x7f0000000000 + its page offset */
	const struct elf_load_segment *text = NULL;
	for (size_t i = 0; i < elf_dynsym__segment_count(f); i++)
		if (elf_dynsym__segment(f, i)->flags & PF_X)
			text = elf_dynsym__segment(f, i);
	assert_non_null(text);
	uint64_t map_start = 0x7f0000000000ULL + (text->vaddr & ~0xfffULL);
	assert_int_equal(elf_dynsym__load_bias(f, map_start, text->offset & ~0xfffULL, &bias), 0);
	assert_int_equal(bias, 0x7f0000000000ULL);
	assert_int_equal(elf_dynsym__load_bias(f, map_start, 0x7fffffff000ULL, &bias), -ENOENT);
	elf_dynsym__free(f);
	assert_null(elf_dynsym__open("/etc/hostname"));
	assert_int_equal(errno, ENOEXEC);
	assert_null(elf_dynsym__open("/nonexistent/file"));
	assert_int_equal(errno, ENOENT);
}

/* ---- the registry (python/py_registry.h) over real processes ---- */

struct published {
	uint32_t last_pid;   /* pid of the last publish or withdraw */
	int publishes;       /* calls with info */
	int withdraws;       /* calls without */
};

static int record_publish(void *ctx, uint32_t pid, const struct py_proc *info)
{
	struct published *p = ctx;
	p->last_pid = pid;
	if (info)
		p->publishes++;
	else
		p->withdraws++;
	return 0;
}

/* A maps source (as the symbolizer is for the registry in a capture). */
struct maps_source {
	struct proc_maps *held; /* the last mappings handed out */
	pid_t asked;            /* the pid of the last call */
	int calls;
};

static const struct proc_maps *maps_of(void *ctx, pid_t pid)
{
	struct maps_source *m = ctx;
	proc_maps__free(m->held);
	m->held = proc_maps__read(pid);
	m->asked = pid;
	m->calls++;
	return m->held;
}

/* One warning line for a refused Python, which then shows native frames;
 * supported ones published for the walker (mappings from the source it was
 * given); a full registry (max 1 process) forgets the least recently used,
 * withdrawing it; an exited process is withdrawn, then swept. */
static void test_registry(void **state)
{
	char py7[PATH_MAX], py11[PATH_MAX], py12[PATH_MAX];
	(void)state;
	if (!pyenv_python(7, py7, sizeof(py7)) || !pyenv_python(11, py11, sizeof(py11)) ||
	    !pyenv_python(12, py12, sizeof(py12)))
		skip();
	char *warnings = NULL;
	size_t warnings_len = 0;
	FILE *log = open_memstream(&warnings, &warnings_len);
	assert_non_null(log);
	struct published pub = { 0 };
	struct maps_source src = { 0 };
	struct py_registry *r = py_registry__new(record_publish, &pub, 1, log);
	assert_non_null(r);
	struct py_process_info info;
	struct py_registry_stats st;

	char *argv7[] = {py7, "-c", (char *)sleep_loop, NULL};
	pid_t p7 = spawn(argv7, NULL, 1);
	assert_int_equal(py_registry__lookup(r, p7, &info), 0);
	assert_int_equal(py_registry__lookup(r, p7, &info), 0);
	py_registry__stats(r, &st);
	assert_int_equal(st.unsupported, 1);
	assert_int_equal(st.python_processes, 0);
	fflush(log);
	char want[64];
	snprintf(want, sizeof(want), "dynoprof: warning: PID %d: Python 3.7 ", (int)p7);
	if (!warnings || !strstr(warnings, want) || !strstr(warnings, "native frames only") ||
	    strstr(strstr(warnings, want) + 1, want))
		fail_msg("warnings: %s", warnings ? warnings : "(none)");
	assert_int_equal(pub.publishes, 0);

	py_registry__set_maps_source(r, maps_of, &src);
	char *argv12[] = {py12, "-c", (char *)sleep_loop, NULL};
	pid_t p12 = spawn(argv12, NULL, 1);
	assert_int_equal(py_registry__lookup(r, p12, &info), 1);
	assert_int_equal(info.minor, 12);
	assert_true(src.calls >= 1);
	assert_int_equal(src.asked, p12);
	assert_int_equal(pub.publishes, 1);
	assert_int_equal(pub.last_pid, (uint32_t)p12);
	assert_true(py_registry__tracks(r, p12));
	assert_false(py_registry__tracks(r, p7)); /* forgotten: room for one */

	char *argv11[] = {py11, "-c", (char *)sleep_loop, NULL};
	pid_t p11 = spawn(argv11, NULL, 1);
	assert_int_equal(py_registry__lookup(r, p11, &info), 1);
	assert_int_equal(info.minor, 11);
	/* p12 forgotten to make room: withdrawn from the walker first. */
	assert_int_equal(pub.withdraws, 1);
	assert_false(py_registry__tracks(r, p12));
	assert_int_equal(pub.last_pid, (uint32_t)p11);

	reap(p11);
	py_registry__note_exit(r, p11);
	assert_int_equal(pub.withdraws, 2);
	assert_int_equal(pub.last_pid, (uint32_t)p11);
	assert_true(py_registry__tracks(r, p11)); /* late samples still find it */
	assert_int_equal(py_registry__sweep_exited(r), 0);
	assert_int_equal(py_registry__sweep_exited(r), 1);
	assert_false(py_registry__tracks(r, p11));
	py_registry__stats(r, &st);
	assert_int_equal(st.python_processes, 2);

	py_registry__free(r);
	proc_maps__free(src.held);
	reap(p7);
	reap(p12);
	fclose(log);
	free(warnings);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_py_detect: needs root (process_vm_readv, map_files)\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_dynsym),
		cmocka_unit_test(test_pyenv_3_8),
		cmocka_unit_test(test_pyenv_3_9),
		cmocka_unit_test(test_pyenv_3_10),
		cmocka_unit_test(test_pyenv_3_11),
		cmocka_unit_test(test_pyenv_3_12),
		cmocka_unit_test(test_pyenv_3_13),
		cmocka_unit_test(test_debian_static_python),
		cmocka_unit_test(test_python_3_6_refused),
		cmocka_unit_test(test_python_3_7_refused),
		cmocka_unit_test(test_not_python),
		cmocka_unit_test(test_gone_process),
		cmocka_unit_test(test_free_threaded_name_refused),
		cmocka_unit_test(test_deleted_library_still_detected),
		cmocka_unit_test(test_version_from_symbols),
		cmocka_unit_test(test_unnamed_old_python_refused),
		cmocka_unit_test(test_debug_build_name_refused),
		cmocka_unit_test(test_python_named_without_runtime_is_retried),
		cmocka_unit_test(test_zombie),
		cmocka_unit_test(test_registry),
		cmocka_unit_test(test_other_mount_namespace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
