/* test_py_offsets.c - the committed CPython offset tables against reality.
 *
 * Three independent checks, each skipped with a message when what it needs is
 * missing (so the test passes on machines without pyenv):
 *
 *  - regeneration: scripts/gen_py_offsets.py --check recompiles offsetof()
 *    probes against every installed version's headers (pyenv, and
 *    /usr/include/python3.X) and must match user/python/py_offsets.c;
 *  - sizes: each installed interpreter reports sizes that pin several offsets
 *    (code object basic size = co_code_adaptive, str/bytes header sizes);
 *  - live processes: each installed interpreter runs
 *    tests/unit/fixtures/py_live_target.py, which parks in a known stack; the
 *    test stops it with ptrace (for the thread pointer only), then follows the
 *    profiler's own path with process_vm_readv: _PyRuntime (from the ELF symbol
 *    table plus load bias) -> TSS key -> glibc pthread-specific slot -> tstate
 *    -> frames -> code objects, and expects every function name, qualified name,
 *    file name and current line the target marks.  Needs root (ptrace).
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <asm/prctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pyenv_root.h"

#include "python/linetable.h"
#include "python/py_offsets.h"
#include "symbolize/elf_symtab.h"

#define DIR_MAX 1024
#define MAX_INTERPRETERS 8
#define MAX_LIVE_FRAMES 16
#define NAME_MAX_LEN 256
#define MAX_TABLE_BYTES (1 << 20)

static char fixtures_dir[DIR_MAX];
static char repo_dir[DIR_MAX];
/* The running live target, killed by live_teardown() when a check fails. */
static pid_t live_pid;

/* ---------------------------------------------------------------- helpers */

/* Lists the installed interpreters of 3.minor; returns how many (<= max). */
static int find_interpreters(unsigned minor, char paths[][PATH_MAX], int max)
{
	char root_buf[PATH_MAX - 64]; /* leaves room for the rest of a path */
	const char *root = pyenv_root(root_buf, sizeof(root_buf));
	char pattern[PATH_MAX];
	glob_t found;
	int n = 0;

	snprintf(pattern, sizeof(pattern), "%s/versions/3.%u.*/bin/python3.%u", root, minor, minor);
	if (glob(pattern, 0, NULL, &found) == 0)
		for (size_t i = 0; i < found.gl_pathc && n < max; i++)
			snprintf(paths[n++], PATH_MAX, "%s", found.gl_pathv[i]);
	globfree(&found);
	for (int i = 0; i < 2 && n < max; i++) {
		snprintf(paths[n], PATH_MAX, "%s/python3.%u", i ? "/usr/local/bin" : "/usr/bin", minor);
		if (access(paths[n], X_OK) == 0)
			n++;
	}
	return n;
}

/* Reads len bytes at addr of process pid; 0 or -errno (-EFAULT when short). */
static int remote_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

static uint64_t remote_u64(pid_t pid, uint64_t addr)
{
	uint64_t value = 0;

	if (remote_read(pid, addr, &value, sizeof(value)))
		fail_msg("cannot read 8 bytes at 0x%lx", (unsigned long)addr);
	return value;
}

/* ------------------------------------------------------------ table shape */

static void test_version_index(void **state)
{
	(void)state;
	assert_int_equal(py_version_index(3, 8), PY_V3_8);
	assert_int_equal(py_version_index(3, 10), PY_V3_10);
	assert_int_equal(py_version_index(3, 13), PY_V3_13);
	assert_int_equal(py_version_index(3, 7), -ENOTSUP);
	assert_int_equal(py_version_index(3, 14), -ENOTSUP);
	assert_int_equal(py_version_index(2, 7), -ENOTSUP);
	assert_int_equal(py_version_index(4, 8), -ENOTSUP);
}

/* What the BPF walker and the resolver rely on, independent of values. */
static void test_table_invariants(void **state)
{
	(void)state;
	for (unsigned minor = 8; minor <= 13; minor++) {
		const struct py_offsets *o = &py_offsets_table[py_version_index(3, minor)];
		const struct py_code_layout *l = &py_code_layout_table[py_version_index(3, minor)];

		assert_int_equal(o->version_hex, 0x03000000u | minor << 16);
		/* Exactly one way from the thread state to the current frame. */
		assert_true((o->tstate_frame >= 0) != (o->tstate_cframe >= 0));
		assert_int_equal(o->tstate_cframe >= 0, o->cframe_current_frame >= 0);
		assert_int_equal(o->tstate_cframe >= 0, minor == 11 || minor == 12);
		assert_int_equal(o->instr_kind, minor <= 9 ? PY_INSTR_LASTI_BYTES :
						minor == 10 ? PY_INSTR_LASTI_UNITS : PY_INSTR_POINTER);
		assert_int_equal(o->frame_owner >= 0, minor >= 12);
		assert_int_equal(o->owner_cstack, minor >= 12 ? 3 : 0);
		assert_int_equal(o->code_adaptive >= 0, minor >= 11);
		assert_int_equal(o->code_adaptive, l->co_code_adaptive);
		assert_int_equal(o->code_firstlineno, l->co_firstlineno);
		assert_true(o->runtime_tss_key > 0);
		/* bpf/python_walk.bpf.h decodes a frame from one 128-byte read. */
		assert_true(o->frame_code + 8 <= 128 && o->frame_previous + 8 <= 128);
		assert_true(o->frame_instr + 8 <= 128 && o->frame_owner < 128);
		assert_int_equal(o->code_tag_mask | o->pad | o->tstate_tls, 0);
		/* Userspace layout: fields present per version, all inside the
		 * prefix the resolver reads in one go. */
		assert_int_equal(l->co_qualname >= 0, minor >= 11);
		assert_int_equal(l->co_code >= 0, minor <= 10);
		assert_int_equal(l->co_units >= 0, minor >= 11);
		assert_int_equal(l->ob_type, 8);
		assert_int_equal(l->bytes_size, 16);
		assert_int_equal(l->bytes_data, 32);
		assert_true(l->co_name + 8 <= l->code_read_size);
		assert_true(l->co_qualname + 8 <= l->code_read_size);
		assert_true(l->co_filename + 8 <= l->code_read_size);
		assert_true(l->co_linetable + 8 <= l->code_read_size);
		assert_true(l->co_code + 8 <= l->code_read_size);
		assert_true(l->co_firstlineno + 4 <= l->code_read_size);
		assert_true(l->unicode_ascii_data < l->unicode_compact_data);
	}
}

/* -------------------------------------------------------------- generator */

/* Runs gen_py_offsets.py --check with extra arguments; returns its exit
 * status (2: no headers), printing its report. */
static int run_generator_check(const char *extra)
{
	const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
	char cmd[4 * DIR_MAX], line[1024];
	FILE *out;
	int status;

	snprintf(cmd, sizeof(cmd), "%s '%s/scripts/gen_py_offsets.py' --check --file "
		 "'%s/user/python/py_offsets.c' %s 2>&1", python, repo_dir, repo_dir, extra);
	out = popen(cmd, "r");
	assert_non_null(out);
	while (fgets(line, sizeof(line), out))
		print_message("    %s", line);
	status = pclose(out);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_regenerated_table_matches(void **state)
{
	char extra[PATH_MAX + 128], dir[PATH_MAX];
	int checked = 0, status;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/scripts/gen_py_offsets.py", repo_dir);
	if (access(dir, R_OK)) {
		print_message("    no %s: skipped\n", dir);
		skip();
	}
	if (access("/usr/bin/python3", X_OK) && system("command -v python3 >/dev/null 2>&1")) {
		print_message("    no python3 to run scripts/gen_py_offsets.py: skipped\n");
		skip();
	}
	status = run_generator_check("");
	if (status != 2) {
		assert_int_equal(status, 0);
		checked++;
	}
	/* Distribution headers too (e.g. Debian's 3.11.2 next to pyenv's 3.11.7). */
	for (unsigned minor = 8; minor <= 13; minor++) {
		snprintf(dir, sizeof(dir), "/usr/include/python3.%u/internal", minor);
		if (access(dir, R_OK))
			continue;
		snprintf(extra, sizeof(extra), "--pyenv-root /nonexistent --headers 3.%u=%.*s", minor,
			 (int)(strlen(dir) - strlen("/internal")), dir);
		assert_int_equal(run_generator_check(extra), 0);
		checked++;
	}
	if (!checked) {
		print_message("    no CPython headers installed: regeneration check skipped\n");
		skip();
	}
}

/* ------------------------------------------------------------------ sizes */

static void check_sizes(unsigned minor, const char *python)
{
	const struct py_offsets *o = &py_offsets_table[py_version_index(3, minor)];
	const struct py_code_layout *l = &py_code_layout_table[py_version_index(3, minor)];
	char cmd[PATH_MAX + 256];
	long code_size, empty_str, latin1_str, bytes_size;
	FILE *out;

	snprintf(cmd, sizeof(cmd), "'%s' -c 'import sys; print(type(sys._getframe().f_code)."
		 "__basicsize__, sys.getsizeof(str()), sys.getsizeof(chr(233) * 3), "
		 "bytes.__basicsize__)'", python);
	out = popen(cmd, "r");
	assert_non_null(out);
	assert_int_equal(fscanf(out, "%ld %ld %ld %ld", &code_size, &empty_str, &latin1_str,
				&bytes_size), 4);
	assert_int_equal(pclose(out), 0);
	print_message("    3.%u %s: code basicsize %ld, sizeof('') %ld, sizeof('\\xe9'*3) %ld\n",
		      minor, python, code_size, empty_str, latin1_str);
	if (minor >= 11) /* co_code_adaptive is the code object's trailing array */
		assert_int_equal(code_size, o->code_adaptive);
	assert_int_equal(empty_str, l->unicode_ascii_data + 1);
	assert_int_equal(latin1_str, l->unicode_compact_data + 4);
	assert_int_equal(bytes_size, l->bytes_data + 1);
}

static void test_interpreter_sizes(void **state)
{
	char paths[MAX_INTERPRETERS][PATH_MAX];
	int total = 0;

	(void)state;
	for (unsigned minor = 8; minor <= 13; minor++) {
		int n = find_interpreters(minor, paths, MAX_INTERPRETERS);

		for (int i = 0; i < n; i++)
			check_sizes(minor, paths[i]);
		if (!n)
			print_message("    3.%u: no interpreter installed, skipped\n", minor);
		total += n;
	}
	if (!total)
		skip();
}

/* ------------------------------------------------------------------- live */

/* One frame of the expected or the walked stack. */
struct live_frame {
	char name[NAME_MAX_LEN];     /* co_qualname (3.11+) or co_name, or the marker */
	char filename[PATH_MAX];     /* co_filename */
	char type[16];               /* tp_name of the code object's type */
	int line;                    /* current line */
	int64_t offset;              /* byte offset of the current instruction */
};

/* Reads the "LIVE:" markers of the target script, innermost frame first. */
static int expected_stack(const char *script, struct live_frame *frames)
{
	char line[512];
	int n = 0, lineno = 0;
	FILE *f = fopen(script, "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		char *mark = strstr(line, "# LIVE: ");

		lineno++;
		if (!mark || n >= MAX_LIVE_FRAMES)
			continue;
		snprintf(frames[n].name, sizeof(frames[n].name), "%s", mark + 8);
		frames[n].name[strcspn(frames[n].name, "\n")] = '\0';
		frames[n].line = lineno;
		n++;
	}
	fclose(f);
	return n;
}

/* Measures where glibc keeps pthread_getspecific() values for keys < 32, as an
 * offset from the thread pointer, in this process. */
static uint64_t specific_1stblock(void)
{
	static int marker;
	pthread_key_t key;
	uint64_t fs = 0;
	uint8_t block[0x1000];

	assert_int_equal(syscall(SYS_arch_prctl, ARCH_GET_FS, &fs), 0);
	assert_int_equal(pthread_key_create(&key, NULL), 0);
	assert_true(key < 32);
	assert_int_equal(pthread_setspecific(key, &marker), 0);
	assert_int_equal(remote_read(getpid(), fs, block, sizeof(block)), 0);
	pthread_key_delete(key);
	for (uint64_t off = 0; off + key * 16 + 16 <= sizeof(block); off += 8) {
		uint64_t value;

		memcpy(&value, block + off + key * 16 + 8, sizeof(value));
		if (value == (uint64_t)(uintptr_t)&marker)
			return off;
	}
	fail_msg("pthread specific block not found near the thread pointer");
	return 0;
}

/* Finds _PyRuntime in the target: the executable or libpython, by symbol
 * (nm -D) and load bias (mapping start minus the vaddr of its file offset). */
static uint64_t find_runtime(pid_t pid)
{
	char maps_path[64], line[PATH_MAX + 256], last[PATH_MAX] = "";
	uint64_t runtime = 0;
	FILE *maps;

	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
	maps = fopen(maps_path, "r");
	assert_non_null(maps);
	while (!runtime && fgets(line, sizeof(line), maps)) {
		uint64_t start, end, offset, sym = 0, vaddr;
		char path[PATH_MAX] = "", cmd[PATH_MAX + 64], nm_line[512], name[256];
		struct elf_symtab *table;
		int path_at = 0;
		FILE *nm;

		if (sscanf(line, "%lx-%lx %*s %lx %*s %*u %n", &start, &end, &offset, &path_at) < 3 ||
		    !path_at || line[path_at] != '/')
			continue;
		snprintf(path, sizeof(path), "%s", line + path_at);
		path[strcspn(path, "\n")] = '\0';
		if (strcmp(path, last) == 0 || !strstr(path, "python"))
			continue;
		snprintf(last, sizeof(last), "%s", path);
		snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s' 2>/dev/null", path);
		nm = popen(cmd, "r");
		assert_non_null(nm);
		while (fgets(nm_line, sizeof(nm_line), nm))
			if (sscanf(nm_line, "%lx %*c %255s", &vaddr, name) == 2 &&
			    strcmp(name, "_PyRuntime") == 0)
				sym = vaddr;
		pclose(nm);
		if (!sym)
			continue;
		table = elf_symtab__open(path);
		assert_non_null(table);
		assert_int_equal(elf_symtab__file_to_vaddr(table, offset, &vaddr), 0);
		elf_symtab__put(table);
		runtime = start - vaddr + sym;
	}
	fclose(maps);
	if (!runtime)
		fail_msg("no _PyRuntime in the mappings of %d", (int)pid);
	return runtime;
}

/* Reads a compact ASCII str object (every name in the target is one). */
static void read_ascii(pid_t pid, const struct py_code_layout *l, uint64_t addr, char *out,
		       size_t cap)
{
	uint8_t head[128];
	int64_t length;
	uint32_t state;

	assert_int_equal(remote_read(pid, addr, head, (size_t)l->unicode_ascii_data), 0);
	memcpy(&length, head + l->unicode_length, sizeof(length));
	memcpy(&state, head + l->unicode_state, sizeof(state));
	assert_int_equal((state >> l->unicode_compact_shift) & 1, 1);
	assert_int_equal((state >> l->unicode_ascii_shift) & 1, 1);
	assert_int_equal((state >> l->unicode_kind_shift) & 7, 1);
	assert_true(length >= 0 && (size_t)length < cap);
	assert_int_equal(remote_read(pid, addr + (uint64_t)l->unicode_ascii_data, out,
				     (size_t)length), 0);
	out[length] = '\0';
}

/* Describes one frame: names, file, type and line of its code object. */
static void read_frame(pid_t pid, unsigned minor, uint64_t frame, struct live_frame *out)
{
	const struct py_offsets *o = &py_offsets_table[py_version_index(3, minor)];
	const struct py_code_layout *l = &py_code_layout_table[py_version_index(3, minor)];
	uint64_t code = remote_u64(pid, frame + (uint64_t)o->frame_code);
	uint64_t type_name, table_addr, name_addr;
	uint8_t head[512], *table;
	int32_t firstlineno;
	int64_t table_len;
	uint32_t instr;

	assert_true(l->code_read_size <= sizeof(head));
	assert_int_equal(remote_read(pid, code, head, l->code_read_size), 0);
	type_name = remote_u64(pid, *(uint64_t *)(head + l->ob_type) + (uint64_t)l->type_name);
	assert_int_equal(remote_read(pid, type_name, out->type, sizeof(out->type) - 1), 0);
	out->type[sizeof(out->type) - 1] = '\0';

	memcpy(&name_addr, head + (l->co_qualname >= 0 ? l->co_qualname : l->co_name), 8);
	read_ascii(pid, l, name_addr, out->name, sizeof(out->name));
	memcpy(&name_addr, head + l->co_filename, 8);
	read_ascii(pid, l, name_addr, out->filename, sizeof(out->filename));
	memcpy(&firstlineno, head + l->co_firstlineno, sizeof(firstlineno));

	/* The instruction as BPF records it in struct py_frame.instr. */
	if (o->instr_kind == PY_INSTR_POINTER)
		instr = (uint32_t)(remote_u64(pid, frame + (uint64_t)o->frame_instr) - code);
	else
		assert_int_equal(remote_read(pid, frame + (uint64_t)o->frame_instr, &instr,
					     sizeof(instr)), 0);

	assert_int_equal(py_linetable__instr_offset(minor, instr, o->code_adaptive, &out->offset), 0);
	memcpy(&table_addr, head + l->co_linetable, 8);
	table_len = (int64_t)remote_u64(pid, table_addr + (uint64_t)l->bytes_size);
	assert_true(table_len >= 0 && table_len < MAX_TABLE_BYTES);
	table = malloc(table_len ? (size_t)table_len : 1);
	assert_non_null(table);
	assert_int_equal(remote_read(pid, table_addr + (uint64_t)l->bytes_data, table,
				     (size_t)table_len), 0);
	assert_int_equal(py_linetable__frame_line(minor, table, (size_t)table_len, firstlineno,
						  instr, o->code_adaptive, &out->line), 0);
	free(table);
}

/* Walks the stopped target's Python stack the way bpf/python_walk.bpf.h does.
 * Returns the number of frames written to frames (innermost first). */
static int walk_stack(pid_t pid, unsigned minor, uint64_t fsbase, struct live_frame *frames)
{
	const struct py_offsets *o = &py_offsets_table[py_version_index(3, minor)];
	uint64_t runtime = find_runtime(pid), tstate, frame;
	uint32_t tss[2]; /* Py_tss_t: int _is_initialized, pthread_key_t _key */
	int n = 0, shims = 0;

	assert_int_equal(remote_read(pid, runtime + (uint64_t)o->runtime_tss_key, tss,
				     sizeof(tss)), 0);
	assert_int_equal(tss[0], 1);
	assert_true(tss[1] < 32);
	tstate = remote_u64(pid, fsbase + specific_1stblock() + tss[1] * 16 + 8);
	assert_true(tstate != 0);
	if (o->tstate_frame >= 0)
		frame = remote_u64(pid, tstate + (uint64_t)o->tstate_frame);
	else
		frame = remote_u64(pid, remote_u64(pid, tstate + (uint64_t)o->tstate_cframe) +
					(uint64_t)o->cframe_current_frame);
	while (frame) {
		uint8_t owner = 0;

		if (o->frame_owner >= 0)
			assert_int_equal(remote_read(pid, frame + (uint64_t)o->frame_owner, &owner, 1),
					 0);
		if (o->frame_owner >= 0 && owner == o->owner_cstack) {
			shims++;
		} else {
			assert_true(n < MAX_LIVE_FRAMES);
			read_frame(pid, minor, frame, &frames[n++]);
		}
		frame = remote_u64(pid, frame + (uint64_t)o->frame_previous);
	}
	print_message("      TSS key %u at _PyRuntime+%d, tstate 0x%lx, %d C-stack shim frames "
		      "skipped\n", tss[1], o->runtime_tss_key + 4, (unsigned long)tstate, shims);
	if (minor >= 12)
		assert_true(shims >= 1); /* the next() call in the target */
	return n;
}

/* Starts the target, waits until it parks, and returns its pid; *out reads
 * its stdout. */
static pid_t start_target(const char *python, const char *script, FILE **out)
{
	char line[64];
	int fds[2];
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl(python, python, script, (char *)NULL);
		_exit(127);
	}
	live_pid = pid;
	close(fds[1]);
	*out = fdopen(fds[0], "r");
	assert_non_null(*out);
	assert_non_null(fgets(line, sizeof(line), *out));
	assert_string_equal(line, "ready\n");
	usleep(200 * 1000); /* from write() to time.sleep() */
	return pid;
}

static void check_live(unsigned minor, const char *python)
{
	struct live_frame expected[MAX_LIVE_FRAMES], walked[MAX_LIVE_FRAMES];
	char script[PATH_MAX];
	struct user_regs_struct regs;
	int n_expected, n_walked, status;
	FILE *out;
	pid_t pid;

	snprintf(script, sizeof(script), "%s/py_live_target.py", fixtures_dir);
	n_expected = expected_stack(script, expected);
	assert_true(n_expected >= 4);
	pid = start_target(python, script, &out);
	/* ptrace only to learn the main thread's thread pointer (fsbase), which
	 * BPF takes from task->thread.fsbase; the process stays stopped while read
	 * so the stack is consistent. */
	if (ptrace(PTRACE_ATTACH, pid, NULL, NULL)) {
		int err = errno;

		fclose(out);
		if (err == EPERM) {
			print_message("    ptrace not permitted: live process check skipped\n");
			skip();
		}
		fail_msg("ptrace(PTRACE_ATTACH): %s", strerror(err));
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSTOPPED(status));
	assert_int_equal(ptrace(PTRACE_GETREGS, pid, NULL, &regs), 0);
	n_walked = walk_stack(pid, minor, regs.fs_base, walked);
	ptrace(PTRACE_DETACH, pid, NULL, NULL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	live_pid = 0;
	fclose(out);

	for (int i = 0; i < n_walked; i++)
		print_message("      #%d %s (%s:%d) [%s, instruction at byte %ld]\n", i,
			      walked[i].name, walked[i].filename, walked[i].line, walked[i].type,
			      (long)walked[i].offset);
	assert_int_equal(n_walked, n_expected);
	for (int i = 0; i < n_expected; i++) {
		const char *want = expected[i].name;

		/* Before 3.11 there is no co_qualname: "Outer.method" is "method". */
		if (minor < 11 && strrchr(want, '.'))
			want = strrchr(want, '.') + 1;
		assert_string_equal(walked[i].type, "code");
		assert_string_equal(walked[i].name, want);
		assert_string_equal(walked[i].filename, script);
		assert_int_equal(walked[i].line, expected[i].line);
	}
}

static void live_minor(unsigned minor)
{
	char paths[MAX_INTERPRETERS][PATH_MAX];
	int n = find_interpreters(minor, paths, MAX_INTERPRETERS);

	if (!n) {
		print_message("    3.%u: no interpreter installed, skipped\n", minor);
		skip();
	}
	if (geteuid() != 0) {
		print_message("    not root: live process check skipped\n");
		skip();
	}
	for (int i = 0; i < n; i++) {
		print_message("    3.%u: %s\n", minor, paths[i]);
		check_live(minor, paths[i]);
	}
}

/* Kills a target left behind by a failed (longjmp'ed out) check. */
static int live_teardown(void **state)
{
	(void)state;
	if (live_pid > 0) {
		kill(live_pid, SIGKILL);
		waitpid(live_pid, NULL, 0);
		live_pid = 0;
	}
	return 0;
}

static void test_live_3_8(void **state) { (void)state; live_minor(8); }
static void test_live_3_9(void **state) { (void)state; live_minor(9); }
static void test_live_3_10(void **state) { (void)state; live_minor(10); }
static void test_live_3_11(void **state) { (void)state; live_minor(11); }
static void test_live_3_12(void **state) { (void)state; live_minor(12); }
static void test_live_3_13(void **state) { (void)state; live_minor(13); }

/* ------------------------------------------------------------------- main */

static int set_dir(char *out, size_t cap, const char *path)
{
	char real[PATH_MAX];

	if (!realpath(path, real) || strlen(real) >= cap)
		return -1;
	strcpy(out, real);
	return 0;
}

/* Finds tests/unit/fixtures and the repository root from the source tree or
 * from .output/tests/. */
static int find_dirs(void)
{
	char exe[DIR_MAX], candidate[PATH_MAX];
	ssize_t n;

	if (set_dir(fixtures_dir, sizeof(fixtures_dir), "tests/unit/fixtures")) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0)
			return -1;
		exe[n] = '\0';
		*strrchr(exe, '/') = '\0';
		snprintf(candidate, sizeof(candidate), "%s/../../tests/unit/fixtures", exe);
		if (set_dir(fixtures_dir, sizeof(fixtures_dir), candidate))
			return -1;
	}
	snprintf(candidate, sizeof(candidate), "%s/../../..", fixtures_dir);
	return set_dir(repo_dir, sizeof(repo_dir), candidate);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_index),
		cmocka_unit_test(test_table_invariants),
		cmocka_unit_test(test_regenerated_table_matches),
		cmocka_unit_test(test_interpreter_sizes),
		cmocka_unit_test_teardown(test_live_3_8, live_teardown),
		cmocka_unit_test_teardown(test_live_3_9, live_teardown),
		cmocka_unit_test_teardown(test_live_3_10, live_teardown),
		cmocka_unit_test_teardown(test_live_3_11, live_teardown),
		cmocka_unit_test_teardown(test_live_3_12, live_teardown),
		cmocka_unit_test_teardown(test_live_3_13, live_teardown),
	};

	if (find_dirs()) {
		fprintf(stderr, "test_py_offsets: cannot find tests/unit/fixtures\n");
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
