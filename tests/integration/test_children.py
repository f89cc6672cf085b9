"""`record -p PID --children`: a gunicorn master's workers (and what they fork)
are profiled with it; without it, record says at the start that the children
are left out and, when the capture got no samples, why.
"""
import os
import re

from apputil import GunicornApp, record_load
from conftest import proc_cpu_seconds
from pyutil import decode_pprof


def test_record_master_with_children_profiles_its_workers(tmp_path, run_dynoprof):
    app = GunicornApp(str(tmp_path), workers=2, middleware=False).start()
    try:
        workers = app.worker_pids()
        assert len(workers) == 2
        before = {pid: proc_cpu_seconds(pid) for pid in workers}
        out = str(tmp_path / "master.pb.gz")
        _, err = record_load([app.proc.pid], out, [(app.url("heavy"), {"connections": 4})],
                             extra=("--children", "-F", "199"), seconds=3)
        used = {pid: proc_cpu_seconds(pid) - before[pid] for pid in workers}
    finally:
        app.stop()
    assert "sampling the given processes and their descendants" in err, err
    assert "add --children" not in err, err
    samples = decode_pprof(out)
    per_pid = {}
    for s in samples:
        per_pid[s.labels.get("pid")] = per_pid.get(s.labels.get("pid"), 0) + s.values[0]
    # Every worker that did real work (its own /proc figure) has samples, in the
    # view's function.
    for pid, cpu_s in used.items():
        if cpu_s >= 0.3:
            assert per_pid.get(pid, 0) >= 10, (pid, cpu_s, per_pid, err)
    assert sum(per_pid.get(pid, 0) for pid in workers) >= 50, (per_pid, used, err)
    assert any(f.function.endswith("work_heavy") for s in samples
               if s.labels.get("pid") in workers for f in s.frames)


def test_record_master_alone_says_its_children_did_the_work(tmp_path):
    app = GunicornApp(str(tmp_path), workers=2, middleware=False).start()
    try:
        master = app.proc.pid
        # 1 Hz: the master's own few ms of housekeeping are almost never sampled.
        out = str(tmp_path / "master.folded")
        _, err = record_load([master], out, [(app.url("heavy"), {"connections": 4})],
                             extra=("-F", "1"), seconds=3)
    finally:
        app.stop()
    assert re.search(r"note: PID %d has 2 descendant processes \(e\.g\. PID \d+\), not "
                     r"profiled: add --children" % master, err), err
    assert "0 samples in" in err, err
    m = re.search(r"0 samples: PID %d used (no CPU|only [0-9.]+ s of CPU) during the capture; "
                  r"its 2 child processes used ([0-9.]+) s — add --children" % master, err)
    assert m, err
    assert float(m.group(2)) >= 0.5, err


def test_record_idle_process_says_it_used_no_cpu(tmp_path, run_dynoprof):
    sleeper = os.spawnvp(os.P_NOWAIT, "sleep", ["sleep", "30"])
    try:
        rc, _, err = run_dynoprof("record", "-p", str(sleeper), "-d", "1", "-o",
                                  str(tmp_path / "idle.folded"))
    finally:
        os.kill(sleeper, 9)
        os.waitpid(sleeper, 0)
    assert rc == 0, err
    assert ("0 samples: PID %d used no CPU during the capture (idle or blocked); it has no "
            "child processes" % sleeper) in err, err


def test_children_needs_a_pid(run_dynoprof, tmp_path):
    rc, _, err = run_dynoprof("record", "--children", "-d", "1", "-o",
                              str(tmp_path / "x.folded"))
    assert rc == 2 and err.startswith("dynoprof: --children goes with -p PID"), err
