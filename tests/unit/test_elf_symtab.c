/* test_elf_symtab.c - user-space symbolization against real binaries.
 *
 * Fixture programs (tests/unit/fixtures/symtab_*) are compiled with gcc/g++ into
 * a temp dir at run time. Each C fixture prints its functions' run-time
 * addresses and its /proc/self/maps; the test converts each address to an ELF
 * vaddr through the mapping and expects the exact function name back, as the
 * profiler would for a sampled instruction pointer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "fixture_build.h"

#include "symbolize/demangle.h"
#include "symbolize/elf_symtab.h"
#include "symbolize/symcache.h"

#define MAX_FUNCS 8
#define MAX_MAPS 128

/* The fixtures, built once for all tests. */
static struct fixture_build fixtures;

/* One line of a fixture's /proc/self/maps. */
struct map_line {
	uint64_t start;      /* first address */
	uint64_t end;        /* one past the last */
	uint64_t offset;     /* file offset of start */
	char path[PATH_MAX]; /* mapped file, "" for anonymous */
};

/* What a fixture run printed. */
struct fixture_run {
	char names[MAX_FUNCS][64]; /* function names, as printed */
	uint64_t addrs[MAX_FUNCS]; /* their run-time addresses */
	int nfuncs;                /* entries in names/addrs */
	struct map_line maps[MAX_MAPS]; /* the process's mappings */
	int nmaps;                 /* entries in maps */
};

/* Runs a built fixture and collects its output. */
static void run_fixture(const char *binary, struct fixture_run *run)
{
	char cmd[PATH_MAX + 16], line[PATH_MAX + 256];
	FILE *out;

	memset(run, 0, sizeof(*run));
	snprintf(cmd, sizeof(cmd), "'%s'", binary);
	out = popen(cmd, "r");
	assert_non_null(out);
	while (fgets(line, sizeof(line), out)) {
		if (strncmp(line, "func ", 5) == 0 && run->nfuncs < MAX_FUNCS) {
			assert_int_equal(sscanf(line, "func %63s %" SCNx64, run->names[run->nfuncs],
						&run->addrs[run->nfuncs]), 2);
			run->nfuncs++;
		} else if (strncmp(line, "map ", 4) == 0 && run->nmaps < MAX_MAPS) {
			struct map_line *map = &run->maps[run->nmaps];
			int path_at = 0;

			if (sscanf(line, "map %" SCNx64 "-%" SCNx64 " %*s %" SCNx64 " %*s %*u %n",
				   &map->start, &map->end, &map->offset, &path_at) < 3)
				continue;
			snprintf(map->path, sizeof(map->path), "%s", line + path_at);
			map->path[strcspn(map->path, "\n")] = '\0';
			run->nmaps++;
		}
	}
	assert_int_equal(pclose(out), 0);
}

/* Finds the mapping of binary (by real path) containing addr. */
static const struct map_line *find_map(const struct fixture_run *run, const char *binary,
				       uint64_t addr)
{
	char real[PATH_MAX];

	assert_non_null(realpath(binary, real));
	for (int i = 0; i < run->nmaps; i++) {
		const struct map_line *map = &run->maps[i];

		if (addr >= map->start && addr < map->end && strcmp(map->path, real) == 0)
			return map;
	}
	fail_msg("no mapping of %s contains 0x%" PRIx64, binary, addr);
	return NULL;
}

static uint64_t fixture_addr(const struct fixture_run *run, const char *name)
{
	for (int i = 0; i < run->nfuncs; i++)
		if (strcmp(run->names[i], name) == 0)
			return run->addrs[i];
	fail_msg("fixture did not print %s", name);
	return 0;
}

/* Reads a symbol's address (and size when size != NULL) from nm with extra
 * flags ("-D" for the dynamic symbol table). */
static uint64_t nm_symbol_flags(const char *binary, const char *flags, const char *symbol,
				uint64_t *size)
{
	char cmd[2 * PATH_MAX], line[1024], name[512];
	uint64_t addr, sym_size, found = 0;
	FILE *out;

	snprintf(cmd, sizeof(cmd), "nm %s -S --defined-only '%s'", flags, binary);
	out = popen(cmd, "r");
	assert_non_null(out);
	while (fgets(line, sizeof(line), out)) {
		if (sscanf(line, "%" SCNx64 " %" SCNx64 " %*c %511s", &addr, &sym_size, name) != 3)
			continue;
		name[strcspn(name, "@")] = '\0'; /* nm -D appends "@@VERSION" */
		if (strcmp(name, symbol) == 0) {
			found = addr;
			if (size)
				*size = sym_size;
		}
	}
	pclose(out);
	if (!found)
		fail_msg("nm found no %s in %s", symbol, binary);
	return found;
}

static uint64_t nm_symbol(const char *binary, const char *symbol, uint64_t *size)
{
	return nm_symbol_flags(binary, "", symbol, size);
}

/* Resolves a run-time address the way the profiler does and checks the name. */
static void expect_resolves(const struct elf_symtab *table, const struct fixture_run *run,
			    const char *binary, const char *func)
{
	uint64_t addr = fixture_addr(run, func);
	const struct map_line *map = find_map(run, binary, addr);
	const char *name = NULL;
	uint64_t vaddr, offset = 99;

	assert_int_equal(elf_symtab__addr_to_vaddr(table, addr, map->start, map->offset, &vaddr), 0);
	assert_int_equal(elf_symtab__lookup(table, vaddr, &name, &offset), 0);
	assert_string_equal(name, func);
	assert_int_equal(offset, 0);
	/* An instruction inside the function keeps the name, with its offset. */
	assert_int_equal(elf_symtab__lookup(table, vaddr + 2, &name, &offset), 0);
	assert_string_equal(name, func);
	assert_int_equal(offset, 2);
}

static void expect_main_functions(const struct elf_symtab *table, const struct fixture_run *run,
				  const char *binary)
{
	expect_resolves(table, run, binary, "fixture_alpha");
	expect_resolves(table, run, binary, "fixture_beta");
	expect_resolves(table, run, binary, "fixture_gamma");
}

/* Builds every fixture once for all tests. */
static int build_fixtures(void **state)
{
	const char *cflags = "-O1 -g -fno-inline -falign-functions=64 -Wl,--build-id";

	(void)state;
	return fixture_build(&fixtures, "symtab",
		 "gcc %s -fPIE -pie $F/symtab_prog.c -o prog_pie;"
		 "gcc %s -fno-pie -no-pie $F/symtab_prog.c -o prog_nopie;"
		 "gcc %s -shared -fPIC $F/symtab_lib.c -o libsymfix.so;"
		 "gcc %s -DWITH_LIB $F/symtab_prog.c -L. -lsymfix -Wl,-rpath,\"$W\" -o prog_lib;"
		 "g++ %s $F/symtab_cxx.cpp -o prog_cxx;"
		 /* stripped + debug file found through .gnu_debuglink in the same dir */
		 "cp prog_pie prog_strip; objcopy --only-keep-debug prog_strip prog_strip.debug;"
		 "strip --strip-debug --strip-unneeded prog_strip;"
		 "objcopy --add-gnu-debuglink=prog_strip.debug prog_strip;"
		 /* same, debug file in the .debug/ subdirectory */
		 "mkdir -p sub/.debug; cp prog_strip sub/prog_sub;"
		 "cp prog_strip.debug sub/.debug/prog_strip.debug;"
		 /* same, debug file only under a debug dir's .build-id/ */
		 "mkdir -p byid; cp prog_strip byid/prog_byid;"
		 "id=$(readelf -n prog_pie | sed -n 's/.*Build ID: //p');"
		 "mkdir -p debugroot/.build-id/$(echo $id | cut -c1-2);"
		 "cp prog_strip.debug debugroot/.build-id/$(echo $id | cut -c1-2)/$(echo $id | cut -c3-).debug;"
		 /* debuglink whose CRC no longer matches the debug file */
		 "mkdir -p badcrc; cp prog_strip badcrc/prog_bad;"
		 "cp prog_strip.debug badcrc/prog_strip.debug; printf x >> badcrc/prog_strip.debug;"
		 /* no section headers at all (sstrip, some packers): e_shoff,
		  * e_shnum and e_shstrndx of the ELF64 header zeroed */
		 "cp prog_pie prog_noshdr;"
		 "dd if=/dev/zero of=prog_noshdr bs=1 seek=40 count=8 conv=notrunc 2>/dev/null;"
		 "dd if=/dev/zero of=prog_noshdr bs=1 seek=60 count=4 conv=notrunc 2>/dev/null",
		 cflags, cflags, cflags, cflags, cflags);
}

static int remove_fixtures(void **state)
{
	(void)state;
	return fixture_build__remove(&fixtures);
}

static void test_pie_executable(void **state)
{
	char binary[PATH_MAX];
	struct fixture_run run;
	struct elf_symtab *table;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_pie");
	run_fixture(binary, &run);
	table = elf_symtab__open(binary);
	assert_non_null(table);
	assert_null(elf_symtab__debug_path(table));
	expect_main_functions(table, &run, binary);

	/* The vaddr computed from the process agrees with nm's symbol value. */
	uint64_t addr = fixture_addr(&run, "fixture_gamma"), vaddr;
	const struct map_line *map = find_map(&run, binary, addr);

	assert_int_equal(elf_symtab__addr_to_vaddr(table, addr, map->start, map->offset, &vaddr), 0);
	assert_int_equal(vaddr, nm_symbol(binary, "fixture_gamma", NULL));
	elf_symtab__put(table);
}

static void test_non_pie_executable(void **state)
{
	char binary[PATH_MAX];
	struct fixture_run run;
	struct elf_symtab *table;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_nopie");
	run_fixture(binary, &run);
	table = elf_symtab__open(binary);
	assert_non_null(table);
	expect_main_functions(table, &run, binary);
	/* ET_EXEC: no load bias, the run-time address is the vaddr. */
	uint64_t addr = fixture_addr(&run, "fixture_alpha"), vaddr;
	const struct map_line *map = find_map(&run, binary, addr);

	assert_int_equal(elf_symtab__addr_to_vaddr(table, addr, map->start, map->offset, &vaddr), 0);
	assert_int_equal(vaddr, addr);
	elf_symtab__put(table);
}

static void test_shared_library(void **state)
{
	char binary[PATH_MAX], lib[PATH_MAX];
	struct fixture_run run;
	struct elf_symtab *table, *lib_table;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_lib");
	fixture_build__path(&fixtures, lib, "libsymfix.so");
	run_fixture(binary, &run);
	table = elf_symtab__open(binary);
	lib_table = elf_symtab__open(lib);
	assert_non_null(table);
	assert_non_null(lib_table);
	expect_main_functions(table, &run, binary);
	expect_resolves(lib_table, &run, lib, "fixture_lib_one");
	expect_resolves(lib_table, &run, lib, "fixture_lib_two");
	/* The library has a build-id, reported as hex like readelf shows it. */
	assert_non_null(elf_symtab__build_id(lib_table));
	assert_true(strlen(elf_symtab__build_id(lib_table)) == 40);
	elf_symtab__put(lib_table);
	elf_symtab__put(table);
}

static void test_stripped_with_debuglink(void **state)
{
	char binary[PATH_MAX];
	struct fixture_run run;
	struct elf_symtab *table;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_strip");
	run_fixture(binary, &run);
	table = elf_symtab__open(binary);
	assert_non_null(table);
	assert_non_null(elf_symtab__debug_path(table));
	assert_non_null(strstr(elf_symtab__debug_path(table), "prog_strip.debug"));
	expect_main_functions(table, &run, binary);
	elf_symtab__put(table);

	/* Opened through a process's root: the debug file is searched there too. */
	char via_root[PATH_MAX + 32];
	struct elf_symtab_opts rooted = { .root = "/proc/self/root" };

	snprintf(via_root, sizeof(via_root), "/proc/self/root%s", binary);
	table = elf_symtab__open_opts(via_root, &rooted);
	assert_non_null(table);
	assert_non_null(elf_symtab__debug_path(table));
	assert_int_equal(strncmp(elf_symtab__debug_path(table), "/proc/self/root/", 16), 0);
	expect_main_functions(table, &run, binary);
	elf_symtab__put(table);

	/* Without debug-file search the static function has no name at all. */
	struct elf_symtab_opts opts = { .no_debug_file = 1 };

	char unstripped[PATH_MAX];
	const char *name = NULL;

	fixture_build__path(&fixtures, unstripped, "prog_pie");
	table = elf_symtab__open_opts(binary, &opts);
	assert_non_null(table);
	assert_null(elf_symtab__debug_path(table));
	assert_int_equal(elf_symtab__lookup(table, nm_symbol(unstripped, "fixture_beta", NULL),
					    &name, NULL), -ENOENT);
	elf_symtab__put(table);
}

static void test_stripped_debug_subdir(void **state)
{
	char binary[PATH_MAX];
	struct fixture_run run;
	struct elf_symtab *table;

	(void)state;
	fixture_build__path(&fixtures, binary, "sub/prog_sub");
	run_fixture(binary, &run);
	table = elf_symtab__open(binary);
	assert_non_null(table);
	assert_non_null(strstr(elf_symtab__debug_path(table), "/sub/.debug/prog_strip.debug"));
	expect_main_functions(table, &run, binary);
	elf_symtab__put(table);
}

static void test_stripped_build_id_dir(void **state)
{
	char binary[PATH_MAX], debug_dir[PATH_MAX];
	struct fixture_run run;
	struct elf_symtab *table;

	(void)state;
	fixture_build__path(&fixtures, binary, "byid/prog_byid");
	fixture_build__path(&fixtures, debug_dir, "debugroot");
	run_fixture(binary, &run);
	/* The debuglink name is absent from byid/, so only the build-id finds it. */
	struct elf_symtab_opts opts = { .debug_dir = debug_dir };

	table = elf_symtab__open_opts(binary, &opts);
	assert_non_null(table);
	assert_non_null(strstr(elf_symtab__debug_path(table), "/debugroot/.build-id/"));
	expect_main_functions(table, &run, binary);
	elf_symtab__put(table);
}

static void test_stripped_bad_crc_is_not_used(void **state)
{
	char binary[PATH_MAX];
	struct fixture_run run;
	struct elf_symtab *table;
	const char *name = NULL;
	uint64_t vaddr, addr;

	(void)state;
	fixture_build__path(&fixtures, binary, "badcrc/prog_bad");
	run_fixture(binary, &run);
	table = elf_symtab__open(binary);
	assert_non_null(table);
	assert_null(elf_symtab__debug_path(table));
	/* No .symtab, no trusted debug file: the static function is unnamed, never
	 * misattributed to some exported neighbour. */
	addr = fixture_addr(&run, "fixture_beta");
	const struct map_line *map = find_map(&run, binary, addr);

	assert_int_equal(elf_symtab__addr_to_vaddr(table, addr, map->start, map->offset, &vaddr), 0);
	assert_int_equal(elf_symtab__lookup(table, vaddr, &name, NULL), -ENOENT);
	elf_symtab__put(table);
}

static void test_cxx_demangled(void **state)
{
	char binary[PATH_MAX];
	struct elf_symtab *table;
	const char *name = NULL;
	uint64_t vaddr, offset;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_cxx");
	vaddr = nm_symbol(binary, "_ZN2ns5Klass6methodEi", NULL);
	table = elf_symtab__open(binary);
	assert_non_null(table);
	assert_int_equal(elf_symtab__lookup(table, vaddr + 1, &name, &offset), 0);
	assert_string_equal(name, "ns::Klass::method(int)");
	assert_int_equal(offset, 1);
	elf_symtab__put(table);
}

static void test_demangle(void **state)
{
	char *s;

	(void)state;
	s = demangle__symbol("_ZN2ns5Klass6methodEi");
	assert_string_equal(s, "ns::Klass::method(int)");
	free(s);
	s = demangle__symbol("fixture_alpha");
	assert_string_equal(s, "fixture_alpha");
	free(s);
	s = demangle__symbol("_Znot_valid!");
	assert_string_equal(s, "_Znot_valid!");
	free(s);
	s = demangle__symbol("_ZN4core3fmt5write17h0123456789abcdefE");
	assert_string_equal(s, "core::fmt::write");
	free(s);
}

/* Addresses in alignment padding, past the last function, or nowhere near the
 * text resolve to nothing. */
static void test_gaps_are_not_named(void **state)
{
	char binary[PATH_MAX], cmd[2 * PATH_MAX];
	struct elf_symtab *table;
	const char *name = NULL;
	uint64_t size = 0, start, text_addr = 0, text_size = 0;
	FILE *out;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_pie");
	table = elf_symtab__open(binary);
	assert_non_null(table);

	/* Functions are 64-byte aligned: the bytes after a small one are padding. */
	start = nm_symbol(binary, "fixture_alpha", &size);
	assert_true(size > 0 && size % 64 != 0);
	assert_int_equal(elf_symtab__lookup(table, start + size - 1, &name, NULL), 0);
	assert_string_equal(name, "fixture_alpha");
	assert_int_equal(elf_symtab__lookup(table, start + size, &name, NULL), -ENOENT);

	/* Just past the end of .text (after the last function). */
	snprintf(cmd, sizeof(cmd), "readelf -SW '%s' | sed -n 's/.* \\.text *PROGBITS *//p'", binary);
	out = popen(cmd, "r");
	assert_non_null(out);
	assert_int_equal(fscanf(out, "%" SCNx64 " %*x %" SCNx64, &text_addr, &text_size), 2);
	pclose(out);
	assert_int_equal(elf_symtab__lookup(table, text_addr + text_size, &name, NULL), -ENOENT);
	assert_int_equal(elf_symtab__lookup(table, 0x10, &name, NULL), -ENOENT);
	assert_int_equal(elf_symtab__lookup(table, 0x7ffffffff000ull, &name, NULL), -ENOENT);
	/* And a file offset outside every PT_LOAD has no vaddr. */
	uint64_t vaddr;

	assert_int_equal(elf_symtab__file_to_vaddr(table, 1ull << 40, &vaddr), -ENOENT);
	elf_symtab__put(table);
}

static void test_open_errors(void **state)
{
	char source[PATH_MAX];

	(void)state;
	errno = 0;
	assert_null(elf_symtab__open("/nonexistent/dynoprof/binary"));
	assert_int_equal(errno, ENOENT);
	snprintf(source, sizeof(source), "%s/symtab_lib.c", fixtures.fixtures_dir);
	errno = 0;
	assert_null(elf_symtab__open(source));
	assert_int_equal(errno, ENOEXEC);
	elf_symtab__put(NULL);
}

/* A binary without section headers still has its build-id, read from its
 * PT_NOTE program header: the one readelf shows for the binary it came from. */
static void test_build_id_without_section_headers(void **state)
{
	char binary[PATH_MAX], original[PATH_MAX], cmd[2 * PATH_MAX + 64], want[128] = "";
	char id[ELF_SYMTAB_BUILD_ID_MAX];
	FILE *out;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_noshdr");
	fixture_build__path(&fixtures, original, "prog_pie");
	snprintf(cmd, sizeof(cmd), "readelf -S '%s' 2>&1 | grep -c 'no sections'", binary);
	out = popen(cmd, "r");
	assert_non_null(out);
	assert_non_null(fgets(want, sizeof(want), out));
	pclose(out);
	assert_int_equal(atoi(want), 1);
	snprintf(cmd, sizeof(cmd), "readelf -n '%s' | sed -n 's/.*Build ID: //p'", original);
	out = popen(cmd, "r");
	assert_non_null(out);
	assert_non_null(fgets(want, sizeof(want), out));
	pclose(out);
	want[strcspn(want, "\n")] = '\0';
	assert_int_equal(strlen(want), 40);
	assert_int_equal(elf_symtab__read_build_id(binary, id, sizeof(id)), 0);
	assert_string_equal(id, want);
	assert_int_equal(elf_symtab__read_build_id(original, id, sizeof(id)), 0);
	assert_string_equal(id, want);
	/* Too small a buffer for 40 hex digits: refused, nothing half written. */
	assert_int_equal(elf_symtab__read_build_id(binary, id, 40), -ENOSPC);
}

static void stat_file(const char *path, struct stat *st)
{
	assert_int_equal(stat(path, st), 0);
}

static void test_symcache_hits_and_sharing(void **state)
{
	char binary[PATH_MAX], via_root[2 * PATH_MAX];
	struct symcache *cache = symcache__new(8);
	struct symcache_stats stats;
	struct elf_symtab *a, *b, *c;
	struct stat st;
	const char *name;

	(void)state;
	assert_non_null(cache);
	fixture_build__path(&fixtures, binary, "prog_pie");
	stat_file(binary, &st);
	a = symcache__get(cache, binary, st.st_dev, st.st_ino);
	/* The same file reached through a process's root prefix is a hit. */
	snprintf(via_root, sizeof(via_root), "/proc/self/root%s", binary);
	b = symcache__get(cache, via_root, st.st_dev, st.st_ino);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	/* Same build-id under another identity (a copy in another container)
	 * shares the loaded table. */
	c = symcache__get(cache, binary, st.st_dev, st.st_ino + 1000000);
	assert_ptr_equal(a, c);
	symcache__stats(cache, &stats);
	assert_int_equal(stats.hits, 1);
	assert_int_equal(stats.misses, 2);
	assert_int_equal(stats.loads, 1);
	assert_int_equal(stats.build_id_shares, 1);
	assert_int_equal(stats.entries, 2);
	assert_int_equal(elf_symtab__lookup(a, nm_symbol(binary, "fixture_beta", NULL), &name, NULL), 0);
	assert_string_equal(name, "fixture_beta");
	elf_symtab__put(a);
	elf_symtab__put(b);
	elf_symtab__put(c);
	symcache__free(cache);
}

static void test_symcache_eviction_keeps_held_tables(void **state)
{
	const char *names[3] = { "prog_pie", "prog_nopie", "libsymfix.so" };
	char paths[3][PATH_MAX];
	struct stat sts[3];
	struct symcache *cache = symcache__new(2);
	struct symcache_stats stats;
	struct elf_symtab *held, *t;
	const char *name;

	(void)state;
	for (int i = 0; i < 3; i++) {
		fixture_build__path(&fixtures, paths[i], names[i]);
		stat_file(paths[i], &sts[i]);
	}
	held = symcache__get(cache, paths[0], sts[0].st_dev, sts[0].st_ino);
	assert_non_null(held);
	t = symcache__get(cache, paths[1], sts[1].st_dev, sts[1].st_ino);
	assert_non_null(t);
	elf_symtab__put(t);
	/* Full: the idle nopie table goes, although the held one is older. */
	t = symcache__get(cache, paths[2], sts[2].st_dev, sts[2].st_ino);
	assert_non_null(t);
	elf_symtab__put(t);
	symcache__stats(cache, &stats);
	assert_int_equal(stats.evictions, 1);
	assert_int_equal(stats.entries, 2);
	t = symcache__get(cache, paths[0], sts[0].st_dev, sts[0].st_ino);
	assert_ptr_equal(t, held);
	elf_symtab__put(t);
	symcache__stats(cache, &stats);
	assert_int_equal(stats.hits, 1);

	/* Freeing the cache does not free a table a caller still holds. */
	symcache__free(cache);
	assert_int_equal(elf_symtab__lookup(held, nm_symbol(paths[0], "fixture_gamma", NULL), &name,
					    NULL), 0);
	assert_string_equal(name, "fixture_gamma");
	elf_symtab__put(held);
}

/* A byte bound: a second file that would pass it evicts the idle first. */
static void test_symcache_byte_bound_evicts(void **state)
{
	const char *names[2] = { "prog_pie", "prog_nopie" };
	char paths[2][PATH_MAX];
	struct stat sts[2];
	struct symcache *cache = symcache__new(8);
	struct symcache_stats stats;
	struct elf_symtab *t;

	(void)state;
	for (int i = 0; i < 2; i++) {
		fixture_build__path(&fixtures, paths[i], names[i]);
		stat_file(paths[i], &sts[i]);
	}
	t = symcache__get(cache, paths[0], sts[0].st_dev, sts[0].st_ino);
	assert_non_null(t);
	size_t first = elf_symtab__bytes(t);
	assert_true(first > 0);
	elf_symtab__put(t);
	symcache__stats(cache, &stats);
	assert_int_equal(stats.bytes, first);
	symcache__set_max_bytes(cache, first + 1);
	t = symcache__get(cache, paths[1], sts[1].st_dev, sts[1].st_ino);
	assert_non_null(t);
	size_t second = elf_symtab__bytes(t);
	elf_symtab__put(t);
	symcache__stats(cache, &stats);
	assert_int_equal(stats.evictions, 1);
	assert_int_equal(stats.entries, 1);
	assert_int_equal(stats.bytes, second);
	symcache__free(cache);
}

static void test_symcache_errors(void **state)
{
	char source[PATH_MAX];
	struct symcache *cache = symcache__new(4);
	struct symcache_stats stats;
	struct stat st;

	(void)state;
	errno = 0;
	assert_null(symcache__new(0));
	assert_int_equal(errno, EINVAL);
	snprintf(source, sizeof(source), "%s/symtab_lib.c", fixtures.fixtures_dir);
	stat_file(source, &st);
	/* Not ELF: remembered, the second get does not read the file again. */
	for (int i = 0; i < 2; i++) {
		errno = 0;
		assert_null(symcache__get(cache, source, st.st_dev, st.st_ino));
		assert_int_equal(errno, ENOEXEC);
	}
	/* Missing file (the process exited): reported, not remembered. */
	for (int i = 0; i < 2; i++) {
		errno = 0;
		assert_null(symcache__get(cache, "/nonexistent/x", 1, 2));
		assert_int_equal(errno, ENOENT);
	}
	symcache__stats(cache, &stats);
	assert_int_equal(stats.hits, 1);
	assert_int_equal(stats.misses, 3);
	assert_int_equal(stats.errors, 4);
	assert_int_equal(stats.entries, 1);
	symcache__free(cache);
	symcache__free(NULL);
}

/* A deleted or replaced binary is opened through /proc/PID/map_files; its
 * debug file is still found from the path the process had mapped. */
static void test_symcache_map_files(void **state)
{
	char binary[PATH_MAX], map_file[PATH_MAX], unstripped[PATH_MAX];
	struct symcache *cache = symcache__new(4);
	struct elf_symtab *table;
	struct stat st;
	const char *name;
	void *mapping;
	int fd;

	(void)state;
	fixture_build__path(&fixtures, binary, "prog_strip");
	fd = open(binary, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	mapping = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	assert_true(mapping != MAP_FAILED);
	close(fd);
	snprintf(map_file, sizeof(map_file), "/proc/self/map_files/%lx-%lx",
		 (unsigned long)mapping,
		 (unsigned long)mapping + (((unsigned long)st.st_size + 4095) & ~4095ul));
	struct elf_symtab_opts opts = { .logical_path = binary };

	table = symcache__get_opts(cache, map_file, st.st_dev, st.st_ino, &opts);
	assert_non_null(table);
	assert_non_null(elf_symtab__debug_path(table));
	/* prog_strip is prog_pie stripped: same vaddrs, which nm can read there. */
	fixture_build__path(&fixtures, unstripped, "prog_pie");
	assert_int_equal(elf_symtab__lookup(table, nm_symbol(unstripped, "fixture_beta", NULL),
					    &name, NULL), 0);
	assert_string_equal(name, "fixture_beta");
	elf_symtab__put(table);
	munmap(mapping, (size_t)st.st_size);
	symcache__free(cache);
}

/* The [vdso] has no file: its image is loaded from memory. */
static void test_vdso_image(void **state)
{
	uintptr_t vdso = (uintptr_t)getauxval(AT_SYSINFO_EHDR);
	char line[512], dump[PATH_MAX];
	uint64_t start = 0, end = 0, vaddr;
	struct elf_symtab *table;
	const char *name = NULL;
	FILE *maps, *out;

	(void)state;
	if (!vdso)
		skip();
	maps = fopen("/proc/self/maps", "r");
	assert_non_null(maps);
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "[vdso]"))
			assert_int_equal(sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end), 2);
	fclose(maps);
	assert_int_equal(start, vdso);
	table = elf_symtab__open_image((const void *)vdso, (size_t)(end - start));
	assert_non_null(table);
	/* Compare with nm on a dump of the same image. */
	fixture_build__path(&fixtures, dump, "vdso.so");
	out = fopen(dump, "w");
	assert_non_null(out);
	assert_int_equal(fwrite((const void *)vdso, 1, (size_t)(end - start), out), end - start);
	fclose(out);
	vaddr = nm_symbol_flags(dump, "-D", "__vdso_clock_gettime", NULL);
	assert_int_equal(elf_symtab__lookup(table, vaddr, &name, NULL), 0);
	/* clock_gettime is an alias at the same address; either is the function. */
	assert_non_null(strstr(name, "clock_gettime"));
	elf_symtab__put(table);
	errno = 0;
	assert_null(elf_symtab__open_image("not an elf image", 16));
	assert_int_equal(errno, ENOEXEC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pie_executable),
		cmocka_unit_test(test_non_pie_executable),
		cmocka_unit_test(test_shared_library),
		cmocka_unit_test(test_stripped_with_debuglink),
		cmocka_unit_test(test_stripped_debug_subdir),
		cmocka_unit_test(test_stripped_build_id_dir),
		cmocka_unit_test(test_build_id_without_section_headers),
		cmocka_unit_test(test_stripped_bad_crc_is_not_used),
		cmocka_unit_test(test_cxx_demangled),
		cmocka_unit_test(test_demangle),
		cmocka_unit_test(test_gaps_are_not_named),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_symcache_hits_and_sharing),
		cmocka_unit_test(test_symcache_eviction_keeps_held_tables),
		cmocka_unit_test(test_symcache_byte_bound_evicts),
		cmocka_unit_test(test_symcache_errors),
		cmocka_unit_test(test_symcache_map_files),
		cmocka_unit_test(test_vdso_image),
	};

	return cmocka_run_group_tests(tests, build_fixtures, remove_fixtures);
}
