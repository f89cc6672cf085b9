// SPDX-License-Identifier: MIT
#include "capture/descendants.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pid_set__has(const struct pid_set *s, uint32_t pid)
{
	for (size_t i = 0; i < s->count; i++)
		if (s->pids[i] == pid)
			return 1;
	return 0;
}

int pid_set__add(struct pid_set *s, uint32_t pid)
{
	if (pid_set__has(s, pid))
		return 0;
	if (s->count >= DESCENDANTS_MAX)
		return -E2BIG;
	if (s->count == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint32_t *grown = realloc(s->pids, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		s->pids = grown;
		s->cap = cap;
	}
	s->pids[s->count++] = pid;
	return 1;
}

void pid_set__free(struct pid_set *s)
{
	if (!s)
		return;
	free(s->pids);
	s->pids = NULL;
	s->count = s->cap = 0;
}

/* Adds the children of every thread of pid. */
static int add_children(struct pid_set *s, uint32_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0; /* exited */
	int err = 0;
	struct dirent *de;
	while (!err && (de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		char cpath[96];
		snprintf(cpath, sizeof(cpath), "/proc/%" PRIu32 "/task/%.20s/children", pid,
			 de->d_name);
		FILE *f = fopen(cpath, "re");
		if (!f)
			continue;
		unsigned long child;
		while (!err && fscanf(f, "%lu", &child) == 1)
			if (child > 0 && child <= UINT32_MAX) {
				int r = pid_set__add(s, (uint32_t)child);
				err = r < 0 ? r : 0;
			}
		fclose(f);
	}
	closedir(d);
	return err;
}

int descendants__collect(struct pid_set *s, const uint32_t *roots, size_t nroots)
{
	int err = 0;
	for (size_t i = 0; i < nroots && !err; i++) {
		int r = pid_set__add(s, roots[i]);
		err = r < 0 ? r : 0;
	}
	/* Breadth-first: the set grows behind the cursor. */
	for (size_t i = 0; i < s->count && !err; i++)
		err = add_children(s, s->pids[i]);
	return err;
}

int proc__cpu_ns(uint32_t pid, uint64_t *ns)
{
	char path[48], buf[1024];
	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields resume after the last ')'. */
	char *p = strrchr(buf, ')');
	unsigned long long utime, stime;
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return -EINVAL;
	long hz = sysconf(_SC_CLK_TCK);
	if (hz <= 0)
		return -EINVAL;
	*ns = (utime + stime) * (1000000000ull / (unsigned long long)hz);
	return 0;
}
