/* linetable.h - CPython line-number tables: bytecode offset -> source line.
 *
 * Pure functions over bytes already copied out of the target process (no I/O,
 * no allocation, thread-safe). Three formats exist:
 *
 *   3.8, 3.9  co_lnotab: (byte-offset delta u8, line delta s8) pairs, each
 *             pair starting a new line at the accumulated offset;
 *   3.10      co_linetable (PEP 626): (range length in bytes u8, line delta s8)
 *             pairs, line delta -128 = "no line" for that range;
 *   3.11+     location table: one entry per range of 1..8 code units, the
 *             first byte 1CCCCLLL (code, length-1), line deltas as zigzag
 *             varints (6-bit groups, 0x40 = more) or implied by the code.
 *
 * Offsets given here are byte offsets into the bytecode (co_code in 3.8-3.10,
 * co_code_adaptive in 3.11+); py_linetable__instr_offset() turns what the BPF
 * walker records for a frame (struct py_frame.instr) into one.
 */
#ifndef DYNOPROF_PY_LINETABLE_H
#define DYNOPROF_PY_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

/* Newest minor whose line table is decoded: 3.11's location table, unchanged
 * through 3.15 and assumed for the one newer minor read through its debug
 * offsets (its lines are checked by the caller against co_firstlineno). */
#define PY_LINETABLE_MAX_MINOR 16

/* Finds the source line of the instruction at byte offset instr_offset, as
 * CPython's PyCode_Addr2Line() would for the same code object.
 *   minor        CPython 3.minor, 8 .. PY_LINETABLE_MAX_MINOR (selects the format);
 *   table, len   the bytes of co_lnotab (3.8, 3.9) / co_linetable (3.10+),
 *                only read within [table, table + len);
 *   firstlineno  co_firstlineno, the line every table is relative to;
 *   line         out: the line, or -1 for an instruction CPython gives no line
 *                (3.10+: compiler-generated code; co_lines() yields None).
 * Returns 0; -ENOENT when instr_offset lies past the last range the table
 * describes (3.10+; a 3.8/3.9 table has no end: its last line extends to the
 * end of the bytecode, so callers bound offsets by len(co_code)); -EINVAL for
 * an unsupported minor or a malformed table (odd-length lnotab, a location
 * entry not starting with bit 7 set, a truncated or overlong varint, a line
 * number overflowing int). On error *line is left unchanged. */
int py_linetable__line(unsigned minor, const uint8_t *table, size_t len, int firstlineno,
		       uint32_t instr_offset, int *line);

/* Turns struct py_frame.instr, as recorded by the BPF walker, into the byte
 * offset of the frame's current instruction within its bytecode:
 *   3.8, 3.9   f_lasti, already a byte offset;
 *   3.10       f_lasti in 2-byte code units: times 2;
 *   3.11, 3.12 prev_instr - code object: minus code_adaptive (offset of
 *              co_code_adaptive); prev_instr is the instruction executing (or,
 *              across a Python-to-Python call, the last cache unit of the CALL,
 *              which maps to the same line);
 *   3.13       instr_ptr - code object, minus code_adaptive; instr_ptr is the
 *              instruction executing (CALL while a callee runs), not the next.
 * A negative *offset means the frame has not executed an instruction yet (f_lasti
 * -1 in 3.8-3.10, prev_instr one unit before the code in 3.11/3.12): its line is
 * co_firstlineno. code_adaptive is only read for 3.11+.
 * Returns 0, or -EINVAL for an unsupported minor. */
int py_linetable__instr_offset(unsigned minor, uint32_t instr, int code_adaptive,
			       int64_t *offset);

/* The source line of a sampled frame: py_linetable__instr_offset() then
 * py_linetable__line(), with firstlineno for a frame not started yet. Same
 * arguments and returns as those two. */
int py_linetable__frame_line(unsigned minor, const uint8_t *table, size_t len, int firstlineno,
			     uint32_t instr, int code_adaptive, int *line);

#endif
