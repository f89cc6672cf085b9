// SPDX-License-Identifier: MIT
/* /proc/PID/maps text, then lookups in what was parsed. */
#include "fuzz_util.h"

#include "symbolize/proc_maps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = fuzz_file(data, size);
	struct proc_maps *m = proc_maps__parse(f);
	fclose(f);
	if (!m)
		return 0;
	/* The kernel never writes overlapping mappings; where the text has none,
	 * every mapping's start must find that mapping. Any answer must contain
	 * the address asked for. */
	size_t n = proc_maps__count(m);
	int disjoint = 1;
	for (size_t i = 0; i + 1 < n; i++)
		if (proc_maps__at(m, i)->end > proc_maps__at(m, i + 1)->start)
			disjoint = 0;
	for (size_t i = 0; i < n; i++) {
		const struct proc_map *pm = proc_maps__at(m, i);
		if (!pm->path)
			abort();
		(void)path_basename(pm->path);
		const struct proc_map *hit = proc_maps__find(m, pm->start);
		if (hit && !(hit->start <= pm->start && pm->start < hit->end))
			abort();
		if (disjoint && pm->start < pm->end && hit != pm)
			abort();
	}
	proc_maps__find(m, 0);
	proc_maps__find(m, UINT64_MAX);
	proc_maps__free(m);
	return 0;
}
