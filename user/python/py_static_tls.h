/* py_static_tls.h - where the dynamic linker put a shared library's
 * thread-local block, for a libpython whose thread state is a thread-local
 * read through __tls_get_addr (3.15+ built with the local-dynamic model).
 *
 * x86_64 glibc places the TLS blocks of the libraries loaded at start-up
 * (DT_NEEDED) in the static TLS area, at the same offset below the thread
 * pointer in every thread: block = fsbase - l_tls_offset. That offset lives
 * only in the dynamic linker's struct link_map (private, its layout varies
 * between glibc versions), found through ld.so's exported _r_debug (r_map,
 * then each link_map's public {l_addr, l_name, l_ld, l_next, l_prev}); the
 * TLS fields are recognised by their shape, as glibc 2.17 .. 2.43 lay them out:
 *
 *   void *l_tls_initimage; size_t l_tls_initimage_size; size_t l_tls_blocksize;
 *   size_t l_tls_align; size_t l_tls_firstbyte_offset; ptrdiff_t l_tls_offset;
 *   size_t l_tls_modid;
 *
 * with l_tls_modid the module id the library's own tls_index holds. A
 * library loaded with dlopen has no static offset (0 or -1: its blocks are
 * allocated per thread on first use) and is refused. */
#ifndef DYNOPROF_PY_STATIC_TLS_H
#define DYNOPROF_PY_STATIC_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "symbolize/proc_maps.h"

/* Bytes of a struct link_map read and scanned (glibc's is about 1.1 KiB; the
 * TLS fields sit in its first 1 KiB). */
#define PY_STATIC_TLS_LINK_MAP_BYTES 2048

/* Scans words[0..count) (a struct link_map read from the target) for the
 * TLS fields above, with l_tls_modid == modid and l_tls_initimage inside
 * [lib_bias, lib_bias + 4 GiB). Returns 0 with *tls_offset = l_tls_offset
 * (> 0: the block is at fsbase - *tls_offset), -EOPNOTSUPP when the fields
 * say the block is not in static TLS (loaded with dlopen), -ENOENT when no
 * such fields are found. */
int py_static_tls__scan(const uint64_t *words, size_t count, uint64_t lib_bias, uint64_t modid,
			int64_t *tls_offset);

/* Finds l_tls_offset of the library loaded at lib_bias (its link_map's
 * l_addr) whose module id is modid, in process pid (maps: its executable
 * mappings, for ld.so). Returns 0 with *tls_offset set, -EOPNOTSUPP (not in
 * static TLS), -EAGAIN (no link_map at lib_bias yet: the library is mapped
 * but not on the linker's list, so try again later), -ENOENT (ld.so,
 * _r_debug or the link_map's TLS fields not found), or a read -errno.
 * reason (reasonlen bytes) says why on failure. */
int py_static_tls__offset(pid_t pid, const struct proc_maps *maps, uint64_t lib_bias,
			  uint64_t modid, int64_t *tls_offset, char *reason, size_t reasonlen);

#endif
