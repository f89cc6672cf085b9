// SPDX-License-Identifier: MIT
/* The aggregation hub (aggregate/aggregate.h) driven with synthetic ring buffer
 * records laid out by the BPF ABI headers (bpf/X_abi.h), as the sampler would
 * send them: what lands in the profile (stacks root first, names, labels,
 * values) and what is counted, for every path that drops or degrades a record
 * (too short, unknown type, missing, truncated or unresolvable stacks, torn
 * tags, full label budgets, saturating counts) and the exact-CPU bookkeeping
 * (apportioning, [unsampled], pid reuse, windows, request counts).
 *
 * Addresses are real: user frames are this test's own functions (pid of the
 * test itself, resolved through /proc/self/maps and its symbol table), kernel
 * frames come from /proc/kallsyms; Python frames and tags come from real child
 * processes (a CPython found on PATH; an environment with hostile tags). */
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

#include "aggregate/aggregate.h"
#include "util/clock.h"

/* ---- this process's own functions: user frames that resolve ---------------- */

__attribute__((noinline, used)) void agg_test_leaf(void) { __asm__ volatile(""); }
__attribute__((noinline, used)) void agg_test_middle(void) { __asm__ volatile(""); }
__attribute__((noinline, used)) void agg_test_root(void) { __asm__ volatile(""); }

static uint64_t fn_addr(void (*fn)(void)) { return (uint64_t)(uintptr_t)fn; }

/* ---- kernel addresses from /proc/kallsyms ---------------------------------- */

/* Address of the kernel text symbol name (first match), failing the test
 * when the kernel has none. */
static uint64_t ksym(const char *name)
{
	FILE *f = fopen("/proc/kallsyms", "re");
	char line[512], sym[256], type;
	unsigned long long addr;
	uint64_t found = 0;
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %255s", &addr, &type, sym) == 3 &&
		    (type == 'T' || type == 't') && strcmp(sym, name) == 0)
			found = addr;
	fclose(f);
	if (!found)
		fail_msg("no kernel symbol %s in /proc/kallsyms (run as root)", name);
	return found;
}

/* ---- records ---------------------------------------------------------------- */

static struct profile_sample_event ev;

/* Lays out a sample of pid in ev: kernel and user stacks innermost first
 * (klen/ulen < 0: that stack is missing, -EFAULT), then npy Python frames;
 * returns the record's size as BPF sends it. */
static size_t sample(uint32_t pid, const uint64_t *k, int klen, const uint64_t *u, int ulen,
		     const struct py_frame *py, uint32_t npy)
{
	memset(&ev, 0, sizeof(ev));
	ev.hdr.type = PROFILE_EVENT_SAMPLE;
	ev.hdr.pid = pid;
	ev.hdr.tid = pid;
	ev.hdr.cpu = 1;
	ev.hdr.time_ns = 1;
	memcpy(ev.hdr.comm, "worker", 7);
	memcpy(ev.group_comm, "app", 4);
	ev.period = 1000;
	ev.kstack_len = klen;
	ev.ustack_len = ulen;
	ev.py_len = npy;
	size_t nk = klen > 0 ? (size_t)klen : 0, nu = ulen > 0 ? (size_t)ulen : 0;
	if (nk)
		memcpy(ev.stack, k, nk * 8);
	if (nu)
		memcpy(ev.stack + nk, u, nu * 8);
	if (npy)
		memcpy(ev.stack + nk + nu, py, npy * sizeof(*py));
	return offsetof(struct profile_sample_event, stack) + (nk + nu) * 8 + npy * sizeof(*py);
}

/* ---- fixture ---------------------------------------------------------------- */

struct fx {
	struct profile *p;
	struct symbolizer *sym;
	struct aggregator *a;
};

static void fx_open(struct fx *f, const struct aggregate_opts *o)
{
	f->p = profile__new();
	assert_non_null(f->p);
	f->sym = symbolizer__new(0);
	assert_non_null(f->sym);
	f->a = aggregator__new(f->p, f->sym, o);
	assert_non_null(f->a);
}

static void fx_close(struct fx *f)
{
	aggregator__free(f->a);
	symbolizer__free(f->sym);
	profile__free(f->p);
}

static struct aggregate_stats stats(const struct fx *f)
{
	struct aggregate_stats st;
	aggregator__stats(f->a, &st);
	return st;
}

/* The sample's frame names root first, joined by ';'. */
static const char *stack_of(const struct profile *p, const struct profile_sample *s)
{
	static char buf[8192];
	size_t o = 0;
	buf[0] = '\0';
	for (uint32_t i = 0; i < s->nframes && o < sizeof(buf); i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? ";" : "",
				      profile__str(p, profile__frame(p, s->frames[i])->name));
	return buf;
}

/* The one sample whose stack is `stack`, failing when there is none. */
static const struct profile_sample *find(const struct profile *p, const char *stack)
{
	for (size_t i = 0; i < profile__sample_count(p); i++)
		if (strcmp(stack_of(p, profile__sample(p, i)), stack) == 0)
			return profile__sample(p, i);
	for (size_t i = 0; i < profile__sample_count(p); i++)
		print_error("  have: %s\n", stack_of(p, profile__sample(p, i)));
	fail_msg("no sample %s", stack);
	return NULL;
}

static uint64_t value_of(const struct profile *p, const struct profile_sample *s,
			 const char *type)
{
	int v = profile__find_value(p, type);
	assert_true(v >= 0);
	return s->values[v];
}

static int record(struct fx *f, size_t size)
{
	return aggregator__record(f->a, &ev, size);
}

/* ---- child processes -------------------------------------------------------- */

/* Starts argv (execvp) with envp (NULL: ours); when ready, reads one line the
 * child prints into line (NULL: waits for its exec only). */
static pid_t spawn(char *const argv[], char *const envp[], char *line, size_t len)
{
	int pfd[2], efd[2];
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	assert_int_equal(pipe2(efd, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		if (envp)
			execvpe(argv[0], argv, envp);
		else
			execvp(argv[0], argv);
		int e = errno;
		if (write(efd[1], &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pfd[1]);
	close(efd[1]);
	int e = 0;
	if (read(efd[0], &e, sizeof(e)) != 0)
		fail_msg("exec %s: %s", argv[0], strerror(e));
	close(efd[0]);
	if (line) {
		FILE *in = fdopen(pfd[0], "r");
		assert_non_null(in);
		if (!fgets(line, (int)len, in))
			fail_msg("%s printed nothing", argv[0]);
		fclose(in);
	} else {
		close(pfd[0]);
	}
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* `sleep 60` with envp (its tags come from there). */
static pid_t spawn_env(char *const envp[])
{
	char *argv[] = { "sleep", "60", NULL };
	return spawn(argv, envp, NULL, 0);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_native_stacks_root_first(void **state)
{
	(void)state;
	struct aggregate_opts o = { .kernel_frames = 1, .user_frames = 1, .period_is_ns = 1 };
	struct fx f;
	fx_open(&f, &o);
	/* Innermost first, as bpf_get_stack gives them; return addresses point
	 * past their call (the symbolizer looks up addr - 1). */
	uint64_t u[] = { fn_addr(agg_test_leaf), fn_addr(agg_test_middle) + 1,
			 fn_addr(agg_test_root) + 1 };
	uint64_t k[] = { ksym("schedule"), ksym("do_syscall_64") + 1 };
	pid_t me = getpid();
	assert_int_equal(record(&f, sample((uint32_t)me, k, 2, u, 3, NULL, 0)), 0);
	assert_int_equal(record(&f, sample((uint32_t)me, k, 2, u, 3, NULL, 0)), 0);
	assert_int_equal(profile__sample_count(f.p), 1); /* merged */
	const struct profile_sample *s =
		find(f.p, "agg_test_root;agg_test_middle;agg_test_leaf;do_syscall_64;schedule");
	assert_int_equal(s->pid, me);
	assert_int_equal(s->tid, me);
	assert_string_equal(profile__str(f.p, s->comm), "worker");
	assert_int_equal(value_of(f.p, s, "samples"), 2);
	assert_int_equal(value_of(f.p, s, "cpu"), 2000); /* period_is_ns: the period */
	assert_int_equal(profile__frame(f.p, s->frames[0])->kind, FRAME_NATIVE);
	assert_int_equal(profile__frame(f.p, s->frames[4])->kind, FRAME_KERNEL);
	assert_int_equal(profile__value_count(f.p), 2); /* samples, cpu */
	assert_int_equal(stats(&f).samples, 2);
	assert_int_equal(stats(&f).bad_records, 0);
	fx_close(&f);

	/* Frame selection: kernel only, then user only. */
	o.user_frames = 0;
	fx_open(&f, &o);
	assert_int_equal(record(&f, sample((uint32_t)me, k, 2, u, 3, NULL, 0)), 0);
	find(f.p, "do_syscall_64;schedule");
	fx_close(&f);
	o.user_frames = 1;
	o.kernel_frames = 0;
	o.process_comm = true;
	fx_open(&f, &o);
	assert_int_equal(record(&f, sample((uint32_t)me, k, 2, u, 3, NULL, 0)), 0);
	s = find(f.p, "agg_test_root;agg_test_middle;agg_test_leaf");
	assert_string_equal(profile__str(f.p, s->comm), "app"); /* the process's name */
	fx_close(&f);
}

static void test_unresolvable_and_missing_stacks(void **state)
{
	(void)state;
	struct aggregate_opts o = { .kernel_frames = 1, .user_frames = 1, .ns_per_sample = 7 };
	struct fx f;
	fx_open(&f, &o);
	pid_t me = getpid();
	/* A run of garbage return addresses (code without frame pointers) shows
	 * as one [unknown]; a kernel address below every symbol as [kernel]. */
	uint64_t u[] = { 0x10, 0x20, 0x30, fn_addr(agg_test_root) + 1 };
	uint64_t k[] = { 0x1 };
	assert_int_equal(record(&f, sample((uint32_t)me, k, 1, u, 4, NULL, 0)), 0);
	const struct profile_sample *s = find(f.p, "agg_test_root;[unknown];[kernel]");
	assert_int_equal(value_of(f.p, s, "cpu"), 7); /* ns_per_sample */

	/* Stacks BPF could not read: counted; a user task says so. */
	assert_int_equal(record(&f, sample((uint32_t)me, NULL, -14, NULL, -14, NULL, 0)), 0);
	find(f.p, "[user stack unavailable]");
	/* A kernel thread (pid 0) with nothing: [no stack]. */
	assert_int_equal(record(&f, sample(0, NULL, -14, NULL, 0, NULL, 0)), 0);
	find(f.p, "[no stack]");
	struct aggregate_stats st = stats(&f);
	assert_int_equal(st.kstack_missing, 2);
	assert_int_equal(st.ustack_missing, 1);
	assert_int_equal(st.samples, 3);
	assert_int_equal(st.bad_records, 0);
	fx_close(&f);
}

static void test_truncated_stacks(void **state)
{
	(void)state;
	struct aggregate_opts o = { .kernel_frames = 1, .user_frames = 1, .ns_per_sample = 1 };
	struct fx f;
	fx_open(&f, &o);
	static uint64_t k[PROFILE_MAX_FRAMES], u[PROFILE_MAX_FRAMES];
	uint64_t sched = ksym("schedule");
	for (int i = 0; i < PROFILE_MAX_FRAMES; i++) {
		k[i] = sched + (i > 0);
		u[i] = 0x10 + (uint64_t)i;
	}
	/* Both stacks full: their outermost frames were lost. */
	size_t size = sample((uint32_t)getpid(), k, PROFILE_MAX_FRAMES, u, PROFILE_MAX_FRAMES,
			     NULL, 0);
	assert_int_equal(record(&f, size), 0);
	const struct profile_sample *s = profile__sample(f.p, 0);
	assert_int_equal(s->nframes, 2 + 1 + PROFILE_MAX_FRAMES);
	assert_string_equal(profile__str(f.p, profile__frame(f.p, s->frames[0])->name),
			    "[truncated]");
	assert_string_equal(profile__str(f.p, profile__frame(f.p, s->frames[1])->name),
			    "[unknown]");
	assert_string_equal(profile__str(f.p, profile__frame(f.p, s->frames[2])->name),
			    "[truncated]");
	assert_string_equal(profile__str(f.p, profile__frame(f.p, s->frames[3])->name),
			    "schedule");
	struct aggregate_stats st = stats(&f);
	assert_int_equal(st.kernel_truncated, 1);
	assert_int_equal(st.native_truncated, 1);
	/* One frame short of the cap: nothing was cut. */
	size = sample((uint32_t)getpid(), k, PROFILE_MAX_FRAMES - 1, u, PROFILE_MAX_FRAMES - 1,
		      NULL, 0);
	assert_int_equal(record(&f, size), 0);
	st = stats(&f);
	assert_int_equal(st.kernel_truncated, 1);
	assert_int_equal(st.native_truncated, 1);
	fx_close(&f);
}

static void test_interrupt_frames_cut(void **state)
{
	(void)state;
	struct aggregate_opts o = { .kernel_frames = 1, .interrupt_frames = 1,
				    .ns_per_sample = 1 };
	struct fx f;
	fx_open(&f, &o);
	/* Sampled on the tick: the timer interrupt's own frames are cut, what is
	 * below its entry is the interrupted code. */
	uint64_t k[] = { ksym("schedule"), ksym("asm_sysvec_apic_timer_interrupt") + 1,
			 ksym("do_syscall_64") + 1 };
	assert_int_equal(record(&f, sample(0, k, 3, NULL, 0, NULL, 0)), 0);
	find(f.p, "do_syscall_64");
	/* No entry found: the unwind never left the interrupt, nothing is kept. */
	assert_int_equal(record(&f, sample(0, k, 1, NULL, 0, NULL, 0)), 0);
	find(f.p, "[no stack]");
	fx_close(&f);
}

static void test_bad_records_counted(void **state)
{
	(void)state;
	struct aggregate_opts o = { .kernel_frames = 1, .user_frames = 1, .ns_per_sample = 1,
				    .exact_cpu = true };
	struct fx f;
	fx_open(&f, &o);
	uint64_t u[] = { 0x10, 0x20 };
	uint32_t me = (uint32_t)getpid();
	size_t head = offsetof(struct profile_sample_event, stack);
	/* Shorter than a header; a sample shorter than its fixed part. */
	assert_int_equal(aggregator__record(f.a, &ev, sizeof(struct profile_event_header) - 1), 0);
	sample(me, NULL, 0, u, 2, NULL, 0);
	assert_int_equal(record(&f, head - 1), 0);
	/* Stacks longer than BPF ever sends, or than the record holds. */
	sample(me, NULL, 0, u, 2, NULL, 0);
	ev.kstack_len = PROFILE_MAX_FRAMES + 1;
	assert_int_equal(record(&f, sizeof(ev)), 0);
	sample(me, NULL, 0, u, 2, NULL, 0);
	ev.ustack_len = PROFILE_MAX_UFRAMES + 1;
	assert_int_equal(record(&f, sizeof(ev)), 0);
	assert_int_equal(record(&f, sample(me, NULL, 0, u, 2, NULL, 0) - 1), 0);
	/* Python frames past the walker's limit, or past the record's end. */
	sample(me, NULL, 0, u, 2, NULL, 0);
	ev.py_len = PY_MAX_FRAMES + 1;
	assert_int_equal(record(&f, sizeof(ev)), 0);
	size_t size = sample(me, NULL, 0, u, 2, NULL, 0);
	ev.py_len = 1;
	assert_int_equal(record(&f, size + sizeof(struct py_frame) - 1), 0);
	/* An unknown type; counts and unsampled records cut short. */
	sample(me, NULL, 0, u, 2, NULL, 0);
	ev.hdr.type = 99;
	assert_int_equal(record(&f, size), 0);
	ev.hdr.type = PROFILE_EVENT_TASK_COUNTS;
	assert_int_equal(record(&f, sizeof(struct profile_task_counts_event) - 1), 0);
	ev.hdr.type = PROFILE_EVENT_UNSAMPLED;
	assert_int_equal(record(&f, sizeof(struct profile_unsampled_event) - 1), 0);
	struct aggregate_stats st = stats(&f);
	assert_int_equal(st.bad_records, 10);
	assert_int_equal(st.samples, 0);
	assert_int_equal(profile__sample_count(f.p), 0);
	/* A record exactly as long as it says is taken. */
	assert_int_equal(record(&f, sample(me, NULL, 0, u, 2, NULL, 0)), 0);
	assert_int_equal(stats(&f).samples, 1);
	assert_int_equal(stats(&f).bad_records, 10);
	fx_close(&f);
}

static void test_exec_and_exit_noted(void **state)
{
	(void)state;
	struct tag_registry *tags = tag_registry__new(NULL);
	struct py_registry *py = py_registry__new(NULL, NULL, 0, NULL);
	struct py_resolver *res = py_resolver__new(0, NULL);
	assert_non_null(tags);
	assert_non_null(py);
	assert_non_null(res);
	struct aggregate_opts o = { .user_frames = 1, .ns_per_sample = 1, .tags = tags,
				    .python = py, .py_resolver = res };
	struct fx f;
	fx_open(&f, &o);
	uint32_t me = (uint32_t)getpid();
	uint64_t u[] = { fn_addr(agg_test_leaf) };
	assert_int_equal(record(&f, sample(me, NULL, 0, u, 1, NULL, 0)), 0);
	struct profile_task_event t = { .hdr = { .type = PROFILE_EVENT_EXEC, .pid = me } };
	assert_int_equal(aggregator__record(f.a, &t, sizeof(t)), 0);
	t.hdr.type = PROFILE_EVENT_EXIT;
	assert_int_equal(aggregator__record(f.a, &t, sizeof(t)), 0);
	/* Samples processed after the exit still resolve (exited processes are
	 * kept until evicted), re-read after the exec. */
	assert_int_equal(record(&f, sample(me, NULL, 0, u, 1, NULL, 0)), 0);
	const struct profile_sample *s = find(f.p, "agg_test_leaf");
	assert_int_equal(value_of(f.p, s, "samples"), 2);
	struct aggregate_stats st = stats(&f);
	assert_int_equal(st.execs, 1);
	assert_int_equal(st.exits, 1);
	assert_int_equal(st.python_samples, 0); /* not a Python process */
	fx_close(&f);
	py_resolver__free(res);
	py_registry__free(py);
	tag_registry__free(tags);
}

static uint64_t seen_exact_ns;
static size_t seen_samples;

static void on_sample(void *ctx, const struct profile *p, const struct sample_desc *s,
		      uint64_t exact_cpu_ns)
{
	(void)p;
	(void)s;
	assert_ptr_equal(ctx, &seen_samples);
	seen_samples++;
	seen_exact_ns += exact_cpu_ns;
}

static void test_counters_weigh_samples(void **state)
{
	(void)state;
	struct aggregate_opts o = { .user_frames = 1, .exact_cpu = true, .instructions = true,
				    .cycles = true, .weight_by_runtime = 1, .counts = NULL,
				    .on_sample = on_sample, .on_sample_ctx = &seen_samples };
	const char *types[AGGREGATE_MAX_VALUE_TYPES][2];
	assert_int_equal(aggregator__value_types(&o, types), 4);
	assert_string_equal(types[2][0], "instructions");
	assert_string_equal(types[3][0], "cycles");
	struct fx f;
	fx_open(&f, &o);
	seen_samples = 0;
	seen_exact_ns = 0;
	uint64_t u[] = { fn_addr(agg_test_leaf) };
	sample((uint32_t)getpid(), NULL, 0, u, 1, NULL, 0);
	ev.delta_ns = 4000;
	ev.delta[COUNTER_PRIMARY] = 1000000;
	ev.delta[COUNTER_CYCLES] = 2000000;
	assert_int_equal(record(&f, offsetof(struct profile_sample_event, stack) + 8), 0);
	const struct profile_sample *s = find(f.p, "agg_test_leaf");
	assert_int_equal(value_of(f.p, s, "cpu"), 4000); /* weight_by_runtime: delta_ns */
	assert_int_equal(value_of(f.p, s, "instructions"), 1000000);
	assert_int_equal(value_of(f.p, s, "cycles"), 2000000);
	assert_int_equal(seen_samples, 1);
	assert_int_equal(seen_exact_ns, 4000);
	assert_int_equal(profile__saturated(f.p), 0);

	/* Counts past 64 bits saturate (counted by the profile), never wrap. */
	ev.delta[COUNTER_PRIMARY] = UINT64_MAX - 10;
	ev.delta_ns = UINT64_MAX;
	assert_int_equal(record(&f, offsetof(struct profile_sample_event, stack) + 8), 0);
	s = find(f.p, "agg_test_leaf");
	assert_true(value_of(f.p, s, "instructions") == UINT64_MAX);
	assert_true(value_of(f.p, s, "cpu") == UINT64_MAX);
	assert_true(profile__total(f.p, (size_t)profile__find_value(f.p, "instructions")) ==
		    UINT64_MAX);
	assert_true(profile__saturated(f.p) > 0);
	assert_int_equal(value_of(f.p, s, "samples"), 2);
	fx_close(&f);
}

/* cpu of the samples of pid whose stack is `stack` (NULL: all of pid's). */
static uint64_t cpu_of(const struct profile *p, uint32_t pid, const char *stack)
{
	uint64_t sum = 0;
	int v = profile__find_value(p, "cpu");
	for (size_t i = 0; i < profile__sample_count(p); i++) {
		const struct profile_sample *s = profile__sample(p, i);
		if (s->pid == pid && (!stack || !strcmp(stack_of(p, s), stack)))
			sum += s->values[v];
	}
	return sum;
}

static size_t exact_record(struct fx *f, uint32_t pid, uint64_t addr, uint64_t delta_ns)
{
	uint64_t u[] = { addr };
	size_t size = sample(pid, NULL, 0, u, 1, NULL, 0);
	ev.period = 10; /* equal weights: equal shares */
	ev.delta_ns = delta_ns;
	return (size_t)record(f, size);
}

static void unsampled(struct profile_unsampled_event *u, uint32_t pid, uint32_t tid,
		      uint64_t ns)
{
	memset(u, 0, sizeof(*u));
	u->hdr.type = PROFILE_EVENT_UNSAMPLED;
	u->hdr.pid = pid;
	u->hdr.tid = tid;
	u->unsampled.pid = pid;
	u->unsampled.tid = tid;
	u->unsampled.unsampled_ns = ns;
	memcpy(u->unsampled.group_comm, "short", 6);
}

static void test_exact_cpu_apportioned(void **state)
{
	(void)state;
	struct aggregate_opts o = { .user_frames = 1, .period_is_ns = 1, .exact_cpu = true,
				    .on_sample = on_sample, .on_sample_ctx = &seen_samples };
	struct fx f;
	fx_open(&f, &o);
	seen_samples = 0;
	seen_exact_ns = 0;
	uint32_t me = (uint32_t)getpid(), other = 4000000 + 7; /* a pid no process has */
	assert_int_equal(exact_record(&f, me, fn_addr(agg_test_leaf), 1000), 0);
	assert_int_equal(exact_record(&f, me, fn_addr(agg_test_root), 3000), 0);
	/* Until apportioned, samples weigh their period. */
	assert_int_equal(cpu_of(f.p, me, NULL), 20);
	/* CPU time no sample took: credited to the process; one that has no
	 * sample gets an [unsampled] one (its process name, values 0). */
	struct unsampled_record r = { .tid = me, .pid = me, .unsampled_ns = 1000 };
	assert_int_equal(aggregator__add_unsampled(f.a, &r), 0);
	struct profile_unsampled_event ue;
	unsampled(&ue, other, other + 1, 5000); /* not its leader: the pid lives on */
	assert_int_equal(aggregator__record(f.a, &ue, sizeof(ue)), 0);
	/* An exit's tail (task counts record) goes the same way. */
	struct profile_task_counts_event tc = { .hdr = { .type = PROFILE_EVENT_TASK_COUNTS,
							 .pid = other, .tid = other + 2 } };
	tc.unsampled = ue.unsampled;
	tc.unsampled.unsampled_ns = 1000;
	assert_int_equal(aggregator__record(f.a, &tc, sizeof(tc)), 0);
	/* Nothing to credit: ignored. */
	struct unsampled_record zero = { .pid = me };
	assert_int_equal(aggregator__add_unsampled(f.a, &zero), 0);
	const struct profile_sample *s = find(f.p, CPU_UNSAMPLED_FRAME);
	assert_int_equal(s->pid, other);
	assert_string_equal(profile__str(f.p, s->comm), "short");
	assert_int_equal(value_of(f.p, s, "samples"), 0);
	assert_int_equal(profile__sample_count(f.p), 3); /* me has samples: no [unsampled] */
	assert_int_equal(stats(&f).unsampled_ns, 7000);
	assert_int_equal(seen_exact_ns, 1000 + 3000 + 1000 + 5000 + 1000);

	assert_int_equal(aggregator__apportion(f.a), 0);
	/* Each process sums to its exact total; me's two stacks keep equal shares. */
	assert_int_equal(cpu_of(f.p, me, NULL), 5000);
	assert_int_equal(cpu_of(f.p, me, "agg_test_leaf"), 2500);
	assert_int_equal(cpu_of(f.p, other, CPU_UNSAMPLED_FRAME), 6000);
	/* The totals start again: nothing more to apportion. */
	assert_int_equal(aggregator__apportion(f.a), 0);
	assert_int_equal(cpu_of(f.p, me, NULL), 5000);
	fx_close(&f);
}

static void test_reused_pid_keeps_its_time(void **state)
{
	(void)state;
	struct aggregate_opts o = { .user_frames = 1, .period_is_ns = 1, .exact_cpu = true };
	struct fx f;
	fx_open(&f, &o);
	uint32_t pid = (uint32_t)getpid();
	assert_int_equal(exact_record(&f, pid, fn_addr(agg_test_leaf), 1000), 0);
	/* Its leader freed: the process is over, the pid free. */
	struct profile_unsampled_event ue;
	unsampled(&ue, pid, pid, 500);
	assert_int_equal(aggregator__record(f.a, &ue, sizeof(ue)), 0);
	/* A new process with the same pid: its time is its own. */
	assert_int_equal(exact_record(&f, pid, fn_addr(agg_test_root), 3000), 0);
	assert_int_equal(aggregator__apportion(f.a), 0);
	assert_int_equal(cpu_of(f.p, pid, "agg_test_leaf"), 1500);
	assert_int_equal(cpu_of(f.p, pid, "agg_test_root"), 3000);
	fx_close(&f);
}

static void test_counts_table_takes_exits(void **state)
{
	(void)state;
	struct counts_table *t = counts_table__new();
	assert_non_null(t);
	struct aggregate_opts o = { .user_frames = 1, .period_is_ns = 1, .exact_cpu = true,
				    .counts = t };
	struct fx f;
	fx_open(&f, &o);
	uint32_t me = (uint32_t)getpid();
	assert_int_equal(exact_record(&f, me, fn_addr(agg_test_leaf), 1000), 0);
	struct profile_task_counts_event tc = { .hdr = { .type = PROFILE_EVENT_TASK_COUNTS,
							 .pid = me, .tid = me } };
	tc.counts.pid = me;
	tc.counts.cpu_ns = 123456;
	assert_int_equal(aggregator__record(f.a, &tc, sizeof(tc)), 0);
	/* Unsampled records are for the totals the aggregator keeps: ignored. */
	struct profile_unsampled_event ue;
	unsampled(&ue, me, me, 500);
	assert_int_equal(aggregator__record(f.a, &ue, sizeof(ue)), 0);
	assert_int_equal(aggregator__add_unsampled(f.a, &ue.unsampled), 0);
	assert_int_equal(aggregator__apportion(f.a), 0); /* the caller's table does it */
	assert_int_equal(cpu_of(f.p, me, NULL), 10);
	assert_int_equal(counts_table__apportion(t, f.p), 0);
	assert_int_equal(cpu_of(f.p, me, NULL), 123456);
	assert_int_equal(stats(&f).unsampled_ns, 0);
	fx_close(&f);
	counts_table__free(t);
}

/* Adds a thread's final counts to t. */
static void thread_counts(struct counts_table *t, uint32_t pid, uint32_t tid, const char *comm,
			  uint64_t cpu_ns, uint64_t instructions, uint64_t cycles)
{
	struct task_counts c = { .pid = pid, .cpu_ns = cpu_ns,
				 .counters = { instructions, cycles } };
	snprintf(c.comm, sizeof(c.comm), "%s", comm);
	assert_int_equal(counts_table__add(t, tid, &c), 0);
}

static void test_counts_table_outputs(void **state)
{
	(void)state;
	struct counts_table *t = counts_table__new();
	assert_non_null(t);
	thread_counts(t, 10, 10, "web", 2000000000, 4000, 2000);
	thread_counts(t, 10, 11, "web-worker", 1000000000, 2000, 1000);
	thread_counts(t, 20, 21, "batch-1", 5000000000, 1000, 1000);
	/* A tid added twice keeps the larger totals; reused by another process:
	 * the new one wins. */
	thread_counts(t, 10, 11, "web-worker", 500000000, 1, 1);
	thread_counts(t, 30, 31, "reused", 1, 0, 0);
	thread_counts(t, 30, 31, "reused", 1000000, 0, 0);

	struct counts_units u = { .instructions = true, .cycles = true,
				  .primary_event = "instructions", .reason = "PMU \"here\"" };
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	assert_non_null(out);
	counts_table__print_top(t, out, 2, &u);
	fclose(out);
	/* Largest first, the process named by its leader, IPC = instr / cycles. */
	const char *batch = strstr(text, "batch-1"), *web = strstr(text, "web ");
	if (!batch || !web || batch > web || strstr(text, "reused"))
		fail_msg("top table:\n%s", text);
	assert_non_null(strstr(text, "IPC"));
	assert_non_null(strstr(text, "3.000")); /* web: 3 s */
	assert_non_null(strstr(text, "2.00"));  /* web: 6000 / 3000 */
	free(text);

	/* JSON: units, processes with threads, per-tag breakdown of p. */
	struct profile *p = profile__new();
	assert_non_null(p);
	assert_int_equal(profile__add_value_type(p, "samples", "count"), 0);
	assert_int_equal(profile__add_value_type(p, "cpu", "nanoseconds"), 1);
	assert_int_equal(profile__add_value_type(p, "instructions", "count"), 2);
	uint32_t frame;
	struct frame_desc d = { .kind = FRAME_NATIVE, .name = "f" };
	assert_int_equal(profile__add_frame(p, &d, &frame), 0);
	const char *keys[] = { "endpoint" }, *vals[] = { "/a" }, *vals2[] = { "/b" };
	uint64_t v1[3] = { 2, 300, 7 }, v2[3] = { 1, 100, 5 };
	struct sample_desc sd = { .frames = &frame, .nframes = 1, .pid = 10, .tid = 10,
				  .label_keys = keys, .label_values = vals, .nlabels = 1,
				  .values = v1 };
	assert_int_equal(profile__add_sample(p, &sd), 0);
	sd.label_values = vals2;
	sd.values = v2;
	assert_int_equal(profile__add_sample(p, &sd), 0);
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(counts_table__write_json(t, p, &u, out), 0);
	fclose(out);
	const char *want[] = {
		"\"counter_event\": \"instructions\"", "\"reason\": \"PMU \\\"here\\\"\"",
		"{\"pid\": 20, \"comm\": \"batch-1\", \"cpu_ns\": 5000000000, "
		"\"instructions\": 1000, \"cycles\": 1000",
		"{\"tid\": 11, \"comm\": \"web-worker\", \"cpu_ns\": 1000000000",
		"\"pid\": 30, \"comm\": \"reused\", \"cpu_ns\": 1000000",
		"\"statistical\": true",
		"\"/a\": {\"samples\": 2, \"cpu_ns\": 300, \"instructions\": 7}",
		"\"/b\": {\"samples\": 1, \"cpu_ns\": 100, \"instructions\": 5}",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(text, want[i]))
			fail_msg("no %s in\n%s", want[i], text);
	free(text);

	/* The software stand-in: no instruction counts, its own value. */
	struct counts_units sw = { .primary_event = "cpu-clock" };
	out = open_memstream(&text, &len);
	assert_non_null(out);
	assert_int_equal(counts_table__write_json(t, NULL, &sw, out), 0);
	counts_table__print_top(t, out, 10, &sw);
	fclose(out);
	assert_non_null(strstr(text, "\"instructions\": null"));
	assert_non_null(strstr(text, "\"counter_value\": 1000"));
	assert_non_null(strstr(text, "\"by\": {}"));
	assert_null(strstr(text, "IPC"));
	free(text);
	profile__free(p);
	counts_table__free(t);
}

static void test_set_profile(void **state)
{
	(void)state;
	struct aggregate_opts o = { .user_frames = 1, .ns_per_sample = 1, .exact_cpu = true,
				    .instructions = true };
	struct fx f;
	fx_open(&f, &o);
	/* A fresh profile gets the value types... */
	struct profile *next = profile__new();
	assert_non_null(next);
	assert_int_equal(aggregator__set_profile(f.a, next), 0);
	assert_int_equal(profile__value_count(next), 3);
	assert_string_equal(profile__value_type(next, 2), "instructions");
	uint64_t u[] = { fn_addr(agg_test_leaf) };
	assert_int_equal(record(&f, sample((uint32_t)getpid(), NULL, 0, u, 1, NULL, 0)), 0);
	assert_int_equal(profile__sample_count(next), 1);
	assert_int_equal(profile__sample_count(f.p), 0);
	/* ...one of other types is refused and changes nothing. */
	struct profile *odd = profile__new();
	assert_non_null(odd);
	assert_int_equal(profile__add_value_type(odd, "samples", "count"), 0);
	assert_int_equal(aggregator__set_profile(f.a, odd), -EINVAL);
	assert_int_equal(record(&f, sample((uint32_t)getpid(), NULL, 0, u, 1, NULL, 0)), 0);
	assert_int_equal(profile__total(next, 0), 2);
	/* A profile with value types already and samples: refused at creation. */
	struct profile *full = profile__new();
	assert_non_null(full);
	uint32_t frame;
	struct frame_desc d = { .kind = FRAME_SPECIAL, .name = "x" };
	assert_int_equal(profile__add_frame(full, &d, &frame), 0);
	assert_int_equal(profile__add_value_type(full, "a", "b"), 0);
	uint64_t v[1] = { 1 };
	struct sample_desc sd = { .frames = &frame, .nframes = 1, .values = v };
	assert_int_equal(profile__add_sample(full, &sd), 0);
	/* (one type, not empty: used as it is, and later swaps must match it) */
	struct aggregator *a2 = aggregator__new(full, f.sym, &o);
	assert_non_null(a2);
	assert_int_equal(aggregator__set_profile(a2, next), -EINVAL);
	aggregator__free(a2);
	aggregator__free(NULL);
	profile__free(odd);
	profile__free(full);
	fx_close(&f);
	profile__free(next);
}

static const char *label(const struct profile *p, const struct profile_sample *s, const char *k)
{
	return profile__sample_label(p, s, k);
}

static char seen_window_buf[24];
static const char *seen_window; /* seen_window_buf once a window was seen */

/* on_sample: a sample's labels have unique keys; remembers its window. */
static void check_labels_unique(void *ctx, const struct profile *p, const struct sample_desc *s,
				uint64_t exact_cpu_ns)
{
	(void)ctx;
	(void)p;
	(void)exact_cpu_ns;
	for (uint32_t i = 0; i < s->nlabels; i++) {
		for (uint32_t j = i + 1; j < s->nlabels; j++)
			if (strcmp(s->label_keys[i], s->label_keys[j]) == 0)
				fail_msg("label %s twice (%s, %s)", s->label_keys[i],
					 s->label_values[i], s->label_values[j]);
		if (strcmp(s->label_keys[i], "window") == 0) {
			snprintf(seen_window_buf, sizeof(seen_window_buf), "%s",
				 s->label_values[i]);
			seen_window = seen_window_buf;
		}
	}
}

static void test_windows_label_samples(void **state)
{
	(void)state;
	struct tag_registry *tags = tag_registry__new(NULL);
	assert_non_null(tags);
	struct aggregate_opts o = { .user_frames = 1, .ns_per_sample = 1, .exact_cpu = true,
				    .window_ns = 1000000000, .window_origin_ns = 5000000000,
				    .tags = tags };
	struct fx f;
	fx_open(&f, &o);
	/* The process sets its own `window` tag: replaced by the time slot. */
	char *envp[] = { "DYNOPROF_TAGS=window=mine,team=a", NULL };
	pid_t child = spawn_env(envp);
	uint64_t u[] = { 0x10 };
	size_t size = sample((uint32_t)child, NULL, 0, u, 1, NULL, 0);
	ev.hdr.time_ns = 7500000000;
	assert_int_equal(record(&f, size), 0);
	const struct profile_sample *s = find(f.p, "[unknown]");
	assert_string_equal(label(f.p, s, "window"), "2");
	assert_string_equal(label(f.p, s, "team"), "a");
	assert_int_equal(stats(&f).window_tags_replaced, 1);
	assert_int_equal(stats(&f).tagged_samples, 1);
	/* Before the origin: window 0. */
	size = sample((uint32_t)child, NULL, 0, u, 1, NULL, 0);
	ev.hdr.time_ns = 1;
	assert_int_equal(record(&f, size), 0);
	assert_int_equal(profile__sample_count(f.p), 2);
	/* Request counts: "[requests]", only the requests value, the process's
	 * tags, the endpoint and the window of now. */
	assert_int_equal(aggregator__add_requests(f.a, child, "/checkout", 42, 6000000001), 0);
	s = find(f.p, "[requests]");
	assert_int_equal(value_of(f.p, s, "requests"), 42);
	assert_int_equal(value_of(f.p, s, "samples"), 0);
	assert_int_equal(value_of(f.p, s, "cpu"), 0);
	assert_string_equal(label(f.p, s, "endpoint"), "/checkout");
	assert_string_equal(label(f.p, s, "window"), "1");
	assert_string_equal(label(f.p, s, "team"), "a");
	/* [unsampled] of a process: its tags and the window of now. */
	struct unsampled_record r = { .tid = (uint32_t)child, .pid = (uint32_t)child,
				      .unsampled_ns = 9 };
	struct aggregate_opts o2 = o;
	o2.window_origin_ns = mono_ns(); /* now is in window 0 (of an hour: */
	o2.window_ns = 3600000000000ull;  /* however slow this machine is) */
	o2.on_sample = check_labels_unique;
	struct fx g;
	fx_open(&g, &o2);
	seen_window = NULL;
	assert_int_equal(aggregator__add_unsampled(g.a, &r), 0);
	s = find(g.p, CPU_UNSAMPLED_FRAME);
	assert_string_equal(label(g.p, s, "window"), "0");
	assert_string_equal(label(g.p, s, "team"), "a");
	/* The live queries see the same labels: one window, the time slot's;
	 * the process's own was replaced, and counted. */
	assert_non_null(seen_window);
	assert_string_equal(seen_window, "0");
	assert_int_equal(stats(&g).window_tags_replaced, 1);
	/* Its leader freed: the process is over; its tags are read again for
	 * whatever has the pid next (a fork with no exec to tell). */
	struct profile_unsampled_event ue;
	unsampled(&ue, (uint32_t)child, (uint32_t)child, 5);
	assert_int_equal(aggregator__record(g.a, &ue, sizeof(ue)), 0);
	assert_int_equal(stats(&g).unsampled_ns, 9 + 5);
	fx_close(&g);
	fx_close(&f);

	/* Request counts need tags (the requests value type). */
	o.tags = NULL;
	fx_open(&f, &o);
	assert_int_equal(aggregator__add_requests(f.a, child, "/x", 1, 0), -EINVAL);
	fx_close(&f);
	reap(child);
	tag_registry__free(tags);
}

static void test_tags_torn_and_budget(void **state)
{
	(void)state;
	/* More environment tags than the budget takes. */
	char many[512];
	size_t n = (size_t)snprintf(many, sizeof(many), "DYNOPROF_TAGS=");
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "%sk%02d=v", i ? "," : "", i);
	char *envp[] = { "DYNOPROF_SERVICE=svc", many, NULL };
	pid_t child = spawn_env(envp);
	struct tag_registry *tags = tag_registry__new(NULL);
	assert_non_null(tags);
	char spec[] = "django";
	struct endpoint_rule rule;
	assert_int_equal(endpoint_rule__parse(spec, &rule), 0);
	/* (the rule finds no Python frames here: the labels stay as they are) */
	struct aggregate_opts o = { .user_frames = 1, .ns_per_sample = 1, .tags = tags,
				    .window_ns = 1000, .endpoint_rule = &rule };
	struct fx f;
	fx_open(&f, &o);
	uint64_t u[] = { 0x10 };
	/* The thread was writing its tags (odd seq): its own are dropped, the
	 * process's stay; counted. */
	size_t size = sample((uint32_t)child, NULL, 0, u, 1, NULL, 0);
	ev.tag_status = TAG_READ_RACE;
	ev.tag_count = 1;
	ev.tags[0] = (struct dynotag_pair){ DYNOTAG_ID_ENDPOINT, 3 };
	assert_int_equal(record(&f, size), 0);
	const struct profile_sample *s = find(f.p, "[unknown]");
	/* 16 environment labels (service first) + the window: the reserved slot. */
	assert_int_equal(s->nlabels, TAG_MAX_ENV_LABELS + 1);
	assert_string_equal(label(f.p, s, "service"), "svc");
	assert_non_null(label(f.p, s, "window"));
	assert_null(label(f.p, s, "endpoint"));
	assert_null(label(f.p, s, "k19"));
	struct aggregate_stats st = stats(&f);
	assert_int_equal(st.tag_races, 1);
	assert_int_equal(st.tagged_samples, 1);
	struct tag_registry_stats ts;
	tag_registry__stats(tags, &ts);
	assert_int_equal(ts.env_dropped, 21 - TAG_MAX_ENV_LABELS);
	/* An unreadable record, and thread tags whose strings cannot be read
	 * (no libdynotag in the process): the labels are dropped, never guessed. */
	size = sample((uint32_t)child, NULL, 0, u, 1, NULL, 0);
	ev.tag_status = TAG_READ_ERROR;
	assert_int_equal(record(&f, size), 0);
	size = sample((uint32_t)child, NULL, 0, u, 1, NULL, 0);
	ev.tag_status = TAG_READ_OK;
	ev.tag_count = DYNOTAG_MAX_TAGS + 5; /* more than the record holds */
	for (int i = 0; i < DYNOTAG_MAX_TAGS; i++)
		ev.tags[i] = (struct dynotag_pair){ 100 + (uint32_t)i, 200 + (uint32_t)i };
	assert_int_equal(record(&f, size), 0);
	assert_int_equal(profile__sample_count(f.p), 1);
	assert_int_equal(profile__total(f.p, 0), 3);
	assert_int_equal(stats(&f).tag_races, 1);
	/* The full budget leaves room for the endpoint of request counts. */
	assert_int_equal(aggregator__add_requests(f.a, child, "/a", 1, 0), 0);
	s = find(f.p, "[requests]");
	assert_int_equal(s->nlabels, TAG_MAX_ENV_LABELS + 2);
	assert_string_equal(label(f.p, s, "endpoint"), "/a");
	assert_string_equal(label(f.p, s, "window"), "0");

	/* A short-lived process gone before its environment was read: its
	 * parent's tags (ppid). */
	pid_t gone = spawn_env(NULL);
	reap(gone);
	size = sample((uint32_t)gone, NULL, 0, u, 1, NULL, 0);
	ev.ppid = (uint32_t)child;
	assert_int_equal(record(&f, size), 0);
	int inherited = 0;
	for (size_t i = 0; i < profile__sample_count(f.p); i++)
		if (profile__sample(f.p, i)->pid == (uint32_t)gone) {
			assert_string_equal(label(f.p, profile__sample(f.p, i), "service"), "svc");
			inherited = 1;
		}
	assert_true(inherited);

	/* A leader's exit noted before anything else of its process: its memory
	 * is gone by then, so it gets its parent's environment (as a read would
	 * have ended) without reading; a process seen before keeps its own. */
	char *own_env[] = { "DYNOPROF_SERVICE=own", NULL };
	pid_t exiting = spawn_env(own_env);
	assert_int_equal(tag_registry__note_leader_exit(tags, exiting), 0);
	struct tag_labels tl;
	assert_int_equal(tag_registry__labels_inherit(tags, exiting, child, TAG_READ_NONE, NULL, 0,
						      &tl), 0);
	assert_true(tl.count >= 1);
	assert_string_equal(tl.keys[0], "service");
	assert_string_equal(tl.values[0], "svc");
	assert_int_equal(tag_registry__note_leader_exit(tags, child), 0);
	assert_int_equal(tag_registry__labels_inherit(tags, child, exiting, TAG_READ_NONE, NULL, 0,
						      &tl), 0);
	assert_string_equal(tl.values[0], "svc");
	reap(exiting);
	fx_close(&f);
	tag_registry__free(tags);
	reap(child);
}

/* ---- Python ----------------------------------------------------------------- */

/* The CPython the Python test runs: python3 on PATH (a supported 3.8-3.13).
 * It prints its code objects' addresses (id() is the address in CPython)
 * and first lines, and the address of a libc function, then waits. */
static const char py_script[] =
	"import ctypes, sys, time\n"
	"def dispatch():\n"
	"    view()\n"
	"def view():\n"
	"    pass\n"
	"libc = ctypes.CDLL(None)\n"
	"addr = ctypes.cast(libc.getpid, ctypes.c_void_p).value\n"
	"def caf\u00e9_\u03bb_\u6f22_\U00020000():\n"
	"    pass\n"
	"u = caf\u00e9_\u03bb_\u6f22_\U00020000.__code__\n"
	"print(id(dispatch.__code__), dispatch.__code__.co_firstlineno,\n"
	"      id(view.__code__), view.__code__.co_firstlineno, addr,\n"
	"      id(u), u.co_firstlineno, flush=True)\n"
	"time.sleep(60)\n";

/* The start of the interpreter's executable mapping in pid (module path). */
static uint64_t interpreter_text(pid_t pid, const char *interpreter)
{
	char path[64], line[4400], perm[8], file[4096];
	unsigned long long start, end;
	uint64_t found = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx-%llx %7s %*s %*s %*s %4095s", &start, &end, perm, file) == 4 &&
		    perm[2] == 'x' && strcmp(file, interpreter) == 0)
			found = start + 16;
	fclose(f);
	if (!found)
		fail_msg("no executable mapping of %s in %d", interpreter, (int)pid);
	return found;
}

static uint32_t published;

static int publish_py(void *ctx, uint32_t pid, const struct py_proc *info)
{
	*(uint32_t *)ctx = info && info->runtime_addr ? pid : 0;
	return 0;
}

static int refuse_py(void *ctx, uint32_t pid, const struct py_proc *info)
{
	(void)ctx;
	(void)pid;
	return info ? -ENOSPC : 0;
}

static void test_python_frames_merged(void **state)
{
	(void)state;
	char line[256];
	char *argv[] = { "python3", "-c", (char *)py_script, NULL };
	pid_t child = spawn(argv, NULL, line, sizeof(line));
	unsigned long long dcode, vcode, libc_fn, ucode;
	int dline, vline, uline;
	assert_int_equal(sscanf(line, "%llu %d %llu %d %llu %llu %d", &dcode, &dline, &vcode,
				&vline, &libc_fn, &ucode, &uline), 7);

	struct py_registry *py = py_registry__new(NULL, NULL, 0, stderr);
	struct py_resolver *res = py_resolver__new(0, stderr);
	assert_non_null(py);
	assert_non_null(res);
	char spec[] = "frame=dispatch";
	struct endpoint_rule rule;
	assert_int_equal(endpoint_rule__parse(spec, &rule), 0);
	struct aggregate_opts o = { .user_frames = 1, .kernel_frames = 1, .ns_per_sample = 1,
				    .python = py, .py_resolver = res, .endpoint_rule = &rule };
	struct fx f;
	fx_open(&f, &o);
	struct py_process_info info;
	if (py_registry__lookup(py, child, &info) != 1)
		fail_msg("python3 on PATH (pid %d) is not a supported CPython", (int)child);
	uint64_t interp = interpreter_text(child, info.interpreter);

	/* Python frames innermost first; native: libc (what the leaf called),
	 * then the interpreter (left out). */
	struct py_frame pyf[] = { { .code = vcode, .firstlineno = vline },
				  { .code = dcode, .firstlineno = dline } };
	uint64_t u[] = { libc_fn, interp + 1, interp + 1 };
	uint64_t k[] = { ksym("schedule") };
	size_t size = sample((uint32_t)child, k, 1, u, 3, pyf, 2);
	ev.py_status = PY_WALK_OK;
	assert_int_equal(record(&f, size), 0);
	assert_int_equal(profile__sample_count(f.p), 1);
	const struct profile_sample *s = profile__sample(f.p, 0);
	const char *st = stack_of(f.p, s);
	/* <module>:dispatch;<module>:view;getpid-ish;schedule */
	assert_int_equal(s->nframes, 4);
	assert_int_equal(profile__frame(f.p, s->frames[0])->kind, FRAME_PYTHON);
	assert_int_equal(profile__frame(f.p, s->frames[1])->kind, FRAME_PYTHON);
	assert_int_equal(profile__frame(f.p, s->frames[2])->kind, FRAME_NATIVE);
	assert_int_equal(profile__frame(f.p, s->frames[3])->kind, FRAME_KERNEL);
	const char *root = profile__str(f.p, profile__frame(f.p, s->frames[0])->name);
	const char *leaf = profile__str(f.p, profile__frame(f.p, s->frames[1])->name);
	if (!strstr(root, "dispatch") || !strstr(leaf, "view"))
		fail_msg("python frames: %s", st);
	/* The endpoint the rule infers: the frame the dispatcher calls. */
	assert_string_equal(label(f.p, s, "endpoint"), leaf);
	struct aggregate_stats as = stats(&f);
	assert_int_equal(as.python_samples, 1);
	assert_int_equal(as.inferred_endpoints, 1);
	assert_int_equal(as.native_truncated, 0);

	/* A walk cut short: [truncated] at the root; a read fault midway:
	 * marked; a code object that cannot be read: an unreadable frame. */
	size = sample((uint32_t)child, NULL, 0, u + 1, 1, pyf, 2);
	ev.py_status = PY_WALK_TRUNCATED;
	assert_int_equal(record(&f, size), 0);
	char want[1024];
	snprintf(want, sizeof(want), "[truncated];%s;%s", root, leaf);
	find(f.p, want);
	size = sample((uint32_t)child, NULL, 0, u + 1, 1, pyf + 1, 1);
	ev.py_status = PY_WALK_READ_ERROR;
	assert_int_equal(record(&f, size), 0);
	snprintf(want, sizeof(want), "[python: stack partly unreadable];%s", root);
	find(f.p, want);
	/* 3.12+: a chain caught mid-update (ended short of its entry shim) is cut
	 * like a deep one, [truncated] at the root, and counted apart. */
	size = sample((uint32_t)child, NULL, 0, u + 1, 1, pyf, 1);
	ev.py_status = PY_WALK_TORN;
	assert_int_equal(record(&f, size), 0);
	snprintf(want, sizeof(want), "[truncated];%s", leaf);
	find(f.p, want);
	struct py_frame bad = { .code = 0x10, .firstlineno = 1 };
	size = sample((uint32_t)child, NULL, 0, u + 1, 1, &bad, 1);
	ev.py_status = PY_WALK_OK;
	assert_int_equal(record(&f, size), 0);
	find(f.p, "[python: unreadable frame]");
	/* An unresolvable native frame ends the chain (no frame pointers). */
	uint64_t garbage[] = { libc_fn, 0x10, libc_fn + 1 };
	size = sample((uint32_t)child, NULL, 0, garbage, 3, pyf + 1, 1);
	assert_int_equal(record(&f, size), 0);
	snprintf(want, sizeof(want), "%s;%s", root, profile__str(f.p,
		 profile__frame(f.p, profile__sample(f.p, 0)->frames[2])->name));
	find(f.p, want);
	as = stats(&f);
	assert_int_equal(as.python_samples, 6);
	assert_int_equal(as.python_truncated, 1);
	assert_int_equal(as.python_torn, 1);
	assert_int_equal(as.python_read_errors, 1);

	/* BPF keeps PY_NATIVE_FRAMES native frames of a Python process: a chain
	 * that long never reached the interpreter, frames are missing. */
	uint64_t chain[PY_NATIVE_FRAMES];
	for (int i = 0; i < PY_NATIVE_FRAMES; i++)
		chain[i] = libc_fn + (i > 0);
	size = sample((uint32_t)child, NULL, 0, chain, PY_NATIVE_FRAMES, pyf + 1, 1);
	assert_int_equal(record(&f, size), 0);
	assert_int_equal(stats(&f).native_truncated, 1);
	/* Without Python frames (not in Python code): the same cap. */
	size = sample((uint32_t)child, NULL, 0, chain, PY_NATIVE_FRAMES, NULL, 0);
	assert_int_equal(record(&f, size), 0);
	assert_int_equal(stats(&f).native_truncated, 2);
	fx_close(&f);

	/* With lines: the same frames carry their file and line. */
	o.endpoint_rule = NULL;
	o.python_lines = 1;
	fx_open(&f, &o);
	size = sample((uint32_t)child, NULL, 0, u + 1, 1, pyf, 2);
	ev.py_status = PY_WALK_OK;
	assert_int_equal(record(&f, size), 0);
	s = profile__sample(f.p, 0);
	assert_int_equal(s->nframes, 2);
	const struct profile_frame *pf = profile__frame(f.p, s->frames[1]);
	if (!strstr(profile__str(f.p, pf->name), "view"))
		fail_msg("python frame with lines: %s", stack_of(f.p, s));
	/* Names beyond ASCII (code points of 2, 3 and 4 UTF-8 bytes) come out as UTF-8. */
	struct py_frame uf = { .code = ucode, .firstlineno = uline };
	size = sample((uint32_t)child, NULL, 0, u + 1, 1, &uf, 1);
	ev.py_status = PY_WALK_OK;
	assert_int_equal(record(&f, size), 0);
	s = profile__sample(f.p, 1);
	if (!strstr(stack_of(f.p, s), "caf\xc3\xa9_\xce\xbb_\xe6\xbc\xa2_\xf0\xa0\x80\x80"))
		fail_msg("unicode name: %s", stack_of(f.p, s));
	fx_close(&f);
	/* The registry's scan of /proc finds the child among the Python
	 * processes; the summaries of what was counted instead of said. */
	assert_true(py_registry__scan(py) >= 1);
	struct py_registry_stats ps;
	py_registry__stats(py, &ps);
	assert_true(ps.python_processes >= 1);
	py_registry__summary(py, "dynoprof: ", "", 1);
	py_resolver__summary(res, "dynoprof: ", "", 1);

	/* The resolver's cache: bounded (two entries here, in two generations,
	 * least recently used dropped), a cached name used only while the
	 * sampled first line matches (an address reused after garbage
	 * collection is read again; one that no longer matches: unreadable). */
	struct py_resolver *small = py_resolver__new(2, NULL);
	assert_non_null(small);
	struct profile *cp = profile__new();
	assert_non_null(cp);
	struct py_frame all[] = { pyf[0], pyf[1], uf, pyf[0], pyf[1], uf };
	uint32_t ids[6], id;
	for (int i = 0; i < 6; i++)
		assert_int_equal(py_resolver__frame(small, child, info.layout, &all[i], 0, cp,
						    &ids[i]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ids[i], ids[i + 3]);
	struct py_frame stale = pyf[0];
	stale.firstlineno += 100;
	assert_int_equal(py_resolver__frame(small, child, info.layout, &stale, 0, cp, &id),
			 0);
	assert_string_equal(profile__str(cp, profile__frame(cp, id)->name),
			    "[python: unreadable frame]");
	assert_int_equal(py_resolver__frame(small, child, NULL, &pyf[0], 0, cp, &id),
			 0);
	assert_string_equal(profile__str(cp, profile__frame(cp, id)->name),
			    "[python: unreadable frame]");
	assert_int_equal(py_resolver__frame(small, child, info.layout, &pyf[0], 0, cp, &id),
			 0);
	assert_int_equal(id, ids[0]);
	profile__free(cp);
	py_resolver__free(small);

	/* Published for the BPF walker at detection, withdrawn at exit; a
	 * process the walker's map refuses keeps its native frames only. */
	struct py_registry *pub = py_registry__new(publish_py, &published, 0, NULL);
	assert_non_null(pub);
	published = 0;
	assert_int_equal(py_registry__lookup(pub, child, &info), 1);
	assert_int_equal(published, (uint32_t)child);
	py_registry__note_exit(pub, child);
	assert_int_equal(published, 0);
	py_registry__free(pub);
	pub = py_registry__new(refuse_py, NULL, 0, NULL);
	assert_non_null(pub);
	assert_int_equal(py_registry__lookup(pub, child, &info), 0);
	py_registry__free(pub);

	/* Exec and exit reach the registry. */
	o.python_lines = 0;
	fx_open(&f, &o);
	struct profile_task_event t = { .hdr = { .type = PROFILE_EVENT_EXEC, .pid = (uint32_t)child } };
	assert_int_equal(aggregator__record(f.a, &t, sizeof(t)), 0);
	t.hdr.type = PROFILE_EVENT_EXIT;
	assert_int_equal(aggregator__record(f.a, &t, sizeof(t)), 0);
	fx_close(&f);
	py_resolver__free(res);
	py_registry__free(py);
	reap(child);
}

static void test_python_module_names(void **state)
{
	(void)state;
	char dir[] = "/tmp/dynoprof-pymod-XXXXXX", cmd[256], path[256], out[128];
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/app/pkg/sub && touch %s/app/pkg/__init__.py "
		 "%s/app/pkg/sub/__init__.py", dir, dir, dir);
	assert_int_equal(system(cmd), 0);
	/* Each enclosing directory with an __init__.py is a package. */
	snprintf(path, sizeof(path), "%s/app/pkg/sub/views.py", dir);
	py_module_name("", path, out, sizeof(out));
	assert_string_equal(out, "pkg.sub.views");
	snprintf(path, sizeof(path), "%s/app/pkg/sub/__init__.py", dir);
	py_module_name("", path, out, sizeof(out));
	assert_string_equal(out, "pkg.sub");
	snprintf(path, sizeof(path), "%s/app/main.py", dir);
	py_module_name("", path, out, sizeof(out));
	assert_string_equal(out, "main");
	/* Looked up under a root (a container's /proc/PID/root). */
	snprintf(path, sizeof(path), "/app/pkg/views.py");
	char root[64];
	snprintf(root, sizeof(root), "%s", dir);
	py_module_name(root, path, out, sizeof(out));
	assert_string_equal(out, "pkg.views");
	/* Not a .py path: as it is. */
	py_module_name("", "<frozen importlib._bootstrap>", out, sizeof(out));
	assert_string_equal(out, "<frozen importlib._bootstrap>");
	py_module_name("", "/usr/lib/x.pyc", out, sizeof(out));
	assert_string_equal(out, "x.pyc");
	/* Cut to the room there is, never past it. */
	char small[6];
	snprintf(path, sizeof(path), "%s/app/pkg/sub/views.py", dir);
	py_module_name("", path, small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_native_stacks_root_first),
		cmocka_unit_test(test_unresolvable_and_missing_stacks),
		cmocka_unit_test(test_truncated_stacks),
		cmocka_unit_test(test_interrupt_frames_cut),
		cmocka_unit_test(test_bad_records_counted),
		cmocka_unit_test(test_exec_and_exit_noted),
		cmocka_unit_test(test_counters_weigh_samples),
		cmocka_unit_test(test_exact_cpu_apportioned),
		cmocka_unit_test(test_reused_pid_keeps_its_time),
		cmocka_unit_test(test_counts_table_takes_exits),
		cmocka_unit_test(test_counts_table_outputs),
		cmocka_unit_test(test_set_profile),
		cmocka_unit_test(test_windows_label_samples),
		cmocka_unit_test(test_tags_torn_and_budget),
		cmocka_unit_test(test_python_frames_merged),
		cmocka_unit_test(test_python_module_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
