/* py_tstate_find.h - where a CPython 3.13+ interpreter keeps each thread's
 * PyThreadState, learnt from its own machine code, since _Py_DebugOffsets
 * does not say:
 *
 *   3.13, 3.14  a pthread key, the Py_tss_t autoTSSkey inside _PyRuntime
 *               (its offset moves between patch releases and builds);
 *   3.15+       a static thread-local (_Py_tss_gilstate) at a fixed offset
 *               from the thread pointer.
 *
 * Both are what PyGILState_GetThisThreadState() (exported, stable API)
 * reads first, so its first instructions (x86_64) are decoded: `mov
 * %fs:disp32,%rax` gives the thread-local; `cmpl $0,rel(%rip)` /
 * `mov rel(%rip),%edi` / `lea rel(%rip),%rdi` / `mov $imm32,%edi` pointing
 * into _PyRuntime, or `mov GOT(%rip),%rax; lea disp(%rax),%reg` (a shared
 * libpython), give the Py_tss_t; the caller checks the key read there.
 * `mov GOT(%rip),%rax; mov %fs:(%rax),%rax` (a shared libpython 3.15+) gives
 * the GOT slot holding the thread-local's offset, for the caller to read.
 * `lea GOT(%rip),%rdi; call __tls_get_addr; [pop %rbp;] mov disp(%rax),%rax`
 * (a shared libpython 3.15+ built with the local-dynamic TLS model, as
 * Debian's libpython3.15.so is) gives the GOT's tls_index {module id,
 * offset} and the variable's offset in that module's TLS block (disp): the
 * caller finds where the dynamic linker put the block (py_static_tls.h).
 * Anything else (e.g. the general-dynamic model's prefixed call) is not
 * recognised. */
#ifndef DYNOPROF_PY_TSTATE_FIND_H
#define DYNOPROF_PY_TSTATE_FIND_H

#include <stddef.h>
#include <stdint.h>

#include "python_abi.h"

/* Bytes of the function decoded. */
#define PY_TSTATE_FIND_CODE_BYTES 48

/* code: the first len bytes of PyGILState_GetThisThreadState at code_addr;
 * runtime_addr, runtime_size: _PyRuntime (all process addresses). Returns 0
 * having set o->runtime_tss_key (and o->tstate_tls = 0) or o->tstate_tls; 1
 * when the thread-local's offset is the 8-byte value at *tls_slot (a process
 * address: read it, then set o->tstate_tls); 2 when *tls_slot is the
 * address of the library's tls_index and *tls_dtpoff the variable's offset
 * in its TLS block (>= 0, a multiple of 8); -ENOENT when no known
 * instruction is found. */
int py_tstate_find(const uint8_t *code, size_t len, uint64_t code_addr, uint64_t runtime_addr,
		   uint64_t runtime_size, struct py_offsets *o, uint64_t *tls_slot,
		   int32_t *tls_dtpoff);

#endif
