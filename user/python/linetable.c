/* linetable.c - CPython line-number tables (see linetable.h).
 *
 * Each decoder mirrors the interpreter's own reader for its version
 * (Objects/codeobject.c: PyCode_Addr2Line and the PyCodeAddressRange walkers)
 * and only differs in refusing malformed input instead of trusting it: the
 * tables come from another process's memory and may be torn or stale.
 */
#include <errno.h>
#include <limits.h>

#include "python/linetable.h"

/* Location-table entry codes (3.11+, Include/cpython/code.h
 * _PyCodeLocationInfoKind). */
enum {
	LOCATION_ONE_LINE0 = 10,  /* line delta 0, columns in two bytes */
	LOCATION_ONE_LINE2 = 12,  /* line delta 2 */
	LOCATION_NO_COLUMNS = 13, /* line delta as svarint, no columns */
	LOCATION_LONG = 14,       /* line delta svarint, then end line/columns */
	LOCATION_NONE = 15,       /* no location: line -1 */
};

/* Adds delta to *line unless the sum leaves int's range. */
static int add_line(int64_t *line, int64_t delta)
{
	*line += delta;
	return *line < INT_MIN || *line > INT_MAX ? -EINVAL : 0;
}

/* 3.8/3.9: PyCode_Addr2Line over co_lnotab. */
static int lnotab_line(const uint8_t *table, size_t len, int firstlineno, uint32_t offset,
		       int *line)
{
	int64_t lineno = firstlineno;
	uint64_t addr = 0;

	if (len % 2)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 2) {
		addr += table[i];
		if (addr > offset)
			break;
		if (add_line(&lineno, (int8_t)table[i + 1]))
			return -EINVAL;
	}
	*line = (int)lineno;
	return 0;
}

/* 3.10: the PEP 626 co_linetable, ranges in bytes. Zero-length ranges only
 * carry line deltas too large for one pair. */
static int linetable310_line(const uint8_t *table, size_t len, int firstlineno,
			     uint32_t offset, int *line)
{
	int64_t computed = firstlineno;
	uint64_t end = 0;

	if (len % 2)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 2) {
		uint64_t start = end;
		int8_t ldelta = (int8_t)table[i + 1];

		end += table[i];
		if (ldelta != -128 && add_line(&computed, ldelta))
			return -EINVAL;
		if (offset >= start && offset < end) {
			*line = ldelta == -128 ? -1 : (int)computed;
			return 0;
		}
	}
	return -ENOENT;
}

/* Reads an unsigned varint (6 bits per byte, 0x40 = more follow) from
 * table[*pos], stopping at len. Continuation bytes never have bit 7 set (that
 * starts the next entry). */
static int read_varint(const uint8_t *table, size_t len, size_t *pos, uint32_t *value)
{
	uint32_t result = 0;

	for (unsigned shift = 0;; shift += 6) {
		uint8_t byte;

		if (*pos >= len || shift > 30)
			return -EINVAL;
		byte = table[(*pos)++];
		if (byte & 0x80)
			return -EINVAL;
		if (shift == 30 && (byte & 63) > 3)
			return -EINVAL;
		result |= (uint32_t)(byte & 63) << shift;
		if (!(byte & 64))
			break;
	}
	*value = result;
	return 0;
}

/* 3.11+: the location table; entries cover (length + 1) code units each. */
static int locations_line(const uint8_t *table, size_t len, int firstlineno, uint32_t offset,
			  int *line)
{
	uint64_t unit = offset / 2, end = 0;
	int64_t computed = firstlineno;
	size_t pos = 0;

	while (pos < len) {
		uint8_t first = table[pos++];
		unsigned code = (first >> 3) & 15;
		uint64_t start = end;
		int64_t delta = 0;

		if (!(first & 0x80))
			return -EINVAL;
		end += (first & 7) + 1;
		if (code == LOCATION_NO_COLUMNS || code == LOCATION_LONG) {
			uint32_t raw;

			if (read_varint(table, len, &pos, &raw))
				return -EINVAL;
			delta = raw & 1 ? -(int64_t)(raw >> 1) : (int64_t)(raw >> 1);
		} else if (code >= LOCATION_ONE_LINE0 && code <= LOCATION_ONE_LINE2) {
			delta = code - LOCATION_ONE_LINE0;
		}
		if (add_line(&computed, delta))
			return -EINVAL;
		if (unit >= start && unit < end) {
			*line = code == LOCATION_NONE ? -1 : (int)computed;
			return 0;
		}
		/* The rest of the entry (columns, end line) up to the next entry
		 * start, as CPython skips it. */
		while (pos < len && !(table[pos] & 0x80))
			pos++;
	}
	return -ENOENT;
}

int py_linetable__line(unsigned minor, const uint8_t *table, size_t len, int firstlineno,
		       uint32_t instr_offset, int *line)
{
	if (!table && len)
		return -EINVAL;
	switch (minor) {
	case 8:
	case 9:
		return lnotab_line(table, len, firstlineno, instr_offset, line);
	case 10:
		return linetable310_line(table, len, firstlineno, instr_offset, line);
	default:
		/* 3.11 .. 3.15 (and newer, read through their debug offsets):
		 * the location table. */
		if (minor < 11 || minor > PY_LINETABLE_MAX_MINOR)
			return -EINVAL;
		return locations_line(table, len, firstlineno, instr_offset, line);
	}
}

int py_linetable__instr_offset(unsigned minor, uint32_t instr, int code_adaptive,
			       int64_t *offset)
{
	switch (minor) {
	case 8:
	case 9:
		*offset = (int32_t)instr;
		return 0;
	case 10:
		*offset = (int64_t)(int32_t)instr * 2;
		return 0;
	default:
		if (minor < 11 || minor > PY_LINETABLE_MAX_MINOR)
			return -EINVAL;
		*offset = (int64_t)instr - code_adaptive;
		return 0;
	}
}

int py_linetable__frame_line(unsigned minor, const uint8_t *table, size_t len, int firstlineno,
			     uint32_t instr, int code_adaptive, int *line)
{
	int64_t offset;
	int err = py_linetable__instr_offset(minor, instr, code_adaptive, &offset);

	if (err)
		return err;
	if (offset < 0) {
		*line = firstlineno;
		return 0;
	}
	if (offset > UINT32_MAX)
		return -ENOENT;
	return py_linetable__line(minor, table, len, firstlineno, (uint32_t)offset, line);
}
