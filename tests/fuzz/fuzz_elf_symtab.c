// SPDX-License-Identifier: MIT
/* ELF symbol tables: from a memory image (the vdso path) and from a file (the
 * path every binary of a profiled process takes; no debug-file search, but
 * the file's own MiniDebugInfo and .eh_frame function ranges), then
 * lookups and address conversions. The same file also goes through
 * elf_dynsym (python/), which reads any process's would-be interpreter:
 * name lookups through its own GNU hash table walk, segments, reads. */
#include "fuzz_util.h"

#include "symbolize/elf_dynsym.h"
#include "symbolize/elf_symtab.h"

static void exercise(struct elf_symtab *t)
{
	const char *name;
	uint64_t off, vaddr;
	if (!t)
		return;
	size_t n = elf_symtab__count(t);
	(void)elf_symtab__build_id(t);
	(void)elf_symtab__debug_path(t);
	for (uint64_t a = 0; a < 0x20000; a += 0x7f1)
		if (!elf_symtab__lookup(t, a, &name, &off) && (!name || strlen(name) > (1u << 20)))
			abort();
	elf_symtab__lookup(t, UINT64_MAX, &name, &off);
	/* Function ranges of .eh_frame (stripped code), MiniDebugInfo. */
	(void)elf_symtab__fde_count(t);
	(void)elf_symtab__used_minidebuginfo(t);
	for (uint64_t a = 0; a < 0x20000; a += 0x3f7)
		elf_symtab__function_start(t, a, &off);
	elf_symtab__function_start(t, UINT64_MAX, &off);
	elf_symtab__file_to_vaddr(t, 0x1000, &vaddr);
	elf_symtab__addr_to_vaddr(t, 0x401000, 0x400000, 0, &vaddr);
	elf_symtab__addr_to_vaddr(t, 0, UINT64_MAX, UINT64_MAX, &vaddr);
	(void)n;
	elf_symtab__put(t);
}

static void exercise_dynsym(const char *path)
{
	static const char *const names[] = { "_PyRuntime", "Py_Version", "f", "g", "main" };
	struct elf_sym_value out[sizeof(names) / sizeof(names[0])];
	uint64_t bias;
	uint8_t buf[16];
	struct elf_dynsym *d = elf_dynsym__open(path);
	if (!d)
		return;
	(void)elf_dynsym__type(d);
	(void)elf_dynsym__class(d);
	for (size_t i = 0; i < elf_dynsym__segment_count(d); i++)
		if (!elf_dynsym__segment(d, i))
			abort();
	elf_dynsym__find_many(d, names, sizeof(names) / sizeof(names[0]), ELF_DYNSYM_ALL, out);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (out[i].found)
			elf_dynsym__read(d, out[i].value, buf, sizeof(buf));
	elf_dynsym__find(d, "Py_Version", ELF_DYNSYM_DYNAMIC, &out[0]);
	elf_dynsym__load_bias(d, 0x400000, 0x1000, &bias);
	elf_dynsym__read(d, 0, buf, sizeof(buf));
	elf_dynsym__read(d, UINT64_MAX - 4, buf, sizeof(buf));
	elf_dynsym__free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char build_id[ELF_SYMTAB_BUILD_ID_MAX];
	struct elf_symtab_opts o = { .no_debug_file = 1 };
	exercise(elf_symtab__open_image(data, size));
	const char *path = fuzz_path(data, size);
	exercise(elf_symtab__open_opts(path, &o));
	elf_symtab__read_build_id(path, build_id, sizeof(build_id));
	exercise_dynsym(path);
	return 0;
}
