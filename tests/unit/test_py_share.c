/* test_py_share.c - the Python resolver shares a code object's read between
 * processes only where their memory holds the same bytes (real CPython
 * processes: a parent and two forked children, one of which changed the
 * name in place), and remembers frame ids per profile. Needs root or
 * CAP_SYS_PTRACE (process_vm_readv), like the agent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "profile/profile.h"
#include "python/py_registry.h"
#include "python/py_resolver.h"

/* Forks two children after defining a function: the first as it is, the
 * second after changing the function name's last character in place (its
 * str data, and co_qualname's where that is another object). Prints the
 * children's pids, the code object's address and first line. */
static const char script[] =
	"import ctypes, os, sys, time\n"
	"def shared_fn_abc():\n"
	"    pass\n"
	"c = shared_fn_abc.__code__\n"
	"pids = []\n"
	"for mutate in (0, 1):\n"
	"    r, w = os.pipe()\n"
	"    pid = os.fork()\n"
	"    if pid == 0:\n"
	"        if mutate:\n"
	"            names = {id(c.co_name): c.co_name}\n"
	"            q = getattr(c, 'co_qualname', None)\n"
	"            if q is not None:\n"
	"                names[id(q)] = q\n"
	"            for s in names.values():\n"
	"                data = id(s) + sys.getsizeof(s) - len(s) - 1\n"
	"                ctypes.memset(data + len(s) - 1, ord('Z'), 1)\n"
	"        os.write(w, b'x')\n"
	"        time.sleep(60)\n"
	"        os._exit(0)\n"
	"    os.read(r, 1)\n"
	"    pids.append(pid)\n"
	"print(pids[0], pids[1], id(c), c.co_firstlineno, flush=True)\n"
	"time.sleep(60)\n";

static pid_t spawn_python(char *line, size_t len)
{
	int pfd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		execlp("python3", "python3", "-c", script, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	FILE *in = fdopen(pfd[0], "r");
	assert_non_null(in);
	if (!fgets(line, (int)len, in))
		fail_msg("python3 on PATH printed nothing");
	fclose(in);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static const char *frame_name(const struct profile *p, uint32_t id)
{
	return profile__str(p, profile__frame(p, id)->name);
}

static void test_forked_processes_share_what_matches(void **state)
{
	(void)state;
	char line[256];
	pid_t parent = spawn_python(line, sizeof(line));
	int same, changed, firstline;
	unsigned long long code;
	assert_int_equal(sscanf(line, "%d %d %llu %d", &same, &changed, &code, &firstline), 4);

	struct py_registry *reg = py_registry__new(NULL, NULL, 0, NULL);
	struct py_resolver *r = py_resolver__new(0, NULL);
	struct profile *p = profile__new();
	assert_non_null(reg);
	assert_non_null(r);
	assert_non_null(p);
	struct py_process_info info;
	if (py_registry__lookup(reg, parent, &info) != 1)
		fail_msg("python3 on PATH (pid %d) is not a supported CPython", (int)parent);

	struct py_frame f = { .code = code, .firstlineno = firstline };
	uint32_t in_parent, in_same, in_changed, again;
	struct py_resolver_stats st;

	/* The parent's code object is read (~11 reads). */
	assert_int_equal(py_resolver__frame(r, parent, info.layout, &f, 1, p, &in_parent),
			 0);
	if (!strstr(frame_name(p, in_parent), "shared_fn_abc"))
		fail_msg("parent's frame: %s", frame_name(p, in_parent));
	py_resolver__stats(r, &st);
	assert_int_equal(st.reads, 1);
	assert_int_equal(st.shared, 0);

	/* The unchanged child shares it: the same frame, no read. */
	assert_int_equal(py_resolver__frame(r, same, info.layout, &f, 1, p, &in_same), 0);
	assert_int_equal(in_same, in_parent);
	py_resolver__stats(r, &st);
	assert_int_equal(st.reads, 1);
	assert_int_equal(st.shared, 1);

	/* The child whose bytes differ at the same address is read: its own name. */
	assert_int_equal(py_resolver__frame(r, changed, info.layout, &f, 1, p, &in_changed),
			 0);
	if (!strstr(frame_name(p, in_changed), "shared_fn_abZ"))
		fail_msg("changed child's frame: %s", frame_name(p, in_changed));
	assert_int_not_equal(in_changed, in_parent);
	py_resolver__stats(r, &st);
	assert_int_equal(st.reads, 2);
	assert_int_equal(st.shared, 1);

	/* Asked again in the same profile: the remembered frame. */
	uint64_t memo = st.memo_hits;
	assert_int_equal(py_resolver__frame(r, parent, info.layout, &f, 1, p, &again), 0);
	assert_int_equal(again, in_parent);
	py_resolver__stats(r, &st);
	assert_int_equal(st.memo_hits, memo + 1);
	/* Another instruction, or function level: a frame of its own kind. */
	struct py_frame other = f;
	other.instr += 2;
	assert_int_equal(py_resolver__frame(r, parent, info.layout, &f, 0, p, &again), 0);
	assert_int_equal(profile__frame(p, again)->line, 0);
	assert_int_equal(py_resolver__frame(r, parent, info.layout, &other, 1, p, &again),
			 0);
	assert_string_equal(frame_name(p, again), frame_name(p, in_parent));

	/* A new profile (the next window) gets its own frame, named alike. */
	struct profile *next = profile__new();
	assert_non_null(next);
	assert_true(profile__serial(next) != profile__serial(p));
	assert_int_equal(py_resolver__frame(r, same, info.layout, &f, 1, next, &again), 0);
	assert_true(again < profile__frame_count(next));
	assert_string_equal(frame_name(next, again), frame_name(p, in_parent));
	assert_int_equal(profile__frame(next, again)->line, profile__frame(p, in_parent)->line);

	/* A stale first line is never shared: read, and unreadable here. */
	struct py_frame stale = f;
	stale.firstlineno += 100;
	assert_int_equal(py_resolver__frame(r, changed + 0, info.layout, &stale, 1, next,
					    &again), 0);
	assert_string_equal(frame_name(next, again), "[python: unreadable frame]");

	profile__free(next);
	profile__free(p);
	py_resolver__free(r);
	py_registry__free(reg);
	reap(same);
	reap(changed);
	reap(parent);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forked_processes_share_what_matches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
