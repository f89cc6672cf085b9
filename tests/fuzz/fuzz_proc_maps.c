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
	for (size_t i = 0; i < proc_maps__count(m); i++) {
		const struct proc_map *pm = proc_maps__at(m, i);
		if (!pm->path)
			abort();
		(void)path_basename(pm->path);
		/* Every mapping's own start must be found (in it or an overlap). */
		if (pm->start < pm->end && !proc_maps__find(m, pm->start))
			abort();
	}
	proc_maps__find(m, 0);
	proc_maps__find(m, UINT64_MAX);
	proc_maps__free(m);
	return 0;
}
