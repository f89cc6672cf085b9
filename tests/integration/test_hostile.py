"""Hostile processes: whatever a process on the host puts in its environment
and in the memory libdynotag shares with dynoprof, the agent and `record`
keep running, keep the labels that matter (`endpoint`, `window`), say what
they cut (summary lines, /metrics), and keep totals right.

Every test runs real processes under real BPF with an agent (system-wide,
1-second windows) AND a `record` running at once. Ground truth is the
workloads' own time.process_time() and request counts.

Workloads: tests/workloads/py/hostile_tags.py (16+ environment tags, 8
process tags, 8 thread tags, long or invalid values) and tag_scribbler.py
(torn and garbage tag records, lying string tables, rewritten strings).
"""
import json
import os
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from agentutil import (APP_PYTHON, DYNOPROF, DYNOTAG_LIBRARY, DYNOTAG_PYTHON_DIR, Agent,
                       metric_values, wait_until)
from conftest import parse_folded_file
from pyutil import decode_pprof, find_interpreters

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKLOADS = os.path.join(REPO_ROOT, "tests", "workloads", "py")
HOSTILE = os.path.join(WORKLOADS, "hostile_tags.py")
SCRIBBLER = os.path.join(WORKLOADS, "tag_scribbler.py")
SECONDS = 4
# A process's CPU in the profile against its own process_time: the exact
# per-process total is apportioned to its samples.
CPU_TOLERANCE = 0.05


def env_with(tags=None, **extra):
    """The environment of a workload: dynotag importable, no inherited tags."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("DYNOPROF_", "HOSTILE_")) and
         k not in ("GIT_COMMIT", "SOURCE_VERSION", "PYTHONHOME", "PYTHONSTARTUP")}
    e["PYTHONPATH"] = DYNOTAG_PYTHON_DIR
    e["DYNOTAG_LIBRARY"] = DYNOTAG_LIBRARY
    if tags is not None:
        e["DYNOPROF_TAGS"] = tags
    e.update({k: str(v) for k, v in extra.items()})
    return e


def env_pairs(n, prefix="e"):
    return ",".join("%s%d=x%d" % (prefix, i, i) for i in range(n))


@pytest.fixture
def agent(tmp_path):
    a = Agent(str(tmp_path), name="hostile-agent")
    a.start()
    yield a
    a.close()


def as_bytes(text):
    return text if isinstance(text, bytes) else str(text).encode("utf-8", "surrogateescape")


def record(out, command, env, *args, timeout=120):
    """`dynoprof record --window 1 -o out [args] -- env -i ENV command`: the
    whole life of the command is profiled; only the command's image carries
    env (record's own environment, which its forked child shows until the
    exec, has no tags). Returns (rc, stderr)."""
    cmd = [DYNOPROF, "record", "--window", "1", "-F", "199", "-o", str(out)] + \
        [str(a) for a in args] + ["--", "/usr/bin/env", "-i"] + \
        [as_bytes(k) + b"=" + as_bytes(v) for k, v in env.items()] + \
        [as_bytes(c) for c in command]
    proc = subprocess.run(cmd, env=env_with(), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return proc.returncode, proc.stderr.decode("utf-8", "replace")


def check_env_dropped(err, dropped):
    """The summary counts the dropped environment tags once per exec'd image
    (also when the image's first sample arrives before its exec notice)."""
    m = re.search(r"(\d+) environment tags dropped", err)
    assert m, err
    assert int(m.group(1)) == dropped, (dropped, err)


def check_alive(agent):
    assert agent.alive(), "the agent died:\n" + agent.stderr[-4000:]
    assert agent.get("/healthz")[0] == 200, agent.stderr[-2000:]


def samples_of(samples, pid):
    """pid's samples of the command's image: `env -i` runs under the same pid
    before its exec, without the command's environment (and so its tags)."""
    return [s for s in samples if s.labels.get("pid") == pid and s.labels.get("comm") != "env"]


def has_function(sample, name):
    return any(f.function.endswith(name) for f in sample.frames)


def count(samples):
    """Samples (pprof merges identical ones: their first value counts them)."""
    return sum(s.values[0] for s in samples)


def cpu_ns(sample):
    # value order: samples, cpu[, instructions][, cycles], requests
    return sample.values[1]


def check_cpu_total(samples, truth, what):
    profiled = sum(cpu_ns(s) for s in samples) / 1e9
    assert abs(profiled - truth["cpu_s"]) <= CPU_TOLERANCE * truth["cpu_s"] + 0.02, (
        "%s: %.3f s CPU in the profile, the process measured %.3f s" % (
            what, profiled, truth["cpu_s"]))


def agent_label_drops(agent, reason):
    values = metric_values(agent.metrics(), "dynoprof_agent_tag_labels_dropped_total",
                           reason=reason)
    return sum(v for _, v in values)


def test_label_budget_keeps_endpoint_and_window(agent, tmp_path):
    """The crash of issue 12: 16 environment tags + 8 process tags and no
    endpoint, with request counters (the path that wrote past the labels),
    plus 8 thread tags and an endpoint on a worker thread. 20 environment tags
    are offered: 4 are dropped and counted, nothing else is lost."""
    out, truth = tmp_path / "hostile.pb.gz", tmp_path / "truth.json"
    env = env_with(env_pairs(20), HOSTILE_PROCESS_TAGS=8, HOSTILE_THREAD_TAGS=8)
    rc, err = record(out, [APP_PYTHON, HOSTILE, SECONDS, truth], env)
    assert rc == 0, err
    check_alive(agent)
    check_env_dropped(err, 4)
    t = json.loads(truth.read_text())
    samples = samples_of(decode_pprof(str(out)), t["pid"])
    cpu = [s for s in samples if cpu_ns(s)]
    assert count(cpu) >= 100, "only %d samples" % count(cpu)
    check_cpu_total(cpu, t, "hostile_tags")
    env_keys = {"e%d" % i for i in range(20)}
    kept_env = set()
    for s in cpu:
        assert "window" in s.labels, "a sample without its window: %s" % s.labels
        kept_env |= env_keys & set(s.labels)
        # Thread tags show once dynoprof has found the library (it looks
        # again every 0.5 s): then all of them, never some.
        if has_function(s, "worker_spin") and "t0" in s.labels:
            assert s.labels.get("endpoint") == "/worker", s.labels
            assert {"t%d" % i for i in range(8)} <= set(s.labels), s.labels
            assert {"p%d" % i for i in range(8)} <= set(s.labels), s.labels
        elif has_function(s, "main_spin") and "endpoint" in s.labels:
            assert s.labels.get("endpoint") == "/main", s.labels
            assert {"p%d" % i for i in range(8)} <= set(s.labels), s.labels
    assert len(kept_env) == 16, sorted(kept_env)
    worker = [s for s in cpu if has_function(s, "worker_spin")]
    main = [s for s in cpu if has_function(s, "main_spin")]
    assert count(s for s in worker if "t0" in s.labels) >= 0.6 * count(worker) >= 20
    assert count(s for s in main if "endpoint" in s.labels) >= 0.6 * count(main) >= 20
    # The request counters (aggregator__add_requests) keep endpoint + window.
    reqs = [s for s in samples if s.values[-1]]
    assert reqs, "no request samples"
    for s in reqs:
        assert s.labels.get("endpoint") == "/main" and "window" in s.labels, s.labels
    counted = sum(s.values[-1] for s in reqs)
    # Requests begun after the last counter read are not seen: at most a poll's worth.
    assert 0.8 * t["requests"] <= counted <= t["requests"], (counted, t["requests"])
    # The agent saw the same process: counted the drop, still serves.
    wait_until(lambda: agent_label_drops(agent, "env_limit") >= 4, 10)
    assert agent_label_drops(agent, "env_limit") >= 4, agent.get_ok("/metrics")[:3000]
    check_alive(agent)


def test_env_tags_zero_to_hundred(agent, tmp_path):
    """0, 16, 17 and 100 environment tags (plus a service): the first 16
    are kept, the rest dropped and counted."""
    dropped = 0
    for n in (0, 16, 17, 100):
        out, truth = tmp_path / ("env%d.pb.gz" % n), tmp_path / ("env%d.json" % n)
        env = env_with(env_pairs(n) if n else None, DYNOPROF_SERVICE="svc%d" % n,
                       HOSTILE_PROCESS_TAGS=0, HOSTILE_THREAD_TAGS=0)
        rc, err = record(out, [APP_PYTHON, HOSTILE, 1.5, truth], env)
        assert rc == 0, err
        check_alive(agent)
        want_dropped = max(0, n + 1 - 16)
        if want_dropped:
            check_env_dropped(err, want_dropped)
        else:
            assert "environment tags dropped" not in err, err
        dropped += want_dropped
        t = json.loads(truth.read_text())
        cpu = [s for s in samples_of(decode_pprof(str(out)), t["pid"]) if cpu_ns(s)]
        assert cpu, err
        for s in cpu:
            keys = {k for k in s.labels if re.match(r"e\d+$", k)}
            assert s.labels.get("service") == "svc%d" % n, s.labels
            assert len(keys) == min(n, 15), (n, sorted(keys))
            assert "window" in s.labels
    wait_until(lambda: agent_label_drops(agent, "env_limit") >= dropped, 10)
    assert agent_label_drops(agent, "env_limit") >= dropped


def test_long_and_invalid_values(agent, tmp_path):
    """Values of 1 MB through libdynotag (which cuts them to 256 bytes), a
    120 KB environment value, an environment past 256 KiB, invalid UTF-8
    everywhere: no crash, values shown escaped and cut, cuts counted."""
    out, truth = tmp_path / "long.pb.gz", tmp_path / "long.json"
    env = env_with("bad=\udcff\udcfe\x01,long=" + "y" * (120 << 10),
                   HOSTILE_VALUE_BYTES=1 << 20, HOSTILE_INVALID=1,
                   FILLER1="f" * (120 << 10), FILLER2="g" * (120 << 10),
                   DYNOPROF_ENV="past-the-read")
    rc, err = record(out, [APP_PYTHON, HOSTILE, 2, truth], env)
    assert rc == 0, err
    check_alive(agent)
    assert re.search(r"tag keys/values cut to 1024 bytes", err), err
    t = json.loads(truth.read_text())
    cpu = [s for s in samples_of(decode_pprof(str(out)), t["pid"]) if cpu_ns(s)]
    assert cpu
    # Process tags are set once Python has started and are read within a
    # second (the record's refresh): samples before that lack p0, later ones
    # all have it (window labels are 1-s slots).
    tagged = [int(s.labels["window"]) for s in cpu if "p0" in s.labels]
    assert tagged, "no sample with the process tag p0"
    early = [s for s in cpu if "p0" not in s.labels]
    assert all(int(s.labels["window"]) <= min(tagged) + 1 for s in early), (
        sorted(set(int(s.labels["window"]) for s in early)), min(tagged))
    for s in cpu:
        assert "window" in s.labels
        for k, v in s.labels.items():
            if isinstance(v, str):
                assert len(v.encode()) < 1024, (k, len(v))
        assert s.labels.get("bad") == "\\xff\\xfe\\x01", s.labels.get("bad")
        assert "env" not in s.labels  # past the 256 KiB read: unseen, not guessed
        if "p0" in s.labels:
            assert "\\xff\\xfe\\x01" in s.labels["p0"], s.labels["p0"]
    check_alive(agent)
    wait_until(lambda: metric_values(agent.metrics(),
                                     "dynoprof_agent_tag_text_truncated_total")[0][1] > 0, 10)


def test_scribbled_records(agent, tmp_path):
    """A process rewriting its own tag records, strings and string table in
    a loop: both keep running, nothing is mislabeled with garbage keys, the
    cuts are counted, and its CPU total is right."""
    out, truth = tmp_path / "scribble.pb.gz", tmp_path / "scribble.json"
    rc, err = record(out, [APP_PYTHON, SCRIBBLER, SECONDS, truth], env_with())
    assert rc == 0, err
    check_alive(agent)
    t = json.loads(truth.read_text())
    assert t["rounds"] > 50
    samples = samples_of(decode_pprof(str(out)), t["pid"])
    cpu = [s for s in samples if cpu_ns(s)]
    assert count(cpu) >= 100, err
    check_cpu_total(cpu, t, "tag_scribbler")
    assert re.search(r"libdynotag process tags dropped|thread was writing its tags|"
                     r"tag values unreadable", err), err
    for s in cpu:
        assert "window" in s.labels
        assert len(s.labels) <= 4 + 36, s.labels
    wait_until(lambda: agent_label_drops(agent, "process_limit") +
               agent_label_drops(agent, "unreadable") > 0, 10)
    check_alive(agent)


EXITING = r'''
import os, sys, time
import dynotag
def rec(n):
    if n == 0:
        t = time.monotonic() + 0.15
        while time.monotonic() < t:
            pass
        return 0
    return rec(n - 1) + 1
deadline = time.monotonic() + float(sys.argv[1])
children = 0
while time.monotonic() < deadline:
    pid = os.fork()
    if pid == 0:
        dynotag.set_process("child", str(os.getpid()))
        dynotag.set_endpoint("/child-%d" % os.getpid())
        rec(120)
        os._exit(0)
    children += 1
    if children % 2 == 0:
        os.waitpid(-1, 0)
while True:
    try:
        os.waitpid(-1, 0)
    except ChildProcessError:
        break
print(children)
'''


def test_processes_exiting_mid_walk(agent, tmp_path):
    """Short-lived tagged children with deep stacks exit while BPF walks them
    and while their strings are read: no crash, and a label never belongs
    to another process (each child's endpoint names its own pid)."""
    script = tmp_path / "exiting.py"
    script.write_text(EXITING)
    out = tmp_path / "exiting.pb.gz"
    rc, err = record(out, [APP_PYTHON, script, SECONDS], env_with())
    assert rc == 0, err
    check_alive(agent)
    samples = decode_pprof(str(out))
    labelled = [s for s in samples if str(s.labels.get("endpoint", "")).startswith("/child-")]
    assert count(labelled) >= 20, err
    for s in labelled:
        assert s.labels["endpoint"] == "/child-%d" % s.labels["pid"], s.labels
        assert s.labels.get("child") in (None, str(s.labels["pid"])), s.labels
        assert "window" in s.labels


DEEP = r'''
import sys, time
sys.setrecursionlimit(10000)
def spin():
    s = 0
    for i in range(3000):
        s += i
    return s
def rec(n):
    if n == 0:
        return spin()
    return sorted([n], key=lambda x: rec(x - 1))[0]
depth = int(sys.argv[2])
deadline = time.monotonic() + float(sys.argv[1])
while time.monotonic() < deadline:
    rec(depth)
'''


def modern_interpreters():
    # host interpreters: the scripts are host files (not the test root's, pyutil)
    found = [i for i in find_interpreters() if i.version >= (3, 12) and not i.root and
             i.supported]
    if not found:
        # The distribution's python3 (scripts/deps.sh) may be older: 3.12+ is a pyenv
        # build or a newer distribution, neither of which every machine has.
        pytest.skip("no CPython 3.12+ found (`pyenv root`, PATH, /usr/bin/python3.*)")
    return found


@pytest.mark.parametrize("depth,cut", [(150, True), (30, False)])
def test_python_shim_frames_marked_truncated(agent, tmp_path, depth, cut):
    """3.12+ recursion through sorted(key=...): a C-stack shim frame per level
    uses walk steps without a Python frame. Every sample either reaches
    <module> or starts with [truncated]; a stack that fits is never marked."""
    script = tmp_path / "deep_sorted.py"
    script.write_text(DEEP)
    for interp in modern_interpreters():
        out = tmp_path / ("deep-%s-%d.folded" % (interp.tag, depth))
        rc, err = record(out, [interp.path, script, 4, depth], env_with())
        assert rc == 0, err
        check_alive(agent)
        stacks = parse_folded_file(str(out))
        total = marked = reached = 0
        for frames, count in stacks.stacks:
            if not any("deep_sorted" in f for f in frames):
                continue
            total += count
            is_marked = frames[1] == "[truncated]"
            has_module = any("<module>" in f for f in frames)
            marked += count if is_marked else 0
            reached += count if has_module else 0
            assert is_marked or has_module, "%s: cut and unmarked: %s" % (
                interp.tag, ";".join(frames[:6]))
        assert total >= 30, (interp.tag, total, err)
        if cut:
            assert marked >= total * 0.5, (interp.tag, marked, total)
            assert "Python stack deeper than the walk reaches" in err, err
        else:
            # A stack that fits is never marked, except a sample that caught the
            # interpreter linking a frame in (3.12+): rare, counted as such.
            torn = re.search(r"(\d+) x Python frame chain caught mid-update", err)
            torn = int(torn.group(1)) if torn else 0
            assert marked <= torn and torn <= max(2, total // 100), (
                interp.tag, marked, torn, total, err)
            assert reached + marked == total, (interp.tag, marked, reached, total)


TORN = r"""
import ctypes, sys, time
# Holds the frame chain torn the way a sample can catch it while the
# interpreter links a frame in: this frame's `previous` (offset 8 in 3.12 and
# 3.13's _PyInterpreterFrame; PyFrameObject.f_frame at 24) is NULL while it
# spins, restored before it returns.
def torn_spin(seconds):
    iframe = ctypes.c_void_p.from_address(id(sys._getframe()) + 24).value
    previous = ctypes.c_void_p.from_address(iframe + 8)
    saved = previous.value
    previous.value = None
    try:
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
    finally:
        previous.value = saved
    return n
def intact(seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
for _ in range(4):
    torn_spin(float(sys.argv[1]))
    intact(float(sys.argv[1]))
"""


def test_python_chain_caught_mid_update_is_marked(agent, tmp_path):
    """3.12+: every thread's frame chain ends in its entry shim frame. A
    chain that ends on a code frame (what a sample sees when it lands while
    the interpreter links a frame in) is cut: [truncated] at the root and
    counted, never passed off as a whole stack."""
    script = tmp_path / "torn.py"
    script.write_text(TORN)
    for interp in modern_interpreters():
        out = tmp_path / ("torn-%s.folded" % interp.tag)
        rc, err = record(out, [interp.path, script, 0.4], env_with())
        assert rc == 0, err
        check_alive(agent)
        torn = intact = 0
        for frames, count in parse_folded_file(str(out)).stacks:
            spin = [f for f in frames if "torn_spin" in f]
            if spin:
                # Only while the link is held NULL (lines 12-17 of TORN): a
                # sample on the lines that tear or restore it sees it whole.
                line = re.search(r":(\d+)\)$", spin[-1])
                if not line or not 12 <= int(line.group(1)) <= 17:
                    continue
                assert frames[1] == "[truncated]", (interp.tag, ";".join(frames[:6]))
                torn += count
            elif any("intact" in f for f in frames):
                assert any("<module>" in f for f in frames), (interp.tag, frames[:6])
                intact += count
        assert torn >= 30 and intact >= 30, (interp.tag, torn, intact, err)
        counted = re.search(r"(\d+) x Python frame chain caught mid-update", err)
        assert counted and int(counted.group(1)) >= torn, (interp.tag, torn, err)


def test_history_query_over_the_window_limit(tmp_path):
    """25,000 stored windows: a query over all of them answers 400 naming the
    limit (it used to merge the oldest 20,000 silently); one over 10,000 of
    them covers its range, the newest window included."""
    agent = Agent(str(tmp_path), name="windows-agent")
    try:
        agent.start()
        wait_until(lambda: agent.healthz().get("windows", 0) >= 1, 20)
        agent.stop()
        db = sqlite3.connect(agent.database)
        row = db.execute("SELECT pprof FROM windows WHERE length(pprof) > 0 "
                         "ORDER BY start_ns LIMIT 1").fetchone()
        assert row, "the agent stored no window with samples"
        blob = row[0]
        base = (int(time.time()) - 30000) * 10**9
        db.executemany("INSERT INTO windows (start_ns, end_ns, samples, pprof) "
                       "VALUES (?, ?, 1, ?)",
                       [(base + i * 10**9, base + (i + 1) * 10**9, blob)
                        for i in range(25000)])
        db.commit()
        db.close()
        agent.restart()
        frm, to = base // 10**9, base // 10**9 + 25000
        status, body = agent.get("/debug/pprof/profile?from=%d&to=%d" % (frm, to))
        assert status == 400, (status, body[:300])
        assert b"25000 windows" in body and b"20000" in body, body
        status, body = agent.get("/debug/pprof/profile?from=%d&to=%d" % (to - 10000, to))
        assert status == 200, (status, body[:300])
        path = tmp_path / "last10k.pb.gz"
        path.write_bytes(body)
        windows = {s.labels.get("window") for s in decode_pprof(str(path))}
        assert str(to - 1) in windows, "the newest window is missing"
        assert len(windows) == 10000, len(windows)
    finally:
        agent.close()


DEEP_NATIVE_C = r'''
#include <stdint.h>
#include <time.h>
static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
__attribute__((noinline)) uint64_t native_bottom(double until)
{
	volatile uint64_t s = 0;
	while (now() < until)
		for (int i = 0; i < 10000; i++)
			s += i;
	return s;
}
__attribute__((noinline)) uint64_t native_recurse(int n, double until)
{
	if (n == 0)
		return native_bottom(until);
	return native_recurse(n - 1, until) + 1;
}
uint64_t native_deep(int depth, double seconds)
{
	return native_recurse(depth, now() + seconds);
}
'''

DEEP_NATIVE_PY = r'''
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.native_deep.argtypes = [ctypes.c_int, ctypes.c_double]
lib.native_deep.restype = ctypes.c_uint64
def py_caller():
    return lib.native_deep(int(sys.argv[2]), float(sys.argv[3]))
py_caller()
'''


@pytest.mark.parametrize("depth,cut", [(100, True), (10, False)])
def test_python_native_chain_cut_is_marked(agent, tmp_path, depth, cut):
    """A Python process keeps 32 native frames: a C call chain deeper than
    that (never reaching the interpreter) shows [truncated] between the
    Python caller and the native frames; a shallow one is not marked."""
    lib = tmp_path / "libdeepnative.so"
    src = tmp_path / "deepnative.c"
    src.write_text(DEEP_NATIVE_C)
    subprocess.run(["cc", "-O1", "-g", "-fno-omit-frame-pointer", "-fPIC", "-shared",
                    "-o", str(lib), str(src)], check=True)
    script = tmp_path / "deep_native.py"
    script.write_text(DEEP_NATIVE_PY)
    out = tmp_path / "native.folded"
    rc, err = record(out, [APP_PYTHON, script, lib, depth, 5], env_with())
    assert rc == 0, err
    check_alive(agent)
    stacks = parse_folded_file(str(out)).stacks
    bottom = [(fr, n) for fr, n in stacks if fr[-1].startswith("native_bottom") or
              (len(fr) > 1 and any(f.startswith("native_bottom") for f in fr[-3:]))]
    total = sum(n for _, n in bottom)
    assert total >= 20, "%d native_bottom samples:\n%s" % (total, err)
    marked = unwalked = 0
    for frames, n in bottom:
        py = [i for i, f in enumerate(frames) if "deep_native" in f]
        if not py:
            # A Python process is found at its first sample and its
            # interpreter published to BPF then: on a loaded machine its
            # first few samples may come before the walk starts.
            unwalked += n
            continue
        after = frames[py[-1] + 1]
        if after == "[truncated]":
            marked += n
            # what follows is the leafward chain: all native_recurse/bottom
            assert all(f.startswith(("native_recurse", "native_bottom", "now",
                                     "clock_gettime", "__clock_gettime", "[vdso]"))
                       or f.endswith("_[k]") or "vdso" in f
                       # the library's unnamed PLT stub (now -> clock_gettime@plt)
                       or f.startswith("libdeepnative.so+")
                       for f in frames[py[-1] + 2:]), ";".join(frames[py[-1]:])
    assert unwalked <= max(2, 0.1 * total), "%d of %d samples without a Python caller" % (
        unwalked, total)
    total -= unwalked
    if cut:
        assert marked >= 0.9 * total, (marked, total, err)
        assert "native stacks deeper than kept" in err, err
    else:
        assert marked == 0, (marked, total)


def env_command(env, command):
    """command run under exactly env (`env -i K=V ... command`)."""
    return ["/usr/bin/env", "-i"] + [as_bytes(k) + b"=" + as_bytes(v) for k, v in env.items()] + \
        [as_bytes(c) for c in command]


def test_pid_reuse_gets_fresh_tags(agent, tmp_path, workload):
    """A process that gets the pid of one that just exited (clone3 with
    set_tid) has its own tags, Python code and mappings: nothing of the
    previous owner of the pid carries over."""
    script_b = tmp_path / "hostile_b.py"
    script_b.write_text(open(HOSTILE).read())
    pids, out = tmp_path / "pids", tmp_path / "reuse.pb.gz"
    env_a = env_with(DYNOPROF_SERVICE="first", HOSTILE_PROCESS_TAGS=8)
    env_b = env_with(DYNOPROF_SERVICE="second", HOSTILE_PROCESS_TAGS=0)
    command = [workload("pid_reuse"), pids, "--"] + \
        env_command(env_a, [APP_PYTHON, HOSTILE, 2.5, tmp_path / "a.json"]) + ["--"] + \
        env_command(env_b, [APP_PYTHON, script_b, 2.5, tmp_path / "b.json"])
    rc, err = record(out, command, {})
    if rc == 3:
        pytest.fail("another process took the pid before it could be reused:\n" + err)
    assert rc == 0, err
    check_alive(agent)
    a, b = map(int, pids.read_text().split())
    assert a == b
    samples = samples_of(decode_pprof(str(out)), a)

    def in_file(s, name):
        return any(f.filename.endswith(name) for f in s.frames)
    of_a = [s for s in samples if in_file(s, "/hostile_tags.py")]
    of_b = [s for s in samples if in_file(s, "/hostile_b.py")]
    assert count(of_a) >= 20 and count(of_b) >= 20, (count(of_a), count(of_b), err)
    for s in of_a:
        assert s.labels.get("service") == "first", s.labels
    for s in of_b:
        assert s.labels.get("service") == "second", s.labels
        assert not any(k.startswith("p") and k[1:].isdigit() for k in s.labels), s.labels
    tagged_b = [s for s in of_b if has_function(s, "worker_spin") and
                s.labels.get("endpoint") == "/worker"]
    assert count(tagged_b) >= 5, "B's own thread tags never showed:\n%s" % err
