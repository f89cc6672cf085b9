/* py_detect.h - is this process a CPython interpreter we can profile, and
 * where is its runtime state?
 *
 * Runs at the first sample of every process on the host, so the common answer
 * ("not Python") is cheap: the executable and any mapped libpython* file are
 * looked at by name and by a few hashed .dynsym lookups, and each file's
 * verdict is cached by (device, inode, size, mtime) in a bounded, process-wide,
 * thread-safe cache. The interpreter is the file that defines `_PyRuntime`:
 * the executable (statically linked: Debian's /usr/bin/python3.X, uwsgi, ...)
 * or libpython3.X.so (pyenv, --enable-shared builds, embedding applications).
 *
 * Files are opened through /proc/PID/exe, /proc/PID/root/<path> (so processes
 * in containers resolve their own files) or /proc/PID/map_files/ (deleted or
 * replaced files); target memory is read with process_vm_readv (root or
 * CAP_SYS_PTRACE needed).
 */
#ifndef DYNOPROF_PY_DETECT_H
#define DYNOPROF_PY_DETECT_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "python_abi.h"
#include "python/py_layout.h"
#include "symbolize/proc_maps.h"

/* Flags of struct py_target. */
enum py_target_flags {
	PY_TARGET_SHARED = 1 << 0,        /* the interpreter is a libpython shared library
					   * (else it is linked into the executable) */
	PY_TARGET_FREE_THREADED = 1 << 1, /* free-threaded build (3.13t, no GIL): unsupported */
	PY_TARGET_DEBUG_BUILD = 1 << 2,   /* debug build (Py_DEBUG, "d" ABI flag): read
					   * through its debug offsets (3.13+), else refused */
};

/* Where py_target's version came from. */
enum py_version_source {
	PY_VERSION_FROM_NONE = 0,      /* unknown */
	PY_VERSION_FROM_MEMORY = 1,    /* Py_Version read from the process (3.11+) */
	PY_VERSION_FROM_FILE = 2,      /* Py_Version read from the interpreter file (3.11+) */
	PY_VERSION_FROM_NAME = 3,      /* "libpython3.X..." or "python3.X" file name */
	PY_VERSION_FROM_SYMBOLS = 4,   /* API functions that first appeared in a version */
};

/* A detected interpreter. Plain data: copy freely. */
struct py_target {
	int major;                     /* 3 (2 for a refused Python 2) */
	int minor;                     /* e.g. 11 */
	int micro;                     /* e.g. 2, or -1 when unknown (version not from Py_Version) */
	uint32_t version_hex;          /* PY_VERSION_HEX when read from Py_Version (e.g.
					* 0x030b02f0), else major << 24 | minor << 16 */
	enum py_version_source version_source; /* how the version was learnt */
	enum py_version_index version_index; /* built-in table entry of this minor
					      * (PY_VERSION_COUNT for 3.14+: none) */
	struct py_layout layout;       /* this process's offsets (valid on success): the
					* table (3.8-3.12), its _Py_DebugOffsets (3.13+) */
	uint64_t runtime_addr;         /* address of _PyRuntime in the target (0 when
					* not found, e.g. Python < 3.7) */
	uint64_t load_bias;            /* process address minus ELF vaddr for the
					* interpreter file (0 for ET_EXEC) */
	unsigned int flags;            /* enum py_target_flags */
	char path[PATH_MAX];           /* interpreter file as the process sees it
					* (a /proc/PID/maps path; open it through
					* /proc/PID/root) */
};

/* Detects whether process pid runs a supported CPython. maps are its
 * executable mappings (proc_maps__read(pid)), used to find libpython and the
 * load bias; they must be current. On return, reason (reasonlen bytes, may be
 * NULL/0) holds a one-line human explanation for any non-zero result, e.g.
 * "Python 3.7 is not supported (3.8-3.15 are)". Minors newer than 3.15 are
 * attempted through their _Py_DebugOffsets (layout.source PY_LAYOUT_NEWER).
 * Returns:
 *   0        a supported interpreter; *out fully filled.
 *   -ENOENT  not a Python process (decided by file names and symbols).
 *   -ENOTSUP a Python we refuse: version before 3.8, free-threaded build,
 *            debug build before 3.13, unknown version, a _Py_DebugOffsets
 *            missing, corrupt or not understood (3.13+), thread state not
 *            found (3.13+), or a C library (another root's) whose
 *            pthread_getspecific does not read the layout dynoprof
 *            calibrated in its own (libc_tss.h).
 *            *out holds what was learnt (version, flags, path).
 *   -EAGAIN  the executable is named python3.X but no Python runtime is
 *            mapped yet, or the interpreter is but no C library is (the
 *            dynamic loader is still running): retry at a later sample, a
 *            bounded number of times.
 *   -ESRCH   the process is gone; -EPERM/-EACCES: no permission to read it;
 *   -ESTALE  maps do not match the process's files; other -errno on I/O errors.
 * Thread-safe. */
int py_detect(pid_t pid, const struct proc_maps *maps, struct py_target *out, char *reason,
	      size_t reasonlen);

/* Reads CPython's pthread TSS key (autoTSSkey) from the target: the Py_tss_t
 * {int _is_initialized; pthread_key_t _key;} at t->runtime_addr + key_offset
 * (key_offset = offsetof(_PyRuntimeState, autoTSSkey), or gilstate.autoTSSkey
 * before 3.12: the start of the Py_tss_t, e.g. 592 for 3.11, not the key
 * inside it). Returns 0 with *key set, -EAGAIN when the interpreter has not
 * initialised it yet (retry later), -EINVAL when the value is implausible
 * (wrong offset?), or a process_vm_readv -errno (-ESRCH when gone). */
int py_read_tss_key(pid_t pid, const struct py_target *t, int32_t key_offset, int *key);

/* Drops every cached per-file verdict (e.g. for tests, or after a binary
 * upgrade that kept the inode, size and mtime). Thread-safe. */
void py_detect__flush_cache(void);

#endif
