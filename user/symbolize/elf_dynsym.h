/* elf_dynsym.h - named symbols (data and functions) and load segments of one
 * ELF file, for locating an interpreter's globals (_PyRuntime, Py_Version) in
 * a live process.
 *
 * Unlike symbolize/elf_symtab.h (every function symbol, for address -> name),
 * this answers name -> (st_value, st_size) for a handful of names, cheaply:
 * .dynsym lookups go through the GNU hash table when the file has one, so a
 * large non-Python executable costs a few hashed probes, not a string compare
 * per symbol; .symtab is only scanned when asked for.
 *
 * A handle keeps the file open (fd + libelf handle) until elf_dynsym__free(); it
 * is not thread-safe, open one per thread. Addresses are ELF virtual
 * addresses; elf_dynsym__load_bias() converts them to process addresses.
 */
#ifndef DYNOPROF_ELF_DYNSYM_H
#define DYNOPROF_ELF_DYNSYM_H

#include <stddef.h>
#include <stdint.h>

struct elf_dynsym;

/* Symbol tables a lookup searches (bit mask). */
enum elf_dynsym_tables {
	ELF_DYNSYM_DYNAMIC = 1, /* .dynsym: exported symbols, present in stripped files */
	ELF_DYNSYM_STATIC = 2,  /* .symtab: all symbols, absent in stripped files */
	ELF_DYNSYM_ALL = 3,
};

/* One defined symbol's value. */
struct elf_sym_value {
	uint64_t value; /* st_value: ELF virtual address (0 when not found) */
	uint64_t size;  /* st_size in bytes */
	int found;      /* nonzero when a defined symbol of that name exists */
};

/* One PT_LOAD program header. */
struct elf_load_segment {
	uint64_t vaddr;  /* p_vaddr */
	uint64_t offset; /* p_offset: file offset of the segment's first byte */
	uint64_t filesz; /* p_filesz: bytes backed by the file */
	uint64_t memsz;  /* p_memsz: bytes in memory (>= filesz; the rest is .bss) */
	uint32_t flags;  /* p_flags: PF_R | PF_W | PF_X */
};

/* Opens the ELF file at path (any path the caller can open, e.g.
 * "/proc/PID/root/usr/lib/libpython3.11.so.1.0" or "/proc/PID/exe") and reads
 * its header and PT_LOAD segments; symbol tables are read lazily, on lookup.
 * Returns a handle the caller frees with elf_dynsym__free(), or NULL with
 * errno: an open(2) errno, ENOEXEC when the file is not ELF (or has no
 * PT_LOAD), ENOMEM. */
struct elf_dynsym *elf_dynsym__open(const char *path);

/* Closes the file and frees the handle. Accepts NULL. */
void elf_dynsym__free(struct elf_dynsym *file);

/* Returns e_type: ET_EXEC (fixed addresses, load bias 0), ET_DYN (PIE or
 * shared library), or another ET_* value. */
int elf_dynsym__type(const struct elf_dynsym *file);

/* Returns e_ident[EI_CLASS]: ELFCLASS64 or ELFCLASS32. */
int elf_dynsym__class(const struct elf_dynsym *file);

/* PT_LOAD segments in program-header order; index < elf_dynsym__segment_count(). */
size_t elf_dynsym__segment_count(const struct elf_dynsym *file);
const struct elf_load_segment *elf_dynsym__segment(const struct elf_dynsym *file, size_t index);

/* Looks up count names at once in the tables selected by `tables` (.dynsym
 * first; .symtab only for names .dynsym lacks). out[i] receives names[i]'s
 * value; undefined (imported) symbols never match. Symbols of every type
 * match (OBJECT, FUNC, TLS, ...). Returns the number of names found (0..count)
 * or -errno (-EINVAL on bad arguments, -ENOEXEC on a malformed table). */
int elf_dynsym__find_many(struct elf_dynsym *file, const char *const *names, size_t count,
			  unsigned int tables, struct elf_sym_value *out);

/* Looks up one name as elf_dynsym__find_many(). Returns 0 and fills *out, or
 * -ENOENT when no defined symbol has that name, or another -errno. */
int elf_dynsym__find(struct elf_dynsym *file, const char *name, unsigned int tables,
		     struct elf_sym_value *out);

/* Computes the load bias (process address = ELF vaddr + bias) from one
 * mapping of the file as /proc/PID/maps shows it: map_start is the mapping's
 * first address, map_offset its file offset. The mapping may be any mapping
 * of a PT_LOAD segment (executable or not). Returns 0, or -ENOENT when no
 * PT_LOAD segment covers map_offset. */
int elf_dynsym__load_bias(const struct elf_dynsym *file, uint64_t map_start, uint64_t map_offset,
			  uint64_t *bias);

/* Same computation over a copy of the segments (e.g. cached after the file was
 * closed): segments[0..count). Returns 0 or -ENOENT. */
int elf_load_segments__bias(const struct elf_load_segment *segments, size_t count,
			    uint64_t map_start, uint64_t map_offset, uint64_t *bias);

/* Copies len bytes of the file's initialised contents at ELF virtual address
 * vaddr (e.g. a const global's value) into buf. Returns 0, -ENOENT when the
 * range is not entirely file-backed within one PT_LOAD segment (e.g. .bss),
 * or -EIO. */
int elf_dynsym__read(const struct elf_dynsym *file, uint64_t vaddr, void *buf, size_t len);

#endif
