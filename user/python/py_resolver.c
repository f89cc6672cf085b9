// SPDX-License-Identifier: MIT
#include "python/py_resolver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "python/linetable.h"
#include "python/py_offsets.h"
#include "util/hashmap.h"
#include "util/remote.h"
#include "util/warn_log.h"

#define DEFAULT_MAX_ENTRIES 65536
/* Longest string (code points) and line table (bytes) read from a target. */
#define MAX_STR_CHARS 512
#define MAX_LINETABLE_BYTES (64 * 1024)
#define MAX_CODE_READ 512

/* A code object as read from its process. */
struct code_entry {
	int32_t firstlineno;     /* co_firstlineno: must match the sample's */
	char *function;          /* "module:qualname" */
	char *filename;          /* co_filename */
	uint8_t *linetable;      /* line table bytes (format per version) */
	size_t linetable_len;    /* bytes in linetable */
};

/* Cache key: (pid, code address). */
struct code_key {
	uint64_t code; /* code object address */
	int32_t pid;   /* process */
	int32_t pad;   /* zero: keys are hashed as bytes */
};

struct py_resolver_stats {
	uint64_t hits;          /* frames answered from the cache */
	uint64_t reads;         /* code objects read from a process */
	uint64_t read_failures; /* reads that failed (process gone, bad pointer) */
	uint64_t stale;         /* cached entries replaced because co_firstlineno differed */
	uint64_t entries;       /* code objects cached now */
};

struct py_resolver {
	struct hashmap *young;       /* code_key -> code_entry*, recently used */
	struct hashmap *old;         /* previous generation, promoted on use */
	size_t generation_size;      /* young rotates into old at this size */
	struct hashmap *modules;     /* "root\0path" -> char* module name */
	struct warn_log *log;        /* warnings: said once, then summarised */
	struct py_resolver_stats stats; /* counters */
};

static void code_entry_free(struct code_entry *e)
{
	if (!e)
		return;
	free(e->function);
	free(e->filename);
	free(e->linetable);
	free(e);
}

static void free_entries(struct hashmap *m)
{
	size_t cur = 0;
	void *v;
	if (!m)
		return;
	while (hashmap__next(m, &cur, NULL, NULL, &v))
		code_entry_free(v);
	hashmap__free(m);
}

struct py_resolver *py_resolver__new(size_t max_entries, FILE *warnings)
{
	struct py_resolver *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->generation_size = (max_entries ? max_entries : DEFAULT_MAX_ENTRIES) / 2 + 1;
	r->young = hashmap__new();
	r->old = hashmap__new();
	r->modules = hashmap__new();
	r->log = warn_log__new(warnings, 0);
	if (!r->young || !r->old || !r->modules || !r->log) {
		py_resolver__free(r);
		errno = ENOMEM;
		return NULL;
	}
	return r;
}

void py_resolver__free(struct py_resolver *r)
{
	if (!r)
		return;
	free_entries(r->young);
	free_entries(r->old);
	if (r->modules) {
		size_t cur = 0;
		void *v;
		while (hashmap__next(r->modules, &cur, NULL, NULL, &v))
			free(v);
		hashmap__free(r->modules);
	}
	warn_log__free(r->log);
	free(r);
}

static void utf8_put(char *out, size_t cap, size_t *pos, uint32_t cp)
{
	char tmp[4];
	size_t n;
	if (cp < 0x80) {
		tmp[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		tmp[0] = (char)(0xc0 | (cp >> 6));
		tmp[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		tmp[0] = (char)(0xe0 | (cp >> 12));
		tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		tmp[0] = (char)(0xf0 | (cp >> 18));
		tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		tmp[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (*pos + n < cap) {
		memcpy(out + *pos, tmp, n);
		*pos += n;
	}
}

/* Reads a str object into a malloc'd UTF-8 string. Only compact strings
 * (every str a code object holds) are supported. */
static int read_pystr(pid_t pid, const struct py_code_layout *l, uint64_t addr, char **out)
{
	uint8_t hdr[128];
	if (!addr)
		return -EINVAL;
	size_t hdr_len = (size_t)l->unicode_compact_data;
	if (hdr_len > sizeof(hdr) || l->unicode_ascii_data > (int)sizeof(hdr))
		return -EINVAL;
	int err = remote_read(pid, addr, hdr, hdr_len);
	if (err)
		return err;
	int64_t length;
	uint32_t state;
	memcpy(&length, hdr + l->unicode_length, sizeof(length));
	memcpy(&state, hdr + l->unicode_state, sizeof(state));
	unsigned kind = (state >> l->unicode_kind_shift) & 7;
	int compact = (state >> l->unicode_compact_shift) & 1;
	int ascii = (state >> l->unicode_ascii_shift) & 1;
	if (!compact || length < 0 || (kind != 1 && kind != 2 && kind != 4))
		return -EINVAL;
	size_t n = (size_t)length;
	int cut = 0;
	if (n > MAX_STR_CHARS) {
		n = MAX_STR_CHARS;
		cut = 1;
	}
	uint64_t data = addr + (uint64_t)(ascii ? l->unicode_ascii_data : l->unicode_compact_data);
	uint8_t *raw = malloc(n * kind + 1);
	size_t cap = n * 4 + 8;
	char *s = malloc(cap);
	if (!raw || !s) {
		free(raw);
		free(s);
		return -ENOMEM;
	}
	err = n ? remote_read(pid, data, raw, n * kind) : 0;
	if (err) {
		free(raw);
		free(s);
		return err;
	}
	size_t pos = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t cp;
		if (kind == 1)
			cp = raw[i];
		else if (kind == 2)
			cp = (uint32_t)raw[2 * i] | (uint32_t)raw[2 * i + 1] << 8;
		else
			memcpy(&cp, raw + 4 * i, 4);
		if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
			cp = 0xfffd; /* lone surrogates and junk: replacement character */
		if (cp < 0x20)
			cp = '?';
		utf8_put(s, cap, &pos, cp);
	}
	if (cut)
		utf8_put(s, cap, &pos, 0x2026); /* visible truncation: … */
	s[pos] = '\0';
	free(raw);
	*out = s;
	return 0;
}

static int read_pybytes(pid_t pid, const struct py_code_layout *l, uint64_t addr,
			uint8_t **out, size_t *len_out)
{
	int64_t size;
	if (!addr)
		return -EINVAL;
	int err = remote_read(pid, addr + (uint64_t)l->bytes_size, &size, sizeof(size));
	if (err)
		return err;
	if (size < 0 || size > MAX_LINETABLE_BYTES)
		return -EINVAL;
	uint8_t *buf = malloc((size_t)size + 1);
	if (!buf)
		return -ENOMEM;
	err = size ? remote_read(pid, addr + (uint64_t)l->bytes_data, buf, (size_t)size) : 0;
	if (err) {
		free(buf);
		return err;
	}
	*out = buf;
	*len_out = (size_t)size;
	return 0;
}

static int path_exists(const char *root, const char *dir, const char *file)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s%s/%s", root, dir, file);
	return access(path, F_OK) == 0;
}

void py_module_name(const char *root, const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t base_len = strlen(base);

	if (!len)
		return;
	if (path[0] == '<' || base_len < 4 || strcmp(base + base_len - 3, ".py") != 0) {
		snprintf(out, len, "%s", base);
		return;
	}
	/* Walk up while the directory is a package. Parts are collected innermost
	 * first, then joined outermost first. */
	char dir[4096];
	const char *parts[32];
	size_t part_lens[32], nparts = 0;
	int is_init = strcmp(base, "__init__.py") == 0;
	if (!is_init) {
		parts[nparts] = base;
		part_lens[nparts++] = base_len - 3;
	}
	size_t dir_len = slash ? (size_t)(slash - path) : 0;
	while (dir_len && dir_len < sizeof(dir) && nparts < 32) {
		memcpy(dir, path, dir_len);
		dir[dir_len] = '\0';
		if (!path_exists(root, dir, "__init__.py") && !(is_init && nparts == 0))
			break;
		const char *ds = memrchr(path, '/', dir_len);
		const char *name = ds ? ds + 1 : path;
		parts[nparts] = name;
		part_lens[nparts++] = (size_t)(path + dir_len - name);
		dir_len = ds ? (size_t)(ds - path) : 0;
	}
	size_t pos = 0;
	out[0] = '\0';
	for (size_t i = nparts; i-- > 0;) {
		int n = snprintf(out + pos, len - pos, "%s%.*s", pos ? "." : "", (int)part_lens[i],
				 parts[i]);
		if (n < 0 || (size_t)n >= len - pos)
			break;
		pos += (size_t)n;
	}
	if (!out[0])
		snprintf(out, len, "%.*s", (int)(base_len - 3), base);
}

/* Module name of a code file, cached per (root, path). */
static const char *module_of(struct py_resolver *r, pid_t pid, const char *filename)
{
	char key[4200];
	int klen = snprintf(key, sizeof(key), "%d", (int)pid);
	(void)klen;
	/* Module names depend on the file system the process sees; processes in
	 * the same mount namespace agree, so key by the root link's target. */
	char root[64], root_target[256] = "";
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	ssize_t n = readlink(root, root_target, sizeof(root_target) - 1);
	root_target[n > 0 ? n : 0] = '\0';
	size_t len = (size_t)snprintf(key, sizeof(key), "%s%c%s", root_target, 0, filename);
	if (len >= sizeof(key))
		len = sizeof(key) - 1;
	char *cached = hashmap__get(r->modules, key, len);
	if (cached)
		return cached;
	char name[512];
	py_module_name(n > 0 ? root : "", filename, name, sizeof(name));
	if (hashmap__size(r->modules) >= r->generation_size) {
		size_t cur = 0;
		void *v;
		while (hashmap__next(r->modules, &cur, NULL, NULL, &v))
			free(v);
		hashmap__free(r->modules);
		r->modules = hashmap__new();
		if (!r->modules)
			return NULL;
	}
	char *copy = strdup(name);
	if (!copy || hashmap__put(r->modules, key, len, copy, NULL)) {
		free(copy);
		return NULL;
	}
	return copy;
}

static int read_code(struct py_resolver *r, pid_t pid, const struct py_layout *layout,
		     uint64_t code, struct code_entry **out)
{
	const struct py_code_layout *l = &layout->code;
	uint8_t buf[MAX_CODE_READ];
	size_t size = l->code_read_size;
	uint64_t name_addr = 0, qual_addr = 0, file_addr = 0, table_addr = 0;
	int32_t firstlineno;
	char *name = NULL, *qualname = NULL;
	struct code_entry *e = calloc(1, sizeof(*e));
	int err;

	if (!e)
		return -ENOMEM;
	if (size > sizeof(buf)) {
		err = -EINVAL;
		goto fail;
	}
	err = remote_read(pid, code, buf, size);
	if (err)
		goto fail;
	/* Only a code object is named: 3.13's f_executable may hold other
	 * objects, and a stale pointer may hold anything. */
	uint64_t type_addr = 0, tp_name = 0;
	char type_name[8] = "";
	memcpy(&type_addr, buf + l->ob_type, 8);
	if (remote_read(pid, type_addr + (uint64_t)l->type_name, &tp_name, 8) ||
	    remote_read(pid, tp_name, type_name, 5) || memcmp(type_name, "code", 5) != 0) {
		err = -EINVAL;
		goto fail;
	}
	memcpy(&firstlineno, buf + l->co_firstlineno, sizeof(firstlineno));
	memcpy(&name_addr, buf + l->co_name, 8);
	memcpy(&file_addr, buf + l->co_filename, 8);
	memcpy(&table_addr, buf + l->co_linetable, 8);
	if (l->co_qualname >= 0)
		memcpy(&qual_addr, buf + l->co_qualname, 8);
	e->firstlineno = firstlineno;
	err = read_pystr(pid, l, name_addr, &name);
	if (!err && qual_addr)
		err = read_pystr(pid, l, qual_addr, &qualname);
	if (!err)
		err = read_pystr(pid, l, file_addr, &e->filename);
	if (err)
		goto fail;
	/* A missing line table only costs the line number. */
	if (read_pybytes(pid, l, table_addr, &e->linetable, &e->linetable_len)) {
		e->linetable = NULL;
		e->linetable_len = 0;
	}
	const char *module = module_of(r, pid, e->filename);
	size_t flen = strlen(module ? module : "") + strlen(qualname ? qualname : name) + 2;
	e->function = malloc(flen);
	if (!e->function) {
		err = -ENOMEM;
		goto fail;
	}
	snprintf(e->function, flen, "%s%s%s", module ? module : "", module && module[0] ? ":" : "",
		 qualname ? qualname : name);
	free(name);
	free(qualname);
	*out = e;
	return 0;
fail:
	free(name);
	free(qualname);
	code_entry_free(e);
	return err;
}

/* Stores e under key in the young generation, rotating generations when full. */
static int cache_put(struct py_resolver *r, const struct code_key *key, struct code_entry *e)
{
	if (hashmap__size(r->young) >= r->generation_size) {
		struct hashmap *fresh = hashmap__new();
		if (!fresh)
			return -ENOMEM;
		free_entries(r->old);
		r->old = r->young;
		r->young = fresh;
	}
	void *old_value = NULL;
	int err = hashmap__put(r->young, key, sizeof(*key), e, &old_value);
	code_entry_free(old_value);
	return err;
}

static struct code_entry *cache_get(struct py_resolver *r, const struct code_key *key)
{
	struct code_entry *e = hashmap__get(r->young, key, sizeof(*key));
	if (e)
		return e;
	e = hashmap__remove(r->old, key, sizeof(*key));
	if (e && cache_put(r, key, e)) {
		code_entry_free(e);
		return NULL;
	}
	return e;
}

/* Says once per process why its Python frames cannot be named (the first
 * few processes per reason; the rest are counted for py_resolver__summary). */
static void warn_once(struct py_resolver *r, pid_t pid, uint64_t code, int err)
{
	const char *why = err == -ESRCH ? "process exited" : err == -EFAULT ?
			  "address not mapped" : err ? strerror(-err) :
			  "object changed since the sample";
	char kind[160];
	snprintf(kind, sizeof(kind), "Python code objects unreadable (%s), shown as "
		 "[python: unreadable frame]", why);
	warn_log__say(r->log, kind, (int)pid, "dynoprof: warning: PID %d: cannot read Python "
		      "code object at 0x%llx (%s): such frames show as [python: unreadable "
		      "frame]", (int)pid, (unsigned long long)code, why);
}

static int unreadable_frame(struct profile *p, uint32_t *id)
{
	struct frame_desc d = { .kind = FRAME_SPECIAL, .name = "[python: unreadable frame]" };
	return profile__add_frame(p, &d, id);
}

int py_resolver__frame(struct py_resolver *r, pid_t pid, const struct py_layout *layout,
		       const struct py_frame *f, int with_lines, struct profile *p,
		       uint32_t *frame_id)
{
	struct code_key key = { .code = f->code, .pid = pid };
	if (!layout)
		return unreadable_frame(p, frame_id);
	struct code_entry *e = cache_get(r, &key);
	if (e && e->firstlineno != f->firstlineno) {
		r->stats.stale++;
		code_entry_free(hashmap__remove(r->young, &key, sizeof(key)));
		e = NULL;
	}
	if (e) {
		r->stats.hits++;
	} else {
		r->stats.reads++;
		int err = read_code(r, pid, layout, f->code, &e);
		if (err == -ENOMEM)
			return err;
		if (err || e->firstlineno != f->firstlineno) {
			/* Gone, or the object changed between the sample and now. */
			r->stats.read_failures++;
			warn_once(r, pid, f->code, err);
			if (!err)
				code_entry_free(e);
			return unreadable_frame(p, frame_id);
		}
		err = cache_put(r, &key, e);
		if (err) {
			code_entry_free(e);
			return err;
		}
	}
	int line = 0;
	if (with_lines) {
		line = e->firstlineno;
		const struct py_code_layout *l = &layout->code;
		if (py_linetable__frame_line(layout->minor, e->linetable, e->linetable_len,
					     e->firstlineno, f->instr, l->co_code_adaptive, &line) ||
		    line <= 0)
			line = e->firstlineno;
		/* A minor newer than known decodes its table as 3.15's: a line
		 * before the function's first is not believed. */
		if (layout->source == PY_LAYOUT_NEWER && line < e->firstlineno)
			line = e->firstlineno;
	}
	struct frame_desc d = { .kind = FRAME_PYTHON, .name = e->function, .file = e->filename,
				.line = line > 0 ? (uint32_t)line : 0, .address = f->code };
	return profile__add_frame(p, &d, frame_id);
}

/* Drops m's entries whose process keep() refuses; returns how many. */
static size_t retain_entries(struct hashmap *m, int (*keep)(void *ctx, pid_t pid), void *ctx)
{
	size_t cur = 0, n = 0, dropped = 0, k = 0;
	const void *key;
	void *v;
	struct code_key *victims;
	pid_t last = 0;
	int last_keep = 1;
	while (hashmap__next(m, &cur, &key, NULL, &v))
		n++;
	if (!n || !(victims = malloc(n * sizeof(*victims))))
		return 0;
	cur = 0;
	while (hashmap__next(m, &cur, &key, NULL, &v) && k < n) {
		const struct code_key *ck = key;
		if (ck->pid != last) { /* one question per run of a pid's entries */
			last = ck->pid;
			last_keep = keep(ctx, ck->pid);
		}
		if (!last_keep)
			victims[k++] = *ck;
	}
	for (size_t i = 0; i < k; i++) {
		struct code_entry *e = hashmap__remove(m, &victims[i], sizeof(victims[i]));
		dropped += e != NULL;
		code_entry_free(e);
	}
	free(victims);
	return dropped;
}

size_t py_resolver__retain(struct py_resolver *r, int (*keep)(void *ctx, pid_t pid), void *ctx)
{
	if (!r)
		return 0;
	return retain_entries(r->young, keep, ctx) + retain_entries(r->old, keep, ctx);
}


int py_resolver__summary(struct py_resolver *r, const char *prefix, const char *suffix,
			 int force)
{
	return r ? warn_log__summary(r->log, prefix, suffix, force) : 0;
}
