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
/* Regions of a code object's witness: its type (2), its header's fields (6),
 * three strings (3 each) and its line table (2). */
#define WITNESS_MAX 20
/* Frames of one code object remembered per profile (see struct frame_memo). */
#define FRAME_MEMO_SLOTS 4
/* Code objects in the shared index at most (the last read at an address). */
#define SHARED_MAX_ENTRIES 4096

/* One region of a process's memory that a code object's name was read from:
 * another process whose same addresses hold the same bytes has the same
 * name, file and line table there. */
struct witness_region {
	uint64_t addr;   /* remote address */
	uint32_t len;    /* bytes */
	uint32_t off;    /* where the expected bytes are in code_entry.witness */
	uint32_t mask;   /* nonzero: a 32-bit word compared under this mask (a
			  * str's state, whose interning bits may differ) */
	int in_linetable;/* the expected bytes are code_entry.linetable's, not
			  * a copy in witness */
};

/* A frame id of a code object in one profile: the same instruction asked for
 * again in that profile needs no line-table decoding and no interning. */
struct frame_memo {
	uint64_t serial;     /* profile__serial() of the profile; 0: unused slot */
	uint32_t instr;      /* the frame's instruction (struct py_frame.instr) */
	uint32_t frame_id;   /* its frame in that profile */
	int with_lines;      /* asked with lines (or at function level) */
};

/* A code object as read from its process; shared (refcounted) by every
 * (pid, address) key whose process showed the same bytes (its witness). */
struct code_entry {
	unsigned refs;           /* cache keys and the shared index holding it */
	int32_t firstlineno;     /* co_firstlineno: must match the sample's */
	char *function;          /* "module:qualname" */
	char *filename;          /* co_filename */
	uint8_t *linetable;      /* line table bytes (format per version) */
	size_t linetable_len;    /* bytes in linetable */
	struct code_witness *witness; /* what its name was read from, kept only
				  * while the shared index holds it (NULL:
				  * not shareable, or out of the index) */
	struct frame_memo memo[FRAME_MEMO_SLOTS]; /* recent frames, per profile */
	unsigned memo_next;      /* slot the next memo replaces */
};

/* What a code object's name, file and line table were read from (one
 * allocation: regions and bytes follow the header). */
struct code_witness {
	unsigned nregions;               /* regions used */
	size_t len;                      /* bytes expected */
	struct witness_region *regions;  /* the regions read */
	uint8_t *bytes;                  /* the bytes found there (regions[].off) */
	char *root;                      /* the reader's /proc/PID/root target:
					  * module names depend on it */
};

/* Key of the shared index: a code object's address read with one layout
 * (processes forked from one parent, or importing alike, share addresses). */
struct shared_key {
	uint64_t code;     /* code object address */
	uint32_t layout;   /* layout_fingerprint() of the layout it was read with:
			    * a debug build and a release one never share */
	uint32_t pad;      /* zero: keys are hashed as bytes */
};

/* FNV-1a over every field of a code layout that reading a code object uses
 * (field by field: the struct has padding). */
static uint32_t layout_fingerprint(const struct py_layout *layout)
{
	const struct py_code_layout *l = &layout->code;
	const int32_t fields[] = {
		(int32_t)layout->minor, l->ob_type, l->var_size, l->type_name, l->co_units,
		l->co_name, l->co_qualname, l->co_filename, l->co_firstlineno, l->co_linetable,
		l->co_code, l->co_code_adaptive, l->code_read_size, l->unicode_length,
		l->unicode_state, l->unicode_kind_shift, l->unicode_compact_shift,
		l->unicode_ascii_shift, l->unicode_ascii_data, l->unicode_compact_data,
		l->bytes_size, l->bytes_data,
	};
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		for (int b = 0; b < 4; b++) {
			h ^= (uint8_t)((uint32_t)fields[i] >> (8 * b));
			h *= 16777619u;
		}
	return h;
}

/* Cache key: (pid, code address). */
struct code_key {
	uint64_t code; /* code object address */
	int32_t pid;   /* process */
	int32_t pad;   /* zero: keys are hashed as bytes */
};


struct py_resolver {
	struct hashmap *young;       /* code_key -> code_entry*, recently used */
	struct hashmap *old;         /* previous generation, promoted on use */
	size_t generation_size;      /* young rotates into old at this size */
	struct hashmap *shared;      /* shared_key -> code_entry* (a reference):
				      * the last code object read at an address;
				      * emptied when it reaches generation_size */
	struct hashmap *modules;     /* "root\0path" -> char* module name */
	struct warn_log *log;        /* warnings: said once, then summarised */
	struct py_resolver_stats stats; /* counters */
};

/* Drops one reference; the last frees the entry. */
static void code_entry_free(struct code_entry *e)
{
	if (!e || --e->refs)
		return;
	free(e->witness);
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
	r->shared = hashmap__new();
	r->modules = hashmap__new();
	r->log = warn_log__new(warnings, 0);
	if (!r->young || !r->old || !r->shared || !r->modules || !r->log) {
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
	free_entries(r->shared);
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

/* Collects a code object's witness (struct witness_region) while it is read. */
struct witness_builder {
	struct witness_region regions[WITNESS_MAX]; /* regions so far */
	unsigned n;          /* regions used */
	uint8_t *buf;        /* their expected bytes (owned until taken) */
	size_t len;          /* bytes used in buf */
	size_t cap;          /* bytes allocated */
	int failed;          /* out of regions or memory: the entry is not shared */
};

/* Notes that len bytes at addr read as bytes (mask: see witness_region). */
static void witness_add(struct witness_builder *w, uint64_t addr, const void *bytes, size_t len,
			uint32_t mask)
{
	if (w->failed || !len)
		return;
	if (w->n == WITNESS_MAX || len > MAX_LINETABLE_BYTES) {
		w->failed = 1;
		return;
	}
	if (w->len + len > w->cap) {
		size_t cap = (w->len + len) * 2;
		uint8_t *grown = realloc(w->buf, cap);
		if (!grown) {
			w->failed = 1;
			return;
		}
		w->buf = grown;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, bytes, len);
	w->regions[w->n++] = (struct witness_region){ .addr = addr, .len = (uint32_t)len,
						      .off = (uint32_t)w->len, .mask = mask };
	w->len += len;
}

/* Reads a str object into a malloc'd UTF-8 string. Only compact strings
 * (every str a code object holds) are supported. Its length, kind and
 * characters go into the witness w. */
static int read_pystr(pid_t pid, const struct py_code_layout *l, uint64_t addr, char **out,
		      struct witness_builder *w)
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
	/* What the name depends on: the length (a cut shows), the kind and
	 * the characters read; not the refcount, hash or interning. */
	witness_add(w, addr + (uint64_t)l->unicode_length, hdr + l->unicode_length, 8, 0);
	witness_add(w, addr + (uint64_t)l->unicode_state, hdr + l->unicode_state, 4,
		    (7u << l->unicode_kind_shift) | (1u << l->unicode_compact_shift) |
		    (1u << l->unicode_ascii_shift));
	witness_add(w, data, raw, n * kind, 0);
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

/* Reads a bytes object (a line table); its size and bytes go into the
 * witness w (the bytes compared with the entry's line table). */
static int read_pybytes(pid_t pid, const struct py_code_layout *l, uint64_t addr,
			uint8_t **out, size_t *len_out, struct witness_builder *w)
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
	witness_add(w, addr + (uint64_t)l->bytes_size, &size, sizeof(size), 0);
	if (size && !w->failed) {
		if (w->n == WITNESS_MAX)
			w->failed = 1;
		else
			w->regions[w->n++] = (struct witness_region){
				.addr = addr + (uint64_t)l->bytes_data, .len = (uint32_t)size,
				.in_linetable = 1 };
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

/* The target of pid's /proc/PID/root link into out ("" when unreadable);
 * returns whether it was read. Module names depend on the file system a
 * process sees: processes in the same mount namespace agree. */
static int root_target(pid_t pid, char *out, size_t len)
{
	char root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	ssize_t n = readlink(root, out, len - 1);
	out[n > 0 ? n : 0] = '\0';
	return n > 0;
}

/* Module name of a code file, cached per (root, path); root_target is
 * pid's (root_target()), has_root whether it could be read. */
static const char *module_of(struct py_resolver *r, pid_t pid, const char *root_target,
			     int has_root, const char *filename)
{
	char key[4200], root[64];
	snprintf(root, sizeof(root), "/proc/%d/root", (int)pid);
	size_t len = (size_t)snprintf(key, sizeof(key), "%s%c%s", root_target, 0, filename);
	if (len >= sizeof(key))
		len = sizeof(key) - 1;
	char *cached = hashmap__get(r->modules, key, len);
	if (cached)
		return cached;
	char name[512];
	py_module_name(has_root ? root : "", filename, name, sizeof(name));
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

/* Reads the code object at code in pid into a new entry (one reference, the
 * caller's), with its witness: what another process's memory must hold for
 * the entry to name its code object at the same address. */
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
	struct witness_builder w = { .n = 0 };
	int err;

	if (!e)
		return -ENOMEM;
	e->refs = 1;
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
	/* The header's fields the name comes from, and the type's name. */
	witness_add(&w, code + (uint64_t)l->ob_type, buf + l->ob_type, 8, 0);
	witness_add(&w, code + (uint64_t)l->co_firstlineno, buf + l->co_firstlineno, 4, 0);
	witness_add(&w, code + (uint64_t)l->co_name, buf + l->co_name, 8, 0);
	witness_add(&w, code + (uint64_t)l->co_filename, buf + l->co_filename, 8, 0);
	witness_add(&w, code + (uint64_t)l->co_linetable, buf + l->co_linetable, 8, 0);
	if (l->co_qualname >= 0)
		witness_add(&w, code + (uint64_t)l->co_qualname, buf + l->co_qualname, 8, 0);
	witness_add(&w, type_addr + (uint64_t)l->type_name, &tp_name, 8, 0);
	witness_add(&w, tp_name, type_name, 5, 0);
	e->firstlineno = firstlineno;
	err = read_pystr(pid, l, name_addr, &name, &w);
	if (!err && qual_addr)
		err = read_pystr(pid, l, qual_addr, &qualname, &w);
	if (!err)
		err = read_pystr(pid, l, file_addr, &e->filename, &w);
	if (err)
		goto fail;
	/* A missing line table only costs the line number (and sharing: another
	 * process may have it). */
	if (read_pybytes(pid, l, table_addr, &e->linetable, &e->linetable_len, &w)) {
		e->linetable = NULL;
		e->linetable_len = 0;
		w.failed = 1;
	}
	char root[256];
	int has_root = root_target(pid, root, sizeof(root));
	const char *module = module_of(r, pid, root, has_root, e->filename);
	size_t flen = strlen(module ? module : "") + strlen(qualname ? qualname : name) + 2;
	e->function = malloc(flen);
	if (!e->function) {
		err = -ENOMEM;
		goto fail;
	}
	snprintf(e->function, flen, "%s%s%s", module ? module : "", module && module[0] ? ":" : "",
		 qualname ? qualname : name);
	/* Shareable only with a module name (the same root gives the same one). */
	if (!w.failed && module &&
	    (e->witness = malloc(sizeof(*e->witness) + w.n * sizeof(w.regions[0]) + w.len +
				 strlen(root) + 1))) {
		struct code_witness *cw = e->witness;
		cw->nregions = w.n;
		cw->len = w.len;
		cw->regions = (struct witness_region *)(cw + 1);
		cw->bytes = (uint8_t *)(cw->regions + w.n);
		memcpy(cw->regions, w.regions, w.n * sizeof(w.regions[0]));
		memcpy(cw->bytes, w.buf, w.len);
		cw->root = (char *)cw->bytes + w.len;
		memcpy(cw->root, root, strlen(root) + 1);
	}
	free(w.buf);
	free(name);
	free(qualname);
	*out = e;
	return 0;
fail:
	free(w.buf);
	free(name);
	free(qualname);
	code_entry_free(e);
	return err;
}

/* Whether pid's memory holds e's witness (one process_vm_readv): then its
 * code object at e's address has e's name, file and line table. */
static int witness_matches(pid_t pid, const struct code_entry *e)
{
	const struct code_witness *cw = e->witness;
	struct iovec local[WITNESS_MAX], remote[WITNESS_MAX];
	uint8_t small[2048], *got = small;
	size_t total = 0;
	for (unsigned i = 0; i < cw->nregions; i++)
		total += cw->regions[i].len;
	if (total > sizeof(small) && !(got = malloc(total)))
		return 0;
	size_t pos = 0;
	for (unsigned i = 0; i < cw->nregions; i++) {
		const struct witness_region *wr = &cw->regions[i];
		local[i] = (struct iovec){ .iov_base = got + pos, .iov_len = wr->len };
		remote[i] = (struct iovec){ .iov_base = (void *)(uintptr_t)wr->addr,
					    .iov_len = wr->len };
		pos += wr->len;
	}
	ssize_t n = process_vm_readv(pid, local, cw->nregions, remote, cw->nregions, 0);
	int ok = n >= 0 && (size_t)n == total;
	pos = 0;
	for (unsigned i = 0; ok && i < cw->nregions; i++) {
		const struct witness_region *wr = &cw->regions[i];
		const uint8_t *want = wr->in_linetable ? e->linetable : cw->bytes + wr->off;
		if (wr->in_linetable && wr->len != e->linetable_len) {
			ok = 0;
		} else if (wr->mask) {
			uint32_t a, b;
			memcpy(&a, got + pos, 4);
			memcpy(&b, want, 4);
			ok = ((a ^ b) & wr->mask) == 0;
		} else {
			ok = memcmp(got + pos, want, wr->len) == 0;
		}
		pos += wr->len;
	}
	if (got != small)
		free(got);
	return ok;
}

/* A code object another process read at f's address, when pid's memory holds
 * its witness and pid sees the same root (borrowed; NULL: none). */
static struct code_entry *shared_lookup(struct py_resolver *r, pid_t pid, uint32_t layout,
					const struct py_frame *f)
{
	struct shared_key sk = { .code = f->code, .layout = layout };
	struct code_entry *e = r->shared ? hashmap__get(r->shared, &sk, sizeof(sk)) : NULL;
	char root[256];
	if (!e || e->firstlineno != f->firstlineno || !e->witness)
		return NULL;
	/* The witness first: an unrelated process fails it in one read. */
	if (!witness_matches(pid, e))
		return NULL;
	root_target(pid, root, sizeof(root));
	return strcmp(root, e->witness->root) ? NULL : e;
}

/* Drops the shared index's reference to e, and its witness: only the index
 * needs it, and a witness weighs about what the rest of the entry does. */
static void shared_drop(struct code_entry *e)
{
	if (!e)
		return;
	free(e->witness);
	e->witness = NULL;
	code_entry_free(e);
}

/* Makes e (shareable) the shared index's code object at code: emptied when
 * full, as the processes it came from are mostly gone by then. */
static void shared_put(struct py_resolver *r, uint32_t layout, uint64_t code,
		       struct code_entry *e)
{
	struct shared_key sk = { .code = code, .layout = layout };
	void *old = NULL;
	if (!e->witness)
		return;
	if (r->shared && hashmap__size(r->shared) >= SHARED_MAX_ENTRIES) {
		size_t cur = 0;
		void *v;
		while (hashmap__next(r->shared, &cur, NULL, NULL, &v))
			shared_drop(v);
		hashmap__free(r->shared);
		r->shared = NULL;
	}
	if (!r->shared && !(r->shared = hashmap__new()))
		return; /* only sharing is lost */
	e->refs++;
	if (hashmap__put(r->shared, &sk, sizeof(sk), e, &old)) {
		e->refs--;
		return;
	}
	shared_drop(old);
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
	uint32_t fingerprint = e ? 0 : layout_fingerprint(layout); /* misses only */
	if (e) {
		r->stats.hits++;
	} else if ((e = shared_lookup(r, pid, fingerprint, f))) {
		/* Another process's read of the same bytes at the same address
		 * (a forked worker's inherited code objects): one read, not ~11. */
		r->stats.shared++;
		e->refs++;
		int err = cache_put(r, &key, e);
		if (err) {
			code_entry_free(e);
			return err;
		}
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
		shared_put(r, fingerprint, f->code, e);
	}
	/* The same frame asked for again in this profile: its id. A frame's
	 * identity is its code object's name, file and line and its address,
	 * so the memo holds for every process sharing the entry. */
	uint64_t serial = profile__serial(p);
	for (unsigned i = 0; i < FRAME_MEMO_SLOTS; i++) {
		const struct frame_memo *m = &e->memo[i];
		if (m->serial == serial && m->instr == f->instr && m->with_lines == with_lines) {
			r->stats.memo_hits++;
			*frame_id = m->frame_id;
			return 0;
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
	int err = profile__add_frame(p, &d, frame_id);
	if (!err) {
		e->memo[e->memo_next] = (struct frame_memo){ .serial = serial, .instr = f->instr,
							    .frame_id = *frame_id,
							    .with_lines = with_lines };
		e->memo_next = (e->memo_next + 1) % FRAME_MEMO_SLOTS;
	}
	return err;
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


void py_resolver__stats(const struct py_resolver *r, struct py_resolver_stats *out)
{
	*out = r->stats;
	out->entries = hashmap__size(r->young) + hashmap__size(r->old);
}

int py_resolver__summary(struct py_resolver *r, const char *prefix, const char *suffix,
			 int force)
{
	return r ? warn_log__summary(r->log, prefix, suffix, force) : 0;
}
