// SPDX-License-Identifier: MIT
#include "util/privileges.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

/* What each capability of the full set is for, and what its absence costs:
 * verified by running `record` as a non-root user on a root-owned Python
 * process with each capability removed in turn (tests/integration/
 * test_privileges.py checks the text). */
static const struct cap_cost {
	int bit;           /* CAPBIT_* */
	const char *name;  /* as capabilities(7) spells it */
	const char *cost;  /* what is lost without it */
} cap_costs[] = {
	{ CAPBIT_BPF, "CAP_BPF", "cannot load BPF programs" },
	{ CAPBIT_PERFMON, "CAP_PERFMON", "cannot open system-wide perf events" },
	{ CAPBIT_SYS_PTRACE, "CAP_SYS_PTRACE",
	  "other users' processes lose their Python frames, thread tags (endpoint) and "
	  "native symbols (their memory, /proc/PID/maps and /proc/PID/root are closed)" },
	{ CAPBIT_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH",
	  "other users' processes lose their environment tags (DYNOPROF_SERVICE, "
	  "DYNOPROF_COMMIT, DYNOPROF_TAGS: /proc/PID/environ is owner-only), and binaries "
	  "in directories this user cannot read lose their symbols" },
	{ CAPBIT_SYSLOG, "CAP_SYSLOG",
	  "kernel frames show as [kernel] (/proc/kallsyms hides addresses)" },
	{ CAPBIT_CHECKPOINT_RESTORE, "CAP_CHECKPOINT_RESTORE",
	  "binaries deleted or replaced since a process started (upgraded packages) lose "
	  "their symbols and Python frames (/proc/PID/map_files is closed)" },
	{ CAPBIT_SYS_RESOURCE, "CAP_SYS_RESOURCE",
	  "this kernel (before 5.11) charges BPF maps to RLIMIT_MEMLOCK, which cannot be "
	  "raised: loading may fail (or run `ulimit -l unlimited` first)" },
};

int privileges__effective(uint64_t *cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	*cap = (uint64_t)data[1].effective << 32 | data[0].effective;
	return 0;
}

int privileges__sufficient(uint64_t cap)
{
	if (cap & CAPMASK(CAPBIT_SYS_ADMIN))
		return 1;
	return (cap & CAPMASK(CAPBIT_BPF)) && (cap & CAPMASK(CAPBIT_PERFMON));
}

int privileges__check(char *err, size_t errlen)
{
	uint64_t cap = 0;
	if (privileges__effective(&cap))
		return 0; /* cannot tell: let the kernel decide and report */
	if (privileges__sufficient(cap))
		return 0;
	snprintf(err, errlen, "permission denied: profiling needs root, or CAP_BPF and "
		 "CAP_PERFMON (e.g. `sudo dynoprof ...`, or for everything "
		 "`setcap " PRIVILEGES_SETCAP " dynoprof`)");
	return -EPERM;
}

uint64_t privileges__missing(uint64_t cap, const struct privileges_host *host)
{
	uint64_t need = PRIVILEGES_FULL;
	if (host->kallsyms_open)
		need &= ~CAPMASK(CAPBIT_SYSLOG);
	if (host->memlock_charged && !host->memlock_unlimited)
		need |= CAPMASK(CAPBIT_SYS_RESOURCE);
	if (cap & CAPMASK(CAPBIT_SYS_ADMIN))
		cap |= CAPMASK(CAPBIT_BPF) | CAPMASK(CAPBIT_PERFMON) |
		       CAPMASK(CAPBIT_CHECKPOINT_RESTORE);
	return need & ~cap;
}

size_t privileges__describe_missing(uint64_t missing, const char *prefix, FILE *out)
{
	size_t n = 0;
	for (size_t i = 0; i < sizeof(cap_costs) / sizeof(cap_costs[0]); i++)
		if (missing & CAPMASK(cap_costs[i].bit)) {
			fprintf(out, "%s warning: no %s: %s\n", prefix, cap_costs[i].name,
				cap_costs[i].cost);
			n++;
		}
	if (n)
		fprintf(out, "%s warning: for root's result without root: "
			"setcap " PRIVILEGES_SETCAP " dynoprof\n", prefix);
	return n;
}

/* Reads an integer sysctl; def when it cannot be read. */
static long read_sysctl(const char *path, long def)
{
	FILE *f = fopen(path, "re");
	long v = def;
	if (!f)
		return def;
	if (fscanf(f, "%ld", &v) != 1)
		v = def;
	fclose(f);
	return v;
}

void privileges__host(struct privileges_host *host)
{
	struct utsname u;
	struct rlimit rl;
	unsigned major = 0, minor = 0;
	memset(host, 0, sizeof(*host));
	host->kallsyms_open = read_sysctl("/proc/sys/kernel/kptr_restrict", 1) == 0 &&
			      read_sysctl("/proc/sys/kernel/perf_event_paranoid", 2) <= 1;
	if (!uname(&u) && sscanf(u.release, "%u.%u", &major, &minor) == 2)
		host->memlock_charged = major < 5 || (major == 5 && minor < 11);
	host->memlock_unlimited = !getrlimit(RLIMIT_MEMLOCK, &rl) &&
				  rl.rlim_cur == RLIM_INFINITY;
}

size_t privileges__warn(const char *prefix)
{
	struct privileges_host host;
	uint64_t cap;
	if (privileges__effective(&cap))
		return 0;
	privileges__host(&host);
	return privileges__describe_missing(privileges__missing(cap, &host), prefix, stderr);
}
