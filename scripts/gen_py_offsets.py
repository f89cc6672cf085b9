#!/usr/bin/env python3
"""Generate user/python/py_offsets.c: per-version CPython structure offsets.

For every supported CPython minor version (3.8 .. 3.13) this compiles a tiny C
program with offsetof()/sizeof() against that version's own headers (built with
-DPy_BUILD_CORE so the internal structures are visible), runs it, and prints the
C source of the two tables dynoprof uses:

  py_offsets_table[]      what BPF needs to walk frames (struct py_offsets,
                          bpf/python_abi.h)
  py_code_layout_table[]  what userspace needs to read code objects and strings
                          (struct py_code_layout, user/python/py_offsets.h)

The generated file is committed; the profiler never needs the headers. This
script is how the table is regenerated or verified:

  scripts/gen_py_offsets.py > user/python/py_offsets.c     # regenerate
  scripts/gen_py_offsets.py --check                        # verify committed file
  scripts/gen_py_offsets.py --check --headers 3.11=/usr/include/python3.11

Headers are looked up as $PYENV_ROOT/versions/3.X.Y/include/python3.X (the
newest patch release of each minor) unless given with --headers MINOR=DIR.
Generation needs all six versions; --check compares the versions whose headers
are present and reports the others as skipped (exit status 0 if every checked
version matches, 1 on a mismatch, 2 when no headers were found at all).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

MINORS = (8, 9, 10, 11, 12, 13)
HERE = os.path.dirname(os.path.abspath(__file__))
COMMITTED = os.path.join(HERE, "..", "user", "python", "py_offsets.c")

# The probe: prints "name value" lines. Every value comes from the headers;
# fields absent in a version print -1.
PROBE = r"""
#define Py_BUILD_CORE 1
#include <Python.h>
#include <frameobject.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#if PY_VERSION_HEX >= 0x03090000
#include "internal/pycore_runtime.h"
#else
#include "internal/pycore_pystate.h"
#endif
#if PY_VERSION_HEX >= 0x030b0000
#include "internal/pycore_frame.h"
#include "internal/pycore_code.h"
#endif

#define P(name, value) printf("%s %ld\n", name, (long)(value))

/* Bit position of a one-bit or multi-bit field of PyASCIIObject.state: set
 * the field to all ones and find its lowest set bit in the raw word. */
#define STATE_SHIFT(field, width) do { \
	PyASCIIObject o; unsigned int raw; \
	memset(&o, 0, sizeof(o)); \
	o.state.field = (1u << (width)) - 1; \
	memcpy(&raw, (char *)&o + offsetof(PyASCIIObject, state), sizeof(raw)); \
	P("unicode_" #field "_shift", __builtin_ctz(raw)); \
} while (0)

int main(void)
{
	P("major", PY_MAJOR_VERSION);
	P("minor", PY_MINOR_VERSION);
	P("micro", PY_MICRO_VERSION);
	/* struct py_offsets */
#if PY_VERSION_HEX >= 0x030d0000
	P("tstate_frame", offsetof(PyThreadState, current_frame));
	P("tstate_cframe", -1);
	P("cframe_current_frame", -1);
#elif PY_VERSION_HEX >= 0x030b0000
	P("tstate_frame", -1);
	P("tstate_cframe", offsetof(PyThreadState, cframe));
	P("cframe_current_frame", offsetof(_PyCFrame, current_frame));
#else
	P("tstate_frame", offsetof(PyThreadState, frame));
	P("tstate_cframe", -1);
	P("cframe_current_frame", -1);
#endif
#if PY_VERSION_HEX >= 0x030d0000
	P("frame_code", offsetof(_PyInterpreterFrame, f_executable));
	P("frame_previous", offsetof(_PyInterpreterFrame, previous));
	P("frame_instr", offsetof(_PyInterpreterFrame, instr_ptr));
	P("frame_owner", offsetof(_PyInterpreterFrame, owner));
	P("owner_cstack", FRAME_OWNED_BY_CSTACK);
	P("instr_kind", 2);
#elif PY_VERSION_HEX >= 0x030b0000
	P("frame_code", offsetof(_PyInterpreterFrame, f_code));
	P("frame_previous", offsetof(_PyInterpreterFrame, previous));
	P("frame_instr", offsetof(_PyInterpreterFrame, prev_instr));
#if PY_VERSION_HEX >= 0x030c0000
	P("frame_owner", offsetof(_PyInterpreterFrame, owner));
	P("owner_cstack", FRAME_OWNED_BY_CSTACK);
#else
	P("frame_owner", -1);  /* 3.11 has no C-stack shim frames to skip */
	P("owner_cstack", 0);
#endif
	P("instr_kind", 2);
#else
	P("frame_code", offsetof(PyFrameObject, f_code));
	P("frame_previous", offsetof(PyFrameObject, f_back));
	P("frame_instr", offsetof(PyFrameObject, f_lasti));
	P("frame_owner", -1);
	P("owner_cstack", 0);
	P("instr_kind", PY_VERSION_HEX >= 0x030a0000 ? 1 : 0);
#endif
	P("code_firstlineno", offsetof(PyCodeObject, co_firstlineno));
#if PY_VERSION_HEX >= 0x030b0000
	P("code_adaptive", offsetof(PyCodeObject, co_code_adaptive));
#else
	P("code_adaptive", -1);
#endif
#if PY_VERSION_HEX >= 0x030c0000
	P("runtime_tss_key", offsetof(_PyRuntimeState, autoTSSkey));
#else
	P("runtime_tss_key", offsetof(_PyRuntimeState, gilstate.autoTSSkey));
#endif
	/* struct py_code_layout */
	P("ob_type", offsetof(PyObject, ob_type));
	P("var_size", offsetof(PyVarObject, ob_size));
	P("type_name", offsetof(PyTypeObject, tp_name));
#if PY_VERSION_HEX >= 0x030b0000
	P("co_units", offsetof(PyVarObject, ob_size)); /* PyCodeObject is a var object */
	P("co_qualname", offsetof(PyCodeObject, co_qualname));
	P("co_code", -1);
#else
	P("co_units", -1);
	P("co_qualname", -1);
	P("co_code", offsetof(PyCodeObject, co_code));
#endif
	P("co_name", offsetof(PyCodeObject, co_name));
	P("co_filename", offsetof(PyCodeObject, co_filename));
#if PY_VERSION_HEX >= 0x030a0000
	P("co_linetable", offsetof(PyCodeObject, co_linetable));
#else
	P("co_linetable", offsetof(PyCodeObject, co_lnotab));
#endif
	P("unicode_length", offsetof(PyASCIIObject, length));
	P("unicode_state", offsetof(PyASCIIObject, state));
	STATE_SHIFT(kind, 3);
	STATE_SHIFT(compact, 1);
	STATE_SHIFT(ascii, 1);
	P("unicode_ascii_data", sizeof(PyASCIIObject));
	P("unicode_compact_data", sizeof(PyCompactUnicodeObject));
	P("bytes_data", offsetof(PyBytesObject, ob_sval));
	return 0;
}
"""

# (field, C type, comment) in the order of struct py_offsets.
OFFSETS_FIELDS = (
    "tstate_frame", "tstate_cframe", "cframe_current_frame", "frame_code",
    "frame_previous", "frame_instr", "frame_owner", "code_firstlineno",
    "code_adaptive", "runtime_tss_key", "instr_kind", "owner_cstack",
)
INSTR_KINDS = {0: "PY_INSTR_LASTI_BYTES", 1: "PY_INSTR_LASTI_UNITS", 2: "PY_INSTR_POINTER"}

LAYOUT_FIELDS = (
    "ob_type", "var_size", "type_name", "co_units", "co_name", "co_qualname",
    "co_filename", "co_firstlineno", "co_linetable", "co_code", "co_code_adaptive",
    "code_read_size", "unicode_length", "unicode_state", "unicode_kind_shift",
    "unicode_compact_shift", "unicode_ascii_shift", "unicode_ascii_data",
    "unicode_compact_data", "bytes_size", "bytes_data",
)


def find_headers(pyenv_root, overrides):
    """Returns {minor: include dir} for the versions available."""
    found = {}
    versions = os.path.join(pyenv_root, "versions")
    if os.path.isdir(versions):
        best = {}
        for name in os.listdir(versions):
            m = re.fullmatch(r"3\.(\d+)\.(\d+)", name)
            if not m or int(m.group(1)) not in MINORS:
                continue
            minor, micro = int(m.group(1)), int(m.group(2))
            inc = os.path.join(versions, name, "include", "python3.%d" % minor)
            if os.path.isfile(os.path.join(inc, "Python.h")) and micro >= best.get(minor, (-1,))[0]:
                best[minor] = (micro, inc)
        found = {minor: inc for minor, (_, inc) in best.items()}
    found.update(overrides)
    return found


def probe(inc, workdir, cc):
    src = os.path.join(workdir, "probe.c")
    exe = os.path.join(workdir, "probe")
    with open(src, "w") as f:
        f.write(PROBE)
    subprocess.run([cc, "-w", "-I", inc, "-I", os.path.join(inc, "internal"), src, "-o", exe],
                   check=True)
    out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        key, value = line.split()
        values[key] = int(value)
    return values


def derive(v):
    """Adds the layout fields computed from probed ones."""
    v["co_firstlineno"] = v["code_firstlineno"]
    v["co_code_adaptive"] = v["code_adaptive"]
    v["bytes_size"] = v["var_size"]
    # Every code-object field userspace reads lies in the first code_read_size bytes.
    fields = ("co_units", "co_name", "co_qualname", "co_filename", "co_linetable", "co_code")
    v["code_read_size"] = max(max(v[f] for f in fields) + 8, v["co_firstlineno"] + 4)
    return v


def entry(minor, v, fields, fmt):
    lines = ["\t[PY_V3_%d] = {" % minor]
    if fmt == "offsets":
        lines.append("\t\t.version_hex = 0x030%x0000," % minor)
    for field in fields:
        value = v[field]
        if field == "instr_kind":
            value = INSTR_KINDS[value]
        lines.append("\t\t.%s = %s," % (field, value))
    lines.append("\t},")
    return "\n".join(lines)


def entries(values):
    """Returns {minor: (offsets entry text, layout entry text)}."""
    return {minor: (entry(minor, v, OFFSETS_FIELDS, "offsets"),
                    entry(minor, v, LAYOUT_FIELDS, "layout"))
            for minor, v in values.items()}


def render(values):
    ents = entries(values)
    sources = ", ".join("3.%d.%d" % (m, values[m]["micro"]) for m in sorted(values))
    out = []
    out.append("""/* py_offsets.c - GENERATED by scripts/gen_py_offsets.py; DO NOT EDIT.
 *
 * CPython structure offsets for x86_64 release builds (not free-threaded, not
 * debug), computed with offsetof() against each version's headers
 * (-DPy_BUILD_CORE, internal headers). Generated from: %s.
 * Regenerate: scripts/gen_py_offsets.py > user/python/py_offsets.c
 * Verify:     scripts/gen_py_offsets.py --check   (tests/unit/test_py_offsets.c)
 */
#include <errno.h>

#include "python/py_offsets.h"

const struct py_offsets py_offsets_table[PY_VERSION_COUNT] = {""" % sources)
    for minor in MINORS:
        out.append(ents[minor][0])
    out.append("};\n")
    out.append("const struct py_code_layout py_code_layout_table[PY_VERSION_COUNT] = {")
    for minor in MINORS:
        out.append(ents[minor][1])
    out.append("};\n")
    out.append("""int py_version_index(unsigned major, unsigned minor)
{
	if (major != 3 || minor < 8 || minor > 13)
		return -ENOTSUP;
	return (int)(minor - 8) + PY_V3_8;
}""")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="compare with the committed user/python/py_offsets.c")
    ap.add_argument("--file", default=COMMITTED, help="file --check compares against")
    ap.add_argument("--pyenv-root", default=os.environ.get("PYENV_ROOT", "/root/.pyenv"))
    ap.add_argument("--headers", action="append", default=[], metavar="MINOR=DIR",
                    help="include dir of 3.MINOR (e.g. 3.11=/usr/include/python3.11)")
    ap.add_argument("--cc", default=os.environ.get("CC", "cc"))
    args = ap.parse_args()

    overrides = {}
    for spec in args.headers:
        ver, _, inc = spec.partition("=")
        minor = int(ver.split(".")[-1])
        if minor not in MINORS or not inc:
            ap.error("bad --headers %r" % spec)
        overrides[minor] = inc
    headers = find_headers(args.pyenv_root, overrides)
    if not headers:
        print("gen_py_offsets: no CPython headers found (pyenv root %s)" % args.pyenv_root,
              file=sys.stderr)
        return 2

    if not shutil.which(args.cc):
        print("gen_py_offsets: no C compiler %r" % args.cc, file=sys.stderr)
        return 2
    workdir = tempfile.mkdtemp(prefix="gen_py_offsets.")
    try:
        values = {m: derive(probe(inc, workdir, args.cc)) for m, inc in sorted(headers.items())}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for m, v in values.items():
        if v["minor"] != m:
            print("gen_py_offsets: %s holds 3.%d headers, not 3.%d" % (headers[m], v["minor"], m),
                  file=sys.stderr)
            return 1

    if not args.check:
        missing = [m for m in MINORS if m not in values]
        if missing:
            print("gen_py_offsets: missing headers for " +
                  ", ".join("3.%d" % m for m in missing), file=sys.stderr)
            return 1
        sys.stdout.write(render(values))
        return 0

    with open(args.file) as f:
        committed = f.read()
    status = 0
    for minor in MINORS:
        if minor not in values:
            print("3.%d: skipped (no headers)" % minor)
            continue
        offsets, layout = entries({minor: values[minor]})[minor]
        micro = values[minor]["micro"]
        if offsets in committed and layout in committed:
            print("3.%d: OK (headers of 3.%d.%d, %s)" % (minor, minor, micro, headers[minor]))
        else:
            status = 1
            print("3.%d: MISMATCH with headers of 3.%d.%d (%s); expected:\n%s\n%s"
                  % (minor, minor, micro, headers[minor], offsets, layout))
    return status


if __name__ == "__main__":
    sys.exit(main())
