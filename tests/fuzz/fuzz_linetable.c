// SPDX-License-Identifier: MIT
/* CPython line tables (co_lnotab, co_linetable, 3.11+ location tables), as
 * copied out of a target process: the first bytes choose the version, the
 * first line and the instruction; the rest is the table. */
#include "fuzz_util.h"

#include "python/linetable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 7)
		return 0;
	unsigned minor = 8 + data[0] % 10; /* 8..17: 17 is unsupported */
	int firstlineno = (int)((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
				(uint32_t)data[3] << 8 | data[4]);
	uint32_t instr = (uint32_t)data[5] << 8 | data[6];
	const uint8_t *table = data + 7;
	size_t len = size - 7;
	int line = -7;
	py_linetable__line(minor, table, len, firstlineno, instr, &line);
	py_linetable__frame_line(minor, table, len, firstlineno, instr, (int)(instr & 0xff),
				 &line);
	/* Every offset of a short table, as a sampled frame could give. */
	for (uint32_t off = 0; off < 2 * len + 4 && off < 64; off += 2)
		py_linetable__line(minor, table, len, firstlineno, off, &line);
	return 0;
}
