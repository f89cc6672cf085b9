// SPDX-License-Identifier: MIT
/* Inputs the fuzzers (tests/fuzz/) found to break a parser, reduced to what
 * broke it, so the fix stays: each runs under ASan + UBSan here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>
#include <cmocka.h>

#include "symbolize/elf_dynsym.h"
#include "symbolize/proc_maps.h"

/* A small shared object with a GNU hash table (the fuzz seed). */
#define SEED_SO "tests/fuzz/corpus/elf_symtab/lib_syms.so"

/* fuzz_proc_maps: an empty maps file reached qsort(NULL, 0) (UBSan). */
static void test_empty_maps(void **state)
{
	(void)state;
	FILE *f = fopen("/dev/null", "r");
	assert_non_null(f);
	struct proc_maps *m = proc_maps__parse(f);
	fclose(f);
	assert_non_null(m);
	assert_int_equal(proc_maps__count(m), 0);
	assert_null(proc_maps__find(m, 0x1000));
	proc_maps__free(m);
}

/* Reads path whole; *len gets its size. */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("%s: %s (run from the repository root)", path, strerror(errno));
	uint8_t *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

/* File offset of the first section of type type, from libelf. */
static size_t section_offset(uint8_t *image, size_t len, uint32_t type)
{
	size_t off = 0;
	elf_version(EV_CURRENT);
	Elf *elf = elf_memory((char *)image, len);
	Elf_Scn *scn = NULL;
	assert_non_null(elf);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr shdr;
		if (gelf_getshdr(scn, &shdr) && shdr.sh_type == type) {
			off = shdr.sh_offset;
			break;
		}
	}
	elf_end(elf);
	assert_true(off > 0);
	return off;
}

/* fuzz_elf_symtab (elf_dynsym): a GNU hash table whose bloom shift is 32 or
 * more made the lookup shift a 32-bit value that far (UBSan); it is now a
 * malformed table. */
static void test_gnu_hash_bloom_shift(void **state)
{
	(void)state;
	size_t len;
	uint8_t *image = slurp(SEED_SO, &len);
	char path[] = "/tmp/dynoprof-test-gnuhash-XXXXXX";
	struct elf_sym_value v;
	size_t hash_at = section_offset(image, len, SHT_GNU_HASH);
	int fd = mkstemp(path);
	assert_true(fd >= 0);

	/* Unchanged, the seed's function f is found through the hash table. */
	assert_int_equal(write(fd, image, len), (ssize_t)len);
	struct elf_dynsym *d = elf_dynsym__open(path);
	assert_non_null(d);
	assert_int_equal(elf_dynsym__find(d, "f", ELF_DYNSYM_DYNAMIC, &v), 0);
	elf_dynsym__free(d);

	for (uint32_t shift = 32; shift <= 1031; shift += 999) {
		memcpy(image + hash_at + 12, &shift, sizeof(shift)); /* words[3] */
		assert_int_equal(pwrite(fd, image, len, 0), (ssize_t)len);
		d = elf_dynsym__open(path);
		assert_non_null(d);
		assert_int_equal(elf_dynsym__find(d, "f", ELF_DYNSYM_DYNAMIC, &v), -ENOEXEC);
		elf_dynsym__free(d);
	}
	close(fd);
	unlink(path);
	free(image);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_maps),
		cmocka_unit_test(test_gnu_hash_bloom_shift),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
