// SPDX-License-Identifier: MIT
#include "util/cgroup.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

static int is_cgroup2_dir(const char *path)
{
	struct statfs sf;
	struct stat st;
	return !statfs(path, &sf) && sf.f_type == CGROUP2_SUPER_MAGIC && !stat(path, &st) &&
	       S_ISDIR(st.st_mode);
}

/* The cgroup2 mount: CGROUP_DEFAULT_ROOT on a unified host, else the first
 * cgroup2 mount (a hybrid host's /sys/fs/cgroup/unified). */
static void cgroup2_root(char *out, size_t len)
{
	char line[4096], dev[256], dir[PATH_MAX], type[64];
	FILE *f = fopen("/proc/self/mounts", "re");
	snprintf(out, len, "%s", CGROUP_DEFAULT_ROOT);
	if (!f)
		return;
	int found = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%255s %4095s %63s", dev, dir, type) == 3 &&
		    !strcmp(type, "cgroup2") && (!found || !strcmp(dir, CGROUP_DEFAULT_ROOT))) {
			snprintf(out, len, "%s", dir);
			found = 1;
		}
	fclose(f);
}

int cgroup__resolve(const char *spec, struct cgroup_ref *out, char *err, size_t errlen)
{
	char joined[PATH_MAX], real[PATH_MAX];
	const char *tries[2] = { spec, joined };
	struct stat st;
	memset(out, 0, sizeof(*out));
	if (!spec || !*spec) {
		snprintf(err, errlen, "an empty cgroup name");
		return -EINVAL;
	}
	char root[PATH_MAX];
	cgroup2_root(root, sizeof(root));
	snprintf(joined, sizeof(joined), "%.2048s/%.2000s", root, spec + strspn(spec, "/"));
	for (int i = 0; i < 2; i++) {
		if (!is_cgroup2_dir(tries[i]) || !realpath(tries[i], real))
			continue;
		if (stat(real, &st))
			continue;
		/* Depth: the directories above it that are still cgroup2. */
		char up[PATH_MAX];
		uint32_t level = 0;
		snprintf(up, sizeof(up), "%s", real);
		for (;;) {
			char *slash = strrchr(up, '/');
			if (!slash || slash == up)
				break;
			*slash = '\0';
			if (!is_cgroup2_dir(up))
				break;
			level++;
		}
		snprintf(out->path, sizeof(out->path), "%s", real);
		out->id = (uint64_t)st.st_ino;
		out->level = level;
		return 0;
	}
	snprintf(err, errlen, "no cgroup v2 '%s' (neither that directory on cgroup2 nor %s)",
		 spec, joined);
	return -ENOENT;
}
