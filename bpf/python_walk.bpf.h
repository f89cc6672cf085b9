// SPDX-License-Identifier: GPL-2.0
/* python_walk.bpf.h - the Python walk concern: finds the sampled thread's
 * CPython thread state and walks its interpreter frames (bpf_loop, Linux >=
 * 5.17) into a per-CPU buffer the sample copies. No program of its own: the
 * sampling programs call walk_python_stack(). ABI: bpf/python_abi.h. */
#ifndef DYNOPROF_PYTHON_WALK_BPF_H
#define DYNOPROF_PYTHON_WALK_BPF_H

#include "common.bpf.h"
#include "python_abi.h"

/* Set by the loader before load. */
const volatile bool walk_python = true;    /* walk CPython frames of py_procs */

/* Python processes (key: tgid) with their own structure offsets, filled by
 * userspace at discovery. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct py_proc);
} py_procs SEC(".maps");

/* Per-CPU Python frames of the sample being built. */
struct py_frames_buf {
	struct py_frame frames[PY_MAX_FRAMES]; /* innermost first */
	__u8 chunk[PY_FRAME_CHUNK];            /* the frame being decoded */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_frames_buf);
} py_scratch SEC(".maps");

/* State of one Python walk, shared with the bpf_loop callback. */
struct py_walk {
	__u64 frame;        /* next frame to visit; 0 ends the walk */
	struct py_offsets o;/* the interpreter's offsets (a copy: no lookup per frame) */
	__u32 n;            /* frames emitted */
	__u32 status;       /* enum py_walk_status */
	__u32 tail_code;    /* 1 when the last frame visited was not a C-stack shim */
	__u32 pad;          /* zero */
};

static int py_walk_step(__u32 index, struct py_walk *w)
{
	__u32 zero = 0;
	if (!w->frame)
		return 1;
	struct py_frames_buf *buf = bpf_map_lookup_elem(&py_scratch, &zero);
	if (!buf)
		return 1;
	const struct py_offsets *o = &w->o;

	/* One read of the whole frame header, then fields from the copy; a frame
	 * at the very end of a mapping falls back to one read per field. */
	__u64 frame = w->frame, code = 0, previous = 0, instr = 0;
	__u8 owner = 0;
	__s32 lasti = 0;
	if (!bpf_probe_read_user(buf->chunk, PY_FRAME_CHUNK, (const void *)frame)) {
		code = *(__u64 *)(buf->chunk + (o->frame_code & 0x78));
		previous = *(__u64 *)(buf->chunk + (o->frame_previous & 0x78));
		if (o->frame_owner >= 0)
			owner = buf->chunk[o->frame_owner & 0x7f];
		if (o->instr_kind == PY_INSTR_POINTER)
			instr = *(__u64 *)(buf->chunk + (o->frame_instr & 0x78));
		else
			lasti = *(__s32 *)(buf->chunk + (o->frame_instr & 0x7c));
	} else {
		if (read_user_u64(frame + o->frame_code, &code) ||
		    read_user_u64(frame + o->frame_previous, &previous))
			goto fault;
		if (o->frame_owner >= 0 &&
		    bpf_probe_read_user(&owner, 1, (const void *)(frame + o->frame_owner)))
			goto fault;
		if (o->instr_kind == PY_INSTR_POINTER) {
			if (read_user_u64(frame + o->frame_instr, &instr))
				goto fault;
		} else if (bpf_probe_read_user(&lasti, sizeof(lasti),
					       (const void *)(frame + o->frame_instr))) {
			goto fault;
		}
	}
	w->frame = previous;
	if (o->frame_owner >= 0 && owner == o->owner_cstack) {
		w->tail_code = 0;
		return 0; /* C-stack shim frame: no Python code */
	}
	w->tail_code = 1;
	/* 3.14+: f_executable is a _PyStackRef whose low bits are tags. */
	code &= ~(__u64)o->code_tag_mask;
	if (!code)
		return 0;
	/* A Python frame past the limits (frames kept, or the steps, which
	 * shims use up too): the stack is cut. The last steps only look, so a
	 * tail of shims (3.12's bottom entry frame) is not taken for one. */
	if (w->n >= PY_MAX_FRAMES || index >= PY_WALK_STEPS) {
		w->status = PY_WALK_TRUNCATED;
		return 1;
	}
	instr = o->instr_kind == PY_INSTR_POINTER ? instr - code : (__u64)(__u32)lasti;

	__s32 firstlineno = 0;
	if (bpf_probe_read_user(&firstlineno, sizeof(firstlineno),
				(const void *)(code + o->code_firstlineno)))
		goto fault;

	__u32 n = w->n;
	if (n >= PY_MAX_FRAMES)
		return 1;
	buf->frames[n].code = code;
	buf->frames[n].instr = (__u32)instr;
	buf->frames[n].firstlineno = firstlineno;
	w->n = n + 1;
	return 0;
fault:
	w->status = PY_WALK_READ_ERROR;
	return 1;
}

/* Finds the sampled thread's PyThreadState through the interpreter's pthread
 * TSS key (set for every thread with a Python thread state, also while it has
 * released the GIL), and walks its frames into py_scratch. Returns the number
 * of frames and sets *status. */
static __always_inline __u32 walk_python_stack(__u32 pid, __u32 *status)
{
	struct py_proc *proc = bpf_map_lookup_elem(&py_procs, &pid);
	*status = PY_WALK_NONE;
	if (!proc)
		return 0;
	const struct py_offsets *o = &proc->o;

	__u64 tstate = 0, frame = 0;
	if (o->tstate_tls) {
		/* 3.15+: a static thread-local of the interpreter. */
		struct task_struct *task = bpf_get_current_task_btf();
		__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
		if (!fsbase || read_user_u64(fsbase + (__s64)o->tstate_tls, &tstate) || !tstate)
			return 0;
	} else {
		struct { __s32 initialized; __u32 key; } tss = {};
		if (bpf_probe_read_user(&tss, sizeof(tss),
					(const void *)(proc->runtime_addr + o->runtime_tss_key)))
			return 0;
		if (tss.initialized != 1 || tss.key >= 32) /* glibc's second-level keys unsupported */
			return 0;
		if (read_thread_specific(tss.key, &tstate) || !tstate)
			return 0;
	}
	if (o->tstate_frame >= 0) {
		if (read_user_u64(tstate + o->tstate_frame, &frame))
			return 0;
	} else {
		__u64 cframe = 0;
		if (read_user_u64(tstate + o->tstate_cframe, &cframe) || !cframe ||
		    read_user_u64(cframe + o->cframe_current_frame, &frame))
			return 0;
	}
	struct py_walk w = { .frame = frame, .status = PY_WALK_OK };
	__builtin_memcpy(&w.o, o, sizeof(w.o));
	bpf_loop(PY_WALK_STEPS + PY_WALK_LOOKAHEAD, py_walk_step, &w, 0);
	/* Stopped with frames left (too deep, or the steps went on shim
	 * frames): the outermost frames are missing. */
	if (w.status == PY_WALK_OK && w.frame)
		w.status = PY_WALK_TRUNCATED;
	/* 3.12+ (the versions with shim frames): every thread's chain ends in
	 * the entry shim of its outermost _PyEval_EvalFrameDefault. Ending on a
	 * code frame means the chain was read mid-update: cut, say so. */
	else if (w.status == PY_WALK_OK && o->frame_owner >= 0 && w.tail_code)
		w.status = PY_WALK_TORN;
	if (w.status == PY_WALK_READ_ERROR)
		count_drop(DROP_PY_READ_ERROR);
	else if (w.status == PY_WALK_TRUNCATED)
		count_drop(DROP_PY_TRUNCATED);
	else if (w.status == PY_WALK_TORN)
		count_drop(DROP_PY_TORN);
	*status = w.status;
	return w.n;
}

#endif
