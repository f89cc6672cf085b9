/* test_unwind_registry.c - the unwind registry against this test process
 * itself: its mappings are read, each file's table written into a row table
 * (here plain memory standing in for the BPF array the sampler maps), and the
 * process published. The published table must unwind this process's own
 * code: the row found for a function's entry (via the mapping's bias) says
 * CFA = rsp + 8, as every x86_64 function's first instruction has it. A tiny
 * budget leaves files over it, counted, walked by frame pointers. A budget
 * just full evicts the tables of a process gone for a new one's, never those
 * a live process uses. A process that exec'd is published before the host's
 * backlog, even while a table of the backlog's is being put in place.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "unwind/unwind_registry.h"

/* What the fake sampler holds. */
struct fake {
	struct unwind_row *tables[UNWIND_MAX_TABLES]; /* by slot (NULL: empty) */
	size_t sizes[UNWIND_MAX_TABLES];               /* their rows */
	size_t nrows;            /* the budget in rows */
	int drops;               /* tables dropped */
	struct unwind_proc proc; /* the last publication */
	uint32_t pid;            /* whose */
	int published;           /* publications (info != NULL) */
};

static int publish(void *ctx, uint32_t pid, const struct unwind_proc *info)
{
	struct fake *f = ctx;
	if (info) {
		f->proc = *info;
		f->pid = pid;
		f->published++;
	}
	return 0;
}

static int table_put(void *ctx, uint32_t slot, const struct unwind_row *rows, size_t n)
{
	struct fake *f = ctx;
	assert_true(slot < UNWIND_MAX_TABLES);
	assert_null(f->tables[slot]); /* a slot is emptied before reuse */
	f->tables[slot] = malloc(n * sizeof(*rows));
	assert_non_null(f->tables[slot]);
	memcpy(f->tables[slot], rows, n * sizeof(*rows));
	f->sizes[slot] = n;
	return 0;
}

static int table_drop(void *ctx, uint32_t slot)
{
	struct fake *f = ctx;
	free(f->tables[slot]);
	f->tables[slot] = NULL;
	f->sizes[slot] = 0;
	f->drops++;
	return 0;
}

static void fake_free(struct fake *f)
{
	for (size_t i = 0; i < UNWIND_MAX_TABLES; i++)
		free(f->tables[i]);
}

static const struct unwind_registry_ops ops = { publish, table_put, table_drop };

static const struct unwind_map *map_of(const struct fake *f, uint64_t pc)
{
	for (uint32_t i = 0; i < f->proc.nmaps; i++)
		if (f->proc.maps[i].start <= pc && pc < f->proc.maps[i].end)
			return &f->proc.maps[i];
	return NULL;
}

/* The row in force at pc, as the BPF walk finds it. */
static const struct unwind_row *row_at(const struct fake *f, uint64_t pc)
{
	const struct unwind_map *m = map_of(f, pc);
	if (!m || m->kind != UNWIND_MAP_CFI)
		return NULL;
	uint64_t rel = pc - m->bias;
	const struct unwind_row *found = NULL;
	assert_non_null(f->tables[m->table]);
	assert_int_equal(f->sizes[m->table], m->row_count);
	for (uint32_t i = 0; i < m->row_count; i++) {
		const struct unwind_row *r = &f->tables[m->table][i];
		if (r->pc <= rel)
			found = r;
	}
	return found;
}

static void test_self(void **state)
{
	(void)state;
	struct fake f = { .nrows = 1u << 20 };
	struct unwind_registry *r = unwind_registry__new(&ops, f.nrows, &f);
	assert_non_null(r);
	unwind_registry__note_sample(r, getpid(), 0);
	unwind_registry__note_sample(r, getpid(), 0); /* once is enough */
	unwind_registry__drain(r);
	assert_int_equal(f.published, 1);
	assert_int_equal(f.pid, (uint32_t)getpid());
	assert_true(f.proc.nmaps >= 3);
	for (uint32_t i = 1; i < f.proc.nmaps; i++)
		assert_true(f.proc.maps[i - 1].start < f.proc.maps[i].start);

	/* Function entries in this executable (PIE) and in libc. */
	const uint64_t entries[] = { (uint64_t)(uintptr_t)test_self,
				     (uint64_t)(uintptr_t)dlsym(RTLD_DEFAULT, "getpid") };
	for (size_t i = 0; i < 2; i++) {
		const struct unwind_row *row = row_at(&f, entries[i]);
		assert_non_null(row);
		assert_int_equal(row->kind & UNWIND_CFA_MASK, UNWIND_CFA_RSP);
		assert_int_equal(row->cfa_off, 8);
	}
	/* The vdso is published with its own table. */
	uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
	const struct unwind_map *vm = map_of(&f, vdso + 0x100);
	assert_non_null(vm);
	assert_int_equal(vm->kind, UNWIND_MAP_CFI);

	struct unwind_registry_stats st;
	unwind_registry__stats(r, &st);
	assert_true(st.files_cfi >= 2);
	assert_int_equal(st.files_over_budget, 0);
	assert_true(st.rows_used > 1000 && st.rows_used <= f.nrows);

	/* A publication has a number of its own (BPF's rule cache keys on it);
	 * the same mappings read again keep it. */
	uint32_t gen = f.proc.gen;
	assert_int_not_equal(gen, 0);
	unwind_registry__note_sample(r, getpid(), 1); /* a miss: read again */
	unwind_registry__drain(r);
	assert_int_equal(f.published, 2);
	assert_int_equal(f.proc.gen, gen);

	/* Gone: withdrawn; a new sample queues it again, under a new number. */
	unwind_registry__note_exit(r, getpid());
	unwind_registry__note_sample(r, getpid(), 0);
	unwind_registry__drain(r);
	assert_int_equal(f.published, 3);
	assert_int_not_equal(f.proc.gen, 0);
	assert_int_not_equal(f.proc.gen, gen);
	unwind_registry__stats(r, &st);
	assert_int_equal(st.files_shared + st.files_cfi, st.files_cfi); /* all cached by inode */
	unwind_registry__free(r);
	fake_free(&f);
}

static void test_budget(void **state)
{
	(void)state;
	struct fake f = { .nrows = 64 }; /* no real file fits */
	struct unwind_registry *r = unwind_registry__new(&ops, f.nrows, &f);
	assert_non_null(r);
	unwind_registry__note_sample(r, getpid(), 0);
	unwind_registry__drain(r);
	struct unwind_registry_stats st;
	unwind_registry__stats(r, &st);
	assert_true(st.files_over_budget >= 2);
	assert_true(st.rows_used <= 64);
	/* Files over the budget are walked by frame pointers. */
	const struct unwind_map *m = map_of(&f, (uint64_t)(uintptr_t)test_budget);
	assert_non_null(m);
	assert_int_equal(m->kind, UNWIND_MAP_FP);
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	unwind_registry__summary(r, out, "dynoprof");
	fclose(out);
	assert_non_null(strstr(text, "over the table budget"));
	free(text);
	unwind_registry__free(r);
	fake_free(&f);
}

static void test_gone_process(void **state)
{
	(void)state;
	struct fake f = { .nrows = 1024 };
	struct unwind_registry *r = unwind_registry__new(&ops, f.nrows, &f);
	assert_non_null(r);
	unwind_registry__note_sample(r, 0x3fffffff, 0); /* no such process */
	unwind_registry__drain(r);
	assert_int_equal(f.published, 0);
	unwind_registry__free(r);
	unwind_registry__free(NULL);
	fake_free(&f);
}

/* A child running `prog 1000` (an executable this process does not map),
 * once it has exec'd and its libraries are mapped. */
static pid_t spawn_stopped(const char *prog)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		execl(prog, prog, "1000", (char *)NULL);
		_exit(127);
	}
	/* Until the exec has happened (its mappings are prog's). */
	char exe[64], target[4096];
	snprintf(exe, sizeof(exe), "/proc/%d/exe", (int)pid);
	for (int i = 0; i < 2000; i++) {
		ssize_t n = readlink(exe, target, sizeof(target) - 1);
		if (n > 0 && (target[n] = 0, strstr(target, prog + 5)))
			break;
		usleep(1000);
	}
	usleep(50000); /* the dynamic linker maps the libraries */
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_eviction(void **state)
{
	(void)state;
	/* How many rows this process's files take. */
	struct fake f = { .nrows = 1u << 22 };
	struct unwind_registry *r = unwind_registry__new(&ops, f.nrows, &f);
	assert_non_null(r);
	unwind_registry__note_sample(r, getpid(), 0);
	unwind_registry__drain(r);
	struct unwind_registry_stats st;
	unwind_registry__stats(r, &st);
	size_t mine = st.rows_used;
	unwind_registry__free(r);
	fake_free(&f);

	/* A budget just full with them: sleep's own table needs room. */
	struct fake g = { .nrows = mine };
	r = unwind_registry__new(&ops, g.nrows, &g);
	assert_non_null(r);
	unwind_registry__note_sample(r, getpid(), 0);
	unwind_registry__drain(r);
	pid_t child = spawn_stopped("/bin/sleep");
	unwind_registry__note_sample(r, child, 0);
	unwind_registry__drain(r);
	unwind_registry__stats(r, &st);
	/* This process lives: nothing of its is evicted, sleep's is over. */
	assert_int_equal(st.evictions, 0);
	assert_true(st.files_over_budget >= 1);
	assert_int_equal(g.drops, 0);

	/* Gone: its tables make room for sleep's, tried again on a rescan. */
	unwind_registry__note_exit(r, getpid());
	unwind_registry__note_exit(r, child);
	unwind_registry__note_sample(r, child, 0);
	unwind_registry__drain(r);
	unwind_registry__stats(r, &st);
	assert_true(st.evictions >= 1);
	assert_int_equal(g.drops, (int)st.evictions);
	assert_true(st.rows_used <= g.nrows);
	assert_int_equal(g.pid, (uint32_t)child);
	/* sleep's own text mapping is unwound by CFI now. */
	int cfi = 0;
	for (uint32_t i = 0; i < g.proc.nmaps; i++)
		cfi += g.proc.maps[i].kind == UNWIND_MAP_CFI;
	assert_true(cfi >= 3); /* sleep, libc, ld.so (and the vdso) */
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);
	unwind_registry__summary(r, out, "dynoprof");
	fclose(out);
	assert_non_null(strstr(text, "evicted to make room"));
	free(text);
	reap(child);
	unwind_registry__free(r);
	fake_free(&g);
}

/* A fake whose table_put can be held (the builder caught placing a table)
 * and which lists the pids published, in order. */
struct held {
	struct fake f;          /* the tables */
	pthread_mutex_t lock;   /* guards what follows */
	pthread_cond_t cond;    /* changes of what follows */
	int hold;               /* 1: the next table_put waits; 2: it waits now */
	uint32_t order[16];     /* pids published, in order */
	int norder;             /* entries in order */
};

static int held_publish(void *ctx, uint32_t pid, const struct unwind_proc *info)
{
	struct held *h = ctx;
	pthread_mutex_lock(&h->lock);
	if (info && h->norder < 16)
		h->order[h->norder++] = pid;
	pthread_mutex_unlock(&h->lock);
	return publish(&h->f, pid, info);
}

static int held_put(void *ctx, uint32_t slot, const struct unwind_row *rows, size_t n)
{
	struct held *h = ctx;
	pthread_mutex_lock(&h->lock);
	if (h->hold == 1) {
		h->hold = 2;
		pthread_cond_broadcast(&h->cond);
		while (h->hold == 2)
			pthread_cond_wait(&h->cond, &h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return table_put(&h->f, slot, rows, n);
}

static int held_drop(void *ctx, uint32_t slot)
{
	return table_drop(&((struct held *)ctx)->f, slot);
}

static const struct unwind_registry_ops HELD_OPS = { held_publish, held_put, held_drop };

/* A fake sampler whose table puts can be held (budget 4M rows). */
static struct held *held_new(void)
{
	struct held *h = calloc(1, sizeof(*h));
	assert_non_null(h);
	h->f.nrows = 1u << 22;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	return h;
}

static void held_free(struct held *h)
{
	fake_free(&h->f);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

static int order_of(struct held *h, uint32_t pid)
{
	for (int i = 0; i < h->norder; i++)
		if (h->order[i] == pid)
			return i;
	return -1;
}

static void test_new_process_first(void **state)
{
	(void)state;
	struct held *h = held_new();
	/* Two children of a program this process does not map: one running
	 * since before (the backlog), one that exec'd while tracked. */
	pid_t old = spawn_stopped("/bin/sleep"), new = spawn_stopped("/bin/sleep");
	struct unwind_registry *r = unwind_registry__new(&HELD_OPS, h->f.nrows, h);
	assert_non_null(r);
	unwind_registry__drain(r); /* the vdso's table is built */

	/* The builder puts this process's first table in place, and waits
	 * there. */
	pthread_mutex_lock(&h->lock);
	h->hold = 1;
	pthread_mutex_unlock(&h->lock);
	unwind_registry__note_sample(r, getpid(), 0);
	pthread_mutex_lock(&h->lock);
	while (h->hold != 2)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
	/* Meanwhile: the old process's first sample, then the new one's exec
	 * and first sample. */
	unwind_registry__note_sample(r, old, 0);
	unwind_registry__note_exec(r, new);
	unwind_registry__note_sample(r, new, 0);
	pthread_mutex_lock(&h->lock);
	h->hold = 0;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	unwind_registry__drain(r);

	/* The new process first (its builds before this one's), then the
	 * others, whole (the new one is read again a few milliseconds later:
	 * its libraries may have been mapped since). */
	assert_true(h->norder >= 3);
	assert_int_equal(order_of(h, (uint32_t)new), 0);
	assert_true(order_of(h, (uint32_t)old) > 0);
	assert_true(order_of(h, (uint32_t)getpid()) > 0);
	struct unwind_registry_stats st;
	unwind_registry__stats(r, &st);
	assert_true(st.processes >= 3);
	assert_int_equal(st.queue_full, 0);
	assert_non_null(row_at(&h->f, (uint64_t)(uintptr_t)&test_new_process_first));
	reap(old);
	reap(new);
	unwind_registry__free(r);
	held_free(h);
}

/* A process that exec'd is read again a few milliseconds after its first
 * scan, unasked (the dynamic loader may have mapped libraries since), and
 * no more once its mappings stop changing. */
static void test_new_process_read_again(void **state)
{
	(void)state;
	struct held *h = held_new();
	pid_t new = spawn_stopped("/bin/sleep");
	struct unwind_registry *r = unwind_registry__new(&HELD_OPS, h->f.nrows, h);
	assert_non_null(r);
	unwind_registry__note_exec(r, new);
	unwind_registry__note_sample(r, new, 0);
	int n = 0;
	for (int i = 0; i < 2000 && n < 2; i++) {
		usleep(1000);
		pthread_mutex_lock(&h->lock);
		n = h->norder;
		pthread_mutex_unlock(&h->lock);
	}
	assert_int_equal(n, 2);
	usleep(200000); /* unchanged: not read again */
	pthread_mutex_lock(&h->lock);
	assert_int_equal(h->norder, 2);
	pthread_mutex_unlock(&h->lock);
	assert_int_equal(h->order[0], (uint32_t)new);
	assert_int_equal(h->order[1], (uint32_t)new);
	reap(new);
	unwind_registry__free(r);
	held_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_gone_process),
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_new_process_first),
		cmocka_unit_test(test_new_process_read_again),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
