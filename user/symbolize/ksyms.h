/* ksyms.h - kernel symbols from /proc/kallsyms, for kernel stack frames.
 *
 * Keeps the text symbols (types t, T, w, W) sorted by address, with the module
 * each belongs to ("" for the core kernel). A function's extent is up to the
 * next symbol of any type in the same module (kallsyms has no sizes); a symbol
 * followed by nothing or by another module's symbol covers at most
 * KSYMS_LAST_SYMBOL_SPAN bytes, so far-away addresses are not misnamed.
 *
 * One table per process lifetime; memory is proportional to the kernel's text
 * symbol count. Immutable after construction: lookups are thread-safe.
 */
#ifndef DYNOPROF_KSYMS_H
#define DYNOPROF_KSYMS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct ksyms;

/* How far past its start a symbol with no same-module successor extends. */
#define KSYMS_LAST_SYMBOL_SPAN 4096

/* Reads kallsyms-format text ("ADDR TYPE NAME [\t[MODULE]]" per line) from f,
 * which stays the caller's. Returns a new table, or NULL with errno: EPERM when
 * every address reads as zero (kptr_restrict hides them: run as root with
 * kernel.kptr_restrict <= 1), ENODATA when there is no text symbol, ENOMEM,
 * or a read error. Malformed lines are skipped. */
struct ksyms *ksyms__parse(FILE *f);

/* Opens path (NULL means "/proc/kallsyms") and parses it like ksyms__parse().
 * Returns NULL with errno set as there, or with the open(2) errno. */
struct ksyms *ksyms__load(const char *path);

/* Frees the table. Accepts NULL. */
void ksyms__free(struct ksyms *ksyms);

/* Resolves a kernel address. On success returns 0 and sets *name (function
 * name), *module ("" for the core kernel, else the module name without
 * brackets, e.g. "ext4" or "bpf") and *offset (addr minus the function start);
 * strings are owned by the table, and any output may be NULL. Returns -ENOENT
 * when no text symbol covers addr. */
int ksyms__lookup(const struct ksyms *ksyms, uint64_t addr, const char **name,
		  const char **module, uint64_t *offset);

/* Finds the address of a text symbol called name (a linear scan, for
 * setup-time use). Of several names at one address only the one lookups report
 * is kept (global over local, fewest leading underscores), so an alias may not
 * be found. Returns 0 with *addr set, or -ENOENT. */
int ksyms__find(const struct ksyms *ksyms, const char *name, uint64_t *addr);

/* Returns the number of text symbols in the table. */
size_t ksyms__count(const struct ksyms *ksyms);

#endif
