"""CPython embedded in an application through the shared libpython3.14/3.15.so.

tests/workloads/embed/py_embed.c (Py_InitializeFromConfig, then PyRun_SimpleString of a
driver running tests/workloads/py/ground_truth.py as __main__) is built here with the
host's gcc against the headers and libpython of the Debian unstable root
(scripts/python-root.sh installs libpython3.X-dev there) and run in that root with
chroot. The interpreter then lives in libpython3.X.so.1.0, not in the executable: 3.14
keeps each thread's state under a pthread key in _PyRuntime (found through the
library's GOT), 3.15 in a thread-local of the library that its code reads through
__tls_get_addr, placed by the dynamic linker in static TLS (user/python/py_static_tls.h).

Recorded by -p and by command, a user must read what a python3.X process shows: the
leaves under their callers with this file's lines, stacks rooted at <module> (the
driver's <string>:<module> above the script's), the Python worker thread under its own
comm, and each leaf's share within test_python's tolerance of the workload's own
time.thread_time(). A libpython loaded with dlopen (tests/workloads/embed/py_dlopen.c):
3.14 read the same way; 3.15 (its thread-local then in dynamic TLS) refused with one line.
"""
import os
import shutil
import subprocess
import uuid

import pytest

from conftest import REPO_ROOT, _binary_path, parse_folded_file
from pyroot import RootRun, build_python_root, describe, record_ground_truth
from pyutil import (PY_WORKLOAD_DIR, called_from, has_function, innermost_python,
                    names_function, of_file, python_frames)

VERSIONS = ("3.14", "3.15")
SOURCE = os.path.join(REPO_ROOT, "tests", "workloads", "embed", "py_embed.c")
LEAVES = ("leaf_alpha", "leaf_beta", "leaf_gamma", "thread_leaf", "deep_leaf")
CALLERS = {"leaf_alpha": "caller_alpha", "leaf_beta": "caller_beta",
           "leaf_gamma": "caller_gamma"}
SHARE_TOLERANCE = 0.03    # as tests/integration/test_python.py
GT_FREQ = 999
GT_MIN_CPU = 3.0          # CPU seconds the process gets in its capture...
GT_MIN_DURATION = 4
GT_MAX_DURATION = 60      # ...within this many seconds
GT_MIN_SAMPLES = 400
SHORT = 3
MIN_SAMPLES = 10


@pytest.fixture(scope="module")
def embedded():
    """{version: the program as processes in the root see it}, built once."""
    root = build_python_root()
    inner = f"/tmp/dynoprof-embed-{uuid.uuid4().hex[:12]}"
    os.makedirs(root + inner)
    programs = {}
    try:
        for v in VERSIONS:
            lib = os.path.join(root, "usr/lib/x86_64-linux-gnu", f"libpython{v}.so")
            assert os.path.exists(lib), (
                f"{lib} missing (scripts/python-root.sh installs libpython{v}-dev)")
            program = f"{inner}/py_embed-{v}"
            # --allow-shlib-undefined: libpython's own needs (glibc 2.43 symbols)
            # are the root's C library's business, not the host linker's.
            res = subprocess.run(
                ["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-o", root + program, SOURCE,
                 "-I", os.path.join(root, f"usr/include/python{v}"),
                 "-idirafter", os.path.join(root, "usr/include"),
                 "-L", os.path.dirname(lib), f"-lpython{v}", "-Wl,--allow-shlib-undefined"],
                capture_output=True, text=True, timeout=120)
            assert res.returncode == 0, f"building {program}:\n{res.stderr}"
            programs[v] = program
        yield root, programs
    finally:
        shutil.rmtree(root + inner, ignore_errors=True)


def check_stacks(v, script, prof, err):
    """Names, callers, <module> roots, lines and the worker thread of the run of
    ground_truth.py at script (its path as the process sees it)."""
    assert prof.total() > 0, f"{v}: no Python frame of {script}\n{err}"
    for name in LEAVES + tuple(CALLERS.values()) + ("thread_worker", "run_round", "main"):
        assert prof.count_where(lambda fr: has_function(fr, name)) > 0, (
            f"{v}: no frame named {name}\n{describe(prof)}\n{err}")
    for leaf, caller in CALLERS.items():
        with_leaf = prof.count_where(lambda fr: has_function(fr, leaf))
        under = prof.count_where(lambda fr: called_from(fr, caller, leaf))
        assert under >= 0.95 * with_leaf, f"{v}: {caller} above {leaf} in {under}/{with_leaf}"
    # The main thread: the driver's <string>:<module>, then the script's <module>.
    main = prof.count_where(lambda fr: has_function(fr, "caller_alpha"))
    rooted = prof.count_where(
        lambda fr: has_function(fr, "caller_alpha") and
        names_function(python_frames(fr)[0], "<module>") and
        python_frames(fr)[0].startswith("<string>:") and
        any(f.startswith(f"{os.path.basename(script)[:-3]}:<module> ({script}:")
            for f in python_frames(fr)))
    assert rooted >= 0.95 * main, f"{v}: {rooted}/{main} rooted\n{describe(prof)}"
    with open(os.path.join(PY_WORKLOAD_DIR, "ground_truth.py")) as f:
        source = f.read().split("\n")
    first = next(i for i, text in enumerate(source, 1) if text.startswith("def leaf_alpha("))
    lines = {innermost_python(fr).line for fr, _ in prof.stacks
             if names_function(python_frames(fr)[-1], "leaf_alpha")}
    assert lines and all(first <= line <= first + 5 for line in lines), (
        f"{v}: leaf_alpha lines {sorted(lines)}, its body is lines {first}-{first + 4}")
    # The second thread: its own comm, its own Python stack.
    workers = [fr for fr, _ in prof.stacks if has_function(fr, "thread_leaf")]
    assert workers and all(has_function(fr, "thread_worker") and
                           not has_function(fr, "caller_alpha") and fr[0] == "gt-worker"
                           for fr in workers), f"{v}: worker stacks {workers[:2]}"


@pytest.mark.parametrize("v", VERSIONS)
def test_embedded_by_pid_shares_match_thread_time(embedded, tmp_path, v):
    root, programs = embedded
    run = RootRun(root, programs[v], "ground_truth", 300)
    out = str(tmp_path / "gt.folded")
    try:
        (truth,), err = record_ground_truth([run], out, LEAVES, GT_FREQ, GT_MIN_DURATION,
                                            GT_MIN_CPU, GT_MAX_DURATION)
        run.stop()
    finally:
        run.close()
    prof = of_file(parse_folded_file(out), run.script)
    assert "not recognised" not in err and "not supported" not in err, err
    check_stacks(v, run.script, prof, err)
    counts = {leaf: prof.count_where(lambda fr: has_function(fr, leaf)) for leaf in LEAVES}
    sampled_total = sum(counts.values())
    measured_total = sum(truth.values())
    assert sampled_total >= GT_MIN_SAMPLES, f"{v}: {counts}\n{describe(prof)}\n{err}"
    report = "\n".join(
        f"  {leaf:12s} sampled {counts[leaf] / sampled_total:6.1%} "
        f"measured {truth[leaf] / measured_total:6.1%}" for leaf in LEAVES)
    print(f"embedded {v}: {sampled_total} samples\n{report}")
    for leaf in LEAVES:
        sampled, measured = counts[leaf] / sampled_total, truth[leaf] / measured_total
        assert abs(sampled - measured) <= SHARE_TOLERANCE, (
            f"{v}: {leaf} has {sampled:.1%} of the samples, measured {measured:.1%}\n{report}")


@pytest.mark.parametrize("v", VERSIONS)
def test_embedded_by_command(embedded, tmp_path, v):
    """`dynoprof record -- chroot ROOT PROGRAM SCRIPT ...`: the program starts under
    the recorder (libpython mapped by the dynamic linker during the capture)."""
    root, programs = embedded
    inner = f"/tmp/dynoprof-embed-cmd-{uuid.uuid4().hex[:12]}"
    os.makedirs(root + inner)
    try:
        script = f"{inner}/ground_truth.py"
        shutil.copyfile(os.path.join(PY_WORKLOAD_DIR, "ground_truth.py"), root + script)
        out = str(tmp_path / "cmd.folded")
        res = subprocess.run(
            [_binary_path(), "record", "-F", "199", "-o", out, "--",
             "chroot", root, programs[v], script, f"{inner}/truth.json", str(SHORT)],
            capture_output=True, text=True, timeout=SHORT + 120)
        assert res.returncode == 0, res.stderr
        assert os.path.exists(root + inner + "/truth.json"), res.stderr
        prof = of_file(parse_folded_file(out), script)
        assert prof.total() >= MIN_SAMPLES, f"{v}: {prof.total()}\n{res.stderr}"
        check_stacks(v, script, prof, res.stderr)
    finally:
        shutil.rmtree(root + inner, ignore_errors=True)


@pytest.fixture(scope="module")
def dlopen_program(embedded):
    """tests/workloads/embed/py_dlopen.c, built next to py_embed (host gcc alone)."""
    root, programs = embedded
    program = os.path.join(os.path.dirname(programs[VERSIONS[0]]), "py_dlopen")
    res = subprocess.run(["gcc", "-O1", "-Wall", "-Wextra", "-Werror", "-o", root + program,
                          os.path.join(os.path.dirname(SOURCE), "py_dlopen.c"), "-ldl"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"building {program}:\n{res.stderr}"
    return program


@pytest.mark.parametrize("v", VERSIONS)
def test_dlopened_libpython(embedded, dlopen_program, tmp_path, v):
    """libpython loaded with dlopen: 3.14's thread state (a pthread key in _PyRuntime)
    is found as in a linked one; 3.15's thread-local then has no static TLS offset
    (its blocks are allocated per thread by __tls_get_addr), so the process is refused
    with one line and keeps its native frames, never a wrong Python name."""
    root, _ = embedded
    inner = f"/tmp/dynoprof-embed-dl-{uuid.uuid4().hex[:12]}"
    os.makedirs(root + inner)
    script = f"{inner}/ground_truth.py"
    shutil.copyfile(os.path.join(PY_WORKLOAD_DIR, "ground_truth.py"), root + script)
    out = str(tmp_path / "dlopen.folded")
    try:
        res = subprocess.run(
            [_binary_path(), "record", "-F", "199", "-o", out, "--", "chroot", root,
             dlopen_program, f"libpython{v}.so.1.0", script, f"{inner}/truth.json",
             str(SHORT)], capture_output=True, text=True, timeout=SHORT + 120)
        assert res.returncode == 0, res.stderr
        assert os.path.exists(root + inner + "/truth.json"), res.stderr
        whole = parse_folded_file(out)
        prof = of_file(whole, script)
    finally:
        shutil.rmtree(root + inner, ignore_errors=True)
    if v == "3.14":
        assert prof.total() >= MIN_SAMPLES, f"{v}: {prof.total()}\n{res.stderr}"
        check_stacks(v, script, prof, res.stderr)
        return
    refusals = [line for line in res.stderr.splitlines()
                if "not in static TLS (loaded with dlopen?)" in line]
    assert len(refusals) == 1 and refusals[0].startswith("dynoprof: warning: PID ") and (
        f"libpython{v}.so.1.0" in refusals[0]), res.stderr
    assert prof.total() == 0, f"{v}: Python frames of a refused process\n{describe(prof)}"
    native = whole.count_where(lambda fr: fr[0] == "py_dlopen")
    assert native >= MIN_SAMPLES, f"{v}: {native} samples of py_dlopen\n{res.stderr}"
