// SPDX-License-Identifier: MIT
#include "python/py_debug_offsets.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/errmsg.h"

/* Largest sizes believed: a structure reported bigger is garbage. */
#define MAX_RUNTIME_SIZE (64ull << 20)
#define MAX_STATE_SIZE (1ull << 20)
/* Bytes of a code object the resolver reads at once (py_resolver.c MAX_CODE_READ). */
#define MAX_CODE_READ 512

/* Where the sections this file uses start, per known minor (byte offsets into
 * _Py_DebugOffsets; each section starts with its structure's size). */
struct known_layout {
	unsigned minor;       /* 3.minor */
	uint16_t end;         /* sizeof(_Py_DebugOffsets) */
	uint16_t thread;      /* thread_state: size, prev, next, interp, current_frame */
	uint16_t frame;       /* interpreter_frame: size, previous, executable,
			       * instr_ptr, localsplus, owner */
	uint16_t code;        /* code_object: size, filename, name, qualname,
			       * linetable, firstlineno, argcount, localsplusnames,
			       * localspluskinds, co_code_adaptive */
	uint16_t object;      /* pyobject: size, ob_type */
	uint16_t type;        /* type_object: size, tp_name */
	uint16_t bytes;       /* bytes_object: size, ob_size, ob_sval */
	uint16_t unicode;     /* unicode_object: size, state, length, asciiobject_size */
};

/* Read from the interpreters' headers (Include/internal/pycore_debug_offsets.h
 * at v3.13/v3.14/v3.15) and checked against the bytes of Debian's 3.13.18,
 * 3.14.10, 3.15.2 and their debug builds (tests/unit/fixtures/py_debug_offsets). */
static const struct known_layout known[] = {
	{ .minor = 13, .end = 584, .thread = 152, .frame = 224, .code = 272, .object = 352,
	  .type = 368, .bytes = 512, .unicode = 536 },
	{ .minor = 14, .end = 760, .thread = 176, .frame = 248, .code = 312, .object = 400,
	  .type = 416, .bytes = 592, .unicode = 616 },
	{ .minor = 15, .end = 888, .thread = 176, .frame = 312, .code = 376, .object = 464,
	  .type = 480, .bytes = 688, .unicode = 712 },
};

/* Field i (0 = the section's size) of the section at byte offset base. */
static uint64_t field(const uint8_t *buf, unsigned base, unsigned i)
{
	uint64_t v;
	memcpy(&v, buf + base + 8 * i, sizeof(v));
	return v;
}

/* Checks that a field of width bytes at off, aligned to align, lies within a
 * structure of size bytes (and within limit, when nonzero). */
static int fits(uint64_t off, unsigned width, unsigned align, uint64_t size, uint64_t limit)
{
	if (off % align || off + width > size)
		return 0;
	return !limit || off + width <= limit;
}

#define CHECK(cond, ...)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			errmsg__set(reason, reasonlen, __VA_ARGS__);      \
			return -ENOTSUP;                                  \
		}                                                         \
	} while (0)

int py_debug_offsets__parse(const void *data, size_t len, unsigned expect_minor,
			    uint64_t runtime_size, struct py_layout *out,
			    struct py_debug_offsets_info *info, char *reason, size_t reasonlen)
{
	const uint8_t *buf = data;
	const struct known_layout *k = NULL;

	memset(info, 0, sizeof(*info));
	memset(out, 0, sizeof(*out));
	if (len < 24) {
		errmsg__set(reason, reasonlen, "_Py_DebugOffsets: %zu bytes read, too short", len);
		return -EINVAL;
	}
	CHECK(memcmp(buf, "xdebugpy", 8) == 0,
	      "no _Py_DebugOffsets at the start of _PyRuntime (cookie \"xdebugpy\" missing)");
	uint64_t version, free_threaded;
	memcpy(&version, buf + 8, 8);
	memcpy(&free_threaded, buf + 16, 8);
	info->version = version;
	info->free_threaded = free_threaded != 0;
	unsigned major = (unsigned)(version >> 24 & 0xff), minor = (unsigned)(version >> 16 & 0xff);
	CHECK(major == 3 && minor >= 13 && minor < 100 && version >> 32 == 0,
	      "_Py_DebugOffsets: version 0x%" PRIx64 " is not CPython 3.13 or later", version);
	CHECK(!expect_minor || expect_minor == minor,
	      "_Py_DebugOffsets says version %u.%u, the interpreter says 3.%u", major, minor,
	      expect_minor);
	CHECK(free_threaded <= 1, "_Py_DebugOffsets: free_threaded flag %" PRIu64 " is not 0 or 1",
	      free_threaded);
	CHECK(!free_threaded, "Python %u.%u is a free-threaded (no-GIL) build, not supported",
	      major, minor);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].minor == minor || (minor > PY_DEBUG_OFFSETS_KNOWN_MINOR &&
						 known[i].minor == PY_DEBUG_OFFSETS_KNOWN_MINOR))
			k = &known[i];
	if (!k)
		return -ENOTSUP; /* unreachable: minors 13 .. known all listed */
	info->layout_minor = k->minor;
	if (len < k->end) {
		errmsg__set(reason, reasonlen, "_Py_DebugOffsets: %zu bytes read, 3.%u's is %u",
			   len, k->minor, k->end);
		return -EINVAL;
	}
	char newer[48] = "";
	if (minor > k->minor)
		snprintf(newer, sizeof(newer), " (read with the 3.%u layout)", k->minor);

	/* Runtime: its size is the ELF symbol's (a newer minor must show it:
	 * the strongest sign the layout guess is right). */
	uint64_t rt_size = field(buf, 24, 0);
	CHECK(rt_size >= k->end && rt_size <= MAX_RUNTIME_SIZE,
	      "_Py_DebugOffsets%s: runtime state size %" PRIu64 " out of bounds", newer, rt_size);
	CHECK(!runtime_size || runtime_size == rt_size,
	      "_Py_DebugOffsets%s: runtime state size %" PRIu64 " differs from _PyRuntime's %" PRIu64,
	      newer, rt_size, runtime_size);
	CHECK(minor <= PY_DEBUG_OFFSETS_KNOWN_MINOR || runtime_size,
	      "Python %u.%u is newer than dynoprof knows (3.8-3.%d) and its _PyRuntime size is "
	      "unknown: its debug offsets cannot be checked", major, minor,
	      PY_DEBUG_OFFSETS_KNOWN_MINOR);

	/* Thread state: current_frame. */
	uint64_t ts_size = field(buf, k->thread, 0), current_frame = field(buf, k->thread, 4);
	CHECK(ts_size >= 64 && ts_size <= MAX_STATE_SIZE && fits(current_frame, 8, 8, ts_size, 0x7fff),
	      "_Py_DebugOffsets%s: thread state (size %" PRIu64 ", current_frame %" PRIu64
	      ") out of bounds", newer, ts_size, current_frame);

	/* Interpreter frame: every field the walker reads within its chunk. */
	uint64_t fr_size = field(buf, k->frame, 0), previous = field(buf, k->frame, 1),
		 executable = field(buf, k->frame, 2), instr_ptr = field(buf, k->frame, 3),
		 owner = field(buf, k->frame, 5);
	CHECK(fr_size >= 32 && fr_size <= 4096 && fits(previous, 8, 8, fr_size, PY_FRAME_CHUNK) &&
	      fits(executable, 8, 8, fr_size, PY_FRAME_CHUNK) &&
	      fits(instr_ptr, 8, 8, fr_size, PY_FRAME_CHUNK) &&
	      fits(owner, 1, 1, fr_size, PY_FRAME_CHUNK) && previous != executable &&
	      previous != instr_ptr && executable != instr_ptr &&
	      (owner < executable || owner >= executable + 8) &&
	      (owner < previous || owner >= previous + 8) &&
	      (owner < instr_ptr || owner >= instr_ptr + 8),
	      "_Py_DebugOffsets%s: interpreter frame (size %" PRIu64 ", previous %" PRIu64
	      ", executable %" PRIu64 ", instr_ptr %" PRIu64 ", owner %" PRIu64 ") out of bounds",
	      newer, fr_size, previous, executable, instr_ptr, owner);

	/* Code object: names, line table, first line, first instruction. */
	uint64_t co_size = field(buf, k->code, 0), filename = field(buf, k->code, 1),
		 name = field(buf, k->code, 2), qualname = field(buf, k->code, 3),
		 linetable = field(buf, k->code, 4), firstlineno = field(buf, k->code, 5),
		 adaptive = field(buf, k->code, 9);
	CHECK(co_size >= 64 && co_size <= MAX_CODE_READ && fits(filename, 8, 8, co_size, 0) &&
	      fits(name, 8, 8, co_size, 0) && fits(qualname, 8, 8, co_size, 0) &&
	      fits(linetable, 8, 8, co_size, 0) && fits(firstlineno, 4, 4, co_size, 0) &&
	      adaptive >= 24 && adaptive <= co_size && adaptive % 2 == 0,
	      "_Py_DebugOffsets%s: code object (size %" PRIu64 ", filename %" PRIu64
	      ", name %" PRIu64 ", qualname %" PRIu64 ", linetable %" PRIu64 ", firstlineno %" PRIu64
	      ", co_code_adaptive %" PRIu64 ") out of bounds",
	      newer, co_size, filename, name, qualname, linetable, firstlineno, adaptive);

	/* Objects: the type pointer, then (PyVarObject) the item count. */
	uint64_t ob_size = field(buf, k->object, 0), ob_type = field(buf, k->object, 1);
	uint64_t tp_size = field(buf, k->type, 0), tp_name = field(buf, k->type, 1);
	CHECK(ob_size >= 16 && ob_size <= 64 && fits(ob_type, 8, 8, ob_size, 0) &&
	      ob_type + 16 <= filename && tp_size <= 4096 && fits(tp_name, 8, 8, tp_size, 0),
	      "_Py_DebugOffsets%s: object header (size %" PRIu64 ", ob_type %" PRIu64
	      ", tp_name %" PRIu64 ") out of bounds", newer, ob_size, ob_type, tp_name);
	uint64_t by_size = field(buf, k->bytes, 0), by_len = field(buf, k->bytes, 1),
		 by_data = field(buf, k->bytes, 2);
	CHECK(by_size <= 128 && fits(by_len, 8, 8, by_size, 0) && by_data > by_len &&
	      by_data < by_size,
	      "_Py_DebugOffsets%s: bytes object (size %" PRIu64 ", ob_size %" PRIu64
	      ", ob_sval %" PRIu64 ") out of bounds", newer, by_size, by_len, by_data);
	/* str: PyASCIIObject {..., length, hash, state}, then
	 * PyCompactUnicodeObject adds utf8_length and utf8, PyUnicodeObject a
	 * data pointer: its size is the ASCII header's + 24. */
	uint64_t un_size = field(buf, k->unicode, 0), un_state = field(buf, k->unicode, 1),
		 un_length = field(buf, k->unicode, 2), ascii_size = field(buf, k->unicode, 3);
	CHECK(ascii_size >= 24 && ascii_size <= 96 && un_size == ascii_size + 24 &&
	      fits(un_state, 4, 4, ascii_size, 0) && fits(un_length, 8, 8, ascii_size, 0),
	      "_Py_DebugOffsets%s: str object (size %" PRIu64 ", state %" PRIu64 ", length %" PRIu64
	      ", ASCII header %" PRIu64 ") out of bounds", newer, un_size, un_state, un_length,
	      ascii_size);

	struct py_offsets *o = &out->walk;
	o->version_hex = (uint32_t)(version & 0xffff0000u);
	o->tstate_frame = (int16_t)current_frame;
	o->tstate_cframe = -1;
	o->cframe_current_frame = -1;
	o->frame_code = (int16_t)executable;
	o->frame_previous = (int16_t)previous;
	o->frame_instr = (int16_t)instr_ptr;
	o->frame_owner = (int16_t)owner;
	o->code_firstlineno = (int16_t)firstlineno;
	o->code_adaptive = (int16_t)adaptive;
	o->instr_kind = PY_INSTR_POINTER;
	/* The entry frame of every _PyEval_EvalFrameDefault: FRAME_OWNED_BY_CSTACK
	 * (3) in 3.13, FRAME_OWNED_BY_INTERPRETER (also 3) from 3.14. */
	o->owner_cstack = 3;
	/* 3.14+: f_executable is a _PyStackRef, its low bits tags (objects are
	 * at least 8-byte aligned). */
	o->code_tag_mask = minor >= 14 ? 7 : 0;

	struct py_code_layout *l = &out->code;
	l->ob_type = (int16_t)ob_type;
	l->var_size = (int16_t)(ob_type + 8);
	l->type_name = (int16_t)tp_name;
	l->co_units = l->var_size;
	l->co_name = (int16_t)name;
	l->co_qualname = (int16_t)qualname;
	l->co_filename = (int16_t)filename;
	l->co_firstlineno = (int16_t)firstlineno;
	l->co_linetable = (int16_t)linetable;
	l->co_code = -1;
	l->co_code_adaptive = (int16_t)adaptive;
	uint64_t end = filename;
	const uint64_t ends[] = { name, qualname, linetable, firstlineno };
	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
		if (ends[i] > end)
			end = ends[i];
	l->code_read_size = (uint16_t)(end + 8);
	l->unicode_length = (int16_t)un_length;
	l->unicode_state = (int16_t)un_state;
	/* state: interned:2, kind:3, compact:1, ascii:1 (3.12+). */
	l->unicode_kind_shift = 2;
	l->unicode_compact_shift = 5;
	l->unicode_ascii_shift = 6;
	l->unicode_ascii_data = (int16_t)ascii_size;
	l->unicode_compact_data = (int16_t)(ascii_size + 16);
	l->bytes_size = (int16_t)by_len;
	l->bytes_data = (int16_t)by_data;

	out->minor = minor;
	out->source = minor > k->minor ? PY_LAYOUT_NEWER : PY_LAYOUT_DEBUG_OFFSETS;
	return 0;
}
