// SPDX-License-Identifier: MIT
#include "cli/cli.h"

#include "profile/profile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void cli_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("dynoprof: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int parse_id_list(const char *text, uint32_t **ids_out, size_t *count_out)
{
	size_t n = 0, cap = 0;
	uint32_t *ids = NULL;
	const char *p = text;

	if (!*p)
		return -EINVAL;
	for (;;) {
		char *end;
		errno = 0;
		long long v = strtoll(p, &end, 10);
		if (end == p || errno || v <= 0 || v > INT32_MAX || (*end && *end != ','))
			goto bad;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			uint32_t *grown = realloc(ids, cap * sizeof(*ids));
			if (!grown) {
				free(ids);
				return -ENOMEM;
			}
			ids = grown;
		}
		ids[n++] = (uint32_t)v;
		if (!*end)
			break;
		p = end + 1;
	}
	*ids_out = ids;
	*count_out = n;
	return 0;
bad:
	free(ids);
	return -EINVAL;
}

void cli_note_saturated(const struct profile *p, const char *what)
{
	uint64_t n = profile__saturated(p);
	if (n)
		fprintf(stderr, "dynoprof: note: %s: counts saturated at 2^64-1 (%" PRIu64
			" values clamped): its totals do not fit 64 bits\n", what, n);
}
