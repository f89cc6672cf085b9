/* py_layout.h - everything needed to walk and name one interpreter's frames:
 * the offsets the BPF walker uses, the code-object and string layout userspace
 * reads names with, and where those came from. One per Python process (patch
 * releases and debug builds of one minor version may differ). */
#ifndef DYNOPROF_PY_LAYOUT_H
#define DYNOPROF_PY_LAYOUT_H

#include "python/py_offsets.h"

/* Where a layout came from. */
enum py_layout_source {
	PY_LAYOUT_TABLE = 0,        /* the built-in table (3.8 .. 3.12, or 3.13 on request) */
	PY_LAYOUT_DEBUG_OFFSETS = 1,/* the process's own _Py_DebugOffsets, a layout
				     * dynoprof knows (3.13 .. 3.15) */
	PY_LAYOUT_NEWER = 2,        /* the _Py_DebugOffsets of a newer minor, read with
				     * the newest known layout because it checked out */
};

/* One interpreter's layout. Plain data: copy freely. */
struct py_layout {
	struct py_offsets walk;       /* for BPF (copied into struct py_proc) */
	struct py_code_layout code;   /* for the resolver (user/python/py_resolver.c) */
	unsigned minor;               /* 3.minor: the line table format */
	enum py_layout_source source; /* see enum py_layout_source */
};

/* Fills *out from the built-in table for 3.minor. Returns 0, or -ENOTSUP for
 * minors outside the table (3.8 .. 3.13). */
int py_layout__from_table(unsigned minor, struct py_layout *out);

#endif
