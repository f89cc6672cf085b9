// SPDX-License-Identifier: MIT
/* test_symbolizer.c - symbolizer__* against real processes and real binaries.
 *
 * A fixture library (tests/unit/fixtures/symbolizer_lib.c) is compiled with gcc
 * into a temp dir at run time (fixture_build.h), plus copies of it: stripped,
 * stripped with a .gnu_debuglink debug file, one to delete and one to replace
 * after loading. The test dlopen()s them into its own process, calls their
 * functions, and resolves their addresses through the symbolizer as the
 * profiler does for a sampled instruction pointer: the names a user reads must
 * come back. Ground truth is the dynamic linker (dlsym), the kernel
 * (/proc/self/maps, /proc/kallsyms) and readelf, never the symbolizer itself.
 *
 * Addresses outside every ELF symbol table, in this test's own process, get
 * their own frames: the vDSO (resolved from our own copy), [vsyscall],
 * anonymous executable memory (JIT: [anon]), an executable mapping of a file
 * that is not ELF (file+0xOFFSET), unmapped addresses ([unknown]), a process
 * that is gone, the kernel's [kernel] below every symbol; and the counters
 * that say so. The mappings it lends to the Python registry stay fresh.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture_build.h"

#include "profile/profile.h"
#include "symbolize/proc_maps.h"
#include "symbolize/symbolizer.h"

/* The fixtures, built once for all tests. */
static struct fixture_build fixtures;

/* A fixture library loaded into this process. */
struct loaded {
	void *handle;            /* dlopen() handle */
	uint64_t exported;       /* address of symfix_exported */
	uint64_t hidden;         /* address of symfix_hidden (not in .dynsym) */
};

/* Builds every fixture once for all tests. */
static int build_fixtures(void **state)
{
	const char *cflags = "-O1 -g -fno-inline -shared -fPIC -Wl,--build-id";

	(void)state;
	return fixture_build(&fixtures, "symbolizer",
		 "gcc %s $F/symbolizer_lib.c -o libsymfix.so;"
		 /* no .symtab, no debug file: only .dynsym is left */
		 "cp libsymfix.so libsymfix_stripped.so; strip --strip-all libsymfix_stripped.so;"
		 /* no .symtab, debug file found through .gnu_debuglink next to it */
		 "cp libsymfix.so libsymfix_dbg.so;"
		 "objcopy --only-keep-debug libsymfix_dbg.so libsymfix_dbg.debug;"
		 "strip --strip-all libsymfix_dbg.so;"
		 "objcopy --add-gnu-debuglink=libsymfix_dbg.debug libsymfix_dbg.so;"
		 /* loaded, then deleted / replaced by another library */
		 "cp libsymfix.so libsymfix_del.so; cp libsymfix.so libsymfix_rep.so;"
		 "cp libsymfix.so libsymfix_rep2.so;"
		 "gcc %s $F/symtab_lib.c -o other.so; cp other.so other2.so;"
		 /* loaded after the symbolizer first read our maps */
		 "cp libsymfix.so libsymfix_late.so",
		 cflags, cflags);
}

static int remove_fixtures(void **state)
{
	(void)state;
	return fixture_build__remove(&fixtures);
}

/* dlopen()s the built fixture name and calls its functions (so they are real code that
 * ran, as a sampled address would be). */
static struct loaded load(const char *name)
{
	char path[PATH_MAX];
	struct loaded l;

	fixture_build__path(&fixtures, path, name);
	l.handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!l.handle)
		fail_msg("dlopen %s: %s", path, dlerror());
	int (*exported)(int) = (int (*)(int))dlsym(l.handle, "symfix_exported");
	void *(*hidden_addr)(void) = (void *(*)(void))dlsym(l.handle, "symfix_hidden_addr");
	assert_non_null(exported);
	assert_non_null(hidden_addr);
	/* symfix_hidden is not exported: the linker cannot find it by name. */
	assert_null(dlsym(l.handle, "symfix_hidden"));
	assert_int_equal(exported(2), 9);
	int (*hidden)(int) = (int (*)(int))hidden_addr();
	assert_int_equal(hidden(2), 7);
	l.exported = (uint64_t)(uintptr_t)exported;
	l.hidden = (uint64_t)(uintptr_t)hidden;
	return l;
}

/* What a resolved frame says, as a user reads it. */
struct resolved {
	char name[512];
	char module[PATH_MAX];
	int kind;
	uint64_t address;
	char build_id[160];      /* of the frame's mapping, "" if none */
};

static void describe(struct profile *p, uint32_t id, struct resolved *out)
{
	const struct profile_frame *f = profile__frame(p, id);
	assert_non_null(f);
	const char *name = profile__str(p, f->name);
	const char *module = f->module ? profile__str(p, f->module) : "";
	snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
	snprintf(out->module, sizeof(out->module), "%s", module ? module : "");
	out->kind = f->kind;
	out->address = f->address;
	out->build_id[0] = '\0';
	if (f->mapping) {
		const struct profile_mapping *m = profile__mapping(p, f->mapping - 1);
		assert_non_null(m);
		const char *b = m->build_id ? profile__str(p, m->build_id) : "";
		snprintf(out->build_id, sizeof(out->build_id), "%s", b ? b : "");
	}
}

static struct resolved user_frame(struct symbolizer *s, pid_t pid, uint64_t addr, int is_ret)
{
	struct profile *p = profile__new();
	struct resolved r;
	uint32_t id = UINT32_MAX;
	assert_non_null(p);
	assert_int_equal(symbolizer__user_frame(s, pid, addr, is_ret, p, &id), 0);
	describe(p, id, &r);
	profile__free(p);
	return r;
}

static struct resolved kernel_frame(struct symbolizer *s, uint64_t addr, int is_ret)
{
	struct profile *p = profile__new();
	struct resolved r;
	uint32_t id = UINT32_MAX;
	assert_non_null(p);
	assert_int_equal(symbolizer__kernel_frame(s, addr, is_ret, p, &id), 0);
	describe(p, id, &r);
	profile__free(p);
	return r;
}

/* The file offset of addr in this process, from the kernel's /proc/self/maps,
 * and the mapped path. */
static uint64_t maps_file_offset(uint64_t addr, char *path, size_t pathlen)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[PATH_MAX + 256];
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		uint64_t start, end, off;
		int at = 0;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*u %n", &start, &end,
			   &off, &at) < 3 || addr < start || addr >= end)
			continue;
		fclose(f);
		snprintf(path, pathlen, "%s", line + at);
		path[strcspn(path, "\n")] = '\0';
		return addr - start + off;
	}
	fclose(f);
	fail_msg("0x%" PRIx64 " is in no mapping of /proc/self/maps", addr);
	return 0;
}

/* The hex GNU build-id of a file, from readelf. */
static void readelf_build_id(const char *path, char *out, size_t len)
{
	char cmd[PATH_MAX + 64], line[512];
	snprintf(cmd, sizeof(cmd), "readelf -n '%s'", path);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char *b = strstr(line, "Build ID: ");
		if (b) {
			snprintf(out, len, "%s", b + 10);
			out[strcspn(out, "\n")] = '\0';
		}
	}
	pclose(f);
	assert_true(out[0] != '\0');
}

static void expect_name(const struct resolved *r, const char *name, const char *lib)
{
	char want_module[PATH_MAX];
	fixture_build__path(&fixtures, want_module, lib);
	if (strcmp(r->name, name) || strcmp(r->module, want_module))
		fail_msg("got %s in %s, want %s in %s", r->name, r->module, name, want_module);
	assert_int_equal(r->kind, FRAME_NATIVE);
}

static struct symbolizer *new_symbolizer(size_t max)
{
	struct symbolizer *s = symbolizer__new(max);
	assert_non_null(s);
	return s;
}

/* ---- user space ---- */

static void test_own_process_library(void **state)
{
	(void)state;
	struct loaded l = load("libsymfix.so");
	struct symbolizer *s = new_symbolizer(0);
	char lib[PATH_MAX], want_id[160];

	/* The innermost frame: the address itself; any other frame: a return
	 * address, one past the call, still inside the function. */
	struct resolved r = user_frame(s, getpid(), l.exported, 0);
	expect_name(&r, "symfix_exported", "libsymfix.so");
	assert_int_equal(r.address, l.exported);
	r = user_frame(s, getpid(), l.exported + 1, 1);
	expect_name(&r, "symfix_exported", "libsymfix.so");
	/* Not in .dynsym, named from .symtab. */
	r = user_frame(s, getpid(), l.hidden + 4, 0);
	expect_name(&r, "symfix_hidden", "libsymfix.so");

	/* The mapping carries the library's build-id (pprof Mapping). */
	fixture_build__path(&fixtures, lib, "libsymfix.so");
	readelf_build_id(lib, want_id, sizeof(want_id));
	assert_string_equal(r.build_id, want_id);

	/* A function of the test binary itself. */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	r = user_frame(s, getpid(), (uint64_t)(uintptr_t)test_own_process_library, 0);
	assert_string_equal(r.name, "test_own_process_library");
	assert_string_equal(r.module, exe);

	/* One /proc/PID/maps read and one table load served all of it; the
	 * second lookup in the library was a cache hit. */
	struct symbolizer_stats st;
	symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 1);
	assert_int_equal(st.maps_reads, 1);
	assert_int_equal(st.maps_failures, 0);
	assert_int_equal(st.unknown_frames, 0);
	assert_int_equal(st.symcache_misses, 2);
	assert_true(st.symcache_hits >= 2);
	symbolizer__free(s);
	dlclose(l.handle);
}

static void test_library_loaded_after_first_read(void **state)
{
	(void)state;
	struct symbolizer *s = new_symbolizer(0);
	struct symbolizer_stats st;

	assert_int_equal(symbolizer__touch(s, getpid()), 0);
	struct loaded l = load("libsymfix_late.so");
	/* The maps were read before the dlopen: the first miss re-reads them at
	 * once (as for a process first read while ld.so was still mapping its
	 * libraries), so the very first look-up names it. */
	struct resolved r = user_frame(s, getpid(), l.hidden, 0);
	expect_name(&r, "symfix_hidden", "libsymfix_late.so");
	symbolizer__stats(s, &st);
	assert_true(st.maps_reads >= 2);
	symbolizer__free(s);
	dlclose(l.handle);
}

static void test_unknown_addresses(void **state)
{
	(void)state;
	struct symbolizer *s = new_symbolizer(0);
	struct symbolizer_stats st;

	/* Below mmap_min_addr: in no mapping. */
	struct resolved r = user_frame(s, getpid(), 0x1000, 0);
	assert_string_equal(r.name, "[unknown]");
	assert_string_equal(r.module, "");
	symbolizer__stats(s, &st);
	assert_int_equal(st.unknown_frames, 1);

	/* Anonymous executable memory (a JIT's code). */
	long page = sysconf(_SC_PAGESIZE);
	void *jit = mmap(NULL, (size_t)page, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	assert_true(jit != MAP_FAILED);
	/* The symbolizer may have read the maps before the mapping existed:
	 * bounded wait for its refresh interval. */
	for (int i = 0; i < 500; i++) { /* up to 10 s */
		r = user_frame(s, getpid(), (uint64_t)(uintptr_t)jit + 16, 0);
		if (strcmp(r.name, "[unknown]"))
			break;
		usleep(20000);
	}
	assert_string_equal(r.name, "[anon]");
	munmap(jit, (size_t)page);

	/* A process that does not exist: its maps cannot be read. */
	pid_t gone = fork();
	assert_true(gone >= 0);
	if (gone == 0)
		_exit(0);
	assert_int_equal(waitpid(gone, NULL, 0), gone);
	assert_int_equal(symbolizer__touch(s, gone), 0);
	r = user_frame(s, gone, (uint64_t)(uintptr_t)test_unknown_addresses, 0);
	assert_string_equal(r.name, "[unknown]");
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_failures, 1);
	assert_int_equal(st.maps_denied, 0);
	symbolizer__free(s);
}

static void test_vdso(void **state)
{
	(void)state;
	uint64_t base = getauxval(AT_SYSINFO_EHDR);
	struct symbolizer *s = new_symbolizer(0);
	char path[PATH_MAX];
	assert_true(base != 0); /* x86-64 Linux always maps one */
	maps_file_offset(base, path, sizeof(path));
	assert_string_equal(path, "[vdso]");
	/* The dynamic linker knows the vDSO as a library: its functions'
	 * addresses are the ground truth. */
	void *vdso = dlopen("linux-vdso.so.1", RTLD_NOW | RTLD_NOLOAD);
	assert_non_null(vdso);
	void *fn = dlsym(vdso, "__vdso_clock_gettime");
	assert_non_null(fn);
	struct resolved r = user_frame(s, getpid(), (uint64_t)(uintptr_t)fn + 1, 1);
	assert_string_equal(r.module, "[vdso]");
	/* The kernel's image names it, or its alias clock_gettime. */
	if (strcmp(r.name, "__vdso_clock_gettime") && strcmp(r.name, "clock_gettime"))
		fail_msg("vDSO clock_gettime resolved to %s", r.name);
	dlclose(vdso);
	symbolizer__free(s);
}

static void test_stripped_library(void **state)
{
	(void)state;
	struct loaded l = load("libsymfix_stripped.so");
	struct symbolizer *s = new_symbolizer(0);
	char path[PATH_MAX], want[PATH_MAX + 32];

	/* Exported: .dynsym still names it. */
	struct resolved r = user_frame(s, getpid(), l.exported, 0);
	expect_name(&r, "symfix_exported", "libsymfix_stripped.so");
	/* Hidden: nothing names it; the frame says where it is, file+offset
	 * (the offset in the file, as the kernel maps it). */
	uint64_t off = maps_file_offset(l.hidden, path, sizeof(path));
	snprintf(want, sizeof(want), "libsymfix_stripped.so+0x%" PRIx64, off);
	r = user_frame(s, getpid(), l.hidden, 0);
	char module[PATH_MAX];
	fixture_build__path(&fixtures, module, "libsymfix_stripped.so");
	assert_string_equal(r.name, want);
	assert_string_equal(r.module, module);
	struct symbolizer_stats st;
	symbolizer__stats(s, &st);
	assert_int_equal(st.unknown_frames, 1);
	symbolizer__free(s);
	dlclose(l.handle);
}

static void test_stripped_library_with_debuglink(void **state)
{
	(void)state;
	struct loaded l = load("libsymfix_dbg.so");
	struct symbolizer *s = new_symbolizer(0);

	struct resolved r = user_frame(s, getpid(), l.hidden, 0);
	expect_name(&r, "symfix_hidden", "libsymfix_dbg.so");
	r = user_frame(s, getpid(), l.exported + 1, 1);
	expect_name(&r, "symfix_exported", "libsymfix_dbg.so");
	symbolizer__free(s);
	dlclose(l.handle);
}

static void test_deleted_library(void **state)
{
	(void)state;
	struct loaded l = load("libsymfix_del.so");
	struct symbolizer *s = new_symbolizer(0);
	char path[PATH_MAX];

	/* Deleted after loading (an upgrade removed it): the mapping still
	 * holds the file, and the name comes from it through
	 * /proc/PID/map_files (root, as the unit suite runs: without
	 * CAP_CHECKPOINT_RESTORE the frame is file+offset, see below). */
	fixture_build__path(&fixtures, path, "libsymfix_del.so");
	assert_int_equal(unlink(path), 0);
	struct resolved r = user_frame(s, getpid(), l.hidden, 0);
	expect_name(&r, "symfix_hidden", "libsymfix_del.so");
	r = user_frame(s, getpid(), l.exported, 0);
	expect_name(&r, "symfix_exported", "libsymfix_del.so");
	symbolizer__free(s);
	dlclose(l.handle);
}

static void test_replaced_library(void **state)
{
	(void)state;
	struct loaded l = load("libsymfix_rep.so");
	struct symbolizer *s = new_symbolizer(0);
	char path[PATH_MAX], other[PATH_MAX];

	/* Another library now sits at the path (a deploy renamed a new build
	 * over it): the names must be the loaded file's, never its namesake's. */
	fixture_build__path(&fixtures, path, "libsymfix_rep.so");
	fixture_build__path(&fixtures, other, "other.so");
	assert_int_equal(rename(other, path), 0);
	struct resolved r = user_frame(s, getpid(), l.hidden, 0);
	expect_name(&r, "symfix_hidden", "libsymfix_rep.so");
	r = user_frame(s, getpid(), l.exported, 0);
	expect_name(&r, "symfix_exported", "libsymfix_rep.so");
	symbolizer__free(s);
	dlclose(l.handle);
}

/* Drops CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE from this process: what
 * /proc/PID/map_files needs, which a profiler given only the capabilities
 * it samples with (CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, ...) lacks. */
static int drop_map_files_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return -1;
	d[CAP_SYS_ADMIN / 32].effective &= ~(1u << (CAP_SYS_ADMIN % 32));
	d[CAP_SYS_ADMIN / 32].permitted &= ~(1u << (CAP_SYS_ADMIN % 32));
	d[CAP_CHECKPOINT_RESTORE / 32].effective &= ~(1u << (CAP_CHECKPOINT_RESTORE % 32));
	d[CAP_CHECKPOINT_RESTORE / 32].permitted &= ~(1u << (CAP_CHECKPOINT_RESTORE % 32));
	return (int)syscall(SYS_capset, &h, d);
}

static void test_replaced_library_without_map_files(void **state)
{
	(void)state;
	struct loaded l = load("libsymfix_rep2.so");
	char path[PATH_MAX], other[PATH_MAX], want[PATH_MAX + 32], got[512] = "";
	int fds[2];

	fixture_build__path(&fixtures, path, "libsymfix_rep2.so");
	fixture_build__path(&fixtures, other, "other2.so");
	assert_int_equal(rename(other, path), 0);
	/* Without map_files the replaced file cannot be read: file+offset is
	 * all that can be said. Opening the namesake now at the path would
	 * name the address after whatever function of the other library
	 * happens to sit at that offset. */
	uint64_t off = maps_file_offset(l.hidden, want, sizeof(want));
	snprintf(want, sizeof(want), "libsymfix_rep2.so+0x%" PRIx64, off);
	assert_int_equal(pipe(fds), 0);
	pid_t child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		close(fds[0]);
		if (drop_map_files_caps())
			_exit(2);
		struct symbolizer *s = symbolizer__new(0);
		struct profile *p = profile__new();
		uint32_t id;
		if (!s || !p || symbolizer__user_frame(s, getpid(), l.hidden, 0, p, &id))
			_exit(3);
		const char *name = profile__str(p, profile__frame(p, id)->name);
		if (write(fds[1], name, strlen(name)) < 0)
			_exit(4);
		_exit(0);
	}
	close(fds[1]);
	ssize_t n = read(fds[0], got, sizeof(got) - 1);
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(n > 0);
	got[n] = '\0';
	assert_string_equal(got, want);
	dlclose(l.handle);
}

/* ---- processes: exit, exec, the table's bound ---- */

/* A child that only waits to be killed (it shares our mappings). */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (;;)
			pause();
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_exited_process_still_resolves(void **state)
{
	(void)state;
	struct loaded l = load("libsymfix.so");
	struct symbolizer *s = new_symbolizer(0);

	pid_t child = spawn_sleeper();
	/* First sight while it lives, as the profiler does at its first sample. */
	assert_int_equal(symbolizer__touch(s, child), 0);
	reap(child);
	symbolizer__note_exit(s, child);
	/* Samples that arrive after the exit still name its functions. */
	struct resolved r = user_frame(s, child, l.hidden, 0);
	expect_name(&r, "symfix_hidden", "libsymfix.so");
	struct symbolizer_stats st;
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_failures, 0);
	assert_int_equal(st.maps_reads, 1);
	symbolizer__free(s);
	dlclose(l.handle);
}

static void test_exec_rereads_maps(void **state)
{
	(void)state;
	struct symbolizer *s = new_symbolizer(0);
	struct symbolizer_stats st;

	assert_int_equal(symbolizer__touch(s, getpid()), 0);
	assert_int_equal(symbolizer__touch(s, getpid()), 0);
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_reads, 1);
	/* After an exec the old mappings are stale: the next sight reads again. */
	symbolizer__note_exec(s, getpid());
	assert_int_equal(symbolizer__touch(s, getpid()), 0);
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_reads, 2);
	/* Notes for processes never seen are ignored. */
	symbolizer__note_exec(s, 999999999);
	symbolizer__note_exit(s, 999999999);
	symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 1);
	symbolizer__free(s);
}

static void test_process_table_bound(void **state)
{
	(void)state;
	struct symbolizer *s = new_symbolizer(2);
	struct symbolizer_stats st;
	pid_t a = spawn_sleeper(), b = spawn_sleeper(), c = spawn_sleeper();

	assert_int_equal(symbolizer__touch(s, a), 0);
	assert_int_equal(symbolizer__touch(s, b), 0);
	symbolizer__note_exit(s, a);
	/* Full: the exited process goes first, though b was used after it. */
	assert_int_equal(symbolizer__touch(s, c), 0);
	symbolizer__stats(s, &st);
	assert_int_equal(st.processes, 2);
	assert_int_equal(st.maps_reads, 3);
	assert_int_equal(symbolizer__touch(s, b), 0); /* still known: no read */
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_reads, 3);
	/* None exited: the least recently used goes (c; b was used after it). */
	assert_int_equal(symbolizer__touch(s, a), 0);
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_reads, 4);
	assert_int_equal(st.processes, 2);
	assert_int_equal(symbolizer__touch(s, b), 0);
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_reads, 4);
	assert_int_equal(symbolizer__touch(s, c), 0); /* evicted before: read again */
	symbolizer__stats(s, &st);
	assert_int_equal(st.maps_reads, 5);
	assert_int_equal(st.processes, 2);
	reap(a);
	reap(b);
	reap(c);
	symbolizer__free(s);
}

/* ---- kernel ---- */

/* Text symbols of /proc/kallsyms at the address of name (core kernel when
 * module is NULL, else the first symbol of a loaded module): *addr and every
 * name at that address, so an alias the symbolizer prefers is accepted. */
struct ksym_pick {
	uint64_t addr;
	char names[8][128];
	int nnames;
	char module[64];
};

static int kallsyms_pick(const char *name, int want_module, struct ksym_pick *out)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512], sym[128], mod[64];
	uint64_t addr;
	char type;
	memset(out, 0, sizeof(*out));
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		mod[0] = '\0';
		if (sscanf(line, "%" SCNx64 " %c %127s [%63[^]]]", &addr, &type, sym, mod) < 3)
			continue;
		if (type != 't' && type != 'T')
			continue;
		if (want_module ? !mod[0] : (mod[0] || strcmp(sym, name)))
			continue;
		out->addr = addr;
		snprintf(out->module, sizeof(out->module), "%s", mod);
		break;
	}
	if (!out->addr) {
		fclose(f);
		return -1;
	}
	rewind(f);
	while (fgets(line, sizeof(line), f) && out->nnames < 8) {
		if (sscanf(line, "%" SCNx64 " %c %127s", &addr, &type, sym) == 3 && addr == out->addr &&
		    (type == 't' || type == 'T' || type == 'w' || type == 'W'))
			snprintf(out->names[out->nnames++], 128, "%s", sym);
	}
	fclose(f);
	return 0;
}

static int picked(const struct ksym_pick *k, const char *name)
{
	for (int i = 0; i < k->nnames; i++)
		if (!strcmp(k->names[i], name))
			return 1;
	return 0;
}

static void test_kernel_frames(void **state)
{
	(void)state;
	struct symbolizer *s = new_symbolizer(0);
	struct ksym_pick k;

	/* Without root (or with kptr_restrict=2) kallsyms reads as zeros, the
	 * entry missing: every kernel frame is the documented [kernel]. */
	if (kallsyms_pick("schedule", 0, &k)) {
		struct resolved r = kernel_frame(s, 0xffffffff81000000ull, 0);
		assert_string_equal(r.name, "[kernel]");
		assert_string_equal(r.module, "[kernel.kallsyms]");
		assert_false(symbolizer__is_interrupt_entry(s, 0xffffffff81000000ull, 0));
		symbolizer__free(s);
		return;
	}
	struct resolved r = kernel_frame(s, k.addr, 0);
	if (!picked(&k, r.name))
		fail_msg("0x%" PRIx64 " resolved to %s, kallsyms says %s", k.addr, r.name,
			 k.names[0]);
	assert_string_equal(r.module, "[kernel.kallsyms]");
	assert_int_equal(r.kind, FRAME_KERNEL);
	/* A return address just past the call is still inside the function. */
	r = kernel_frame(s, k.addr + 1, 1);
	assert_true(picked(&k, r.name));

	/* A module's function names its module. */
	if (kallsyms_pick(NULL, 1, &k) == 0) {
		r = kernel_frame(s, k.addr, 0);
		assert_true(picked(&k, r.name));
		assert_string_equal(r.module, k.module);
	}

	/* A user-space address is no kernel symbol. */
	r = kernel_frame(s, 0x1000, 0);
	assert_string_equal(r.name, "[kernel]");
	assert_string_equal(r.module, "[kernel.kallsyms]");

	/* The timer interrupt's entry point is recognised, other functions not. */
	if (kallsyms_pick("asm_sysvec_apic_timer_interrupt", 0, &k) == 0) {
		assert_true(symbolizer__is_interrupt_entry(s, k.addr + 1, 1));
		assert_true(symbolizer__is_interrupt_entry(s, k.addr, 0));
	}
	assert_int_equal(kallsyms_pick("schedule", 0, &k), 0);
	assert_false(symbolizer__is_interrupt_entry(s, k.addr, 0));
	symbolizer__free(s);
}

/* ---- addresses outside every ELF symbol table ---- */

/* The frame symbolizer__user_frame() gives addr of pid. */
static const struct profile_frame *frame_at(struct symbolizer *s, struct profile *p, pid_t pid,
					 uint64_t addr)
{
	uint32_t id;
	assert_int_equal(symbolizer__user_frame(s, pid, addr, 0, p, &id), 0);
	return profile__frame(p, id);
}

static void test_special_mappings(void **state)
{
	(void)state;
	struct symbolizer *s = symbolizer__new(4);
	struct profile *p = profile__new();
	assert_non_null(s);
	assert_non_null(p);
	pid_t me = getpid();

	/* Anonymous executable memory, mapped after the first read of our maps:
	 * a miss re-reads them (at once after a read that found its address,
	 * else at most every 200 ms, less often after each futile one). */
	assert_string_equal(profile__str(p, frame_at(s, p, me, 0x10)->name), "[unknown]");
	void *jit = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(jit != MAP_FAILED);
	const struct profile_frame *f = NULL;
	for (int i = 0; i < 1000; i++) { /* bounded: 10 s (a busy machine) */
		f = frame_at(s, p, me, (uint64_t)(uintptr_t)jit + 8);
		if (strcmp(profile__str(p, f->name), "[unknown]"))
			break;
		usleep(10000);
	}
	assert_string_equal(profile__str(p, f->name), "[anon]");

	/* A file mapped executable that is not ELF: its name and offset. */
	char path[] = "/tmp/dynoprof-notelf-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	char page[8192];
	memset(page, 0xcc, sizeof(page));
	assert_int_equal(write(fd, page, sizeof(page)), sizeof(page));
	void *m = mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
	assert_true(m != MAP_FAILED);
	symbolizer__note_exec(s, me); /* forget the maps: read again now */
	f = frame_at(s, p, me, (uint64_t)(uintptr_t)m + 4096 + 0x10);
	char want[64];
	snprintf(want, sizeof(want), "%s+0x1010", strrchr(path, '/') + 1);
	assert_string_equal(profile__str(p, f->name), want);
	assert_string_equal(profile__str(p, f->module), path);
	assert_true(f->mapping > 0);

	/* The vDSO: resolved from our own copy of the image. */
	uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
	assert_true(vdso != 0);
	f = frame_at(s, p, me, vdso + 0x800);
	assert_string_equal(profile__str(p, f->module), "[vdso]");
	/* [vsyscall] where the kernel maps it (x86-64), when it does. */
	FILE *maps = fopen("/proc/self/maps", "re");
	char line[512];
	int vsyscall = 0;
	while (maps && fgets(line, sizeof(line), maps))
		vsyscall |= strstr(line, "[vsyscall]") != NULL;
	if (maps)
		fclose(maps);
	if (vsyscall) {
		f = frame_at(s, p, me, 0xffffffffff600000ull);
		assert_string_equal(profile__str(p, f->name), "[vsyscall]");
	}

	/* A process gone before its maps were read: [unknown], counted. */
	pid_t gone = fork();
	assert_true(gone >= 0);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	f = frame_at(s, p, gone, 0x400000);
	assert_string_equal(profile__str(p, f->name), "[unknown]");
	symbolizer__note_exit(s, gone);
	assert_int_equal(symbolizer__touch(s, gone), 0);

	/* Kernel: an address below every symbol. */
	uint32_t id;
	assert_int_equal(symbolizer__kernel_frame(s, 1, 0, p, &id), 0);
	assert_string_equal(profile__str(p, profile__frame(p, id)->name), "[kernel]");
	assert_false(symbolizer__is_interrupt_entry(s, 1, 1));

	struct symbolizer_stats st;
	symbolizer__stats(s, &st);
	assert_true(st.maps_failures >= 1);
	assert_true(st.unknown_frames >= 4); /* 0x10, [anon], file+0x, gone, kernel */
	assert_true(st.processes >= 2);
	assert_true(st.maps_reads >= 3);

	/* The table is bounded (4 here): older processes are evicted. */
	for (int i = 0; i < 6; i++) {
		pid_t c = fork();
		assert_true(c >= 0);
		if (c == 0)
			_exit(0);
		waitpid(c, NULL, 0);
		assert_int_equal(symbolizer__touch(s, c), 0);
		symbolizer__note_exit(s, c);
	}
	symbolizer__stats(s, &st);
	assert_true(st.processes <= 4);

	munmap(m, 8192);
	close(fd);
	unlink(path);
	munmap(jit, 4096);
	profile__free(p);
	symbolizer__free(s);
	symbolizer__free(NULL);
}

/* The mappings the symbolizer lends to the Python registry (a
 * proc_maps_source_fn): the same read while fresh (PROC_MAPS_FRESH_NS), read
 * again after, with what was mapped since; a gone process has none (ESRCH). */
static void test_fresh_maps(void **state)
{
	(void)state;
	struct symbolizer *s = new_symbolizer(8);
	pid_t me = getpid();
	const struct proc_maps *m1 = symbolizer__fresh_maps(s, me);
	assert_non_null(m1);
	assert_ptr_equal(symbolizer__fresh_maps(s, me), m1);
	void *late = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(late != MAP_FAILED);
	uint64_t addr = (uint64_t)(uintptr_t)late + 8;
	const struct proc_maps *m2 = symbolizer__fresh_maps(s, me);
	if (m2 == m1) /* fresh: not read again, the new mapping not in it */
		assert_null(proc_maps__find(m2, addr));
	struct timespec older = { 0, (long)PROC_MAPS_FRESH_NS + 20000000 };
	nanosleep(&older, NULL);
	m2 = symbolizer__fresh_maps(s, me);
	assert_non_null(m2);
	assert_non_null(proc_maps__find(m2, addr));

	pid_t gone = fork();
	assert_true(gone >= 0);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	errno = 0;
	assert_null(symbolizer__fresh_maps(s, gone));
	assert_int_equal(errno, ESRCH);
	munmap(late, 4096);
	symbolizer__free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_process_library),
		cmocka_unit_test(test_library_loaded_after_first_read),
		cmocka_unit_test(test_unknown_addresses),
		cmocka_unit_test(test_vdso),
		cmocka_unit_test(test_stripped_library),
		cmocka_unit_test(test_stripped_library_with_debuglink),
		cmocka_unit_test(test_deleted_library),
		cmocka_unit_test(test_replaced_library),
		cmocka_unit_test(test_replaced_library_without_map_files),
		cmocka_unit_test(test_exited_process_still_resolves),
		cmocka_unit_test(test_exec_rereads_maps),
		cmocka_unit_test(test_process_table_bound),
		cmocka_unit_test(test_kernel_frames),
		cmocka_unit_test(test_special_mappings),
		cmocka_unit_test(test_fresh_maps),
	};
	return cmocka_run_group_tests(tests, build_fixtures, remove_fixtures);
}
