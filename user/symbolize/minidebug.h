/* minidebug.h - MiniDebugInfo: the .gnu_debugdata section some distributions
 * (Fedora, RHEL) leave in stripped binaries, an xz-compressed ELF file whose
 * .symtab names the functions .dynsym does not (static functions), so a
 * stripped binary still names every function without a debug package.
 *
 * The section is hostile input like the rest of the file: decompression is
 * bounded in output size and decoder memory, and stops at the first error.
 */
#ifndef DYNOPROF_MINIDEBUG_H
#define DYNOPROF_MINIDEBUG_H

#include <stddef.h>

/* The largest decompressed MiniDebugInfo ELF accepted (a large binary's
 * function symbols are a few MiB). */
#define MINIDEBUG_MAX_BYTES (64u << 20)

/* Decompresses the xz stream xz[0..size) into a malloc'd buffer of at most
 * max_out bytes (0: MINIDEBUG_MAX_BYTES). Returns 0 with *out / *out_size
 * set (the caller frees *out), -EFBIG when the output would exceed the bound,
 * -EINVAL when the data is not a valid xz stream (or has trailing garbage),
 * or -ENOMEM. */
int minidebug__decompress(const void *xz, size_t size, size_t max_out, void **out,
			  size_t *out_size);

#endif
