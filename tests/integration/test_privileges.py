"""A non-root `record` with file capabilities gives root's result, and one with
fewer says, once per capability, what it lacks.

A user created for the module (removed by its finalizer) runs a copy of
dynoprof that carries capabilities from `setcap` (README, "Running without
root"), against processes owned by root: a tagged CPython workload (Python
frames, the endpoint thread tag, the DYNOPROF_SERVICE environment tag) and
syscall_heavy (kernel frames). What a user would check is compared with root's
own capture of the same processes: Python frames, tags, kernel names.
"""
import os
import pwd
import shutil
import subprocess
import tempfile
import time

import pytest

from agentutil import TaggedApps
from conftest import parse_folded_text, workload_path

FULL_SET = ("cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search,cap_syslog,"
            "cap_checkpoint_restore")
SERVICE = "captest"
DURATION = "4"
MIN_SAMPLES = 100
OPTIONAL_CAPS = ("CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH", "CAP_SYSLOG",
                 "CAP_CHECKPOINT_RESTORE")


def kallsyms_open_to_all():
    """True when the host shows kallsyms addresses without CAP_SYSLOG."""
    with open("/proc/sys/kernel/kptr_restrict") as f:
        kptr = int(f.read())
    with open("/proc/sys/kernel/perf_event_paranoid") as f:
        paranoid = int(f.read())
    return kptr == 0 and paranoid <= 1


@pytest.fixture(scope="module")
def capuser():
    name = "dpcap%d" % os.getpid()
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


@pytest.fixture(scope="module")
def capdir(capuser):
    """A directory the user can enter and write, for binaries and outputs."""
    d = tempfile.mkdtemp(prefix="dynoprof-caps-", dir="/tmp")
    pw = pwd.getpwnam(capuser)
    os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """Root-owned processes to profile: (tagged_app pid, syscall_heavy pid)."""
    apps = TaggedApps(str(tmp_path_factory.mktemp("capapps")))
    heavy = subprocess.Popen([workload_path("syscall_heavy"), "-d", "300"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        app = apps.start(300, service=SERVICE)
        yield app.pid, heavy.pid
    finally:
        apps.close()
        heavy.kill()
        heavy.wait()


def record(dynoprof, outdir, name, pids, user=None, duration=DURATION):
    """`record` of pids into NAME.folded (as user when given); (stderr, Folded)."""
    out = os.path.join(outdir, name + ".folded")
    cmd = [dynoprof, "record", "-p", "%d,%d" % pids, "-d", str(duration), "-F", "199",
           "--group-by", "endpoint,service", "-o", out]
    if user:
        cmd = ["runuser", "-u", user, "--"] + cmd
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, "%s failed (%d):\n%s" % (name, proc.returncode, proc.stderr)
    with open(out, encoding="utf-8") as f:
        return proc.stderr, parse_folded_text(f.read())


def capped_binary(dynoprof, capdir, name, caps):
    """A copy of dynoprof carrying caps (setcap ... +ep)."""
    path = os.path.join(capdir, name)
    shutil.copy(dynoprof, path)
    os.chmod(path, 0o755)
    subprocess.run(["setcap", caps + "+ep", path], check=True)
    return path


class Capture:
    """What a user checks in a capture: per process (comm), the samples, those
    with Python frames, the tags, the kernel frames and their names."""

    def __init__(self, err, folded):
        self.err = err
        self.samples = {}       # comm -> samples
        self.python = 0         # tagged_app samples with a Python frame
        self.endpoints = {}     # endpoint value -> samples
        self.services = {}      # service value -> samples (python3.11)
        self.kernel = 0         # syscall_heavy samples with a kernel frame
        self.kernel_named = 0   # ... of which one is a real kernel function name
        for frames, n in folded.stacks:
            tags = {}
            while frames and frames[0].startswith("[") and "=" in frames[0]:
                key, _, value = frames[0][1:-1].partition("=")
                tags[key] = value
                frames = frames[1:]
            comm = frames[0]
            self.samples[comm] = self.samples.get(comm, 0) + n
            if comm.startswith("python3"):
                if any(f.startswith("tagged_app:") for f in frames[1:]):
                    self.python += n
                ep = tags.get("endpoint", "-")
                self.endpoints[ep] = self.endpoints.get(ep, 0) + n
                svc = tags.get("service", "-")
                self.services[svc] = self.services.get(svc, 0) + n
            elif comm == "syscall_heavy":
                kframes = [f for f in frames[1:] if f.endswith("_[k]")]
                if kframes:
                    self.kernel += n
                    if any(not f.startswith("[kernel]") for f in kframes):
                        self.kernel_named += n

    @property
    def py_samples(self):
        return sum(n for c, n in self.samples.items() if c.startswith("python3"))

    def tag_values(self, kind):
        """The tag values (not "-") on at least 5% of the Python samples."""
        return {v for v, n in getattr(self, kind).items()
                if v != "-" and n >= 0.05 * self.py_samples}

    def share(self, part, whole):
        return part / whole if whole else 0.0

    def describe(self):
        return ("samples %s, python frames %d/%d, endpoints %s, services %s, "
                "kernel %d (named %d)\nstderr:\n%s" % (
                    self.samples, self.python, self.py_samples, self.endpoints,
                    self.services, self.kernel, self.kernel_named, self.err))


def capture(*args, **kwargs):
    """A Capture with at least MIN_SAMPLES of each process: on a busy machine
    the processes get less CPU, so the capture is repeated, longer (bounded)."""
    duration = int(DURATION)
    for _ in range(3):
        c = Capture(*record(*args, duration=duration, **kwargs))
        if c.py_samples >= MIN_SAMPLES and c.samples.get("syscall_heavy", 0) >= MIN_SAMPLES:
            return c
        duration *= 2
    pytest.fail("too few samples after %d s captures:\n%s" % (duration // 2, c.describe()))


def warned_caps(err):
    """How often each capability is named in a warning line."""
    lines = [l for l in err.splitlines() if "warning" in l]
    return {cap: sum(l.count(cap + ":") for l in lines) for cap in OPTIONAL_CAPS}


@pytest.fixture(scope="module")
def root_capture(dynoprof_bin, capdir, targets):
    return capture(dynoprof_bin, capdir, "root", targets)


def assert_full_result(c, who):
    """What root gets, and what a fully capable non-root run must get too."""
    py = c.py_samples
    assert c.share(c.python, py) >= 0.9, "%s: Python frames missing\n%s" % (who, c.describe())
    assert {"/light", "/heavy"} <= set(c.endpoints), "%s: endpoints\n%s" % (who, c.describe())
    assert c.share(c.endpoints.get("-", 0), py) <= 0.1, "%s: untagged\n%s" % (who, c.describe())
    assert c.share(c.services.get(SERVICE, 0), py) >= 0.9, (
        "%s: service tag missing\n%s" % (who, c.describe()))
    heavy = c.samples.get("syscall_heavy", 0)
    assert c.share(c.kernel, heavy) >= 0.5, "%s: kernel frames\n%s" % (who, c.describe())
    assert c.share(c.kernel_named, c.kernel) >= 0.9, (
        "%s: kernel frames without names\n%s" % (who, c.describe()))


def test_full_set_gives_roots_result(dynoprof_bin, capdir, capuser, targets, root_capture):
    assert_full_result(root_capture, "root")
    assert not any(warned_caps(root_capture.err).values()), root_capture.err
    binary = capped_binary(dynoprof_bin, capdir, "dynoprof-full", FULL_SET)
    c = capture(binary, capdir, "full", targets, user=capuser)
    assert "warning" not in c.err, c.err
    assert_full_result(c, "non-root with %s" % FULL_SET)
    # Same shares as root's capture of the same processes (sampling noise aside).
    assert abs(c.share(c.python, c.py_samples)
               - root_capture.share(root_capture.python, root_capture.py_samples)) <= 0.05
    assert c.tag_values("endpoints") == root_capture.tag_values("endpoints"), (
        c.describe(), root_capture.describe())
    assert c.tag_values("services") == root_capture.tag_values("services"), (
        c.describe(), root_capture.describe())


def test_readme_old_set_names_each_missing_capability_once(dynoprof_bin, capdir, capuser,
                                                             targets, root_capture):
    """`setcap cap_bpf,cap_perfmon+ep` (the old README): profiling works, and
    each capability it lacks is named once, with its cost, which is real."""
    binary = capped_binary(dynoprof_bin, capdir, "dynoprof-min", "cap_bpf,cap_perfmon")
    c = capture(binary, capdir, "min", targets, user=capuser)
    want = {cap: 1 for cap in OPTIONAL_CAPS}
    if kallsyms_open_to_all():
        want["CAP_SYSLOG"] = 0
    assert warned_caps(c.err) == want, c.err
    assert "setcap " + FULL_SET + "+ep" in c.err, c.err
    # Said once: no second warning about kallsyms from the symbolizer.
    assert "cannot read kernel symbols" not in c.err, c.err
    # The costs named are real ones.
    assert c.share(c.python, c.py_samples) <= 0.1, c.describe()
    assert set(c.services) == {"-"}, c.describe()
    # What it could not read is blamed on the refusal (the warning above), not on
    # processes that exited (they all ran throughout).
    assert "exited before" not in c.err, c.err
    if want["CAP_SYSLOG"]:
        assert c.kernel_named == 0, c.describe()


def test_without_dac_read_search_only_environment_tags_go(dynoprof_bin, capdir, capuser,
                                                           targets, root_capture):
    caps = FULL_SET.replace("cap_dac_read_search,", "")
    binary = capped_binary(dynoprof_bin, capdir, "dynoprof-nodac", caps)
    c = capture(binary, capdir, "nodac", targets, user=capuser)
    want = {cap: 0 for cap in OPTIONAL_CAPS}
    want["CAP_DAC_READ_SEARCH"] = 1
    assert warned_caps(c.err) == want, c.err
    assert set(c.services) == {"-"}, c.describe()
    assert c.share(c.python, c.py_samples) >= 0.9, c.describe()
    assert {"/light", "/heavy"} <= set(c.endpoints), c.describe()
    assert c.share(c.kernel_named, c.kernel) >= 0.9, c.describe()


def test_deleted_binary_needs_checkpoint_restore(dynoprof_bin, capdir, capuser, tmp_path):
    """A binary deleted after its process started (an upgraded package) is read
    through /proc/PID/map_files, which CAP_CHECKPOINT_RESTORE opens."""
    copy = os.path.join(str(tmp_path), "heavy_deleted")
    shutil.copy(workload_path("syscall_heavy"), copy)
    proc = subprocess.Popen([copy, "-d", "300"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL)
    try:
        # Deleted once it runs (its maps line then says " (deleted)").
        for _ in range(200):
            with open("/proc/%d/maps" % proc.pid) as f:
                if copy in f.read():
                    break
            time.sleep(0.05)
        os.unlink(copy)

        def named_share(binary, name, user):
            out = os.path.join(capdir, name + ".folded")
            for duration in (3, 6, 12):  # longer on a busy machine, bounded
                cmd = ["runuser", "-u", user, "--"] if user else []
                cmd += [binary, "record", "-p", str(proc.pid), "-d", str(duration),
                        "-F", "199", "-o", out]
                r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=60)
                assert r.returncode == 0, r.stderr
                with open(out, encoding="utf-8") as f:
                    folded = parse_folded_text(f.read())
                total = folded.total()
                if total >= 50:
                    break
            assert total >= 50, (total, r.stderr)
            # main and read_zero_loop come from the deleted file's symbols.
            named = folded.count_where(lambda fr: "main" in fr or "read_zero_loop" in fr)
            return named / total, r.stderr, folded

        share, _, folded = named_share(dynoprof_bin, "deleted-root", None)
        assert share >= 0.9, folded.describe()
        full = capped_binary(dynoprof_bin, capdir, "dynoprof-full-del", FULL_SET)
        share, err, folded = named_share(full, "deleted-full", capuser)
        assert share >= 0.9, (folded.describe(), err)
        caps = FULL_SET.replace(",cap_checkpoint_restore", "")
        fewer = capped_binary(dynoprof_bin, capdir, "dynoprof-nocr", caps)
        share, err, folded = named_share(fewer, "deleted-nocr", capuser)
        want = {cap: 0 for cap in OPTIONAL_CAPS}
        want["CAP_CHECKPOINT_RESTORE"] = 1
        assert warned_caps(err) == want, err
        assert share == 0, (folded.describe(), err)
    finally:
        proc.kill()
        proc.wait()
