/* cgroup.h - naming a cgroup v2 for `--cgroup`: a path (any directory of the
 * cgroup2 hierarchy) or a name under /sys/fs/cgroup, turned into what the
 * BPF filter compares: the cgroup's id (its directory's inode number on
 * cgroup2) and its depth below the hierarchy's root. */
#ifndef DYNOPROF_UTIL_CGROUP_H
#define DYNOPROF_UTIL_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* Where cgroup v2 is mounted on a systemd host. */
#define CGROUP_DEFAULT_ROOT "/sys/fs/cgroup"

struct cgroup_ref {
	char path[4096];  /* the resolved directory */
	uint64_t id;      /* cgroup id (never 0) */
	uint32_t level;   /* depth below the root: the root is 0, its children 1 */
};

/* Resolves spec: an existing directory on cgroup2 as given, else
 * ROOT/spec, ROOT the cgroup2 mount (CGROUP_DEFAULT_ROOT, or on a hybrid
 * host the first cgroup2 mount, e.g. /sys/fs/cgroup/unified) (so "/system.slice/x.service", as
 * /proc/PID/cgroup shows it, and "x.slice" both work). Returns 0, or -errno
 * with one line in err: not found, not a cgroup v2 directory. */
int cgroup__resolve(const char *spec, struct cgroup_ref *out, char *err, size_t errlen);

#endif
