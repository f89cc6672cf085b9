// SPDX-License-Identifier: MIT
#include "symbolize/proc_maps.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/ioctl.h>

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

/* PROCMAP_QUERY (Linux 6.11+, <linux/fs.h>): one mapping per ioctl on an
 * open /proc/PID/maps, without the kernel formatting every mapping as text
 * and us parsing it (the text costs several times more: a busy host's agent
 * reads the maps of every new process it samples). Declared here for older
 * headers; the ABI is fixed. */
struct procmap_query_abi {
	uint64_t size;           /* in: sizeof(struct procmap_query_abi) */
	uint64_t query_flags;    /* in: QUERY_* */
	uint64_t query_addr;     /* in: the address asked about */
	uint64_t vma_start;      /* out: the mapping found */
	uint64_t vma_end;        /* out */
	uint64_t vma_flags;      /* out: permissions */
	uint64_t vma_page_size;  /* out */
	uint64_t vma_offset;     /* out: file offset of vma_start */
	uint64_t inode;          /* out: file inode (0: none) */
	uint32_t dev_major;      /* out: file device */
	uint32_t dev_minor;      /* out */
	uint32_t vma_name_size;  /* in: name buffer size; out: name length + 1, 0: none */
	uint32_t build_id_size;  /* in/out: 0: not asked */
	uint64_t vma_name_addr;  /* in: name buffer */
	uint64_t build_id_addr;  /* in: build-id buffer (unused) */
};
_Static_assert(sizeof(struct procmap_query_abi) == 104, "PROCMAP_QUERY ABI");
#define PROCMAP_QUERY_IOCTL _IOWR('f', 17, struct procmap_query_abi)
#define QUERY_VMA_EXECUTABLE 0x04
#define QUERY_COVERING_OR_NEXT_VMA 0x10
/* More executable mappings than any process has: a bound on the loop. */
#define QUERY_MAX_MAPPINGS 1000000

/* Set once a kernel refused PROCMAP_QUERY: the text is read from then on. */
static int query_unsupported;

/* The vsyscall page: in every 64-bit process's maps text, but no mapping of
 * its own that PROCMAP_QUERY finds (the kernel's gate area). Found once in
 * our own maps text; count 0 when the kernel has none. */
static struct proc_maps *gate;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;

static void find_gate(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	struct proc_maps *all = f ? proc_maps__parse(f) : NULL;
	if (f)
		fclose(f);
	gate = calloc(1, sizeof(*gate));
	for (size_t i = 0; gate && all && i < all->count; i++) {
		if (strcmp(all->maps[i].path, "[vsyscall]"))
			continue;
		struct proc_map *one = malloc(sizeof(*one));
		char *path = strdup("[vsyscall]");
		if (one && path) {
			*one = all->maps[i];
			one->path = path;
			gate->maps = one;
			gate->count = 1;
		} else {
			free(one);
			free(path);
		}
		break;
	}
	proc_maps__free(all);
}

/* Reads the executable mappings of the maps file fd into m, ascending.
 * Returns 0, -ENOTTY/-EINVAL when the kernel has no PROCMAP_QUERY (read the
 * text), or -errno (-ESRCH: the process has no memory any more). */
static int query_maps(int fd, struct proc_maps *m)
{
	char name[8192];
	uint64_t addr = 0;
	size_t cap = 0;
	while (m->count < QUERY_MAX_MAPPINGS) {
		struct procmap_query_abi q = {
			.size = sizeof(q),
			.query_flags = QUERY_COVERING_OR_NEXT_VMA | QUERY_VMA_EXECUTABLE,
			.query_addr = addr,
			.vma_name_size = sizeof(name),
			.vma_name_addr = (uint64_t)(uintptr_t)name,
		};
		if (ioctl(fd, PROCMAP_QUERY_IOCTL, &q))
			return errno == ENOENT ? 0 : -errno; /* ENOENT: no mapping past addr */
		if (q.vma_end <= addr)
			return -EINVAL;
		addr = q.vma_end;
		name[q.vma_name_size && q.vma_name_size <= sizeof(name) ? q.vma_name_size - 1 : 0] =
			'\0';
		size_t len = strlen(name);
		int deleted = 0;
		const char *suffix = " (deleted)";
		if (len > strlen(suffix) && strcmp(name + len - strlen(suffix), suffix) == 0) {
			name[len - strlen(suffix)] = '\0';
			deleted = 1;
		}
		if (m->count == cap) {
			cap = cap ? cap * 2 : 32;
			struct proc_map *n = realloc(m->maps, cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			m->maps = n;
		}
		struct proc_map *pm = &m->maps[m->count];
		if (!(pm->path = strdup(name)))
			return -ENOMEM;
		pm->start = q.vma_start;
		pm->end = q.vma_end;
		pm->offset = q.vma_offset;
		pm->inode = q.inode;
		pm->dev_major = q.dev_major;
		pm->dev_minor = q.dev_minor;
		pm->deleted = deleted;
		m->count++;
	}
	return 0;
}

/* Adds the gate area (see gate) past a query's mappings, as the text has it. */
static int add_gate(struct proc_maps *m)
{
	pthread_once(&gate_once, find_gate);
	if (!gate || !gate->count || !m->count ||
	    m->maps[m->count - 1].end > gate->maps[0].start)
		return 0;
	struct proc_map *n = realloc(m->maps, (m->count + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->maps = n;
	n[m->count] = gate->maps[0];
	if (!(n[m->count].path = strdup(gate->maps[0].path)))
		return -ENOMEM;
	m->count++;
	return 0;
}

struct proc_maps *proc_maps__read(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (!__atomic_load_n(&query_unsupported, __ATOMIC_RELAXED)) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT)
				errno = ESRCH;
			return NULL;
		}
		struct proc_maps *m = calloc(1, sizeof(*m));
		int err = m ? query_maps(fd, m) : -ENOMEM;
		close(fd);
		if (!err)
			err = add_gate(m);
		if (err == -ENOTTY || err == -EINVAL) {
			__atomic_store_n(&query_unsupported, 1, __ATOMIC_RELAXED);
			proc_maps__free(m);
		} else {
			/* No mapping (a zombie), or no memory any more: gone. */
			if (!err && !m->count)
				err = -ESRCH;
			if (err) {
				proc_maps__free(m);
				errno = -err;
				return NULL;
			}
			return m;
		}
	}
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
