"""Tags on samples, end to end: a real Django app under gunicorn, loaded by wrk,
tagged by libdynotag (its Django middleware, its Python API, its C library),
captured by `dynoprof record -p` with real BPF.

The app (tests/apps/djangoapp) has endpoints whose CPU per request is 1:3:9
(light, medium, heavy; pure-Python loops of 1:3:9 iterations) and measures
what each request really took. Every check is what a user would look at:
samples per request by endpoint, the split by commit, the labels of samples
whose stack shows what ran under which tag.
"""
import collections
import json
import os
import subprocess
import time

import pytest

from apputil import (COST, ENDPOINTS, GunicornApp, Recording, Wrk, check_wrk,
                     parse_by_table, python_script, start_python)
from conftest import parse_folded_file, proc_cpu_seconds
from loadutil import record_until_served, served_between, wait_drained
from pyutil import decode_pprof

pytestmark = pytest.mark.slow

LOAD_SECONDS = 6           # of load at least...
MIN_REQUESTS = 40          # ...and until each endpoint had this many answered
# Samples per request per endpoint must match the work ratio this closely.
RATIO_TOLERANCE = 0.20


def report(run_dynoprof, *args):
    rc, out, err = run_dynoprof("report", *args, timeout=60)
    assert rc == 0, "report %s failed (rc=%d):\n%s" % (" ".join(map(str, args)), rc, err)
    return out


@pytest.fixture
def apps(outdir):
    """apps(**kwargs) starts a GunicornApp; every app is stopped at teardown."""
    started = []

    def start(**kwargs):
        kwargs.setdefault("name", "app%d" % len(started))
        app = GunicornApp(outdir, **kwargs)
        started.append(app)
        app.start()
        app.warm_up()
        return app
    yield start
    for app in started:
        app.stop()


def mixed_load(app, seconds=LOAD_SECONDS):
    """Three wrk runs in parallel, one per endpoint (-t2 -c4 each)."""
    return [(app.url(e), {"threads": 2, "connections": 4}) for e in ENDPOINTS]


def check_samples_per_request(rows, key_of, requests, truth, what):
    """Samples per request of each endpoint (rows keyed by key_of(endpoint))
    against the 1:3:9 cost, relative to light. truth: the app's stats."""
    per_request = {}
    for e in ENDPOINTS:
        row = rows.get(key_of(e))
        assert row is not None, "%s: no samples labelled %r; groups: %s" % (
            what, key_of(e), sorted(rows))
        per_request[e] = row.samples / requests[e]
    measured = {e: truth[e]["cpu_s"] / truth[e]["requests"] * 1e3 for e in ENDPOINTS}
    detail = "%s: samples/request %s; requests %s; app-measured CPU ms/request %s" % (
        what, {e: round(v, 2) for e, v in per_request.items()}, requests,
        {e: round(v, 2) for e, v in measured.items()})
    for e in ("medium", "heavy"):
        expected = COST[e] / COST["light"]
        ratio = per_request[e] / per_request["light"]
        assert abs(ratio / expected - 1) <= RATIO_TOLERANCE, (
            "%s/light = %.2f, expected %.0f +-%d%%\n%s" % (
                e, ratio, expected, RATIO_TOLERANCE * 100, detail))
    print(detail)
    return per_request, detail


def served_capture(app, out, loads, extra, min_requests=MIN_REQUESTS, prime=None):
    """Records the app under loads until each had min_requests answered and
    the app finished them (loadutil.record_until_served); returns (what the
    app served in the capture by endpoint, record stderr)."""
    wait_drained(app)  # what the warm-up left queued is served before
    before = app.stats(settle=0.3)
    _, err = record_until_served(app, out, loads, min_requests, extra=extra,
                                 min_seconds=LOAD_SECONDS, prime=prime)
    return served_between(before, app.stats()), err


def endpoint_capture(run_dynoprof, app, outdir, extra=()):
    """Records the app under the mixed load; returns (rows by endpoint,
    requests the app served in the capture by endpoint, record stderr, what
    the app served)."""
    out = os.path.join(outdir, "x.pb.gz")
    served, err = served_capture(app, out, mixed_load(app), ("-F", "999") + extra)
    requests = {e: served[e]["requests"] for e in ENDPOINTS}
    rows = parse_by_table(report(run_dynoprof, "-i", out, "--by", "endpoint"), ["endpoint"])
    return rows, requests, err, served


@pytest.mark.parametrize("threads", [1, 4], ids=["sync", "gthread"])
def test_middleware_endpoint_samples_per_request(run_dynoprof, apps, outdir, threads):
    app = apps(workers=2, threads=threads, middleware=True)
    rows, requests, err, truth = endpoint_capture(run_dynoprof, app, outdir)
    per_request, detail = check_samples_per_request(
        rows, lambda e: (e,), requests, truth, "middleware, %d thread(s)" % threads)
    # The middleware names endpoints by route pattern: exactly the app's routes
    # plus untagged time ("-"), nothing else.
    assert set(rows) <= {(e,) for e in ENDPOINTS} | {("-",)}, sorted(rows)
    tagged = sum(rows[(e,)].samples for e in ENDPOINTS)
    total = sum(r.samples for r in rows.values())
    assert tagged >= 0.8 * total, "only %d/%d samples carry an endpoint\n%s\n%s" % (
        tagged, total, detail, err)


def test_endpoint_inferred_from_django_stack(run_dynoprof, apps, outdir):
    app = apps(workers=2, middleware=False)
    out = os.path.join(outdir, "x.pb.gz")
    served, err = served_capture(app, out, mixed_load(app),
                                 ("-F", "999", "--endpoint-from", "django"))
    requests = {e: served[e]["requests"] for e in ENDPOINTS}
    rows = parse_by_table(report(run_dynoprof, "-i", out, "--by", "endpoint"), ["endpoint"])
    # The inferred endpoint is the view function Django's handler called, as
    # its Python frame names it: MODULE:QUALNAME.
    names = {e: "djangoapp.views:" + e for e in ENDPOINTS}
    for e in ENDPOINTS:
        assert (names[e],) in rows, "no endpoint %r: %s" % (names[e], sorted(rows))
    check_samples_per_request(rows, lambda e: (names[e],), requests, served,
                              "--endpoint-from django (%s)" % names)


def instance_cpu(app):
    """CPU seconds used so far by all processes of a gunicorn instance."""
    return sum(proc_cpu_seconds(pid) for pid in app.pids())


def group_frames(frames, keys):
    """The [key=value] frames that lead a grouped folded stack, as {key: value},
    or None when the stack does not start with exactly those keys in order."""
    found = {}
    for key, frame in zip(keys, frames):
        prefix = "[%s=" % key
        if not (frame.startswith(prefix) and frame.endswith("]")):
            return None
        found[key] = frame[len(prefix):-1]
    return found if len(found) == len(keys) else None


COMMIT_MIN_CPU = 3.0       # CPU s of both instances in the commit capture...
COMMIT_MAX_SECONDS = 60    # ...gathered for at most this long


def test_commit_from_environment_splits_instances(run_dynoprof, apps, outdir):
    # Two deployments of the app at different commits: three workers on two
    # CPUs, so the 2-worker instance gets about twice the CPU of the other.
    aaa = apps(workers=2, middleware=True, env={"DYNOPROF_COMMIT": "aaa"}, name="aaa")
    bbb = apps(workers=1, middleware=True, env={"DYNOPROF_COMMIT": "bbb"}, name="bbb")
    out = os.path.join(outdir, "x.pb.gz")
    rec = Recording("record", "-p", ",".join(map(str, aaa.pids() + bbb.pids())),
                    "-d", COMMIT_MAX_SECONDS + 60, "-F", "999", "-o", out)
    try:
        wait_drained(aaa)
        wait_drained(bbb)
        rec.wait_started()
        before = {"aaa": instance_cpu(aaa), "bbb": instance_cpu(bbb)}
        # Load for LOAD_SECONDS, then again for as long as the rate of CPU says
        # the instances need to have used COMMIT_MIN_CPU together (a busy machine
        # gives them less per second).
        start, seconds, answered = time.monotonic(), LOAD_SECONDS, {}
        while True:
            runs = [Wrk(aaa.url("heavy"), seconds, connections=4),
                    Wrk(bbb.url("light"), seconds, connections=4)]
            for run in runs:
                r = run.result()
                answered[run.url] = answered.get(run.url, 0) + r.requests
                if r.requests:
                    check_wrk(r)
            elapsed = time.monotonic() - start
            got = instance_cpu(aaa) + instance_cpu(bbb) - sum(before.values())
            if elapsed >= COMMIT_MAX_SECONDS or got >= COMMIT_MIN_CPU:
                break
            seconds = max(2, min(COMMIT_MAX_SECONDS - elapsed,
                                 1.2 * (COMMIT_MIN_CPU - got) * elapsed / max(got, 0.01)))
        assert all(answered.values()), answered
        wait_drained(aaa)
        wait_drained(bbb)
        used = {"aaa": instance_cpu(aaa) - before["aaa"], "bbb": instance_cpu(bbb) - before["bbb"]}
        rc, err = rec.stop()
    finally:
        rec.kill()
    assert rc == 0, err

    rows = parse_by_table(report(run_dynoprof, "-i", out, "--by", "commit"), ["commit"])
    assert ("aaa",) in rows and ("bbb",) in rows, "commits missing: %s\n%s" % (sorted(rows), err)
    assert set(rows) == {("aaa",), ("bbb",)}, "samples without the process tag: %s" % rows
    sampled = {c: rows[(c,)].samples for c in ("aaa", "bbb")}
    total_samples, total_cpu = sum(sampled.values()), sum(used.values())
    detail = "samples by commit %s; CPU from /proc %s" % (
        sampled, {c: round(v, 2) for c, v in used.items()})
    print(detail)
    for c in ("aaa", "bbb"):
        share, truth = sampled[c] / total_samples, used[c] / total_cpu
        assert abs(share - truth) <= 0.05, "commit %s: %.1f%% of samples, %.1f%% of the CPU\n%s" % (
            c, share * 100, truth * 100, detail)

    # Grouped folded stacks lead with [endpoint=...];[commit=...] frames.
    folded = os.path.join(outdir, "g.folded")
    report(run_dynoprof, "-i", out, "-o", folded, "--group-by", "endpoint,commit", "-q")
    prof = parse_folded_file(folded)
    groups = {}
    for frames, n in prof.stacks:
        lead = group_frames(frames, ("endpoint", "commit"))
        assert lead is not None, "stack does not start with [endpoint=..];[commit=..]: %s" % (
            ";".join(frames))
        key = (lead["endpoint"], lead["commit"])
        groups[key] = groups.get(key, 0) + n
    assert groups.get(("heavy", "aaa"), 0) > 0.5 * sampled["aaa"], groups
    assert groups.get(("light", "bbb"), 0) > 0.5 * sampled["bbb"], groups
    assert not groups.get(("heavy", "bbb")) and not groups.get(("light", "aaa")), groups


def test_record_tag_filter_keeps_only_that_endpoint(apps, outdir, parse_folded):
    app = apps(workers=2, middleware=True, env={"DYNOPROF_COMMIT": "ccc"})
    out = os.path.join(outdir, "x.folded")
    served, err = served_capture(
        app, out, [(app.url(e), {"connections": 4}) for e in ("light", "heavy")],
        ("-F", "999", "--tag", "endpoint=heavy", "--group-by", "endpoint,commit"))
    prof = parse_folded(out)
    assert prof.total() > 0, err
    with open(out) as f:
        for line in f:
            assert line.startswith("[endpoint=heavy];[commit=ccc];"), (
                "--tag endpoint=heavy kept %r" % line)
    # Everything heavy did is there: about one sample per ms of its CPU.
    heavy_cpu = served["heavy"]["cpu_s"]
    light_cpu = served["light"]["cpu_s"]
    print("heavy: %d samples for %.2f CPU s measured by the app (light used %.2f s)" % (
        prof.total(), heavy_cpu, light_cpu))
    assert abs(prof.total() / (heavy_cpu * 999) - 1) <= 0.2, (
        "%d heavy samples at 999 Hz for %.2f CPU s\n%s" % (prof.total(), heavy_cpu, err))
    assert prof.count_where(lambda fr: any("work_heavy" in f for f in fr)) >= 0.8 * prof.total()
    assert prof.count_where(lambda fr: any("work_light" in f for f in fr)) == 0, prof.describe()


def tag_race_drops(stderr):
    """The summary's count of samples kept untagged because a tag write raced."""
    for line in stderr.splitlines():
        if " x thread was writing its tags" in line:
            return int(line.split()[1])
    return 0


def test_racing_tag_writes_never_mislabel(apps, outdir):
    # /racy flips its thread's tag phase A<->B every few microseconds, running
    # racy_work_a only under A and racy_work_b only under B.
    app = apps(workers=2, middleware=True)
    out = os.path.join(outdir, "x.pb.gz")
    # 40 requests of 50 ms: ~1000 samples in each phase's work.
    _, err = served_capture(app, out, [(app.url("racy?ms=50"), {"threads": 2, "connections": 4})],
                            ("-F", "999"), prime=app.url("light"))
    samples = decode_pprof(out)

    def runs(sample, name):
        return any(name in frame.function for frame in sample.frames)

    def count(phase, name):
        return sum(s.values[0] for s in samples
                   if s.labels.get("phase") == phase and runs(s, name))
    counts = {(p, w): count(p, w) for p in ("A", "B") for w in ("racy_work_a", "racy_work_b")}
    untagged_in_work = sum(s.values[0] for s in samples if "phase" not in s.labels
                           and (runs(s, "racy_work_a") or runs(s, "racy_work_b")))
    print("racy: samples by (phase, function) %s; in racy_work_* without phase %d; "
          "tag races %d" % (counts, untagged_in_work, tag_race_drops(err)))
    assert counts[("A", "racy_work_b")] == 0, "racy_work_b sampled under phase=A: %s" % counts
    assert counts[("B", "racy_work_a")] == 0, "racy_work_a sampled under phase=B: %s" % counts
    assert counts[("A", "racy_work_a")] > 100 and counts[("B", "racy_work_b")] > 100, counts
    # A sample inside racy_work_* without its phase lost its tags to a race,
    # which the summary must count (nothing is dropped silently).
    assert untagged_in_work <= tag_race_drops(err), (
        "%d samples in racy_work_* carry no phase, %d tag races reported\n%s" % (
            untagged_in_work, tag_race_drops(err), err))
    # Other values than A and B would be torn reads.
    phases = {s.labels["phase"] for s in samples if "phase" in s.labels}
    assert phases <= {"A", "B"}, phases


BAD_INPUT_SCRIPT = r'''
"""Tags the test could get wrong: too long, not UTF-8, too many, short-lived threads.
Prints "ready", waits for a line on stdin, runs, writes JSON to argv[1]."""
import ctypes
import errno
import json
import sys
import threading
import time

import dynotag

assert dynotag.available, dynotag.load_error
lib = ctypes.CDLL(dynotag.library_path)
lib.dynotag_set.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
lib.dynotag_set.restype = ctypes.c_int
result = {"workers": {}}


def spin(seconds):
    end = time.thread_time() + seconds
    acc = 0
    while time.thread_time() < end:
        for i in range(1000):
            acc = (acc * 31 + i) & 0xFFFFFFFF
    return acc


def burn_long():
    return spin(0.6)


def burn_bad():
    return spin(0.6)


def burn_churn():
    return spin(0.02)


def long_tags():
    result["long_tid"] = threading.get_native_id()
    dynotag.set("k" * 100, "v" * 400)              # Python API
    lib.dynotag_set(b"clong", "\u00e9".encode() * 200)  # C: 400 bytes of 2-byte chars
    burn_long()


def bad_utf8():
    result["bad_tid"] = threading.get_native_id()
    lib.dynotag_set(b"cbad", b"caf\xc3\xa9-\xff\xfe-end")   # C library
    dynotag.set("pybad", b"\xffpy\xfe")                      # Python, bytes
    dynotag.set("pysur", "sur\udcffx")                       # Python, surrogate-escaped str
    burn_bad()


def too_many():
    for i in range(8):
        dynotag.set("key%d" % i, "x")
    try:
        dynotag.set("key8", "x")
        result["ninth"] = "accepted"
    except dynotag.TagLimitError as e:
        result["ninth"] = "TagLimitError: %s" % e
    result["c_ninth"] = lib.dynotag_set(b"key9", b"x")
    result["c_enospc"] = -errno.ENOSPC
    dynotag.clear_all()


def churn(i):
    result["workers"]["w%d" % i] = threading.get_native_id()
    dynotag.set("worker", "w%d" % i)
    burn_churn()


print("ready", flush=True)
sys.stdin.readline()
# Untagged work first: dynoprof finds a process's libdynotag only some time
# after its first sample (known, reported), and this test is not about that.
spin(0.3)
for target in (too_many, long_tags, bad_utf8):
    t = threading.Thread(target=target)
    t.start()
    t.join()
alive = []
for i in range(100):  # 100 threads, at most 10 at a time, each tagging itself
    t = threading.Thread(target=churn, args=(i,))
    t.start()
    alive.append(t)
    if len(alive) == 10:
        alive.pop(0).join()
for t in alive:
    t.join()
with open(sys.argv[1], "w") as f:
    json.dump(result, f)
# Stay alive until the capture ended: dynoprof reads tag strings from a live
# process (a process that exits before its last samples are processed loses
# their new strings: known, reported), and this test is about threads.
print("done", flush=True)
sys.stdin.readline()
'''


def test_bad_tag_input_is_truncated_escaped_and_bounded(outdir):
    script = python_script(outdir, "bad_input.py", BAD_INPUT_SCRIPT)
    result_path = os.path.join(outdir, "result.json")
    proc = start_python(script, result_path, stdin=subprocess.PIPE)
    out = os.path.join(outdir, "x.pb.gz")
    rec = None
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        rec = Recording("record", "-p", proc.pid, "-F", "999", "-d", 60, "-o", out)
        rec.wait_started()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        done = proc.stdout.readline().strip()
        time.sleep(0.3)
        rc, err = rec.stop()
        proc.stdin.write("exit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0 and done == "done", (
            "the tagging script failed:\n" + proc.stderr.read())
        assert rc == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if rec:
            rec.kill()
    with open(result_path) as f:
        result = json.load(f)

    # Too many tags: an error from the API, in Python and in C.
    assert result["ninth"].startswith("TagLimitError"), result["ninth"]
    assert result["c_ninth"] == result["c_enospc"], result

    samples = decode_pprof(out)

    def of_thread(tid, function):
        return [s for s in samples if s.labels.get("tid") == tid
                and any(function in f.function for f in s.frames)]

    def total(some):
        return sum(s.values[0] for s in some)

    # Over-long keys and values arrive cut, ending in "…", within the limits.
    long_samples = of_thread(result["long_tid"], "burn_long")
    assert total(long_samples) > 100, "few samples of burn_long: %d" % total(long_samples)
    for s in long_samples:
        keys = [k for k in s.labels if k.startswith("kkkk")]
        assert len(keys) == 1, s.labels
        key, value = keys[0], s.labels[keys[0]]
        assert key.endswith("\u2026") and len(key.encode()) <= 64, key
        assert value.startswith("vvvv") and value.endswith("\u2026"), value
        assert len(value.encode()) <= 256, len(value.encode())
        clong = s.labels.get("clong", "")
        # Cut at a character boundary: only whole "é"s before the "…".
        assert clong.endswith("\u2026") and set(clong[:-1]) == {"\u00e9"}, repr(clong)
        assert len(clong.encode()) <= 256, len(clong.encode())

    # Invalid UTF-8 is escaped as \xNN, valid characters kept.
    bad_samples = of_thread(result["bad_tid"], "burn_bad")
    assert total(bad_samples) > 100, "few samples of burn_bad: %d" % total(bad_samples)
    for s in bad_samples:
        assert s.labels.get("cbad") == "caf\u00e9-\\xff\\xfe-end", s.labels
        assert s.labels.get("pybad") == "\\xffpy\\xfe", s.labels
        assert s.labels.get("pysur") == "sur\\xffx", s.labels
        assert not any(k.startswith("kkkk") or k.startswith("key") for k in s.labels), s.labels

    # 100 short-lived threads: every sample labelled worker=wN is wN's thread.
    workers = result["workers"]
    tid_worker = {tid: name for name, tid in workers.items()}
    tagged = [s for s in samples if "worker" in s.labels]
    wrong = [(s.labels["worker"], s.labels.get("tid")) for s in tagged
             if workers.get(s.labels["worker"]) != s.labels.get("tid")]
    assert not wrong, "samples labelled with another thread's worker tag: %s" % wrong[:10]
    seen = {s.labels["worker"] for s in tagged}
    in_churn = total(s for s in samples if any("burn_churn" in f.function for f in s.frames))
    print("bad input: %d burn_long, %d burn_bad samples; %d workers of 100 seen in %d "
          "samples (%d in burn_churn); tag races %d" % (
              total(long_samples), total(bad_samples), len(seen), total(tagged), in_churn,
              tag_race_drops(err)))
    # Every sample of a worker's burn_churn carries its tag, but for tag races
    # (counted).
    untagged = collections.Counter(
        s.labels.get("tid") for s in samples
        if "worker" not in s.labels and any("burn_churn" in f.function for f in s.frames)
        for _ in range(s.values[0]))
    assert sum(untagged.values()) <= tag_race_drops(err), (
        "samples in burn_churn without their worker tag (tid: samples): %s; %d tag races "
        "reported; workers seen %d/100\n%s" % (
            {tid: (tid_worker.get(tid), n) for tid, n in untagged.items()}, tag_race_drops(err),
                                                len(seen), err))
    assert len(seen) == 100, "only %d of 100 workers' tags seen" % len(seen)
