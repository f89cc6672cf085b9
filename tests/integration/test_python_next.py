"""CPython 3.14 and 3.15 (and their debug builds), read through the interpreter's own
_Py_DebugOffsets, in the Debian unstable root of scripts/python-root.sh.

The interpreters run in their own root (`chroot ROOT python3.X ...`), the way fleets
run them, and are profiled from the host. The workloads of tests/workloads/py measure
their own truth (time.thread_time() per leaf) and the tests compare what a user reads
against it: names, callers, shares, threads, lines, deep stacks marked [truncated],
asyncio coroutines. Then the cross-checks: on 3.13 the debug offsets and the built-in
table give the same stacks on the same capture; a corrupted _Py_DebugOffsets (cookie,
version, free-threading flag, a frame offset; overwritten in memory by the test process
itself before the capture) is refused with one clear line and no Python names; a
"3.16" (a 3.15 whose Py_Version and debug offsets say 3.16) is read through its debug
offsets with one line saying so.
"""
import json
import os
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from apputil import Recording
from conftest import (REPO_ROOT, Folded, _binary_path, parse_folded_file,
                      proc_cpu_seconds)
from pyutil import (PY_WORKLOAD_DIR, called_from, function_count, has_function,
                    hot_line_number, innermost_python, is_python_frame, names_function, of_file,
                    python_frames)

# (test id, executable in ROOT/usr/bin, its comm)
NEXT = [("3.14", "python3.14"), ("3.15", "python3.15"),
        ("3.14-dbg", "python3.14d"), ("3.15-dbg", "python3.15d")]
IDS = [n for n, _ in NEXT]
MEASURED_LEAVES = ("leaf_alpha", "leaf_beta", "leaf_gamma", "thread_leaf", "deep_leaf")
CALLERS = {"leaf_alpha": "caller_alpha", "leaf_beta": "caller_beta",
           "leaf_gamma": "caller_gamma"}
RECURSION_DEPTH = 150
PY_FRAME_LIMIT = 160
TRUNCATED = "[truncated]"
GT_FREQ = 999
GT_MIN_CPU = 3.0          # CPU seconds each ground-truth run gets in its capture...
GT_MIN_DURATION = 4
GT_MAX_DURATION = 60      # ...within this many seconds
GT_MIN_SAMPLES = 400
SHARE_TOLERANCE = 0.03    # as tests/integration/test_python.py
SHORT = 4                 # seconds of the structural captures
MIN_SAMPLES = 10
READY_TIMEOUT = 60


def python_root():
    """The Debian unstable root (built once per machine, reused when complete)."""
    res = subprocess.run(["sh", os.path.join(REPO_ROOT, "scripts", "python-root.sh")],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"scripts/python-root.sh failed:\n{res.stderr}"
    return res.stdout.strip().splitlines()[-1]


def describe(prof, limit=8, width=600):
    top = sorted(prof.stacks, key=lambda s: -s[1])[:limit]
    return "\n".join(f"{n:6d} {';'.join(fr)[:width]}" for fr, n in top)


class RootRun:
    """One workload process inside the root: its script copy lives under ROOT/tmp."""

    def __init__(self, root, exe, workload, duration, *extra, source=None, namespaces=False):
        self.root, self.exe = root, exe
        self.inner_dir = f"/tmp/dynoprof-next-{uuid.uuid4().hex[:12]}"
        os.makedirs(root + self.inner_dir)
        self.script = f"{self.inner_dir}/{workload}.py"   # as the process sees it
        if source is None:
            shutil.copyfile(os.path.join(PY_WORKLOAD_DIR, workload + ".py"),
                            root + self.script)
        else:
            with open(root + self.script, "w") as f:
                f.write(source)
        self.truth_path = f"{self.inner_dir}/truth.json"
        # chroot, or (namespaces) a container-like start: own mount and PID
        # namespaces with the root as /, the interpreter a child of unshare.
        enter = (["unshare", "--mount", "--pid", "--fork", "--root", root] if namespaces
                 else ["chroot", root])
        self.namespaces = namespaces
        self.child = None
        self.proc = subprocess.Popen(
            enter + [exe, self.script, self.truth_path, str(duration)] +
            [str(e) for e in extra], cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.wait_ready()

    @property
    def pid(self):
        """The interpreter's PID on the host (chroot execs it; unshare forks it)."""
        if not self.namespaces:
            return self.proc.pid
        if self.child:
            return self.child
        children = []
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{task}/children") as f:
                children += [int(c) for c in f.read().split()]
        assert len(children) == 1, f"unshare {self.proc.pid} has children {children}"
        self.child = children[0]
        return self.child

    def signal(self, sig):
        """To the interpreter (unshare does not pass signals on)."""
        try:
            os.kill(self.pid, sig)
        except (ProcessLookupError, AssertionError, FileNotFoundError):
            pass

    def wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.strip() == "ready":
                return
            if line == "":
                break
        self.proc.kill()
        out, err = self.proc.communicate()
        pytest.fail(f"{self.exe} {self.script} never printed ready "
                    f"(exit {self.proc.returncode}):\n{out}\n{err}")

    def snapshot(self):
        path = self.root + self.truth_path + ".snapshots"

        def lines():
            try:
                with open(path) as f:
                    return [x for x in f.read().split("\n") if x]
            except FileNotFoundError:
                return []
        n = len(lines())
        self.signal(signal.SIGUSR1)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            now = lines()
            if len(now) > n:
                try:
                    return json.loads(now[n])
                except ValueError:
                    pass
            time.sleep(0.02)
        pytest.fail(f"{self.exe} {self.script} wrote no snapshot")

    def stop(self):
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            with open(self.root + self.truth_path) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def close(self):
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        shutil.rmtree(self.root + self.inner_dir, ignore_errors=True)


class Captures:
    """Module-wide: the root, the runs (all closed at the end), cached captures."""

    def __init__(self, basedir):
        self.basedir = basedir
        self.root = python_root()
        for _, exe in NEXT + [("3.13", "python3.13")]:
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


def ground_truth(captures, exe):
    """(run, truth over the capture, own stacks, stderr) of a ground_truth run."""

    def make():
        run = captures.start(exe, "ground_truth")
        out = captures.out(f"gt-{exe}.folded")
        rec = Recording("record", "-p", run.pid, "-d", GT_MAX_DURATION + 30,
                        "-F", GT_FREQ, "-o", out)
        try:
            rec.wait_started()
            before = run.snapshot()
            cpu = proc_cpu_seconds(run.pid)
            start = time.monotonic()
            while time.monotonic() - start < GT_MAX_DURATION and (
                    time.monotonic() - start < GT_MIN_DURATION or
                    proc_cpu_seconds(run.pid) - cpu < GT_MIN_CPU):
                time.sleep(0.1)
            after = run.snapshot()
            rc, err = rec.stop()
        finally:
            rec.kill()
        assert rc == 0, f"record failed (rc={rc}):\n{err}"
        truth = run.stop()
        truth.update({leaf: after[leaf] - before[leaf] for leaf in MEASURED_LEAVES})
        return run, truth, of_file(parse_folded_file(out), run.script), err

    return captures.get("gt:" + exe, make)


def all_next(captures, workload, *extra):
    """{exe: (run, own stacks)} plus "_err": workload under all four in one capture."""

    def make():
        runs = [captures.start(exe, workload, 120, *extra) for _, exe in NEXT]
        out = captures.out(f"{workload}-next.folded")
        rec = Recording("record", "-p", ",".join(str(r.pid) for r in runs),
                        "-d", SHORT, "-F", 199, "-o", out)
        try:
            rec.wait_started()
            rc, err = rec.finish(SHORT + 60)
        finally:
            rec.kill()
        assert rc == 0, f"record failed (rc={rc}):\n{err}"
        prof = parse_folded_file(out)
        result = {"_err": err}
        for run in runs:
            run.stop()
            result[run.exe] = (run, of_file(prof, run.script))
        return result

    return captures.get(workload, make)


# ---------------------------------------------------------------------------
# The ground truth, per interpreter


@pytest.mark.parametrize("exe", [e for _, e in NEXT], ids=IDS)
def test_names_callers_lines(captures, exe):
    run, truth, prof, err = ground_truth(captures, exe)
    assert prof.total() > 0, f"{exe}: no Python frame of {run.script}\n{err}"
    for name in MEASURED_LEAVES + tuple(CALLERS.values()) + ("thread_worker", "recurse",
                                                            "run_round", "main"):
        assert prof.count_where(lambda fr: has_function(fr, name)) > 0, (
            f"{exe}: no frame named {name}\n{describe(prof)}")
    for leaf, caller in CALLERS.items():
        with_leaf = prof.count_where(lambda fr: has_function(fr, leaf))
        under = prof.count_where(lambda fr: called_from(fr, caller, leaf))
        assert under >= 0.95 * with_leaf, (
            f"{exe}: {caller} is the caller in {under}/{with_leaf} {leaf} stacks\n"
            f"{describe(prof)}")
    # The main thread's stacks reach <module>: the walk ends on the entry frame
    # (3.14's FRAME_OWNED_BY_INTERPRETER), not [truncated] (torn).
    main = prof.count_where(lambda fr: has_function(fr, "caller_alpha"))
    rooted = prof.count_where(lambda fr: has_function(fr, "caller_alpha") and
                              names_function(python_frames(fr)[0], "<module>"))
    assert rooted >= 0.95 * main, f"{exe}: {rooted}/{main} rooted\n{describe(prof)}"
    # Lines: every leaf frame carries this file and a line inside its function.
    leaf = innermost_python(next(fr for fr, _ in prof.stacks
                                 if has_function(fr, "leaf_alpha")))
    assert leaf.filename == run.script and leaf.line and leaf.line > 0, leaf
    with open(os.path.join(PY_WORKLOAD_DIR, "ground_truth.py")) as f:
        source = f.read().split("\n")
    first = next(i for i, text in enumerate(source, 1) if text.startswith("def leaf_alpha("))
    lines = {innermost_python(fr).line for fr, _ in prof.stacks
             if names_function(python_frames(fr)[-1], "leaf_alpha")}
    # The def line itself is the function's entry (its RESUME instruction):
    # a slow debug build is caught there now and then.
    assert lines and all(first <= line <= first + 5 for line in lines), (
        f"{exe}: leaf_alpha lines {sorted(lines)}, its def and body are lines {first}-{first + 4}")


@pytest.mark.parametrize("exe", [e for _, e in NEXT], ids=IDS)
def test_leaf_shares_match_measured_cpu(captures, exe):
    run, truth, prof, err = ground_truth(captures, exe)
    counts = {leaf: prof.count_where(lambda fr: has_function(fr, leaf))
              for leaf in MEASURED_LEAVES}
    sampled_total = sum(counts.values())
    measured_total = sum(truth[leaf] for leaf in MEASURED_LEAVES)
    assert sampled_total >= GT_MIN_SAMPLES, f"{exe}: {counts}\n{describe(prof)}\n{err}"
    report = "\n".join(
        f"  {leaf:12s} sampled {counts[leaf] / sampled_total:6.1%} "
        f"measured {truth[leaf] / measured_total:6.1%}" for leaf in MEASURED_LEAVES)
    print(f"{exe}: {sampled_total} samples\n{report}")
    for leaf in MEASURED_LEAVES:
        sampled = counts[leaf] / sampled_total
        measured = truth[leaf] / measured_total
        assert abs(sampled - measured) <= SHARE_TOLERANCE, (
            f"{exe}: {leaf} has {sampled:.1%} of the samples, measured {measured:.1%}\n"
            f"{report}")


@pytest.mark.parametrize("exe", [e for _, e in NEXT], ids=IDS)
def test_threads_and_recursion(captures, exe):
    run, truth, prof, err = ground_truth(captures, exe)
    leaf_stacks = [(fr, n) for fr, n in prof.stacks if has_function(fr, "thread_leaf")]
    assert leaf_stacks, f"{exe}: no thread_leaf\n{describe(prof)}"
    for frames, n in leaf_stacks:
        assert has_function(frames, "thread_worker"), ";".join(frames)
        assert not has_function(frames, "caller_alpha"), ";".join(frames)
        if truth.get("worker_comm"):
            assert frames[0] == truth["worker_comm"], ";".join(frames)
    deep = [(fr, n) for fr, n in prof.stacks if has_function(fr, "deep_leaf")]
    total = sum(n for _, n in deep)
    exact = sum(n for fr, n in deep if function_count(fr, "recurse") == RECURSION_DEPTH)
    assert total > 0 and exact >= 0.95 * total, (
        f"{exe}: {exact}/{total} deep_leaf stacks with {RECURSION_DEPTH} recurse frames")
    assert not any(TRUNCATED in fr for fr, _ in deep), f"{exe}: 151 frames marked truncated"


# ---------------------------------------------------------------------------
# All four in one capture


@pytest.mark.parametrize("exe", [e for _, e in NEXT], ids=IDS)
def test_deep_stack_truncated_at_frame_limit(captures, exe):
    result = all_next(captures, "deep")
    run, prof = result[exe]
    bottom = [(fr, n) for fr, n in prof.stacks if has_function(fr, "deep_bottom")]
    total = sum(n for _, n in bottom)
    assert total >= MIN_SAMPLES, f"{exe}: {total} deep_bottom samples\n{result['_err']}"
    good = sum(n for fr, n in bottom
               if fr[1] == TRUNCATED and len(python_frames(fr)) == PY_FRAME_LIMIT and
               names_function(python_frames(fr)[-1], "deep_bottom") and
               all(names_function(f, "deep_recurse") for f in python_frames(fr)[:-1]))
    assert good >= 0.9 * total, f"{exe}: {good}/{total} truncated at {PY_FRAME_LIMIT}"


@pytest.mark.parametrize("exe", [e for _, e in NEXT], ids=IDS)
def test_asyncio_coroutines_named(captures, exe):
    result = all_next(captures, "asyncio_app")
    run, prof = result[exe]
    compute = prof.count_where(lambda fr: has_function(fr, "async_compute"))
    assert compute >= MIN_SAMPLES, f"{exe}: {compute} async_compute samples\n{result['_err']}"
    awaited = prof.count_where(lambda fr: called_from(fr, "async_handler", "async_compute"))
    assert awaited >= 0.8 * compute, f"{exe}: {awaited}/{compute}\n{describe(prof)}"


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
