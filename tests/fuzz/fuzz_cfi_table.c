// SPDX-License-Identifier: MIT
/* CFI tables (user/unwind/cfi_table.c): the first byte picks how the rest is
 * read, as dynoprof reads mapped files' sections: 0 an .eh_frame section (at
 * an address from the next 4 bytes), 1 a .debug_frame section, anything else
 * a whole ELF image in memory (the vdso path; the file path goes through the
 * same libelf sections). Every table built is then searched end to end. */
#include "fuzz_util.h"

#include "unwind/cfi_table.h"

static void exercise(const struct cfi_table *t)
{
	size_t n = cfi_table__count(t);
	const struct unwind_row *rows = cfi_table__rows(t);
	for (size_t i = 0; i < n; i++) {
		if (i && rows[i].pc <= rows[i - 1].pc)
			abort(); /* the table must be sorted, one row per pc */
		if (cfi_table__find(t, rows[i].pc) != &rows[i])
			abort();
	}
	cfi_table__find(t, 0);
	cfi_table__find(t, UINT32_MAX);
	cfi_table__find(t, UINT64_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	data++, size--;
	if (mode < 2) {
		uint64_t vaddr = 0;
		if (mode == 0 && size >= 4) {
			vaddr = (uint64_t)data[0] | (uint64_t)data[1] << 8 |
				(uint64_t)data[2] << 16 | (uint64_t)data[3] << 24;
			data += 4, size -= 4;
		}
		/* An exact-size copy: reads past it are ASan's to catch. */
		uint8_t *copy = malloc(size ? size : 1);
		if (!copy)
			abort();
		memcpy(copy, data, size);
		struct cfi_table *t = cfi_table__new();
		if (!t)
			abort();
		int err = mode == 0 ? cfi_table__add_eh_frame(t, copy, size, vaddr) :
				      cfi_table__add_debug_frame(t, copy, size);
		if (!err && !cfi_table__finish(t))
			exercise(t);
		cfi_table__free(t);
		free(copy);
		return 0;
	}
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	struct cfi_table *t = cfi_table__from_memory(copy, size);
	if (t)
		exercise(t);
	cfi_table__free(t);
	free(copy);
	return 0;
}
