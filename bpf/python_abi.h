/* python_abi.h - kernel/user ABI of the Python walk concern (bpf/python_walk.bpf.h):
 * walking CPython interpreter frames in BPF.
 *
 * Userspace detects each Python process (user/python/), fills one struct
 * py_proc per process into the `py_procs` map and the per-version offset
 * table `py_versions` (struct py_offsets, indexed by enum py_version_index);
 * at each sample the walk (bpf/python_walk.bpf.h) finds the sampled thread's
 * PyThreadState through the pthread TSS key and walks its frames, emitting
 * one struct py_frame per Python frame, innermost first.
 *
 * All version differences are data in struct py_offsets, never code branches
 * beyond the flags below.
 */
#ifndef DYNOPROF_BPF_PYTHON_ABI_H
#define DYNOPROF_BPF_PYTHON_ABI_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Bytes of an interpreter frame the walker reads at once: every frame field
 * it uses must lie within (userspace refuses offsets that do not). */
#define PY_FRAME_CHUNK 128

/* Python frames kept per sample (innermost ones); deeper stacks are marked
 * truncated. */
#define PY_MAX_FRAMES 160
/* Steps of the frame walk: C-stack shim frames (3.12+: one per C call that
 * re-enters Python, e.g. sorted(key=...)) use steps but emit no frame. A walk
 * that stops before the outermost frame is PY_WALK_TRUNCATED. */
#define PY_WALK_STEPS (2 * PY_MAX_FRAMES + 1)
/* Steps past PY_WALK_STEPS that only look for a frame left out (shims do
 * not count): a walk still unfinished after them is taken as truncated. */
#define PY_WALK_LOOKAHEAD 4
/* Native user frames kept for Python processes (C extensions and the
 * libraries they call, leafward of the interpreter); a chain cut by it is
 * marked [truncated]. */
#define PY_NATIVE_FRAMES 32

/* Interpreter versions of the built-in offset table (user/python/py_offsets.c);
 * 3.14 and later have no table entry: their offsets come from the process. */
enum py_version_index {
	PY_V3_8 = 0,
	PY_V3_9 = 1,
	PY_V3_10 = 2,
	PY_V3_11 = 3,
	PY_V3_12 = 4,
	PY_V3_13 = 5,
	PY_VERSION_COUNT = 6,
};

/* How a frame's current instruction is stored. */
enum py_instr_kind {
	PY_INSTR_LASTI_BYTES = 0, /* int f_lasti, a byte offset into co_code (3.8, 3.9) */
	PY_INSTR_LASTI_UNITS = 1, /* int f_lasti, in 2-byte code units (3.10) */
	PY_INSTR_POINTER = 2,     /* pointer into co_code_adaptive (3.11+) */
};

/* Offsets (bytes) into CPython structures for one version; -1 = absent. */
struct py_offsets {
	__u32 version_hex;          /* e.g. 0x030b0000 for 3.11 (minor granularity) */
	__s16 tstate_frame;         /* PyThreadState -> current frame pointer (3.8-3.10
				     * `frame`, 3.13 `current_frame`); -1 when via cframe */
	__s16 tstate_cframe;        /* PyThreadState -> `cframe` (3.11, 3.12); -1 otherwise */
	__s16 cframe_current_frame; /* _PyCFrame -> `current_frame` (3.11, 3.12) */
	__s16 frame_code;           /* frame -> code object (`f_code`, 3.13 `f_executable`) */
	__s16 frame_previous;       /* frame -> caller frame (`f_back` / `previous`) */
	__s16 frame_instr;          /* frame -> instruction (see instr_kind) */
	__s16 frame_owner;          /* _PyInterpreterFrame `owner` (u8, 3.12+); -1 none */
	__s16 code_firstlineno;     /* PyCodeObject -> co_firstlineno (int), read as a
				     * validation tag against address reuse */
	__s16 code_adaptive;        /* offset of co_code_adaptive in PyCodeObject (3.11+):
				     * instruction byte offset = instr_ptr - code - this */
	__s16 runtime_tss_key;      /* _PyRuntime -> autoTSSkey (Py_tss_t: int
				     * _is_initialized; then the pthread_key_t) */
	__u8 instr_kind;            /* enum py_instr_kind */
	__u8 owner_cstack;          /* owner value of a C-stack shim frame to skip (3.12+: 3;
				     * 3.14+ FRAME_OWNED_BY_INTERPRETER, also 3) */
	__u8 code_tag_mask;         /* low bits of frame_code that are _PyStackRef tags
				     * (3.14+: f_executable is tagged), cleared before use */
	__u8 pad;                   /* zero */
	__s32 tstate_tls;           /* nonzero: the thread's PyThreadState* is a thread-local
				     * at this offset from the thread pointer (3.15+
				     * _Py_tss_gilstate, static TLS); 0: through the pthread
				     * key at runtime_tss_key */
};
_Static_assert(sizeof(struct py_offsets) == 32, "py_offsets layout");

/* glibc's pthread_getspecific layout, calibrated by userspace in its own
 * process; a target whose C library is another file (another root) is walked
 * only when that library's pthread_getspecific decodes to the same layout
 * (user/python/libc_tss.c), else refused per process. */
struct py_tls_layout {
	__u32 specific_1stblock;   /* offset from the thread pointer (fsbase) of
				    * struct pthread.specific_1stblock[] */
	__u32 entry_size;          /* sizeof(struct pthread_key_data): 16 */
	__u32 data_offset;         /* offset of `data` in that entry: 8 */
	__u32 pad;                 /* zero */
};
_Static_assert(sizeof(struct py_tls_layout) == 16, "py_tls_layout layout");

/* One Python process, the value of py_procs (key: tgid). */
struct py_proc {
	__u64 runtime_addr;        /* address of _PyRuntime in the process */
	__u32 minor;               /* 3.minor (informational: the walk uses only o) */
	__u32 pad;                 /* zero */
	struct py_offsets o;       /* this process's offsets (checked by userspace:
				    * every frame field within PY_FRAME_CHUNK) */
};
_Static_assert(sizeof(struct py_proc) == 48, "py_proc layout");

/* One Python frame of a sample. */
struct py_frame {
	__u64 code;                /* address of the code object */
	__u32 instr;               /* instruction: f_lasti as stored (3.8-3.10), or
				    * byte offset of instr_ptr from the code object (3.11+) */
	__s32 firstlineno;         /* co_firstlineno read at sample time: userspace
				    * drops a cached name whose firstlineno differs */
};
_Static_assert(sizeof(struct py_frame) == 16, "py_frame layout");

/* Status of the Python walk in a sample (py_status). */
enum py_walk_status {
	PY_WALK_NONE = 0,          /* not a Python process, or no thread state */
	PY_WALK_OK = 1,            /* frames emitted (possibly zero) */
	PY_WALK_TRUNCATED = 2,     /* more than PY_MAX_FRAMES, or more than PY_WALK_STEPS
				    * frames with shims: outermost ones left out */
	PY_WALK_READ_ERROR = 3,    /* a read faulted midway: frames so far emitted */
	PY_WALK_TORN = 4,          /* 3.12+: the chain ended on a code frame, not on the
				    * entry shim every thread's chain ends in: the sample
				    * caught the interpreter linking a frame in (the
				    * thread's cframe is published before its
				    * current_frame is set); outermost frames missing */
};

/* How a sample is laid out (py_len, py_status and the frames after the native
 * ones) is the sampling ABI's: bpf/sampling_abi.h. */

#endif
