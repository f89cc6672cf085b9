/* libc_tss.h - where another process's C library keeps pthread_getspecific()
 * values, read from the code of its own __pthread_getspecific.
 *
 * The BPF walker finds a thread's PyThreadState through the layout
 * tls_layout__calibrate() measured in dynoprof's own process (its own glibc).
 * A process in another root (a container, a chroot) may run another C library:
 * its layout is only the same if its code says so. glibc's x86_64
 * pthread_getspecific starts, for keys below PTHREAD_KEY_2NDLEVEL_SIZE, with
 *
 *   cmp $0x1f,%edi; ja <second level>          keys 0..31 are inline
 *   mov %edi,%eax; add $0x31,%rax; shl $4,%rax  16 * key + 0x310
 *   add %fs:0x10,%rax                          + THREAD_SELF (the thread pointer)
 *   mov 0x8(%rax),%rdx                         data word of the {seq, data} entry
 *
 * (glibc 2.36 to 2.43 at least). libc_tss__decode() follows such code
 * symbolically (registers as a*key + b, plus the thread pointer) up to that
 * first load and reports the address formula; code it does not understand
 * (other instructions, musl, other architectures) is refused, never guessed.
 */
#ifndef DYNOPROF_LIBC_TSS_H
#define DYNOPROF_LIBC_TSS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "python_abi.h" /* bpf/python_abi.h: struct py_tls_layout */

/* Bytes of the function decoded (the fast path is the first ~30). */
#define LIBC_TSS_CODE_MAX 96

/* What a libc's pthread_getspecific reads for a small key. */
struct libc_tss_code {
	struct py_tls_layout layout; /* value = *(tp + specific_1stblock + key *
				      * entry_size + data_offset) */
	uint32_t inline_keys;        /* keys on that path: the bounds check + 1 */
};

/* Decodes x86_64 code (len bytes from the function's first byte). Returns 0
 * with *out filled, or -ENOTSUP with reason (one line, e.g. "unknown
 * instruction 0f 0b at +12") when the code is not understood. Pure. */
int libc_tss__decode(const uint8_t *code, size_t len, struct libc_tss_code *out, char *reason,
		     size_t reasonlen);

/* Reads up to buflen bytes of the code of __pthread_getspecific (or
 * pthread_getspecific) from the ELF file at path. Returns the number of bytes
 * read, -ENOENT when the file defines neither, or another -errno. */
int libc_tss__read_code(const char *path, uint8_t *buf, size_t buflen);

/* 1 when code reads the same words as layout for every key below
 * TLS_LAYOUT_MAX_KEY (same entry size, same offset of key 0's data, at least
 * that many inline keys), else 0. */
int libc_tss__matches(const struct libc_tss_code *code, const struct py_tls_layout *layout);

/* Whether the C library at open_path (whose stat is *st; shown as `name` in
 * reason) keeps thread-specific data as `expected` says. Verdicts are cached
 * per file (device, inode, size, mtime; bounded). Returns 0 when it does,
 * -ENOTSUP with a one-line reason naming the library when it does not or its
 * code is not understood, or -errno when the file cannot be read.
 * Thread-safe. */
int libc_tss__check(const char *open_path, const struct stat *st, const char *name,
		    const struct py_tls_layout *expected, char *reason, size_t reasonlen);

#endif
