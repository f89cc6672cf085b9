/* py_debug_offsets.h - reading a CPython 3.13+ interpreter's own description
 * of its structure layout, _Py_DebugOffsets, which starts _PyRuntime:
 *
 *   char cookie[8] "xdebugpy"; uint64_t version (PY_VERSION_HEX);
 *   uint64_t free_threaded; then sections of uint64_t offsets, each section
 *   starting with the size of the structure it describes (runtime state,
 *   interpreter state, thread state, interpreter frame, code object, PyObject,
 *   type, tuple, ..., bytes, unicode, ...).
 *
 * The sections present differ per minor version (3.14 and 3.15 added some), so
 * where each section starts is known per minor (3.13, 3.14, 3.15). A newer
 * minor is read with the newest known layout only when every check below holds
 * (its _PyRuntime size equal to the ELF symbol's, the frame, code, object,
 * bytes and str sections self-consistent); else it is refused.
 *
 * Checked before use: the cookie, the version (3.13+, agreeing with Py_Version
 * when known), the free-threading flag (refused: other object layouts), every
 * offset 8- (or 4-) aligned and inside the size of its own structure, frame
 * fields inside the walker's PY_FRAME_CHUNK, code fields inside what userspace
 * reads of a code object.
 */
#ifndef DYNOPROF_PY_DEBUG_OFFSETS_H
#define DYNOPROF_PY_DEBUG_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

#include "python/py_layout.h"

/* Bytes of _PyRuntime to read: covers every known layout (3.15's is 888). */
#define PY_DEBUG_OFFSETS_READ 1024
/* Newest minor whose _Py_DebugOffsets layout dynoprof knows. */
#define PY_DEBUG_OFFSETS_KNOWN_MINOR 15

/* What the header says, for messages. */
struct py_debug_offsets_info {
	uint64_t version;       /* PY_VERSION_HEX as the struct says (0 when no cookie) */
	int free_threaded;      /* the struct's free_threaded flag */
	unsigned layout_minor;  /* known layout used (13 .. PY_DEBUG_OFFSETS_KNOWN_MINOR) */
};

/* Parses the len bytes read from the start of _PyRuntime. expect_minor: the
 * minor learnt elsewhere (Py_Version, file name), 0 when unknown.
 * runtime_size: st_size of the _PyRuntime symbol, 0 when unknown (required
 * for a minor newer than known). On success fills *out (walk offsets except
 * how the thread state is found: runtime_tss_key / tstate_tls are left 0 for
 * py_tstate_find()) and returns 0. Returns -ENOTSUP with a one-line reason
 * (no cookie, version, free-threaded, a field out of bounds: named) or
 * -EINVAL (len too short for the layout). *info is filled as far as read. */
int py_debug_offsets__parse(const void *buf, size_t len, unsigned expect_minor,
			    uint64_t runtime_size, struct py_layout *out,
			    struct py_debug_offsets_info *info, char *reason, size_t reasonlen);

#endif
