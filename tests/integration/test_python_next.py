"""CPython 3.13-3.15 (and the 3.14/3.15 debug builds) in the Debian unstable root of
scripts/python-root.sh, read through the interpreter's own _Py_DebugOffsets: the
cross-checks.

The interpreters run in their own root (`chroot ROOT python3.X ...`), the way fleets
run them, and are profiled from the host. What a user reads of each of them (names,
callers, shares against the workload's own time.thread_time(), threads, lines, exact
recursion, deep stacks marked [truncated], asyncio coroutines) is test_python.py's,
whose every per-interpreter test takes the root's sid-3.13, sid-3.14, sid-3.14-dbg,
sid-3.15 and sid-3.15-dbg too. Here: on 3.13 the debug offsets and the built-in table
give the same stacks on the same capture; a corrupted _Py_DebugOffsets (cookie,
version, free-threading flag, a frame offset; overwritten in memory by the test process
itself before the capture) is refused with one clear line and no Python names; a
"3.16" (a 3.15 whose Py_Version and debug offsets say 3.16) is read through its debug
offsets with one line saying so; a 3.15 in its own PID and mount namespaces; 3.14 and
3.15-dbg processes started by the capture and exiting before it ends.
"""
import os
import shutil
import subprocess
import uuid

import pytest

from apputil import Recording
from conftest import Folded, _binary_path, parse_folded_file
from pyroot import RootRun, build_python_root, describe
from pyutil import (PY_WORKLOAD_DIR, called_from, has_function, hot_line_number,
                    innermost_python, is_python_frame, of_file, python_frames)

# The root's executables (ROOT/usr/bin) these tests run.
EXES = ("python3.13", "python3.14", "python3.15", "python3.15d")
MEASURED_LEAVES = ("leaf_alpha", "leaf_beta", "leaf_gamma", "thread_leaf", "deep_leaf")
SHARE_TOLERANCE = 0.03    # as tests/integration/test_python.py
SHORT = 4                 # seconds of the structural captures
MIN_SAMPLES = 10


class Captures:
    """Module-wide: the root, the runs (all closed at the end), cached captures."""

    def __init__(self, basedir):
        self.basedir = basedir
        self.root = build_python_root()
        for exe in EXES:
            assert os.access(os.path.join(self.root, "usr/bin", exe), os.X_OK), (
                f"{exe} missing from {self.root} (scripts/python-root.sh installs it)")
        self.runs = []
        self.done = {}

    def start(self, exe, workload, duration=300, *extra, source=None, namespaces=False):
        run = RootRun(self.root, exe, workload, duration, *extra, source=source,
                      namespaces=namespaces)
        self.runs.append(run)
        return run

    def get(self, key, make):
        if key not in self.done:
            try:
                self.done[key] = ("ok", make())
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                self.done[key] = ("error", e)
        status, value = self.done[key]
        if status == "error":
            pytest.fail(f"capture {key} failed: {value}", pytrace=False)
        return value

    def out(self, name):
        return os.path.join(self.basedir, f"{len(self.done)}-{name}")

    def close(self):
        for run in self.runs:
            run.close()


@pytest.fixture(scope="module")
def captures(tmp_path_factory):
    cache = Captures(str(tmp_path_factory.mktemp("pynext")))
    yield cache
    cache.close()


# ---------------------------------------------------------------------------
# Cross-checks


def test_313_table_and_debug_offsets_give_identical_stacks(captures):
    """Two recorders on the same 3.13 process at the same time, one reading its
    _Py_DebugOffsets (the default), one the built-in table (DYNOPROF_PY_OFFSETS=table):
    every stack of one is a stack of the other, and each leaf's share agrees."""
    run = captures.start("python3.13", "ground_truth")
    outs = [captures.out("313-debug.folded"), captures.out("313-table.folded")]
    procs = []
    for out, mode in zip(outs, ("debug", "table")):
        env = dict(os.environ, DYNOPROF_PY_OFFSETS=mode)
        procs.append(subprocess.Popen([_binary_path(), "record", "-p", str(run.pid), "-d",
                                       "5", "-F", "499", "-o", out], env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=90)[1] for p in procs]
    run.stop()
    for p, err in zip(procs, errs):
        assert p.returncode == 0, err
    debug, table = (of_file(parse_folded_file(o), run.script) for o in outs)
    for name, prof, err in (("debug offsets", debug, errs[0]), ("table", table, errs[1])):
        assert prof.total() >= 200, f"{name}: {prof.total()} samples\n{err}"

    # Stacks of Python frames (native leaves differ sample to sample). Two
    # recorders sample different moments: stacks seen once may be in one only;
    # every stack with 1% of the samples must be in both, and the stacks of one
    # capture missing from the other are rare (a wrong offset in either would
    # make most stacks differ).
    def py_stacks(prof):
        result = {}
        for fr, n in prof.stacks:
            key = tuple(python_frames(fr))
            result[key] = result.get(key, 0) + n
        return result
    py_d, py_t = py_stacks(debug), py_stacks(table)
    for name, mine, other, prof in (("debug offsets", py_d, py_t, debug),
                                    ("table", py_t, py_d, table)):
        heavy = [k for k, n in mine.items() if n >= 0.01 * prof.total()]
        missing = [k for k in heavy if k not in other]
        assert not missing, f"{name}: stacks the other capture lacks: {missing[:2]}"
        only = sum(n for k, n in mine.items() if k not in other)
        assert only <= 0.03 * prof.total(), (
            f"{name}: {only}/{prof.total()} samples in stacks the other lacks: "
            f"{[k for k in mine if k not in other][:2]}")
    for leaf in MEASURED_LEAVES:
        shares = [p.count_where(lambda fr: has_function(fr, leaf)) / p.total()
                  for p in (debug, table)]
        assert abs(shares[0] - shares[1]) <= SHARE_TOLERANCE, (leaf, shares)


CORRUPT = r'''
import ctypes, mmap, sys, time
libc = ctypes.CDLL(None)
runtime = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
mode = sys.argv[3]
if mode == "cookie":
    ctypes.memmove(runtime, b"xdebugpz", 8)
elif mode == "version":
    ctypes.c_uint64.from_address(runtime + 8).value = 0x030c0af0
elif mode == "free-threaded":
    ctypes.c_uint64.from_address(runtime + 16).value = 1
elif mode == "frame-owner":       # 3.14: interpreter_frame.owner, past the frame
    ctypes.c_uint64.from_address(runtime + 248 + 40).value = 4000
elif mode == "newer":             # a "3.16": Py_Version and the debug offsets agree
    version = ctypes.c_ulong.in_dll(ctypes.pythonapi, "Py_Version")
    page = ctypes.addressof(version) & ~(mmap.PAGESIZE - 1)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(page, mmap.PAGESIZE, 3) == 0
    version.value = 0x031000a0
    ctypes.c_uint64.from_address(runtime + 8).value = 0x031000a0
print("ready", flush=True)

def corrupted_spin():
    x = 0
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        for i in range(10000):
            x = (x * 1103515245 + i) & 0xFFFFFFFF
    return x

corrupted_spin()
'''

REFUSALS = {
    "cookie": 'cookie "xdebugpy" missing',
    "version": "is not CPython 3.13 or later",
    "free-threaded": "free-threaded (no-GIL) build, not supported",
    "frame-owner": "interpreter frame",
}


def test_corrupted_debug_offsets_refused_without_names(captures):
    runs = {mode: captures.start("python3.14", "corrupt", 60, mode, source=CORRUPT)
            for mode in REFUSALS}
    newer = captures.start("python3.15", "corrupt", 60, "newer", source=CORRUPT)
    out = captures.out("corrupt.folded")
    rec = Recording("record", "-p", ",".join(str(r.pid) for r in list(runs.values()) +
                                             [newer]), "-d", SHORT, "-o", out)
    try:
        rec.wait_started()
        rc, err = rec.finish(SHORT + 60)
    finally:
        rec.kill()
    assert rc == 0, err
    prof = parse_folded_file(out)
    for mode, want in REFUSALS.items():
        pid = runs[mode].pid
        said = [line for line in err.splitlines() if f"PID {pid}:" in line]
        assert len(said) == 1 and want in said[0] and said[0].startswith("dynoprof: "), (
            f"{mode}: expected one line with {want!r} for PID {pid}:\n{err}")
    # No Python name at all from the refused processes (all python3.14).
    named = [fr for fr, _ in prof.stacks if fr[0] == "python3.14" and
             any(is_python_frame(f) for f in fr[1:])]
    assert not named, f"refused processes got Python names: {';'.join(named[0])}"
    assert prof.of_comm("python3.14").total() > 0, f"no native samples\n{err}"
    # The "3.16": read through its debug offsets, one line saying so, real names.
    said = [line for line in err.splitlines() if f"PID {newer.pid}:" in line]
    assert len(said) == 1 and "Python 3.16 is newer than dynoprof knows" in said[0], err
    spin = of_file(prof, newer.script).count_where(
        lambda fr: has_function(fr, "corrupted_spin"))
    assert spin >= MIN_SAMPLES, f"3.16: {spin} samples named\n{describe(prof)}\n{err}"


def test_pid_and_mount_namespace(captures):
    """A 3.15 started like a container (`unshare --mount --pid --fork --root ROOT`):
    its interpreter, code objects and native symbols resolve through /proc/PID/root
    and map_files, the same as a chroot's."""
    run = captures.start("python3.15", "known_line", 60, namespaces=True)
    out = captures.out("namespace.folded")
    rec = Recording("record", "-p", run.pid, "-d", SHORT, "-o", out)
    try:
        rec.wait_started()
        rc, err = rec.finish(SHORT + 60)
    finally:
        rec.kill()
    assert rc == 0, err
    truth = run.stop()
    prof = of_file(parse_folded_file(out), run.script)
    hot = [(innermost_python(fr), n) for fr, n in prof.stacks
           if innermost_python(fr) and innermost_python(fr).qualname == "hot_line"]
    total = sum(n for _, n in hot)
    assert total >= MIN_SAMPLES, f"{total} hot_line samples\n{describe(prof)}\n{err}"
    want = hot_line_number(os.path.join(PY_WORKLOAD_DIR, "known_line.py"))
    on_line = sum(n for py, n in hot if py.line == want)
    assert on_line >= 0.8 * total, f"{on_line}/{total} at line {want}: {hot[:3]}"
    assert prof.count_where(lambda fr: called_from(fr, "spin", "hot_line")) >= 0.9 * total
    assert truth and truth["pid"] != run.pid, truth  # it ran in its own PID namespace


def test_started_and_exiting_during_capture(captures, run_dynoprof):
    """3.14 and 3.15-dbg processes started by the capture (`record -- sh -c ...`),
    which exit before it ends: named, with the hot line, from their first samples."""
    scripts = {}
    for exe in ("python3.14", "python3.15d"):
        inner = f"/tmp/dynoprof-next-{uuid.uuid4().hex[:12]}"
        os.makedirs(captures.root + inner)
        shutil.copyfile(os.path.join(PY_WORKLOAD_DIR, "known_line.py"),
                        captures.root + inner + "/known_line.py")
        scripts[exe] = inner
    try:
        cmd = " & ".join(f"chroot {captures.root} {exe} {inner}/known_line.py "
                         f"{inner}/truth.json 3" for exe, inner in scripts.items()) + "; wait"
        out = captures.out("start-exit.folded")
        rc, _, err = run_dynoprof("record", "-F", 499, "-o", out, "--", "sh", "-c", cmd,
                                  timeout=120)
        assert rc == 0, err
        prof = parse_folded_file(out)
        hot = hot_line_number(os.path.join(PY_WORKLOAD_DIR, "known_line.py"))
        for exe, inner in scripts.items():
            assert os.path.exists(captures.root + inner + "/truth.json"), f"{exe} did not finish"
            mine = of_file(prof, inner + "/known_line.py")
            on_line = mine.count_where(lambda fr: innermost_python(fr).line == hot and
                                       innermost_python(fr).qualname == "hot_line")
            # A loaded machine gives each few samples: most of the ones in
            # Python code must be on the hot line (the rest is start-up).
            in_python = mine.count_where(lambda fr: any(map(is_python_frame, fr[1:])))
            assert on_line >= 5 and on_line >= 0.5 * in_python, (
                f"{exe}: {on_line}/{in_python} samples on the hot line\n{describe(mine)}\n{err}")
            # (Frames of modules being imported may read as unreadable: their
            # <module> code is freed once imported, before its samples are read.
            # The long-lived stacks must not.)
            hot_stacks = Folded([(fr, n) for fr, n in mine.stacks
                                 if has_function(fr, "hot_line")])
            assert not [fr for fr, _ in hot_stacks.stacks
                        if "[python: unreadable frame]" in fr], (
                f"{exe}: unreadable frames\n{describe(hot_stacks)}")
    finally:
        for inner in scripts.values():
            shutil.rmtree(captures.root + inner, ignore_errors=True)
