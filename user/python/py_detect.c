// SPDX-License-Identifier: MIT
#include "python/py_detect.h"
#include "python/libc_tss.h"
#include "python/tls_layout.h"
#include "util/errmsg.h"
#include "util/remote.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "python/py_debug_offsets.h"
#include "python/py_static_tls.h"
#include "python/py_tstate_find.h"
#include "symbolize/elf_dynsym.h"
#include "symbolize/map_path.h"
#include "util/file_cache.h"

/* Files whose verdicts are cached; the cache is emptied when it is full. */
#define CACHE_MAX_FILES 4096
/* PT_LOAD segments kept per cached file (real files have 2-5). */
#define MAX_SEGMENTS 8
/* libpython files looked at per process. */
#define MAX_LIBRARIES 4
/* Supported range: the table's 3.8 .. 3.12 (and 3.13), then the debug
 * offsets' known layouts; newer minors are attempted through theirs. */
#define MIN_MINOR 8
#define MAX_MINOR PY_DEBUG_OFFSETS_KNOWN_MINOR

/* What a file is, as far as Python is concerned. */
enum file_kind {
	FILE_OTHER = 0,       /* no Python runtime in it */
	FILE_INTERPRETER = 1, /* defines _PyRuntime (3.7+) */
	FILE_OLD_PYTHON = 2,  /* defines Py_Initialize but not _PyRuntime (<= 3.6, 2.x) */
};

/* Symbols looked up in every candidate file, by index. */
enum sym_index {
	SYM_RUNTIME,          /* _PyRuntime: the interpreter */
	SYM_VERSION,          /* Py_Version (3.11+) */
	SYM_INITIALIZE,       /* Py_Initialize: any CPython */
	SYM_DECREF_SHARED,    /* _Py_DecRefShared: free-threaded builds only (3.13+) */
	SYM_REF_TOTAL,        /* _Py_GetRefTotal: Py_REF_DEBUG (debug) builds, 3.8-3.11 */
	SYM_GLOBAL_REF_TOTAL, /* _Py_GetGlobalRefTotal: debug builds, 3.12+ */
	SYM_MARK_13,          /* first appeared in 3.13 */
	SYM_MARK_12,
	SYM_MARK_10,
	SYM_MARK_9,
	SYM_MARK_8,
	SYM_MARK_7,
	SYM_GILSTATE_GET,     /* PyGILState_GetThisThreadState: where the tstate is (3.13+) */
	SYM_COUNT,
};

static const char *const sym_names[SYM_COUNT] = {
	[SYM_RUNTIME] = "_PyRuntime",
	[SYM_VERSION] = "Py_Version",
	[SYM_INITIALIZE] = "Py_Initialize",
	[SYM_DECREF_SHARED] = "_Py_DecRefShared",
	[SYM_REF_TOTAL] = "_Py_GetRefTotal",
	[SYM_GLOBAL_REF_TOTAL] = "_Py_GetGlobalRefTotal",
	[SYM_MARK_13] = "Py_GetConstant",
	[SYM_MARK_12] = "PyUnstable_Code_New",
	[SYM_MARK_10] = "Py_IsNone",
	[SYM_MARK_9] = "PyType_GetModule",
	[SYM_MARK_8] = "PyConfig_InitPythonConfig",
	[SYM_MARK_7] = "PyContext_New",
	[SYM_GILSTATE_GET] = "PyGILState_GetThisThreadState",
};

/* Everything py_detect needs from one file, computed once per file. */
struct file_verdict {
	enum file_kind kind;          /* see enum file_kind */
	int e_type;                   /* ET_EXEC / ET_DYN */
	size_t segment_count;         /* entries in segments */
	struct elf_load_segment segments[MAX_SEGMENTS]; /* PT_LOAD, for the load bias */
	uint64_t runtime_vaddr;       /* st_value of _PyRuntime (kind INTERPRETER) */
	uint64_t runtime_size;        /* its st_size (0 when unknown) */
	uint64_t gilstate_vaddr;      /* st_value of PyGILState_GetThisThreadState, 0 absent */
	uint64_t version_vaddr;       /* st_value of Py_Version, 0 when absent */
	uint64_t version_in_file;     /* Py_Version's initial value, 0 when unreadable */
	int minor_from_symbols;       /* newest 3.x whose marker symbol exists, 0 none */
	int free_threaded;            /* defines a free-threaded-only symbol */
	int debug_build;              /* defines a debug-build-only symbol */
};

static struct file_cache verdicts = FILE_CACHE_INIT(sizeof(struct file_verdict), CACHE_MAX_FILES);

/* One file looked at for a process. */
struct candidate {
	const struct proc_map *map;   /* an executable mapping of it (for the bias) */
	struct file_verdict verdict;  /* copy of the cached verdict */
	int is_executable;            /* the process's main executable */
};

/* Version and ABI flags spelled in a file name. */
struct name_version {
	int major;         /* 0 when the name carries no version */
	int minor;         /* -1 when absent ("python3") */
	int free_threaded; /* "t" ABI flag */
	int debug;         /* "d" ABI flag */
};

/* Parses "python3.11", "python3.13t", "libpython3.6m.so.1.0", "python2.7",
 * "python3". Returns 1 when the name starts with (lib)python, else 0. */
static int parse_python_name(const char *base, struct name_version *nv)
{
	const char *p;
	char *end;

	memset(nv, 0, sizeof(*nv));
	nv->minor = -1;
	if (strncmp(base, "libpython", 9) == 0)
		p = base + 9;
	else if (strncmp(base, "python", 6) == 0)
		p = base + 6;
	else
		return 0;
	if (*p < '0' || *p > '9')
		return 1;
	long major = strtol(p, &end, 10), minor = -1;
	p = end;
	if (*p == '.' && p[1] >= '0' && p[1] <= '9') {
		minor = strtol(p + 1, &end, 10);
		p = end;
	}
	int free_threaded = 0, debug = 0;
	for (; *p >= 'a' && *p <= 'z'; p++) {
		free_threaded |= *p == 't';
		debug |= *p == 'd';
	}
	/* "python3.11" then end, ".so...", "-config": anything else is another
	 * program that merely starts with "python". */
	if (*p && *p != '.' && *p != '-')
		return 1;
	if (major < 2 || major > 9 || minor > 99)
		return 1;
	nv->major = (int)major;
	nv->minor = (int)minor;
	nv->free_threaded = free_threaded;
	nv->debug = debug;
	return 1;
}

/* Reads the symbols and segments of the file at path into *v. A file that is
 * not ELF is FILE_OTHER. Returns 0 or -errno (open errors). */
static int analyse_file(const char *path, int python_named, struct file_verdict *v)
{
	struct elf_sym_value syms[SYM_COUNT];
	struct elf_dynsym *file = elf_dynsym__open(path);
	int found;

	if (!file) {
		if (errno == ENOEXEC)
			return 0;
		return -errno;
	}
	v->e_type = elf_dynsym__type(file);
	v->segment_count = elf_dynsym__segment_count(file);
	if (v->segment_count > MAX_SEGMENTS)
		v->segment_count = MAX_SEGMENTS;
	for (size_t i = 0; i < v->segment_count; i++)
		v->segments[i] = *elf_dynsym__segment(file, i);

	/* Exported symbols (hashed) first; only a Python-named file is worth a
	 * .symtab scan (an interpreter built with hidden symbols). */
	found = elf_dynsym__find_many(file, sym_names, SYM_COUNT, ELF_DYNSYM_DYNAMIC, syms);
	if (found >= 0 && !syms[SYM_RUNTIME].found && python_named)
		found = elf_dynsym__find_many(file, sym_names, SYM_COUNT, ELF_DYNSYM_ALL, syms);
	if (found <= 0) {
		elf_dynsym__free(file);
		return 0;
	}
	if (syms[SYM_RUNTIME].found) {
		v->kind = FILE_INTERPRETER;
		v->runtime_vaddr = syms[SYM_RUNTIME].value;
		v->runtime_size = syms[SYM_RUNTIME].size;
		if (syms[SYM_GILSTATE_GET].found)
			v->gilstate_vaddr = syms[SYM_GILSTATE_GET].value;
	} else if (syms[SYM_INITIALIZE].found) {
		v->kind = FILE_OLD_PYTHON;
	}
	if (syms[SYM_VERSION].found) {
		uint64_t value = 0;
		v->version_vaddr = syms[SYM_VERSION].value;
		size_t len = syms[SYM_VERSION].size == 4 ? 4 : 8;
		if (elf_dynsym__read(file, v->version_vaddr, &value, len) == 0)
			v->version_in_file = value;
	}
	static const struct {
		enum sym_index sym;
		int minor;
	} markers[] = {
		{SYM_MARK_13, 13}, {SYM_MARK_12, 12}, {SYM_VERSION, 11}, {SYM_MARK_10, 10},
		{SYM_MARK_9, 9},   {SYM_MARK_8, 8},   {SYM_MARK_7, 7},
	};
	for (size_t i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
		if (syms[markers[i].sym].found) {
			v->minor_from_symbols = markers[i].minor;
			break;
		}
	}
	v->free_threaded = syms[SYM_DECREF_SHARED].found;
	v->debug_build = syms[SYM_REF_TOTAL].found || syms[SYM_GLOBAL_REF_TOTAL].found;
	elf_dynsym__free(file);
	return 0;
}

void py_detect__flush_cache(void)
{
	file_cache__clear(&verdicts);
}

/* Returns the verdict for the file at open_path (whose stat is *st). */
static int file_verdict(const char *open_path, const struct stat *st, int python_named,
			struct file_verdict *v)
{
	int err;

	if (file_cache__get(&verdicts, st, v))
		return 0;
	memset(v, 0, sizeof(*v));
	err = analyse_file(open_path, python_named, v);
	if (err)
		return err;
	file_cache__put(&verdicts, st, v);
	return 0;
}

/* Finds a path through which this process's file behind map opens (same
 * inode), in whatever root the process runs: symbolize/map_path.h. */
static int open_path_for_map(pid_t pid, const struct proc_map *map, char *buf, size_t buflen,
			     struct stat *st)
{
	return map_path__open_path(pid, map, buf, buflen, st);
}

static int process_gone(pid_t pid)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	return access(path, F_OK) != 0;
}

/* Fills out's version fields for the interpreter cand; name fallbacks from
 * exe_name (the executable's base name). Returns 0 or -ENOTSUP (unknown). */
static int resolve_version(pid_t pid, const struct candidate *cand, uint64_t bias,
			   const char *exe_name, struct py_target *out)
{
	const struct file_verdict *v = &cand->verdict;
	struct name_version nv;
	uint64_t value = 0;

	out->micro = -1;
	if (v->version_vaddr) {
		if (remote_read(pid, bias + v->version_vaddr, &value, sizeof(value)) == 0 &&
		    (value >> 24) == 3) {
			out->version_source = PY_VERSION_FROM_MEMORY;
		} else if ((v->version_in_file >> 24) == 3) {
			value = v->version_in_file;
			out->version_source = PY_VERSION_FROM_FILE;
		}
		if (out->version_source) {
			out->major = (int)((value >> 24) & 0xff);
			out->minor = (int)((value >> 16) & 0xff);
			out->micro = (int)((value >> 8) & 0xff);
			out->version_hex = (uint32_t)value;
			return 0;
		}
	}
	if ((parse_python_name(path_basename(cand->map->path), &nv) && nv.major && nv.minor >= 0) ||
	    (parse_python_name(exe_name, &nv) && nv.major && nv.minor >= 0)) {
		out->major = nv.major;
		out->minor = nv.minor;
		out->version_source = PY_VERSION_FROM_NAME;
	} else if (v->minor_from_symbols) {
		out->major = 3;
		out->minor = v->minor_from_symbols;
		out->version_source = PY_VERSION_FROM_SYMBOLS;
	} else {
		return -ENOTSUP;
	}
	out->version_hex = (uint32_t)out->major << 24 | (uint32_t)out->minor << 16;
	return 0;
}

/* Formats "3.11.2" or "3.10" into buf. */
static const char *version_text(const struct py_target *t, char *buf, size_t len)
{
	if (t->micro >= 0)
		snprintf(buf, len, "%d.%d.%d", t->major, t->minor, t->micro);
	else
		snprintf(buf, len, "%d.%d", t->major, t->minor);
	return buf;
}

/* A thread-local read through __tls_get_addr (py_tstate_find() returned 2):
 * the library's tls_index {module id, offset} at slot, the variable at
 * dtpoff in its block, the block at fsbase - l_tls_offset. Sets
 * out->layout.walk.tstate_tls. Returns 0, -ENOTSUP (reason set) or -errno. */
static int static_tls_offset(pid_t pid, const struct proc_maps *maps, uint64_t bias,
			     uint64_t slot, int32_t dtpoff, struct py_target *out, char *reason,
			     size_t reasonlen)
{
	uint64_t tls_index[2];
	int64_t block = 0;
	char why[160] = "";
	int err = remote_read(pid, slot, tls_index, sizeof(tls_index));

	/* Module id 0: the dynamic linker has not relocated libpython yet (a
	 * process caught while it starts, or inside dlopen); no link_map at its
	 * bias: not yet on the linker's list. Both settle within moments, so the
	 * process is looked at again (-EAGAIN) instead of refused for good. */
	if (!err && tls_index[0] == 0) {
		errmsg__set(reason, reasonlen, "%s: libpython not relocated yet, retry later",
			    out->path);
		return -EAGAIN;
	}
	if (!err)
		err = py_static_tls__offset(pid, maps, bias, tls_index[0], &block, why, sizeof(why));
	if (err == -ESRCH)
		return err;
	if (err == -EAGAIN) {
		errmsg__set(reason, reasonlen, "%s: libpython not on the dynamic linker's list "
			    "yet, retry later", out->path);
		return -EAGAIN;
	}
	if (err) {
		errmsg__set(reason, reasonlen, "Python %d.%d: the thread state is a thread-local of "
			    "the shared library, not found: %s: %s", out->major, out->minor,
			    why[0] ? why : strerror(-err), out->path);
		return -ENOTSUP;
	}
	int64_t tpoff = -block + (int64_t)tls_index[1] + dtpoff;
	if (tpoff >= 0 || tpoff <= -(int64_t)(64 << 20) || tpoff % 8) {
		errmsg__set(reason, reasonlen, "Python %d.%d: the thread state's thread-local "
			    "offset %" PRId64 " is implausible: %s", out->major, out->minor, tpoff,
			    out->path);
		return -ENOTSUP;
	}
	out->layout.walk.tstate_tls = (int32_t)tpoff;
	return 0;
}

/* 3.13+: the layout from the process's own _Py_DebugOffsets, and where it
 * keeps each thread's state from its PyGILState_GetThisThreadState. 3.13 reads
 * the built-in table instead when DYNOPROF_PY_OFFSETS=table (a cross-check).
 * Returns 0, -ENOTSUP (reason set) or a read -errno. */
static int read_layout(pid_t pid, const struct proc_maps *maps, const struct file_verdict *v,
		       uint64_t bias, struct py_target *out, char *reason, size_t reasonlen)
{
	uint8_t buf[PY_DEBUG_OFFSETS_READ], code[PY_TSTATE_FIND_CODE_BYTES];
	struct py_debug_offsets_info info;
	char why[200] = "";
	const char *mode = getenv("DYNOPROF_PY_OFFSETS");
	int err = remote_read(pid, out->runtime_addr, buf, sizeof(buf));

	if (err) {
		errmsg__set(reason, reasonlen, "cannot read _PyRuntime at 0x%" PRIx64 ": %s",
			   out->runtime_addr, strerror(-err));
		return err;
	}
	unsigned expect_minor = out->version_source ? (unsigned)out->minor : 0;
	err = py_debug_offsets__parse(buf, sizeof(buf), expect_minor, v->runtime_size,
				      &out->layout, &info, why, sizeof(why));
	if (info.free_threaded)
		out->flags |= PY_TARGET_FREE_THREADED;
	if (err) {
		errmsg__set(reason, reasonlen, "%s: %s", why, out->path);
		return -ENOTSUP;
	}
	if (out->minor == 13 && mode && strcmp(mode, "table") == 0)
		return py_layout__from_table(13, &out->layout);
	uint64_t slot = 0;
	int64_t tpoff = 0;
	int32_t dtpoff = 0;
	int key, found = 0;
	if (v->gilstate_vaddr && !remote_read(pid, bias + v->gilstate_vaddr, code, sizeof(code))) {
		found = py_tstate_find(code, sizeof(code), bias + v->gilstate_vaddr,
				       out->runtime_addr,
				       v->runtime_size ? v->runtime_size : PY_DEBUG_OFFSETS_READ,
				       &out->layout.walk, &slot, &dtpoff);
		/* A shared library's thread-local: its offset from the thread
		 * pointer, as the dynamic linker wrote it into the GOT. */
		if (found == 1 && !remote_read(pid, slot, &tpoff, sizeof(tpoff)) && tpoff < 0 &&
		    tpoff > -(16 << 20) && tpoff % 8 == 0)
			out->layout.walk.tstate_tls = (int32_t)tpoff;
		/* Read through __tls_get_addr: the library's static TLS block. */
		if (found == 2) {
			err = static_tls_offset(pid, maps, bias, slot, dtpoff, out, reason,
						reasonlen);
			if (err)
				return err;
		}
		found = found == 0 || (found >= 1 && out->layout.walk.tstate_tls);
	}
	/* 3.13: the table knows where its key is. */
	struct py_layout table;
	if (!found && out->minor == 13 && !py_layout__from_table(13, &table)) {
		out->layout.walk.runtime_tss_key = table.walk.runtime_tss_key;
		found = 1;
	}
	/* A pthread key must read as one (initialised, < 1024). */
	if (found && !out->layout.walk.tstate_tls &&
	    py_read_tss_key(pid, out, out->layout.walk.runtime_tss_key, &key) == -EINVAL)
		found = 0;
	if (!found) {
		errmsg__set(reason, reasonlen, "Python %d.%d: where its threads' state is kept "
			   "(PyGILState_GetThisThreadState) was not recognised: %s", out->major,
			   out->minor, out->path);
		return -ENOTSUP;
	}
	return 0;
}

/* Everything after the interpreter file was found. */
static int describe_interpreter(pid_t pid, const struct proc_maps *maps,
				const struct candidate *cand, const char *exe_name,
				struct py_target *out, char *reason, size_t reasonlen)
{
	const struct file_verdict *v = &cand->verdict;
	struct name_version nv;
	char version[32];
	uint64_t bias;
	int err;

	snprintf(out->path, sizeof(out->path), "%s", cand->map->path);
	if (!cand->is_executable)
		out->flags |= PY_TARGET_SHARED;
	if (elf_load_segments__bias(v->segments, v->segment_count, cand->map->start,
				    cand->map->offset, &bias)) {
		errmsg__set(reason, reasonlen, "%s: mapping at offset 0x%" PRIx64 " matches no segment",
			   out->path, cand->map->offset);
		return -ESTALE;
	}
	out->load_bias = bias;
	out->runtime_addr = bias + v->runtime_vaddr;

	if (parse_python_name(path_basename(out->path), &nv)) {
		if (nv.free_threaded)
			out->flags |= PY_TARGET_FREE_THREADED;
		if (nv.debug)
			out->flags |= PY_TARGET_DEBUG_BUILD;
	}
	if (v->free_threaded)
		out->flags |= PY_TARGET_FREE_THREADED;
	if (v->debug_build)
		out->flags |= PY_TARGET_DEBUG_BUILD;

	if (resolve_version(pid, cand, bias, exe_name, out)) {
		errmsg__set(reason, reasonlen, "%s defines _PyRuntime but its version is unknown",
			   out->path);
		return -ENOTSUP;
	}
	version_text(out, version, sizeof(version));
	/* Newer minors: attempted through their debug offsets (read_layout). */
	if (out->major != 3 || out->minor < MIN_MINOR) {
		errmsg__set(reason, reasonlen, "Python %s is not supported (3.%d-3.%d are): %s",
			   version, MIN_MINOR, MAX_MINOR, out->path);
		return -ENOTSUP;
	}
	if (out->minor >= 13) {
		err = read_layout(pid, maps, v, bias, out, reason, reasonlen);
		if (err)
			return err;
	}
	if (out->flags & PY_TARGET_FREE_THREADED) {
		errmsg__set(reason, reasonlen,
			   "Python %s is a free-threaded (no-GIL) build, not supported: %s", version,
			   out->path);
		return -ENOTSUP;
	}
	/* Debug builds have other layouts: fine when the interpreter describes
	 * its own (3.13+), not with the table. */
	if ((out->flags & PY_TARGET_DEBUG_BUILD) && out->minor < 13) {
		errmsg__set(reason, reasonlen, "Python %s is a debug build, not supported before "
			   "3.13: %s", version, out->path);
		return -ENOTSUP;
	}
	if (out->minor < 13 && py_layout__from_table((unsigned)out->minor, &out->layout))
		return -ENOTSUP; /* unreachable: 3.8 .. 3.12 are in the table */
	out->version_index = out->minor <= 13 ?
		(enum py_version_index)(PY_V3_8 + (out->minor - MIN_MINOR)) : PY_VERSION_COUNT;
	return 0;
}

/* No file defines _PyRuntime: an old Python, a Python still starting, or not
 * Python at all. */
static int describe_non_interpreter(const struct candidate *cands, size_t count,
				    const char *exe_name, size_t libraries, struct py_target *out,
				    char *reason, size_t reasonlen)
{
	struct name_version nv;

	for (size_t i = 0; i < count; i++) {
		if (cands[i].verdict.kind != FILE_OLD_PYTHON)
			continue;
		snprintf(out->path, sizeof(out->path), "%s", cands[i].map->path);
		if ((parse_python_name(path_basename(out->path), &nv) && nv.major) ||
		    (parse_python_name(exe_name, &nv) && nv.major)) {
			out->major = nv.major;
			out->minor = nv.minor;
			out->micro = -1;
			out->version_source = PY_VERSION_FROM_NAME;
			if (nv.minor >= 0)
				errmsg__set(reason, reasonlen,
					   "Python %d.%d is not supported (3.%d-3.%d are): %s",
					   nv.major, nv.minor, MIN_MINOR, MAX_MINOR, out->path);
			else
				errmsg__set(reason, reasonlen,
					   "Python %d (before 3.7) is not supported (3.%d-3.%d are): %s",
					   nv.major, MIN_MINOR, MAX_MINOR, out->path);
		} else {
			errmsg__set(reason, reasonlen,
				   "Python before 3.7 (no _PyRuntime) is not supported (3.%d-3.%d are): %s",
				   MIN_MINOR, MAX_MINOR, out->path);
		}
		if (!cands[i].is_executable)
			out->flags |= PY_TARGET_SHARED;
		return -ENOTSUP;
	}
	/* A python3.X executable whose libpython is not mapped yet: the dynamic
	 * loader is still running. */
	if (!libraries && parse_python_name(exe_name, &nv) && nv.major == 3) {
		errmsg__set(reason, reasonlen, "%s: no Python runtime mapped yet, retry later",
			   exe_name);
		return -EAGAIN;
	}
	errmsg__set(reason, reasonlen, "not a Python process");
	return -ENOENT;
}

static int same_file(const struct proc_map *a, const struct proc_map *b)
{
	return a->inode == b->inode && a->dev_major == b->dev_major && a->dev_minor == b->dev_minor &&
	       strcmp(a->path, b->path) == 0;
}

/* The calibrated thread-specific data layout (what the BPF walker is given)
 * and dynoprof's own C library, computed once. */
static struct {
	int calibrated;             /* layout is valid */
	struct py_tls_layout layout;/* tls_layout__calibrate() in this process */
	int have_file;              /* dev/ino name our own libc file */
	uint64_t dev, ino;          /* its identity */
} own_libc;
static pthread_once_t own_libc_once = PTHREAD_ONCE_INIT;

static void own_libc_init(void)
{
	Dl_info info;
	struct stat st;

	own_libc.calibrated = tls_layout__calibrate(&own_libc.layout) == 0;
	if (dladdr((void *)pthread_getspecific, &info) && info.dli_fname &&
	    stat(info.dli_fname, &st) == 0) {
		own_libc.have_file = 1;
		own_libc.dev = (uint64_t)st.st_dev;
		own_libc.ino = (uint64_t)st.st_ino;
	}
}

/* libc.so.6, libc-2.31.so, musl's ld-musl-x86_64.so.1 / libc.musl-x86_64.so.1. */
static int is_libc_name(const char *base)
{
	return strncmp(base, "libc.so", 7) == 0 ||
	       (strncmp(base, "libc-", 5) == 0 && base[5] >= '0' && base[5] <= '9') ||
	       strncmp(base, "ld-musl-", 8) == 0 || strncmp(base, "libc.musl-", 10) == 0;
}

/* The BPF walker reads a thread's PyThreadState through the layout of
 * dynoprof's own C library: a process with another one (in another root) is
 * only walked when that library's pthread_getspecific reads the same words.
 * Returns 0, -ENOTSUP (reason set) or -errno. */
static int check_libc(pid_t pid, const struct proc_maps *maps, const char *exe_link,
		      char *reason, size_t reasonlen)
{
	char open_path[PATH_MAX + 64];
	const char *name = exe_link;
	struct stat st;
	int err;

	pthread_once(&own_libc_once, own_libc_init);
	if (!own_libc.calibrated)
		return 0; /* the walker has no layout at all (pipeline__open says so) */
	for (size_t i = 0; i < proc_maps__count(maps); i++) {
		const struct proc_map *m = proc_maps__at(maps, i);
		if (!is_libc_name(path_basename(m->path)))
			continue;
		err = open_path_for_map(pid, m, open_path, sizeof(open_path), &st);
		if (err) {
			errmsg__set(reason, reasonlen, "C library %s: %s", m->path, strerror(-err));
			return err;
		}
		name = m->path;
		break;
	}
	if (name == exe_link) {
		/* No C library mapped: either the dynamic loader has not mapped it
		 * yet (a process caught right after exec), or the executable is
		 * statically linked and holds it. */
		for (size_t i = 0; i < proc_maps__count(maps); i++) {
			if (strncmp(path_basename(proc_maps__at(maps, i)->path), "ld-linux", 8) == 0) {
				errmsg__set(reason, reasonlen, "%s: no C library mapped yet, retry later",
					    exe_link);
				return -EAGAIN;
			}
		}
		snprintf(open_path, sizeof(open_path), "/proc/%d/exe", (int)pid);
		if (stat(open_path, &st) != 0) {
			err = -errno;
			errmsg__set(reason, reasonlen, "%s: %s", open_path, strerror(-err));
			return err;
		}
	}
	if (own_libc.have_file && (uint64_t)st.st_dev == own_libc.dev &&
	    (uint64_t)st.st_ino == own_libc.ino)
		return 0; /* the very library the layout was calibrated in */
	return libc_tss__check(open_path, &st, name, &own_libc.layout, reason, reasonlen);
}

int py_detect(pid_t pid, const struct proc_maps *maps, struct py_target *out, char *reason,
	      size_t reasonlen)
{
	struct candidate cands[1 + MAX_LIBRARIES];
	size_t count = 0, libraries = 0, map_count;
	char exe_link[PATH_MAX], open_path[PATH_MAX + 64];
	const char *exe_name;
	struct stat exe_st, st;
	ssize_t len;
	int err;

	if (reason && reasonlen)
		reason[0] = '\0';
	if (!maps || !out) {
		errmsg__set(reason, reasonlen, "invalid arguments");
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	out->micro = -1;

	/* The executable: /proc/PID/exe opens the right file in any namespace;
	 * its link text matches the maps paths (both are printed the same way). */
	snprintf(open_path, sizeof(open_path), "/proc/%d/exe", (int)pid);
	len = readlink(open_path, exe_link, sizeof(exe_link) - 1);
	if (len < 0 || stat(open_path, &exe_st) != 0) {
		err = errno;
		if (err == ENOENT && process_gone(pid))
			err = ESRCH;
		if (err == ENOENT) {
			errmsg__set(reason, reasonlen, "no executable (kernel thread or zombie)");
			return -ENOENT;
		}
		errmsg__set(reason, reasonlen, "%s: %s", open_path, strerror(err));
		return -err;
	}
	exe_link[len] = '\0';
	const char *deleted_suffix = " (deleted)";
	size_t suffix_len = strlen(deleted_suffix);
	if ((size_t)len > suffix_len && strcmp(exe_link + len - suffix_len, deleted_suffix) == 0)
		exe_link[len - suffix_len] = '\0';
	exe_name = path_basename(exe_link);

	map_count = proc_maps__count(maps);
	for (size_t i = 0; i < map_count; i++) {
		const struct proc_map *m = proc_maps__at(maps, i);
		if (strcmp(m->path, exe_link) == 0 || (m->inode == (uint64_t)exe_st.st_ino &&
						       m->dev_major == major(exe_st.st_dev) &&
						       m->dev_minor == minor(exe_st.st_dev))) {
			cands[count].map = m;
			cands[count].is_executable = 1;
			count++;
			break;
		}
	}
	if (count) {
		struct name_version nv;
		err = file_verdict(open_path, &exe_st, parse_python_name(exe_name, &nv),
				   &cands[0].verdict);
		if (err) {
			errmsg__set(reason, reasonlen, "%s: %s", exe_link, strerror(-err));
			return err;
		}
	}

	/* Mapped libpython files (first executable mapping of each). */
	for (size_t i = 0; i < map_count && libraries < MAX_LIBRARIES; i++) {
		const struct proc_map *m = proc_maps__at(maps, i);
		int seen = 0;
		if (strncmp(path_basename(m->path), "libpython", 9) != 0)
			continue;
		for (size_t c = 0; c < count; c++)
			seen |= same_file(cands[c].map, m);
		if (seen)
			continue;
		if (open_path_for_map(pid, m, open_path, sizeof(open_path), &st) != 0)
			continue; /* unmapped meanwhile, or unreadable: judge the rest */
		cands[count].map = m;
		cands[count].is_executable = 0;
		if (file_verdict(open_path, &st, 1, &cands[count].verdict) != 0)
			continue;
		count++;
		libraries++;
	}

	/* The interpreter: the executable when it defines _PyRuntime itself
	 * (its definition interposes any library's), else the library. */
	for (size_t c = 0; c < count; c++) {
		if (cands[c].verdict.kind != FILE_INTERPRETER)
			continue;
		err = describe_interpreter(pid, maps, &cands[c], exe_name, out, reason, reasonlen);
		if (!err)
			err = check_libc(pid, maps, exe_link, reason, reasonlen);
		return err;
	}
	if (!count && !map_count) {
		errmsg__set(reason, reasonlen, "no executable mappings");
		return -ESTALE;
	}
	return describe_non_interpreter(cands, count, exe_name, libraries, out, reason, reasonlen);
}

int py_read_tss_key(pid_t pid, const struct py_target *t, int32_t key_offset, int *key)
{
	struct {
		int32_t is_initialized;
		uint32_t key;
	} tss;
	int err;

	if (!t || !key || !t->runtime_addr || key_offset < 0)
		return -EINVAL;
	err = remote_read(pid, t->runtime_addr + (uint64_t)key_offset, &tss, sizeof(tss));
	if (err)
		return err;
	if (tss.is_initialized == 0)
		return -EAGAIN;
	/* glibc keys are < PTHREAD_KEYS_MAX (1024); anything else is not a key. */
	if (tss.is_initialized != 1 || tss.key >= 1024)
		return -EINVAL;
	*key = (int)tss.key;
	return 0;
}
