"""Python workloads in the Debian unstable root, and ground-truth captures.

Shared by test_python.py, test_python_next.py and test_python_embedded.py:

  build_python_root()     the root of scripts/python-root.sh, built when missing
  RootRun                 one workload process in that root (chroot, or its own mount
                          and PID namespaces), its script copy under ROOT/tmp
  record_ground_truth()   one capture of workload runs that measure themselves
                          (ground_truth.py), long enough for a loaded machine, with
                          each run's truth over exactly the capture
  describe(prof)          the heaviest stacks of a profile, for assertion messages
"""
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import namedtuple

from apputil import Recording
from conftest import REPO_ROOT, proc_cpu_seconds
from pyutil import PY_WORKLOAD_DIR, ChildProc, PyRun, wait_for_ready_line

RootExe = namedtuple("RootExe", "tag")  # what PyRun's messages name: the executable

READY_TIMEOUT = 60


def build_python_root():
    """The Debian unstable root (built once per machine, reused when complete)."""
    res = subprocess.run(["sh", os.path.join(REPO_ROOT, "scripts", "python-root.sh")],
                         capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, f"scripts/python-root.sh failed:\n{res.stderr}"
    return res.stdout.strip().splitlines()[-1]


def describe(prof, limit=8, width=600):
    top = sorted(prof.stacks, key=lambda s: -s[1])[:limit]
    return "\n".join(f"{n:6d} {';'.join(fr)[:width]}" for fr, n in top)


def record_ground_truth(runs, out, leaves, freq, min_seconds, min_cpu, max_seconds):
    """Records runs (each with .pid and .snapshot(), the workload's measured seconds
    per leaf so far) into out: at least min_seconds and until each run used min_cpu
    CPU seconds in the capture (a busy machine gives less per second), at most
    max_seconds. Returns ([{leaf: seconds measured during the capture}] per run,
    record's stderr); fails when record does."""
    rec = Recording("record", "-p", ",".join(str(r.pid) for r in runs),
                    "-d", max_seconds + 30, "-F", freq, "-o", out)
    try:
        rec.wait_started()
        # The truth over exactly the capture: what each run measured between
        # two snapshots, one once dynoprof samples and one just before it stops.
        before = [r.snapshot() for r in runs]
        cpu = [proc_cpu_seconds(r.pid) for r in runs]
        start = time.monotonic()
        while time.monotonic() - start < max_seconds and (
                time.monotonic() - start < min_seconds or
                any(proc_cpu_seconds(r.pid) - c < min_cpu for r, c in zip(runs, cpu))):
            time.sleep(0.1)
        after = [r.snapshot() for r in runs]
        rc, err = rec.stop()
    finally:
        rec.kill()
    assert rc == 0, f"record failed (rc={rc}): {' '.join(rec.cmd)}\n{err}"
    assert os.path.getsize(out) > 0, f"{out} is empty:\n{err}"
    return [{leaf: a[leaf] - b[leaf] for leaf in leaves} for b, a in zip(before, after)], err


class RootRun(PyRun):
    """One workload process inside the root: its script copy lives under ROOT/tmp.
    pid, snapshot() and the truth file are PyRun's (with namespaces, proc is the
    pyutil.ChildProc standing for the interpreter unshare forked)."""

    def __init__(self, root, exe, workload, duration, *extra, source=None, namespaces=False):
        self.root, self.exe = root, exe
        self.inner_dir = f"/tmp/dynoprof-next-{uuid.uuid4().hex[:12]}"
        os.makedirs(root + self.inner_dir)
        script = f"{self.inner_dir}/{workload}.py"   # as the process sees it
        if source is None:
            shutil.copyfile(os.path.join(PY_WORKLOAD_DIR, workload + ".py"), root + script)
        else:
            with open(root + script, "w") as f:
                f.write(source)
        truth_path = f"{self.inner_dir}/truth.json"
        # chroot, or (namespaces) a container-like start: own mount and PID
        # namespaces with the root as /, the interpreter a child of unshare.
        enter = (["unshare", "--mount", "--pid", "--fork", "--root", root] if namespaces
                 else ["chroot", root])
        proc = subprocess.Popen(
            enter + [exe, script, truth_path, str(duration)] +
            [str(e) for e in extra], cwd="/", stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if namespaces:
            proc = ChildProc(proc)
        super().__init__(RootExe(exe), script, proc, root + truth_path)
        self.wait_ready()

    def wait_ready(self):
        wait_for_ready_line(self.proc, f"{self.exe} {self.script}", READY_TIMEOUT)

    def stop(self):
        """SIGTERMs the run (if alive), waits; its truth JSON, None when it wrote none."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        try:
            with open(self.truth_path) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        shutil.rmtree(self.root + self.inner_dir, ignore_errors=True)
