// SPDX-License-Identifier: MIT
/* The symbolizer's frames for addresses that are not in a symbol table of an
 * ELF file, in this test's own process: the vDSO (resolved from our own
 * copy), [vsyscall], anonymous executable memory (JIT: [anon]), an
 * executable mapping of a file that is not ELF (file+0xOFFSET), unmapped
 * addresses ([unknown]), a process that is gone, the kernel's [kernel] for
 * an address below every symbol; and the counters that say so. */
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
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "symbolize/symbolizer.h"

static const struct profile_frame *frame(struct symbolizer *s, struct profile *p, pid_t pid,
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
	 * a miss re-reads them (at most every 200 ms, or less often after
	 * re-reads that found nothing). */
	assert_string_equal(profile__str(p, frame(s, p, me, 0x10)->name), "[unknown]");
	void *jit = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(jit != MAP_FAILED);
	const struct profile_frame *f = NULL;
	for (int i = 0; i < 1000; i++) { /* bounded: 10 s (a busy machine) */
		f = frame(s, p, me, (uint64_t)(uintptr_t)jit + 8);
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
	f = frame(s, p, me, (uint64_t)(uintptr_t)m + 4096 + 0x10);
	char want[64];
	snprintf(want, sizeof(want), "%s+0x1010", strrchr(path, '/') + 1);
	assert_string_equal(profile__str(p, f->name), want);
	assert_string_equal(profile__str(p, f->module), path);
	assert_true(f->mapping > 0);

	/* The vDSO: resolved from our own copy of the image. */
	uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
	assert_true(vdso != 0);
	f = frame(s, p, me, vdso + 0x800);
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
		f = frame(s, p, me, 0xffffffffff600000ull);
		assert_string_equal(profile__str(p, f->name), "[vsyscall]");
	}

	/* A process gone before its maps were read: [unknown], counted. */
	pid_t gone = fork();
	assert_true(gone >= 0);
	if (gone == 0)
		_exit(0);
	waitpid(gone, NULL, 0);
	f = frame(s, p, gone, 0x400000);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_special_mappings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
