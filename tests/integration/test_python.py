"""`dynoprof record` names CPython frames, on every CPython found on this machine.

The workloads in tests/workloads/py measure their own truth (CPU seconds per leaf
function, thread ids, the hot line) and the tests compare what a user reads in the
profile against it: function names, shares, callers, line numbers, threads,
truncation of deep stacks, native frames below Python ones.

Python frames read `MODULE:QUALNAME (FILENAME:LINE)`; they are matched by QUALNAME
(or its last component: co_name before 3.11) and FILENAME, never by exact module.

To stay fast on a small machine, workloads of several interpreters share one
capture (`-p A,B,...`): each run executes its own copy of the script, so the
FILENAME in a stack tells which run it belongs to. Captures are made once per module
and shared by the tests that read them.
"""
import os
import re
import signal
import time

import pytest

from apputil import Recording
from conftest import Folded, parse_folded_file, proc_cpu_seconds
from pyroot import record_ground_truth
from pyutil import (PY_WORKLOAD_DIR, PyWorkloads, called_from, decode_pprof,
                    find_interpreters, function_count, has_function, hot_line_number,
                    innermost_python, is_python_frame, names_function, of_file,
                    parse_py_frame, python_frames, unsupported_reason)

ALL = find_interpreters()
INTERPS = [i for i in ALL if i.supported]
UNSUPPORTED = [i for i in ALL if i.minor < (3, 8)]
IDS = [i.tag for i in INTERPS]
# The test root's interpreters dynoprof does not walk yet (3.14, 3.15 and their debug
# builds: issue 14) take part in every per-interpreter test, skipped until
# pyutil.SUPPORTED covers them; the shared captures hold INTERPS only.
NOT_YET = [i for i in ALL if i.root and not i.supported]
PARAMS = [pytest.param(i, id=i.tag) for i in INTERPS] + [
    pytest.param(i, id=i.tag, marks=pytest.mark.skip(reason=unsupported_reason(i)))
    for i in NOT_YET]

DURATION = 4              # seconds per ground-truth capture, at least...
GT_MIN_CPU = 3.0          # ...and until each process used this much CPU in it (a busy
GT_MAX_DURATION = 60      # machine gives less per second), at most this long
FREQ = 199                # Hz of the structural captures
# Hz of the ground-truth captures: at 199 Hz a process sharing a loaded 2-CPU machine
# gets ~300 samples, whose noise alone (~2.5 points) nears the share tolerance; at 999
# Hz the sampled shares land within ~0.5 point of the measured ones.
GT_FREQ = 999
GT_MIN_SAMPLES = 400      # fewer leaf samples make the share comparison meaningless
SHORT = 3                 # seconds of the all-versions structural captures
MIN_SAMPLES = 10          # per process in those (7 processes share 2 CPUs)
STOP_MIN_CPU = 0.3         # CPU s each exiting run has in the capture first: its
                          # exit (~20 ms of CPU) stays a small part of its samples
SHARE_TOLERANCE = 0.03    # sampled vs measured share, absolute
MEASURED_LEAVES = ("leaf_alpha", "leaf_beta", "leaf_gamma", "thread_leaf", "deep_leaf")
CALLERS = {"leaf_alpha": "caller_alpha", "leaf_beta": "caller_beta",
           "leaf_gamma": "caller_gamma"}
RECURSION_DEPTH = 150     # ground_truth.py: recurse() frames above deep_leaf
PY_FRAME_LIMIT = 160      # dynoprof keeps the innermost 160 Python frames
TRUNCATED = "[truncated]"

pytestmark = pytest.mark.skipif(not INTERPS, reason="no CPython 3.8-3.13 installed")


def is_kernel(frame):
    return frame.endswith("_[k]")


def is_python_placeholder(frame):
    """A Python frame dynoprof could not name, e.g. `[python: unreadable frame]`."""
    return frame.startswith("[python")


def is_native(frame):
    return not (is_kernel(frame) or is_python_frame(frame) or is_python_placeholder(frame)
                or frame == TRUNCATED)


def looks_like_interpreter(frame):
    """A native frame of CPython itself (which dynoprof hides under Python frames)."""
    return is_native(frame) and (frame.startswith(("_Py", "Py", "_PyEval")) or
                                 "libpython" in frame or
                                 (frame.startswith("python3") and "+0x" in frame))


def layout_problem(frames):
    """Why a stack breaks `comm;[truncated];python...;native...;kernel...`, or None.

    Python frames form one block; native frames of libraries (C extensions, libc,
    libcrypto) come leafward of it, kernel frames last.
    """
    body = frames[1:]
    py_idx = [i for i, f in enumerate(body) if is_python_frame(f) or is_python_placeholder(f)]
    if not py_idx:
        return None
    if py_idx != list(range(py_idx[0], py_idx[-1] + 1)):
        return "Python frames are not contiguous"
    # [truncated] marks where frames are missing: at the root (Python or user
    # stack cut), right after the Python block (native frames cut short of the
    # interpreter) or right before the kernel frames (kernel stack cut).
    for i, f in enumerate(body):
        if f == TRUNCATED and i != 0 and i != py_idx[-1] + 1 and not (
                i + 1 < len(body) and is_kernel(body[i + 1])):
            return "[truncated] where no frames can be missing"
    body = [f for i, f in enumerate(body) if f != TRUNCATED or i == 0]
    py_idx = [i for i, f in enumerate(body) if is_python_frame(f) or is_python_placeholder(f)]
    after = body[py_idx[-1] + 1:]
    seen_kernel = False
    for f in after:
        if is_kernel(f):
            seen_kernel = True
        elif seen_kernel:
            return f"user frame {f!r} below a kernel frame"
    return None


def wait_idle(pid, timeout, quiet=0.5, busy_ns=2_000_000):
    """Returns once process pid used under busy_ns of CPU in `quiet` s (its
    threads' /proc schedstat run time), or after timeout."""
    def used():
        total = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return total
    deadline = time.monotonic() + timeout
    last, since = used(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = used()
        if now - last > busy_ns:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return


def describe(prof, limit=8, width=700):
    top = sorted(prof.stacks, key=lambda s: -s[1])[:limit]
    return "\n".join(f"{n:6d} {';'.join(fr)[:width]}" for fr, n in top)


# ---------------------------------------------------------------------------
# Shared captures


class Captures:
    """Module-wide cache of captures; a capture that failed fails every reader."""

    def __init__(self, basedir, run_dynoprof):
        self.basedir = basedir
        self.run_dynoprof = run_dynoprof
        self.workloads = PyWorkloads(basedir)
        self.done = {}

    def get(self, key, make):
        if key not in self.done:
            try:
                self.done[key] = ("ok", make())
            except BaseException as e:  # pytest.fail() raises a BaseException
                self.workloads.close()  # its workloads must not load later captures
                if isinstance(e, KeyboardInterrupt):
                    raise
                self.done[key] = ("error", e)
        status, value = self.done[key]
        if status == "error":
            pytest.fail(f"capture {key} failed: {value}", pytrace=False)
        return value

    def record(self, pids, out_name, duration, *extra, freq=FREQ):
        """Records the pids; returns (output path, stderr), failing on rc != 0."""
        out = os.path.join(self.basedir, f"{len(self.done)}-{out_name}")
        rc, _, err = self.run_dynoprof("record", "-p", ",".join(str(p) for p in pids),
                                       "-d", duration, "-F", freq, "-o", out, *extra,
                                       timeout=duration + 60)
        assert rc == 0, f"record -p {pids} failed (rc={rc}):\n{err}"
        assert os.path.getsize(out) > 0, f"{out} is empty:\n{err}"
        return out, err

    def all_versions(self, workload, interps, duration, extra_args=lambda interp: (),
                     freq=FREQ, stop_after=None):
        """Runs `workload` under each interpreter at once and records them all.

        stop_after: SIGTERM the workloads (which then exit) this many seconds into
        the capture or later (see below) instead of after it; the capture ends a
        second after they exit, `duration` being its bound.
        Returns {tag: (run, truth, own stacks)} plus "_prof"/"_err" entries.
        """
        runs = [self.workloads.start(i, workload, 120, *extra_args(i)) for i in interps]
        pids = [r.pid for r in runs]
        name = f"{workload}-all.folded"
        if stop_after is None:
            out, err = self.record(pids, name, duration, freq=freq)
        else:
            out = os.path.join(self.basedir, f"{len(self.done)}-{name}")
            rec = Recording("record", "-p", ",".join(str(p) for p in pids), "-d", duration,
                            "-F", freq, "-o", out)
            try:
                # stop_after s into the sampling (record's start-up is long on a busy
                # machine), once each run had CPU for a few samples (at most half
                # the capture)...
                rec.wait_started()
                start = time.monotonic()
                cpu = [proc_cpu_seconds(p) for p in pids]
                while time.monotonic() - start < duration / 2 and (
                        time.monotonic() - start < stop_after or
                        any(proc_cpu_seconds(p) - c < STOP_MIN_CPU for p, c in zip(pids, cpu))):
                    time.sleep(0.05)
                # ...and once dynoprof has read what they were sampled running: they
                # are stopped (alive, their memory readable) until it idles, for
                # dynoprof reads code objects as it takes samples off the ring
                # buffer, which a loaded machine delays. Then they exit, a second
                # before the capture ends.
                for run in runs:
                    run.proc.send_signal(signal.SIGSTOP)
                wait_idle(rec.proc.pid, timeout=duration / 4)
                for run in runs:
                    run.proc.send_signal(signal.SIGCONT)
                    run.stop()
                time.sleep(1)
                rc, err = rec.stop(timeout=duration + 60)
            finally:
                rec.kill()
            assert rc == 0, f"record -p {pids} failed (rc={rc}):\n{err}"
            assert os.path.getsize(out) > 0, f"{out} is empty:\n{err}"
            for run in runs:
                assert run.proc.returncode == 0, (
                    f"{run.interp.tag}: workload exit {run.proc.returncode}")
        prof = parse_folded_file(out)
        result = {"_prof": prof, "_err": err}
        for run in runs:
            result[run.interp.tag] = (run, run.stop(), of_file(prof, run.script))
        return result


@pytest.fixture(scope="module")
def captures(tmp_path_factory, run_dynoprof):
    cache = Captures(str(tmp_path_factory.mktemp("py")), run_dynoprof)
    yield cache
    cache.workloads.close()


def gt_groups():
    """Interpreters recorded together for the ground truth: two per capture (2-CPU
    machines keep ~1 CPU per process), the Debian 3.11 together with pyenv 3.12
    (test_debian_and_pyenv_in_one_capture reads that capture)."""
    pending = list(INTERPS)
    groups = []
    debian = next((i for i in pending if i.kind == "debian"), None)
    partner = next((i for i in pending if i.kind == "pyenv" and i.minor == (3, 12)), None)
    if debian and partner:
        groups.append([debian, partner])
        pending = [i for i in pending if i not in (debian, partner)]
    while pending:
        group = [pending.pop(0)]
        # never put two interpreters with the same comm in one capture
        mate = next((i for i in pending if i.comm != group[0].comm), None)
        if mate:
            pending.remove(mate)
            group.append(mate)
        groups.append(group)
    return groups


def ground_truth(captures, interp):
    """(run, truth, own stacks, whole capture, stderr) of interp's ground_truth run."""
    group = next(g for g in gt_groups() if interp in g)
    key = "gt:" + ",".join(i.tag for i in group)

    def make():
        runs = [captures.workloads.start(i, "ground_truth", 300) for i in group]
        out = os.path.join(captures.basedir, "%d-%s.folded" % (
            len(captures.done), key.replace(":", "-").replace(",", "_")))
        measured, err = record_ground_truth(runs, out, MEASURED_LEAVES, GT_FREQ, DURATION,
                                            GT_MIN_CPU, GT_MAX_DURATION)
        prof = parse_folded_file(out)
        result = {}
        for r, during in zip(runs, measured):
            truth = r.stop()
            truth.update(during)
            result[r.interp.tag] = (r, truth, of_file(prof, r.script), prof, err)
        return result

    return captures.get(key, make)[interp.tag]


def all_versions(captures, workload, interp, duration=SHORT, key=None, **kwargs):
    """(run, truth, own stacks, whole capture, stderr) of interp's run of workload in
    the capture of all interpreters (made once per key, default the workload)."""
    result = captures.get(key or workload, lambda: captures.all_versions(
        workload, INTERPS, duration, **kwargs))
    return result[interp.tag] + (result["_prof"], result["_err"])


# ---------------------------------------------------------------------------
# Ground truth: names, shares, threads, recursion, layout (per interpreter)


@pytest.mark.parametrize("interp", PARAMS)
def test_leaves_and_callers_named(captures, interp):
    run, truth, prof, whole, err = ground_truth(captures, interp)
    assert prof.total() > 0, (
        f"no stack carries a Python frame of {run.script}\n{describe(whole)}\n{err}")
    for name in MEASURED_LEAVES + tuple(CALLERS.values()) + ("thread_worker", "recurse",
                                                            "run_round", "main"):
        assert prof.count_where(lambda fr: has_function(fr, name)) > 0, (
            f"{interp.tag}: no frame named {name}\n{describe(prof)}")
    for leaf, caller in CALLERS.items():
        with_leaf = prof.count_where(lambda fr: has_function(fr, leaf))
        under = prof.count_where(lambda fr: called_from(fr, caller, leaf))
        assert under >= 0.95 * with_leaf, (
            f"{interp.tag}: {caller} is the caller in {under}/{with_leaf} {leaf} stacks\n"
            f"{describe(prof)}")
    # The frames name this run's file, and the main-thread stacks reach <module>.
    leaf = innermost_python(next(fr for fr, _ in prof.stacks if has_function(fr, "leaf_alpha")))
    assert leaf.filename == run.script and leaf.line and leaf.line > 0, leaf
    # ...and a line of the function: its def line (the function's entry, where a
    # slow debug build is caught now and then) or its body.
    with open(os.path.join(PY_WORKLOAD_DIR, "ground_truth.py")) as f:
        first = next(i for i, text in enumerate(f, 1) if text.startswith("def leaf_alpha("))
    lines = {innermost_python(fr).line for fr, _ in prof.stacks
             if names_function(python_frames(fr)[-1], "leaf_alpha")}
    assert lines and all(first <= line <= first + 5 for line in lines), (
        f"{interp.tag}: leaf_alpha lines {sorted(lines)}, its def and body are lines "
        f"{first}-{first + 4}")
    main = prof.count_where(lambda fr: has_function(fr, "caller_alpha"))
    rooted = prof.count_where(lambda fr: has_function(fr, "caller_alpha") and
                              names_function(python_frames(fr)[0], "<module>"))
    assert rooted >= 0.95 * main, (
        f"{interp.tag}: only {rooted}/{main} caller_alpha stacks start at <module>\n"
        f"{describe(prof)}")


@pytest.mark.parametrize("interp", PARAMS)
def test_leaf_shares_match_measured_cpu(captures, interp):
    run, truth, prof, whole, err = ground_truth(captures, interp)
    counts = {leaf: prof.count_where(lambda fr: has_function(fr, leaf))
              for leaf in MEASURED_LEAVES}
    sampled_total = sum(counts.values())
    measured_total = sum(truth[leaf] for leaf in MEASURED_LEAVES)
    assert sampled_total >= GT_MIN_SAMPLES, (
        f"{interp.tag}: only {sampled_total} samples in the measured leaves "
        f"({counts})\n{describe(prof)}\n{err}")
    report = "\n".join(
        f"  {leaf:12s} sampled {counts[leaf] / sampled_total:6.1%} "
        f"measured {truth[leaf] / measured_total:6.1%}" for leaf in MEASURED_LEAVES)
    for leaf in MEASURED_LEAVES:
        sampled = counts[leaf] / sampled_total
        measured = truth[leaf] / measured_total
        assert abs(sampled - measured) <= SHARE_TOLERANCE, (
            f"{interp.tag}: {leaf} has {sampled:.1%} of the samples but measured "
            f"{measured:.1%} of the CPU ({sampled_total} samples)\n{report}")


@pytest.mark.parametrize("interp", PARAMS)
def test_worker_thread_has_its_own_stack(captures, interp):
    run, truth, prof, whole, err = ground_truth(captures, interp)
    thread = prof.of_comm(truth["worker_comm"]) if truth["worker_comm"] else prof
    leaf_stacks = [(fr, n) for fr, n in prof.stacks if has_function(fr, "thread_leaf")]
    assert leaf_stacks, f"{interp.tag}: no thread_leaf\n{describe(prof)}"
    for frames, n in leaf_stacks:
        assert has_function(frames, "thread_worker"), (
            f"{interp.tag}: thread_leaf without thread_worker: {';'.join(frames)}")
        for other in ("caller_alpha", "caller_beta", "caller_gamma", "recurse", "run_round"):
            assert not has_function(frames, other), (
                f"{interp.tag}: main-thread frame {other} in a worker stack: "
                f"{';'.join(frames)}")
        if truth["worker_comm"]:
            assert frames[0] == truth["worker_comm"], (
                f"{interp.tag}: thread_leaf sampled under comm {frames[0]!r}, the worker "
                f"thread is {truth['worker_comm']!r}")
    for frames, n in prof.stacks:
        if has_function(frames, "caller_alpha"):
            assert frames[0] == interp.comm and not has_function(frames, "thread_worker"), (
                f"{interp.tag}: main-thread stack under {frames[0]!r}: {';'.join(frames)}")
    if truth["worker_comm"]:
        named = thread.count_where(lambda fr: has_function(fr, "thread_worker"))
        # the worker's samples that have Python frames all show its function
        with_python = thread.count_where(lambda fr: any(map(is_python_frame, fr[1:])))
        assert named >= 0.95 * with_python, (
            f"{interp.tag}: {named}/{with_python} worker samples show thread_worker\n"
            f"{describe(thread)}")


@pytest.mark.parametrize("interp", PARAMS)
def test_recursion_depth_is_exact(captures, interp):
    run, truth, prof, whole, err = ground_truth(captures, interp)
    deep = [(fr, n) for fr, n in prof.stacks if has_function(fr, "deep_leaf")]
    total = sum(n for _, n in deep)
    assert total > 0, f"{interp.tag}: no deep_leaf samples\n{describe(prof)}"
    exact = sum(n for fr, n in deep if function_count(fr, "recurse") == RECURSION_DEPTH)
    depths = sorted({function_count(fr, "recurse") for fr, _ in deep})
    assert exact >= 0.95 * total, (
        f"{interp.tag}: {exact}/{total} deep_leaf stacks have exactly {RECURSION_DEPTH} "
        f"recurse frames (depths seen: {depths})")
    for frames, n in deep:
        assert TRUNCATED not in frames, (
            f"{interp.tag}: a {len(python_frames(frames))}-frame Python stack is marked "
            f"truncated (limit {PY_FRAME_LIMIT})")


@pytest.mark.parametrize("interp", PARAMS)
def test_interpreter_frames_hidden_and_layout(captures, interp):
    run, truth, prof, whole, err = ground_truth(captures, interp)
    with_python = [(fr, n) for fr, n in prof.stacks if any(map(is_python_frame, fr[1:]))]
    total = sum(n for _, n in with_python)
    leaked = [(fr, n) for fr, n in with_python if any(map(looks_like_interpreter, fr))]
    assert sum(n for _, n in leaked) <= 0.01 * total, (
        f"{interp.tag}: CPython's own native frames shown next to Python frames in "
        f"{sum(n for _, n in leaked)}/{total} samples\n{describe(Folded(leaked))}")
    for frames, n in with_python:
        problem = layout_problem(frames)
        assert problem is None, f"{interp.tag}: {problem}: {';'.join(frames)}"
    # Nearly every sample of the main thread is attributed to Python code.
    main = whole.of_comm(interp.comm)
    main_py = main.count_where(lambda fr: any(names_function(f, "main") for f in fr[1:]))
    assert main_py >= 0.9 * main.total(), (
        f"{interp.tag}: only {main_py}/{main.total()} main-thread samples have Python "
        f"frames\n{describe(main)}")


# ---------------------------------------------------------------------------
# Structural captures of all interpreters at once


@pytest.mark.parametrize("interp", PARAMS)
def test_hot_line_and_qualname(captures, interp):
    run, truth, prof, whole, err = all_versions(captures, "known_line", interp)
    hot = hot_line_number(os.path.join(PY_WORKLOAD_DIR, "known_line.py"))
    in_hot = [(innermost_python(fr), n) for fr, n in prof.stacks
              if innermost_python(fr) and innermost_python(fr).qualname == "hot_line"]
    total = sum(n for _, n in in_hot)
    assert total >= MIN_SAMPLES, (
        f"{interp.tag}: {total} samples in hot_line\n{describe(prof)}\n{err}")
    filename = truth["co_filename"]
    on_line = sum(n for py, n in in_hot if py.line == hot and py.filename == filename)
    lines = sorted({(py.filename, py.line) for py, _ in in_hot})
    assert on_line >= 0.8 * total, (
        f"{interp.tag}: {on_line}/{total} hot_line samples at {filename}:{hot}; "
        f"seen {lines}")
    spin = "Looper.spin" if interp.has_qualname else "spin"
    quals = {parse_py_frame(f).qualname for fr, _ in prof.stacks for f in python_frames(fr)}
    assert spin in quals, (
        f"{interp.tag}: expected the method as {spin!r} (co_qualname from 3.11, co_name "
        f"before); qualnames seen: {sorted(quals)}")
    assert prof.count_where(lambda fr: called_from(fr, "spin", "hot_line")) >= 0.9 * total


@pytest.mark.parametrize("interp", PARAMS)
def test_deep_stack_truncated_at_frame_limit(captures, interp):
    run, truth, prof, whole, err = all_versions(captures, "deep", interp)
    bottom = [(fr, n) for fr, n in prof.stacks if has_function(fr, "deep_bottom")]
    total = sum(n for _, n in bottom)
    assert total >= MIN_SAMPLES, (
        f"{interp.tag}: {total} deep_bottom samples\n{describe(prof)}\n{err}")
    good = 0
    for frames, n in bottom:
        py = python_frames(frames)
        if (frames[1] == TRUNCATED and len(py) == PY_FRAME_LIMIT and
                names_function(py[-1], "deep_bottom") and
                all(names_function(f, "deep_recurse") for f in py[:-1])):
            good += n
    sample = next(fr for fr, _ in bottom)
    assert good >= 0.9 * total, (
        f"{interp.tag}: {good}/{total} deep_bottom stacks are `comm;[truncated];"
        f"{PY_FRAME_LIMIT - 1} x deep_recurse;deep_bottom...`; e.g. {len(python_frames(sample))} "
        f"Python frames, root side {sample[:3]}")


@pytest.mark.parametrize("interp", PARAMS)
def test_asyncio_coroutines_named(captures, interp):
    run, truth, prof, whole, err = all_versions(captures, "asyncio_app", interp)
    compute = prof.count_where(lambda fr: has_function(fr, "async_compute"))
    assert compute >= MIN_SAMPLES, (
        f"{interp.tag}: {compute} async_compute samples\n{describe(prof)}")
    awaited = prof.count_where(lambda fr: called_from(fr, "async_handler", "async_compute"))
    assert awaited >= 0.8 * compute, (
        f"{interp.tag}: async_handler awaits async_compute in only {awaited}/{compute} "
        f"stacks\n{describe(prof)}")
    # MODULE: a script is its base name, a module inside a package is dotted.
    frames = {parse_py_frame(f) for fr, _ in prof.stacks for f in python_frames(fr)}
    script = {p.module for p in frames if p.filename == run.script}
    assert script == {"asyncio_app"}, f"{interp.tag}: {run.script} shown as module {script}"
    events = {p.module for p in frames if p.filename.endswith("/asyncio/base_events.py")}
    assert events == {"asyncio.base_events"}, (
        f"{interp.tag}: asyncio/base_events.py shown as module {events}")


def hasher_comm(interp):
    return f"hash-{interp.kind[:3]}{interp.minor[0]}.{interp.minor[1]}"[:15]


@pytest.mark.parametrize("interp", PARAMS)
def test_gil_released_native_frames_under_python_caller(captures, interp):
    run, truth, prof, whole, err = all_versions(
        captures, "gil_released", interp, duration=DURATION,
        extra_args=lambda i: (hasher_comm(i),))
    comm = truth["hasher_comm"]
    assert comm == hasher_comm(interp), f"the workload could not name its thread: {truth}"
    thread = whole.of_comm(comm)
    total = thread.total()
    assert total >= MIN_SAMPLES, f"{interp.tag}: {total} samples of thread {comm}\n{err}"
    in_worker = thread.count_where(lambda fr: has_function(fr, "hash_worker"))
    assert in_worker >= 0.5 * total, (
        f"{interp.tag}: hash_worker in {in_worker}/{total} samples of the hashing thread\n"
        f"{describe(thread)}")

    def native_below_worker(frames):
        py = [i for i, f in enumerate(frames) if is_python_frame(f)]
        return (py and names_function(frames[py[-1]], "hash_worker") and
                any(is_native(f) for f in frames[py[-1] + 1:]))

    native = thread.count_where(native_below_worker)
    assert native >= 0.5 * in_worker, (
        f"{interp.tag}: native (libcrypto/libz) frames below hash_worker in only "
        f"{native}/{in_worker} samples\n{describe(thread)}")
    for frames, n in thread.stacks:
        problem = layout_problem(frames)
        assert problem is None, f"{interp.tag}: {problem}: {';'.join(frames)}"


@pytest.mark.parametrize("interp", PARAMS)
def test_process_exiting_during_capture_keeps_names(captures, interp):
    # The workloads exit 2 s into the capture, or later once each had CPU (at
    # 999 Hz: seven processes share two CPUs until then) and dynoprof read their
    # samples; the capture goes on for a second (at most 20 s in all).
    run, truth, prof, whole, err = all_versions(
        captures, "known_line", interp, key="known_line@exit", duration=20, freq=999,
        stop_after=2)
    named = prof.count_where(lambda fr: has_function(fr, "hot_line"))
    assert named >= 3, (
        f"{interp.tag}: {named} hot_line samples for a process that exited during the "
        f"capture\n{describe(whole.of_comm(interp.comm))}\n{err}")
    # ...and the capture as a whole: the processes' samples kept their Python frames.
    pythons = [(fr, n) for fr, n in whole.stacks if fr[0].startswith("python3")]
    total = sum(n for _, n in pythons)
    named_all = sum(n for fr, n in pythons if has_function(fr, "hot_line"))
    assert named_all >= 0.8 * total, (
        f"only {named_all}/{total} samples of the exiting processes show hot_line\n"
        f"{describe(whole)}")


# ---------------------------------------------------------------------------
# Single captures


def test_debian_and_pyenv_in_one_capture(captures):
    debian = next((i for i in INTERPS if i.kind == "debian"), None)
    pyenv = next((i for i in INTERPS if i.kind == "pyenv" and i.minor == (3, 12)), None)
    if not debian or not pyenv:
        pytest.skip("needs a distribution python3 and a pyenv 3.12")
    for interp in (debian, pyenv):
        run, truth, prof, whole, err = ground_truth(captures, interp)
        assert set(whole.comms()) >= {debian.comm, pyenv.comm}, whole.comms()
        for leaf in MEASURED_LEAVES:
            assert prof.count_where(lambda fr: has_function(fr, leaf)) > 0, (
                f"{interp.tag} ({interp.path}) shows no {leaf} when recorded together with "
                f"the other\n{describe(prof)}")


def test_pprof_labels_carry_threads(captures, outdir, run_dynoprof):
    interp = INTERPS[-1]
    run = captures.workloads.start(interp, "ground_truth", 120)
    out = os.path.join(outdir, "gt.pb.gz")
    rc, _, err = run_dynoprof("record", "-p", run.pid, "-d", SHORT, "-F", FREQ, "-o", out,
                              timeout=SHORT + 60)
    truth = run.stop()
    assert rc == 0, err
    samples = decode_pprof(out)

    def has(sample, name):
        return any(f.function.rsplit(":", 1)[-1].rsplit(".", 1)[-1] == name
                   for f in sample.frames)

    worker = [s for s in samples if has(s, "thread_leaf")]
    main = [s for s in samples if has(s, "leaf_alpha")]
    assert worker and main, f"thread_leaf/leaf_alpha missing from {out}"
    for s in worker:
        assert s.labels.get("tid") == truth["worker_tid"], (s.labels, truth)
        assert s.labels.get("pid") == run.pid, (s.labels, run.pid)
    for s in main:
        assert s.labels.get("tid") == truth["main_tid"], (s.labels, truth)
    leaf = next(f for f in worker[0].frames if f.function.endswith("thread_leaf"))
    assert leaf.filename == run.script and leaf.line > 0, leaf


def test_python_lines_off_folds_to_functions(captures, outdir, run_dynoprof):
    # The oldest version, started as `python3.X known_line.py`, keeps a relative
    # co_filename (3.9+ make it absolute): FILENAME must be co_filename as is.
    interp = INTERPS[0]
    run = captures.workloads.start(interp, "known_line", 120, relative=True)
    out = os.path.join(outdir, "x.folded")
    rc, _, err = run_dynoprof("record", "-p", run.pid, "-d", 2, "-F", FREQ, "-o", out,
                              "--python-lines=off", timeout=60)
    truth = run.stop()
    assert rc == 0, err
    prof = parse_folded_file(out)
    hot = {f for fr, _ in prof.stacks for f in fr[1:] if names_function(f, "hot_line")}
    assert len(hot) == 1, f"hot_line should fold into one frame, got {sorted(hot)}"
    frame = parse_py_frame(hot.pop())
    assert frame.line is None and frame.filename == truth["co_filename"], (
        f"expected `MODULE:hot_line ({truth['co_filename']})`, got {frame}")
    for frames, _ in prof.stacks:
        for f in frames[1:]:
            py = parse_py_frame(f)
            assert py is None or py.line is None, f"line number with lines off: {f}"


def test_unsupported_versions_native_only_with_warning(captures, outdir, run_dynoprof):
    if not UNSUPPORTED:
        pytest.skip("no CPython < 3.8 installed")
    runs = [captures.workloads.start(i, "known_line", 120) for i in UNSUPPORTED]
    out = os.path.join(outdir, "old.folded")
    rc, _, err = run_dynoprof("record", "-p", ",".join(str(r.pid) for r in runs), "-d", 2,
                              "-F", FREQ, "-o", out, timeout=60)
    for r in runs:
        r.stop()
    assert rc == 0, f"record of CPython {[i.tag for i in UNSUPPORTED]} failed (rc={rc}):\n{err}"
    prof = parse_folded_file(out)
    for r in runs:
        warnings = [line for line in err.splitlines()
                    if re.search(rf"\b{r.pid}\b", line) and
                    re.search(r"unsupported|not supported", line, re.I)]
        assert len(warnings) == 1, (
            f"{r.interp.tag} pid {r.pid}: expected one 'unsupported' warning naming the "
            f"pid, got {warnings}; stderr:\n{err}")
        own = prof.of_comm(r.interp.comm)
        assert own.total() > 0, f"no samples of {r.interp.comm}\n{describe(prof)}"
        assert any(is_native(f) for f in own.functions()), describe(own)
        python = [f for f in own.functions() if is_python_frame(f)]
        assert not python, (
            f"{r.interp.tag}: Python frames from an unsupported version: {python[:5]}")
        assert not any("hot_line" in f for f in own.functions()), describe(own)
