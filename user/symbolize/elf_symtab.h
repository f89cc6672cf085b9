/* elf_symtab.h - function symbols of one ELF binary (executable or shared
 * library), for turning user-space addresses into function names.
 *
 * All lookups work in ELF virtual addresses (the p_vaddr / st_value space of the
 * file), never in process addresses: a process address becomes an ELF vaddr with
 * elf_symtab__addr_to_vaddr() (or elf_symtab__file_to_vaddr() given the file
 * offset), which handles PIE executables, ET_EXEC (load bias 0) and shared
 * libraries alike.
 *
 * Symbols come from .symtab and .dynsym (STT_FUNC and STT_GNU_IFUNC). When the
 * binary has no .symtab, a separate debug file is looked for by build-id and by
 * .gnu_debuglink (CRC-checked), and its .symtab is used; failing that, the
 * MiniDebugInfo in .gnu_debugdata. Names are demangled. The function ranges of
 * .eh_frame are kept too, to group addresses no symbol covers by function.
 *
 * A table is immutable once opened and reference counted: any number of threads
 * may look up concurrently; each holder drops its reference with
 * elf_symtab__put(). The file is read once at open and closed again (no fd or
 * mapping is kept), so memory is bounded by the binary's symbol count.
 */
#ifndef DYNOPROF_ELF_SYMTAB_H
#define DYNOPROF_ELF_SYMTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_symtab;

/* Where to look for separate debug files. Every field may be NULL/0. */
struct elf_symtab_opts {
	/* Prefix for every debug-file path searched, so a binary of a process in
	 * another mount namespace finds its own debug files: "/proc/PID/root".
	 * NULL or "" means the host's file system. */
	const char *root;
	/* The binary's path as the process sees it (e.g. the path in
	 * /proc/PID/maps), used for the .gnu_debuglink directory search when the
	 * path actually opened is "/proc/PID/map_files/...". NULL: the opened path,
	 * minus the root prefix when it starts with it. */
	const char *logical_path;
	/* Global debug directory; NULL means "/usr/lib/debug". */
	const char *debug_dir;
	/* Nonzero: never look for a separate debug file. */
	int no_debug_file;
};

/* Maximum length of a build-id as a hex string, including the NUL. */
#define ELF_SYMTAB_BUILD_ID_MAX 129

/* Opens the ELF file at path and loads its function symbols, with default
 * options (debug files looked up on the host). Returns a table holding one
 * reference for the caller, or NULL with errno set: an open(2) errno (ENOENT,
 * EACCES, ...), ENOEXEC when the file is not a usable ELF file, ENOMEM.
 * A binary without any symbol still opens (lookups then return -ENOENT). */
struct elf_symtab *elf_symtab__open(const char *path);

/* Same as elf_symtab__open() with explicit debug-file search options (opts may
 * be NULL). The strings in opts are only read during the call. */
struct elf_symtab *elf_symtab__open_opts(const char *path, const struct elf_symtab_opts *opts);

/* Loads the function symbols of an ELF image held in memory, such as the
 * [vdso] (same for every process on a kernel: read it from this process's
 * getauxval(AT_SYSINFO_EHDR), size from its /proc/self/maps line). image is
 * only read during the call. No debug file is searched. Returns a table with
 * one reference, or NULL with errno (EINVAL, ENOEXEC, ENOMEM). */
struct elf_symtab *elf_symtab__open_image(const void *image, size_t size);

/* Takes one more reference on table and returns it (NULL passes through). */
struct elf_symtab *elf_symtab__get(struct elf_symtab *table);

/* Drops one reference; the last one frees the table. Accepts NULL. Names
 * returned by lookups stay valid until the caller's own reference is dropped. */
void elf_symtab__put(struct elf_symtab *table);

/* Returns the current reference count (for caches deciding what to evict;
 * the value may change right after it is read when other threads hold refs). */
unsigned int elf_symtab__refcount(const struct elf_symtab *table);

/* Resolves an ELF virtual address to the function containing it. On success
 * returns 0, sets *name to the (demangled) function name, owned by the table,
 * and *offset to vaddr minus the function's start; either output may be NULL.
 * Returns -ENOENT when no function contains vaddr (callers then print
 * "lib.so+0xOFF"): an address past a function's size is never attributed to it.
 * Zero-size symbols (hand-written assembly) extend to the next symbol, but never
 * past the end of their section. */
int elf_symtab__lookup(const struct elf_symtab *table, uint64_t vaddr, const char **name,
		       uint64_t *offset);

/* Converts a file offset to an ELF virtual address through the PT_LOAD segment
 * containing it: vaddr = file_offset - p_offset + p_vaddr. Returns 0, or
 * -ENOENT when no PT_LOAD segment covers file_offset. */
int elf_symtab__file_to_vaddr(const struct elf_symtab *table, uint64_t file_offset,
			      uint64_t *vaddr);

/* Converts a process address inside a file-backed mapping to an ELF virtual
 * address: the mapping starts at map_start and maps the file from map_offset
 * (both as in /proc/PID/maps). Returns 0, -ERANGE when addr < map_start, or
 * -ENOENT as elf_symtab__file_to_vaddr(). */
int elf_symtab__addr_to_vaddr(const struct elf_symtab *table, uint64_t addr, uint64_t map_start,
			      uint64_t map_offset, uint64_t *vaddr);

/* Returns the binary's GNU build-id as a lowercase hex string owned by the
 * table, or NULL when the binary has none. */
const char *elf_symtab__build_id(const struct elf_symtab *table);

/* Returns the path of the separate debug file whose .symtab was used (owned by
 * the table), or NULL when the binary's own symbols were used. */
const char *elf_symtab__debug_path(const struct elf_symtab *table);

/* The start (ELF vaddr) of the function whose .eh_frame FDE covers vaddr,
 * for addresses no symbol names (stripped code): every address of one
 * function then reads as the same frame. Returns 0 with *start set, or
 * -ENOENT when no FDE covers vaddr (the binary's .eh_frame is read at open,
 * headers only: symbolize/fde_ranges.h). */
int elf_symtab__function_start(const struct elf_symtab *table, uint64_t vaddr, uint64_t *start);

/* Function ranges read from .eh_frame. */
size_t elf_symtab__fde_count(const struct elf_symtab *table);

/* True when the symbols came from the binary's .gnu_debugdata (MiniDebugInfo,
 * used when it has no .symtab and no separate debug file was found). */
bool elf_symtab__used_minidebuginfo(const struct elf_symtab *table);

/* True when one of dynoprof's bounds cut what the file holds: function
 * ranges past FDE_RANGES_MAX (or spanning over 4 GiB), or MiniDebugInfo
 * larger than MINIDEBUG_MAX_BYTES (then not used). Some of its functions
 * then read lib+0xOFFSET. */
bool elf_symtab__truncated(const struct elf_symtab *table);

/* About the heap memory the table holds (functions, names, segments,
 * function ranges). */
size_t elf_symtab__bytes(const struct elf_symtab *table);
/* Returns the number of function symbols in the table. */
size_t elf_symtab__count(const struct elf_symtab *table);

/* Reads only the GNU build-id note of the ELF file at path (cheap: no symbols
 * are loaded) into out as lowercase hex (out_len >= ELF_SYMTAB_BUILD_ID_MAX is
 * always enough). Returns 0, -ENODATA when the file has no build-id, -ENOEXEC
 * when it is not ELF, -ENOSPC when out is too short, or an open(2) -errno. */
int elf_symtab__read_build_id(const char *path, char *out, size_t out_len);

#endif
