"""CPython in another root, profiled from the host like any other process.

The Debian unstable root scripts/python-root.sh builds (`make test-root`; cached under
/var/cache/dynoprof-test) has a python3.13 on glibc 2.43 (the host's is Debian 12's
2.36). Its processes run under `chroot ROOT` and under `unshare --mount --pid --fork
--root ROOT` (own mount and PID namespaces, like a container: BPF sees host pids) and
are recorded by command, by -p and by the agent. Their stacks must read as a host 3.13's
running the same script: the same functions, callers and hot lines, leaf shares
within test_python's tolerance of the workload's own thread_time(), and the root's
libc and interpreter named in native frames. The interpreter's thread-specific data
is found through the layout dynoprof calibrates in its own glibc, after reading the
root's pthread_getspecific: a libc whose code differs (a patched copy bind-mounted
over the root's, in a private mount namespace) is refused with one line.
"""
import collections
import json
import os
import re
import shutil
import subprocess

import pytest

from agentutil import Agent
from conftest import parse_folded_file
from pyroot import record_ground_truth
from pyutil import (PY_WORKLOAD_DIR, PyWorkloads, called_from, decode_pprof,
                    find_interpreters, has_function, hot_line_number, innermost_python,
                    is_python_frame, of_file, parse_py_frame, python_root)

ROOT = python_root()
ALL = find_interpreters()
SID = next((i for i in ALL if i.root and i.minor == (3, 13) and not i.debug), None)
# The host interpreter compared with: a 3.13 (pyenv's), else the newest supported.
HOSTS = [i for i in ALL if not i.root and i.supported]
HOST = next((i for i in reversed(HOSTS) if i.minor == (3, 13)), HOSTS[-1] if HOSTS else None)

LEAVES = ("leaf_alpha", "leaf_beta", "leaf_gamma", "thread_leaf", "deep_leaf")
CALLERS = {"leaf_alpha": "caller_alpha", "leaf_beta": "caller_beta",
           "leaf_gamma": "caller_gamma"}
SHARE_TOLERANCE = 0.03   # as test_python: sampled vs measured share, absolute
GT_FREQ = 999
GT_MIN_CPU = 3.0         # CPU s each process has in a ground-truth capture...
GT_MIN_DURATION = 4      # ...which lasts at least this...
GT_MAX_DURATION = 60     # ...and at most this long
GT_MIN_SAMPLES = 400     # leaf samples a share comparison needs
SHORT = 3                # seconds of the other captures
MIN_SAMPLES = 10
LIBC = "usr/lib/x86_64-linux-gnu/libc.so.6"   # the root's C library, under ROOT

# Runs os.stat() in a loop: samples in the C library's fstatat wrapper below
# stat_loop, then kernel frames.
STAT_LOOP = '''import json, os, signal, sys, time
def stat_loop(deadline):
    n = 0
    while time.monotonic() < deadline and not stop:
        os.stat("/")
        n += 1
    return n
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
n = stat_loop(time.monotonic() + float(sys.argv[2]))
with open(sys.argv[1], "w") as f:
    json.dump({"stats": n}, f)
'''


@pytest.fixture
def sid():
    if ROOT is None:
        pytest.fail("the test root is missing: `make test-root` (scripts/python-root.sh, "
                    "Debian package debootstrap) builds it")
    if SID is None:
        pytest.fail(f"{ROOT} has no python3.13 (scripts/python-root.sh)")
    return SID


@pytest.fixture
def workloads(tmp_path):
    w = PyWorkloads(str(tmp_path))
    yield w
    w.close()


def describe(prof, limit=6, width=600):
    top = sorted(prof.stacks, key=lambda s: -s[1])[:limit]
    return "\n".join(f"{n:6d} {';'.join(fr)[:width]}" for fr, n in top)


def ground_truth_capture(runs, out):
    """Records runs at GT_FREQ until each had GT_MIN_CPU; returns (prof, err,
    truths): each run's measured leaf seconds over exactly the capture."""
    measured, err = record_ground_truth(runs, out, LEAVES, GT_FREQ, GT_MIN_DURATION,
                                        GT_MIN_CPU, GT_MAX_DURATION)
    truths = []
    for r, during in zip(runs, measured):
        truth = r.stop()
        truth.update(during)
        truths.append(truth)
    return parse_folded_file(out), err, truths


def leaf_lines(prof):
    """{leaf: its most sampled line} of a run's stacks."""
    lines = collections.defaultdict(collections.Counter)
    for frames, n in prof.stacks:
        py = innermost_python(frames)
        if py and py.qualname in LEAVES:
            lines[py.qualname][py.line] += n
    return {leaf: c.most_common(1)[0][0] for leaf, c in lines.items()}


def function_names(prof, min_share=0.0):
    """The MODULE:QUALNAME of the Python frames in at least min_share of a run's
    samples."""
    counts = collections.Counter()
    for frames, n in prof.stacks:
        for name in {f"{py.module}:{py.qualname}"
                     for py in map(parse_py_frame, frames[1:]) if py}:
            counts[name] += n
    return {name for name, n in counts.items() if n > min_share * prof.total()}


def check_ground_truth(tag, script, prof, truth, err):
    """Names, callers and shares of one ground_truth run's stacks (of_file(script))."""
    assert prof.total() > 0, f"{tag}: no stack has a frame of {script}\n{err}"
    for leaf, caller in CALLERS.items():
        with_leaf = prof.count_where(lambda fr: has_function(fr, leaf))
        under = prof.count_where(lambda fr: called_from(fr, caller, leaf))
        assert with_leaf > 0 and under >= 0.95 * with_leaf, (
            f"{tag}: {caller} calls {leaf} in {under}/{with_leaf} stacks\n{describe(prof)}")
    worker = prof.count_where(lambda fr: has_function(fr, "thread_leaf"))
    assert prof.count_where(lambda fr: called_from(fr, "thread_worker", "thread_leaf")) >= (
        0.95 * worker), f"{tag}: thread_leaf outside thread_worker\n{describe(prof)}"
    counts = {leaf: prof.count_where(lambda fr: has_function(fr, leaf)) for leaf in LEAVES}
    sampled_total = sum(counts.values())
    measured_total = sum(truth[leaf] for leaf in LEAVES)
    assert sampled_total >= GT_MIN_SAMPLES, f"{tag}: {counts}\n{err}"
    report = "\n".join(f"  {leaf:12s} sampled {counts[leaf] / sampled_total:6.1%} measured "
                       f"{truth[leaf] / measured_total:6.1%}" for leaf in LEAVES)
    for leaf in LEAVES:
        sampled, measured = counts[leaf] / sampled_total, truth[leaf] / measured_total
        assert abs(sampled - measured) <= SHARE_TOLERANCE, (
            f"{tag}: {leaf} has {sampled:.1%} of the samples, measured {measured:.1%} "
            f"({sampled_total} samples)\n{report}")


def test_chroot_by_pid_matches_host(sid, workloads, tmp_path):
    if HOST is None:
        pytest.fail("no host CPython 3.8-3.13 to compare with")
    runs = [workloads.start(sid, "ground_truth", 300), workloads.start(HOST, "ground_truth", 300)]
    whole, err, truths = ground_truth_capture(runs, str(tmp_path / "gt.folded"))
    assert "Python processes walked, 0 unsupported" in err and "C library" not in err, err
    own = [of_file(whole, r.script) for r in runs]
    for run, prof, truth in zip(runs, own, truths):
        check_ground_truth(run.interp.tag, run.script, prof, truth, err)
    # The script's frames name the file as the process sees it (its root's path).
    leaf = innermost_python(next(fr for fr, _ in own[0].stacks if has_function(fr, "leaf_alpha")))
    assert leaf.filename == runs[0].script and leaf.line > 0, leaf
    # The same script reads the same in both: functions (the script's and the
    # standard library's threading frames), and each leaf's hot line.
    # (A function in 1% of one run's samples shows in the other's: rarer ones, such
    # as the snapshot's json.dumps, may be missed by either.)
    names = [function_names(p) for p in own]
    common = [function_names(p, 0.01) for p in own]
    assert common[0] <= names[1] and common[1] <= names[0], (
        f"{sid.tag} and {HOST.tag} differ: only {sid.tag}: {sorted(common[0] - names[1])}, "
        f"only {HOST.tag}: {sorted(common[1] - names[0])}")
    assert len(common[0]) >= 15, sorted(common[0])
    lines = [leaf_lines(p) for p in own]
    assert lines[0] == lines[1], f"hot lines: {sid.tag} {lines[0]}, {HOST.tag} {lines[1]}"


def test_chroot_by_command_names_root_libc(sid, tmp_path, run_dynoprof):
    """`record -- chroot ROOT python3.13 ...`: Python frames, then the root's libc
    (fstatat, named from its own symbol table; the root has no debug files, so its
    internal functions stay FILE+0xOFFSET), then the kernel."""
    workdir = os.path.join(ROOT, "tmp", "dynoprof-roots-%d" % os.getpid())
    os.makedirs(workdir)
    try:
        with open(os.path.join(workdir, "stat_loop.py"), "w") as f:
            f.write(STAT_LOOP)
        inside = "/" + os.path.relpath(workdir, ROOT)
        out = str(tmp_path / "stat.pb.gz")
        rc, _, err = run_dynoprof("record", "-F", 499, "-o", out, "--", "chroot", ROOT,
                                  sid.path, inside + "/stat_loop.py", inside + "/truth.json",
                                  SHORT, timeout=SHORT + 60)
        assert rc == 0, err
        assert os.path.exists(os.path.join(workdir, "truth.json")), err
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    samples = decode_pprof(out)
    looping = [s for s in samples
               if any(f.function.endswith(":stat_loop") and f.filename == inside + "/stat_loop.py"
                      and f.line > 0 for f in s.frames)]
    assert len(looping) >= MIN_SAMPLES, f"{len(looping)} stat_loop samples\n{err}"
    libc = os.path.join(ROOT, LIBC)
    in_libc = collections.Counter(f.function for s in looping for f in s.frames
                                  if f.filename == libc)
    named = sum(n for name, n in in_libc.items() if "stat" in name and "+0x" not in name)
    assert named >= 0.5 * sum(in_libc.values()) and named >= 3, (
        f"frames of {libc} under stat_loop: {in_libc.most_common(8)}")


def test_unshare_by_command(sid, tmp_path, run_dynoprof):
    """`record -- unshare --mount --pid --fork --root ROOT python3.13 ...` follows the
    fork into the new PID namespace: names and shares as on the host."""
    workdir = os.path.join(ROOT, "tmp", "dynoprof-roots-u%d" % os.getpid())
    os.makedirs(workdir)
    try:
        shutil.copyfile(os.path.join(os.path.dirname(__file__), "..", "workloads", "py",
                                     "ground_truth.py"), os.path.join(workdir, "gt.py"))
        inside = "/" + os.path.relpath(workdir, ROOT)
        out = str(tmp_path / "u.folded")
        # the whole run is captured: its truth is what the workload measured in all
        rc, _, err = run_dynoprof("record", "-F", GT_FREQ, "-o", out, "--",
                                  *sid.command(inside, unshare=True), inside + "/gt.py",
                                  inside + "/truth.json", 6, timeout=120)
        assert rc == 0, err
        with open(os.path.join(workdir, "truth.json")) as f:
            truth = json.load(f)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    prof = of_file(parse_folded_file(out), inside + "/gt.py")
    check_ground_truth(sid.tag + " (unshare)", inside + "/gt.py", prof, truth, err)
    assert truth["pid"] == 1, f"not in its own PID namespace: {truth['pid']}"


def test_unshare_by_pid_and_agent(sid, workloads, tmp_path, run_dynoprof):
    """The interpreter in its own namespaces, found by its host pid: `record -p` and
    the agent's pprof (?pid=) name its frames with file and line."""
    run = workloads.start(sid, "known_line", 120, unshare=True)
    with open(f"/proc/{run.pid}/status") as f:
        nspid = re.search(r"^NSpid:\s+(.*)$", f.read(), re.M).group(1).split()
    assert len(nspid) == 2 and nspid[1] == "1", nspid
    out = str(tmp_path / "p.folded")
    rc, _, err = run_dynoprof("record", "-p", run.pid, "-d", SHORT, "-F", 199, "-o", out,
                              timeout=SHORT + 60)
    assert rc == 0, err
    prof = of_file(parse_folded_file(out), run.script)
    hot = prof.count_where(lambda fr: called_from(fr, "spin", "hot_line"))
    assert hot >= MIN_SAMPLES, f"{hot} hot_line samples\n{describe(prof)}\n{err}"

    agent = Agent(str(tmp_path), config={"frequency": 99}).start()
    try:
        body = agent.get_ok(f"/debug/pprof/profile?seconds={SHORT}&pid={run.pid}")
        path = tmp_path / "agent.pb.gz"
        path.write_bytes(body)
        samples = decode_pprof(str(path))
        agent.stop()
    finally:
        agent.close()
    frames = [f for s in samples for f in s.frames if f.function.endswith("hot_line")]
    assert len(frames) >= 3, f"agent: {len(frames)} hot_line frames of pid {run.pid}"
    assert all(f.filename == run.script and f.line > 0 for f in frames), frames[:3]
    hot = hot_line_number(os.path.join(PY_WORKLOAD_DIR, "known_line.py"))
    on_line = sum(1 for f in frames if f.line == hot)
    assert on_line >= 0.8 * len(frames), (hot, collections.Counter(f.line for f in frames))


def test_other_libc_layout_refused(sid, tmp_path, run_dynoprof):
    """A copy of the root's libc whose pthread_getspecific adds 0x31 as `sub $-0x31`
    (the same result: the interpreter runs) is code dynoprof does not understand:
    one warning naming the pid and the library, native frames only."""
    with open(os.path.join(ROOT, LIBC), "rb") as f:
        data = bytearray(f.read())
    # glibc's fast path: cmp $0x1f,%edi; ja; mov %edi,%eax; add $0x31,%rax
    at = data.find(bytes.fromhex("83ff1f77"))
    while at >= 0 and data[at + 5:at + 11] != bytes.fromhex("89f84883c031"):
        at = data.find(bytes.fromhex("83ff1f77"), at + 1)
    assert at >= 0, f"no pthread_getspecific fast path in {ROOT}/{LIBC}"
    data[at + 9:at + 11] = bytes.fromhex("e8cf")     # sub $-0x31,%rax
    patched = tmp_path / "libc.so.6"
    patched.write_bytes(bytes(data))
    patched.chmod(0o755)
    script = os.path.join(ROOT, "tmp", "dynoprof-roots-l%d.py" % os.getpid())
    with open(script, "w") as f:
        f.write(STAT_LOOP)
    inside = "/" + os.path.relpath(script, ROOT)
    out = str(tmp_path / "l.folded")
    try:
        # the bind mount lives in the private mount namespace of this one process
        rc, _, err = run_dynoprof(
            "record", "-F", 199, "-o", out, "--", "unshare", "--mount", "sh", "-c",
            'mount --bind "$1" "$2" && exec chroot "$3" "$4" "$5" /dev/null "$6"', "sh",
            str(patched), os.path.join(ROOT, LIBC), ROOT, sid.path, inside, SHORT,
            timeout=SHORT + 60)
    finally:
        os.unlink(script)
    assert rc == 0, err
    # one line naming the pid (a process detected again, e.g. when its exec is
    # reported after its first samples, only adds to the "N more" summary)
    refused = [line for line in err.splitlines() if "C library" in line and "PID" in line]
    assert len(refused) == 1 and os.path.join(ROOT, LIBC) in refused[0] and (
        "not understood" in refused[0] and re.search(r"PID \d+:", refused[0])), err
    prof = parse_folded_file(out)
    assert prof.total() > 0 and not any(is_python_frame(f) for f in prof.functions()), (
        describe(prof))
    assert any("fstatat" in f for f in prof.functions()), describe(prof)
