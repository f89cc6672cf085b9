/* py_offsets.h - CPython structure offsets per supported version (x86_64).
 *
 * Two tables, both indexed by enum py_version_index (bpf/python_abi.h) and both
 * generated from the CPython headers by scripts/gen_py_offsets.py (the .c file
 * is generated data; regenerate rather than edit):
 *
 *   py_offsets_table[]      what the BPF frame walker needs (struct py_offsets,
 *                           copied as is into the py_versions map);
 *   py_code_layout_table[]  what userspace needs to turn a sampled code-object
 *                           address into names and a line (read through
 *                           process_vm_readv).
 *
 * Valid for release builds of 3.8 .. 3.13 with the default (GIL) ABI; debug
 * (Py_DEBUG, Py_TRACE_REFS) and free-threaded (3.13t) builds have other layouts
 * and must be refused by the caller.
 */
#ifndef DYNOPROF_PY_OFFSETS_H
#define DYNOPROF_PY_OFFSETS_H

#include <stdint.h>

#include "python_abi.h" /* bpf/python_abi.h: struct py_offsets, enum py_version_index */

/* Where userspace finds things in a code object and in the str/bytes objects
 * it points to; offsets in bytes, -1 when the version has no such field. */
struct py_code_layout {
	int16_t ob_type;          /* PyObject -> ob_type (type pointer) */
	int16_t var_size;         /* PyVarObject -> ob_size (item count) */
	int16_t type_name;        /* PyTypeObject -> tp_name (const char *) */
	int16_t co_units;         /* PyCodeObject -> ob_size: bytecode length in
				   * 2-byte code units, bounds co_code_adaptive (3.11+) */
	int16_t co_name;          /* PyCodeObject -> co_name (str) */
	int16_t co_qualname;      /* PyCodeObject -> co_qualname (str, 3.11+) */
	int16_t co_filename;      /* PyCodeObject -> co_filename (str) */
	int16_t co_firstlineno;   /* PyCodeObject -> co_firstlineno (int) */
	int16_t co_linetable;     /* PyCodeObject -> line table (bytes): co_lnotab
				   * (3.8, 3.9), co_linetable (3.10+); decode with
				   * py_linetable__line() */
	int16_t co_code;          /* PyCodeObject -> co_code (bytes, 3.8-3.10) */
	int16_t co_code_adaptive; /* first instruction, inline in the code object
				   * (3.11+); same as py_offsets.code_adaptive */
	uint16_t code_read_size;  /* bytes from the start of a code object that
				   * cover every field above except the bytecode:
				   * read this much once, then decode locally */
	int16_t unicode_length;   /* PyASCIIObject -> length (code points) */
	int16_t unicode_state;    /* PyASCIIObject -> state (32-bit bitfield word) */
	uint8_t unicode_kind_shift;    /* state >> this & 7: bytes per code point
					* (1, 2, 4) */
	uint8_t unicode_compact_shift; /* state >> this & 1: data follows the header */
	uint8_t unicode_ascii_shift;   /* state >> this & 1: pure ASCII */
	int16_t unicode_ascii_data;    /* data of a compact ASCII str, from its start
					* (sizeof(PyASCIIObject)) */
	int16_t unicode_compact_data;  /* data of a compact non-ASCII str
					* (sizeof(PyCompactUnicodeObject)) */
	int16_t bytes_size;       /* PyBytesObject -> ob_size (length) */
	int16_t bytes_data;       /* PyBytesObject -> ob_sval (first byte) */
};

/* Offsets for the BPF walker, per version. */
extern const struct py_offsets py_offsets_table[PY_VERSION_COUNT];
/* Code-object and string layouts for userspace, per version. */
extern const struct py_code_layout py_code_layout_table[PY_VERSION_COUNT];

/* Maps an interpreter version to its index into both tables: enum
 * py_version_index, or -ENOTSUP for versions other than 3.8 .. 3.13. */
int py_version_index(unsigned major, unsigned minor);

#endif
