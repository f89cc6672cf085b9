// SPDX-License-Identifier: MIT
#include "symbolize/map_path.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

const char *map_path__in_root(pid_t pid, const char *path, char *out, size_t len)
{
	char link[64], root[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/root", (int)pid);
	n = readlink(link, root, sizeof(root) - 1);
	if (n > 1 && root[0] == '/') {
		root[n] = '\0';
		while (n > 1 && root[n - 1] == '/')
			root[--n] = '\0';
		if (strncmp(path, root, (size_t)n) == 0 && path[n] == '/') {
			snprintf(out, len, "%s", path + n);
			return out;
		}
	}
	snprintf(out, len, "%s", path);
	return out;
}

int map_path__open_path(pid_t pid, const struct proc_map *m, char *buf, size_t buflen,
			struct stat *st)
{
	char inside[PATH_MAX];

	if (m->path[0] == '/' && !m->deleted) {
		map_path__in_root(pid, m->path, inside, sizeof(inside));
		snprintf(buf, buflen, "/proc/%d/root%s", (int)pid, inside);
		if (stat(buf, st) == 0 && (uint64_t)st->st_ino == m->inode)
			return 0;
	}
	snprintf(buf, buflen, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, (int)pid, m->start,
		 m->end);
	if (stat(buf, st) != 0)
		return -errno;
	return 0;
}
