// SPDX-License-Identifier: MIT
#include "symbolize/proc_maps.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct proc_maps {
	struct proc_map *maps; /* sorted by start, non-overlapping */
	size_t count;          /* entries in maps */
};

void proc_maps__free(struct proc_maps *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->count; i++)
		free(m->maps[i].path);
	free(m->maps);
	free(m);
}

static int map_cmp(const void *a, const void *b)
{
	const struct proc_map *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Skips spaces and tabs. */
static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Reads an unsigned number in base 16 or 10 at *p (at least one digit, no
 * overflow); advances *p. Returns 0 or -EINVAL. */
static int read_number(const char **p, unsigned base, uint64_t *out)
{
	const char *c = *p;
	uint64_t v = 0;
	for (; *c; c++) {
		unsigned d;
		if (*c >= '0' && *c <= '9')
			d = (unsigned)(*c - '0');
		else if (base == 16 && *c >= 'a' && *c <= 'f')
			d = (unsigned)(*c - 'a' + 10);
		else if (base == 16 && *c >= 'A' && *c <= 'F')
			d = (unsigned)(*c - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	if (c == *p)
		return -EINVAL;
	*out = v;
	*p = c;
	return 0;
}

/* Parses one maps line ("start-end perms offset major:minor inode path"; no
 * sscanf: the agent reads thousands of these a minute); returns 1 for a kept
 * (executable) mapping, 0 for a skipped one, -EINVAL for a malformed line. */
static int parse_line(char *line, struct proc_map *out)
{
	uint64_t start, end, offset, inode, major, minor;
	char perms[8];
	const char *c = skip_blanks(line);
	size_t np = 0;

	if (read_number(&c, 16, &start) || *c++ != '-' || read_number(&c, 16, &end))
		return -EINVAL;
	c = skip_blanks(c);
	while (*c && *c != ' ' && *c != '\t' && *c != '\n' && np < sizeof(perms) - 1)
		perms[np++] = *c++;
	perms[np] = '\0';
	if (!np)
		return -EINVAL;
	c = skip_blanks(c);
	if (read_number(&c, 16, &offset))
		return -EINVAL;
	c = skip_blanks(c);
	if (read_number(&c, 16, &major) || *c++ != ':' || read_number(&c, 16, &minor) ||
	    major > UINT32_MAX || minor > UINT32_MAX)
		return -EINVAL;
	c = skip_blanks(c);
	if (read_number(&c, 10, &inode))
		return -EINVAL;
	while (*c == ' ' || *c == '\t' || *c == '\n')
		c++;
	int path_at = (int)(c - line);
	if (strlen(perms) < 3 || perms[2] != 'x')
		return 0;
	char *path = path_at ? line + path_at : line + strlen(line);
	size_t len = strlen(path);
	while (len && (path[len - 1] == '\n' || path[len - 1] == ' '))
		path[--len] = '\0';
	int deleted = 0;
	const char *suffix = " (deleted)";
	if (len > strlen(suffix) && strcmp(path + len - strlen(suffix), suffix) == 0) {
		path[len - strlen(suffix)] = '\0';
		deleted = 1;
	}
	out->path = strdup(path);
	if (!out->path)
		return -ENOMEM;
	out->start = start;
	out->end = end;
	out->offset = offset;
	out->inode = inode;
	out->dev_major = major;
	out->dev_minor = minor;
	out->deleted = deleted;
	return 1;
}

struct proc_maps *proc_maps__parse(FILE *f)
{
	struct proc_maps *m = calloc(1, sizeof(*m));
	char *line = NULL;
	size_t line_cap = 0, cap = 0;
	int err = 0;

	if (!m)
		return NULL;
	while (getline(&line, &line_cap, f) > 0) {
		struct proc_map pm;
		int r = parse_line(line, &pm);
		if (r < 0) {
			err = r;
			break;
		}
		if (r == 0)
			continue;
		if (m->count == cap) {
			cap = cap ? cap * 2 : 32;
			struct proc_map *n = realloc(m->maps, cap * sizeof(*n));
			if (!n) {
				free(pm.path);
				err = -ENOMEM;
				break;
			}
			m->maps = n;
		}
		m->maps[m->count++] = pm;
	}
	free(line);
	if (err) {
		proc_maps__free(m);
		errno = -err;
		return NULL;
	}
	if (m->count) /* qsort(NULL, 0) is undefined (maps is NULL until the first) */
		qsort(m->maps, m->count, sizeof(*m->maps), map_cmp);
	return m;
}

struct proc_maps *proc_maps__read(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			errno = ESRCH;
		return NULL;
	}
	struct proc_maps *m = proc_maps__parse(f);
	int saved = errno;
	fclose(f);
	/* An exited process (zombie) has an empty maps file. */
	if (m && m->count == 0) {
		proc_maps__free(m);
		m = NULL;
		saved = ESRCH;
	}
	errno = saved;
	return m;
}

const struct proc_map *proc_maps__find(const struct proc_maps *m, uint64_t addr)
{
	size_t lo = 0, hi = m->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct proc_map *pm = &m->maps[mid];
		if (addr < pm->start)
			hi = mid;
		else if (addr >= pm->end)
			lo = mid + 1;
		else
			return pm;
	}
	return NULL;
}

size_t proc_maps__count(const struct proc_maps *m)
{
	return m->count;
}

const struct proc_map *proc_maps__at(const struct proc_maps *m, size_t i)
{
	return i < m->count ? &m->maps[i] : NULL;
}

const char *path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}
