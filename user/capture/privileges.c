// SPDX-License-Identifier: MIT
#include "capture/privileges.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int privileges__sufficient(uint64_t cap)
{
	if (cap & (1ULL << CAPBIT_SYS_ADMIN))
		return 1;
	return (cap & (1ULL << CAPBIT_BPF)) && (cap & (1ULL << CAPBIT_PERFMON));
}

static int read_cap_effective(uint64_t *cap)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	int found = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %" SCNx64, cap) == 1) {
			found = 1;
			break;
		}
	fclose(f);
	return found ? 0 : -ENOENT;
}

int privileges__check(char *err, size_t errlen)
{
	uint64_t cap = 0;
	if (read_cap_effective(&cap))
		return 0; /* cannot tell: let the kernel decide and report */
	if (privileges__sufficient(cap))
		return 0;
	snprintf(err, errlen, "permission denied: profiling needs root, or CAP_BPF and "
		 "CAP_PERFMON (e.g. `sudo dynoprof ...` or `setcap cap_bpf,cap_perfmon+ep dynoprof`)");
	return -EPERM;
}
