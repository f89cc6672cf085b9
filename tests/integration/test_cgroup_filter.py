"""`record --cgroup`: one capture per cgroup v2 (a container, a systemd unit,
or one "host" of the canary tests). Two CPU-burning Python processes, each in
a cgroup of its own: a capture limited to one cgroup holds only that one's
samples and exact CPU, and that CPU is the cgroup's own figure (cpu.stat
usage_usec) within 2%.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import run_dynoprof_cmd
from fleetutil import Cgroup, remove_stale_cgroups

pytestmark = pytest.mark.slow

# Burns `seconds` of its own CPU time (thread_time: the same work on a busy
# machine, only slower) in a function named after its cgroup.
BURNER = r'''
import sys, time
def burn_{name}(seconds):
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        for i in range(2000):
            x = (x * 31 + i) & 0xFFFFFFFF
burn_{name}(float(sys.argv[1]))
'''


def start_in(cgroup, name, seconds, tmpdir):
    script = os.path.join(tmpdir, "burn_%s.py" % name)
    with open(script, "w") as f:
        f.write(BURNER.format(name=name))
    # The shell enters the cgroup before it execs Python: every instruction
    # of the process is the cgroup's.
    return subprocess.Popen(["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup.procs_file,
                             sys.executable, script, str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def cgroups():
    remove_stale_cgroups()
    made = []
    try:
        for name in ("cg-alpha-%d" % os.getpid(), "cg-beta-%d" % os.getpid()):
            made.append(Cgroup(name))
        yield made
    finally:
        for cg in made:
            cg.remove()


def test_record_cgroup_keeps_only_that_cgroup(cgroups, tmp_path):
    alpha, beta = cgroups
    tmpdir = str(tmp_path)
    out = os.path.join(tmpdir, "alpha.folded")
    counts = os.path.join(tmpdir, "counts.json")
    # beta burns all along; alpha starts once the capture runs and burns a
    # fixed amount, and the capture stops after it exited, so all of alpha's
    # CPU is inside the capture.
    beta_proc = start_in(beta, "beta", 60, tmpdir)
    rec = subprocess.Popen([os.environ.get("DYNOPROF", os.path.abspath("dynoprof")), "record",
                            "--cgroup", os.path.basename(alpha.path), "-F", "199",
                            "-o", out, "--counts", counts],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    alpha_proc = None
    try:
        deadline = time.monotonic() + 30
        err_lines = []
        while time.monotonic() < deadline:
            line = rec.stderr.readline()
            if not line:
                break
            err_lines.append(line)
            if "cgroup filter on" in line:
                break
        assert any("cgroup filter on" in l and alpha.path in l for l in err_lines), err_lines
        usage0 = alpha.usage_ns()
        alpha_proc = start_in(alpha, "alpha", 1.5, tmpdir)
        assert alpha_proc.wait(timeout=60) == 0
        usage = alpha.usage_ns() - usage0
        # Stopped only once alpha is gone: none of its CPU is after the end.
        rec.send_signal(signal.SIGINT)
        _, rest = rec.communicate(timeout=60)
        err = "".join(err_lines) + rest
        assert rec.returncode == 0, err
    finally:
        beta_proc.kill()
        beta_proc.wait()
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    with open(out) as f:
        folded = f.read()
    assert "burn_alpha" in folded, folded[:2000]
    assert "burn_beta" not in folded, err
    with open(counts) as f:
        c = json.load(f)
    pids = {p["pid"] for p in c["processes"]}
    assert beta_proc.pid not in pids, c["processes"]
    assert alpha_proc.pid in pids, c["processes"]
    got = sum(p["cpu_ns"] for p in c["processes"])
    # The cgroup held only alpha's process (and its shell before the exec).
    assert abs(got - usage) <= 0.02 * usage, (got, usage, c["processes"])
    print("record --cgroup CPU %.4f s, cpu.stat usage %.4f s (%+.2f%%)"
          % (got / 1e9, usage / 1e9, (got / usage - 1) * 100))


def test_record_cgroup_unknown_is_one_line(run_dynoprof):
    rc, out, err = run_dynoprof("record", "--cgroup", "no-such-cgroup-dynoprof", "-d", "1",
                                "-o", "/tmp/never.folded")
    assert rc == 2, err
    assert err.startswith("dynoprof: --cgroup: no cgroup v2 'no-such-cgroup-dynoprof'"), err
    assert err.count("\n") == 1, err
