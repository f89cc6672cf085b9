/* test_unwind_registry.c - the unwind registry against this test process
 * itself: its mappings are read, each file's table written into a row table
 * (here plain memory standing in for the BPF array the sampler maps), and the
 * process published. The published table must unwind this process's own
 * code: the row found for a function's entry (via the mapping's bias) says
 * CFA = rsp + 8, as every x86_64 function's first instruction has it. A tiny
 * budget leaves files over it, counted, walked by frame pointers.
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <cmocka.h>

#include "unwind/unwind_registry.h"

/* What the fake sampler holds. */
struct fake {
	struct unwind_row *rows; /* the row table */
	size_t nrows;            /* its entries */
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

static struct unwind_row *rows(void *ctx, size_t *n)
{
	struct fake *f = ctx;
	*n = f->nrows;
	return f->rows;
}

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
	for (uint32_t i = 0; i < m->row_count; i++) {
		const struct unwind_row *r = &f->rows[m->row_first + i];
		if (r->pc <= rel)
			found = r;
	}
	return found;
}

static void test_self(void **state)
{
	(void)state;
	struct fake f = { .nrows = 1u << 20 };
	f.rows = calloc(f.nrows, sizeof(*f.rows));
	assert_non_null(f.rows);
	struct unwind_registry *r = unwind_registry__new(publish, rows, &f);
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

	/* Gone: withdrawn; a new sample queues it again. */
	unwind_registry__note_exit(r, getpid());
	unwind_registry__note_sample(r, getpid(), 0);
	unwind_registry__drain(r);
	assert_int_equal(f.published, 2);
	unwind_registry__stats(r, &st);
	assert_int_equal(st.files_shared + st.files_cfi, st.files_cfi); /* all cached by inode */
	unwind_registry__free(r);
	free(f.rows);
}

static void test_budget(void **state)
{
	(void)state;
	struct fake f = { .nrows = 64 }; /* no real file fits */
	f.rows = calloc(f.nrows, sizeof(*f.rows));
	struct unwind_registry *r = unwind_registry__new(publish, rows, &f);
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
	free(f.rows);
}

static void test_gone_process(void **state)
{
	(void)state;
	struct fake f = { .nrows = 1024 };
	f.rows = calloc(f.nrows, sizeof(*f.rows));
	struct unwind_registry *r = unwind_registry__new(publish, rows, &f);
	assert_non_null(r);
	unwind_registry__note_sample(r, 0x3fffffff, 0); /* no such process */
	unwind_registry__drain(r);
	assert_int_equal(f.published, 0);
	unwind_registry__free(r);
	unwind_registry__free(NULL);
	free(f.rows);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_self),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_gone_process),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
