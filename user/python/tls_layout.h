/* tls_layout.h - where glibc keeps pthread_getspecific() values, measured in
 * our own process, so BPF can find a sampled thread's PyThreadState from its
 * thread pointer (fsbase) and CPython's TSS key:
 *
 *   value = *(fsbase + specific_1stblock + key * entry_size + data_offset)
 *
 * glibc keeps the values of keys 0..31 (PTHREAD_KEY_2NDLEVEL_SIZE) inline in
 * struct pthread (specific_1stblock[], entries {uintptr_t seq; void *data;});
 * larger keys live in separately allocated second-level blocks, which this
 * layout does NOT describe: keys >= TLS_LAYOUT_MAX_KEY are unsupported (a
 * CPython process normally gets key 0-2, unless an embedding application
 * created many keys first).
 *
 * Host processes use the same libc as dynoprof. A process in another root
 * (container, chroot) with another C library is walked only when that
 * library's own pthread_getspecific reads the same words (python/libc_tss.h,
 * checked by py_detect); else it is refused with one line.
 */
#ifndef DYNOPROF_TLS_LAYOUT_H
#define DYNOPROF_TLS_LAYOUT_H

#include <pthread.h>

#include "python_abi.h"

/* Keys below this are described by struct py_tls_layout; larger ones are not. */
#define TLS_LAYOUT_MAX_KEY 32

/* Measures the layout in the calling process: creates two pthread keys, stores
 * distinctive values, finds them relative to the calling thread's thread
 * pointer (x86_64 fsbase), checks glibc's {seq, data} entry shape, and deletes
 * the keys again. Thread-safe (touches only the calling thread's values of
 * keys it creates). Fills *out and returns 0; returns -ENOTSUP when the layout
 * cannot be established (non-glibc libc, other architecture, keys >= 32
 * already exhausted), -EAGAIN when no pthread key is available. */
int tls_layout__calibrate(struct py_tls_layout *out);

/* Checks layout against the calling thread: reads the slot the formula gives
 * for key (relative to this thread's fsbase) and compares it with
 * pthread_getspecific(key), which must be non-NULL. Returns 0 when they agree,
 * -ERANGE when key >= TLS_LAYOUT_MAX_KEY, -ENODATA when the key has no value
 * in this thread, -ENOTSUP on other architectures, -EFAULT on mismatch. */
int tls_layout__verify(const struct py_tls_layout *layout, pthread_key_t key);

/* Returns the calling thread's thread pointer as BPF sees it
 * (task->thread.fsbase on x86_64), or 0 when unavailable. */
unsigned long tls_layout__thread_pointer(void);

#endif
