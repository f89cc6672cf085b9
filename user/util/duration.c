// SPDX-License-Identifier: MIT
#include "util/duration.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int duration__parse(const char *text, double *seconds)
{
	static const struct { const char *suffix; double mult; } units[] = {
		{ "", 1 }, { "ms", 1e-3 }, { "s", 1 }, { "m", 60 }, { "h", 3600 }, { "d", 86400 },
	};
	/* Digits and a point only: strtod alone would take a sign, spaces, an
	 * exponent, hex, inf and nan. */
	size_t n = strspn(text, "0123456789.");
	char *end;
	if (!n)
		return -EINVAL;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end != text + n || !isfinite(v))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].suffix)) {
			if (v * units[i].mult > DURATION_MAX_S)
				return -EINVAL;
			*seconds = v * units[i].mult;
			return 0;
		}
	return -EINVAL;
}
