// SPDX-License-Identifier: MIT
#include "python/py_layout.h"

#include <errno.h>
#include <string.h>

int py_layout__from_table(unsigned minor, struct py_layout *out)
{
	int index = py_version_index(3, minor);

	if (index < 0)
		return index;
	memset(out, 0, sizeof(*out));
	out->walk = py_offsets_table[index];
	out->code = py_code_layout_table[index];
	out->minor = minor;
	out->source = PY_LAYOUT_TABLE;
	return 0;
}
