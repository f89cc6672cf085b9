"""Fixtures for the dynoprof integration suite.

The suite runs the real ./dynoprof binary as root against real BPF and profiles the
workloads in tests/workloads (built into .output/workloads by `make test`; this file
builds nothing). Fixtures:

  dynoprof_bin    absolute path of the binary (env DYNOPROF overrides ./dynoprof)

With DYNOPROF_SAN_LOGS=DIR (`make sanitize-test`: DYNOPROF is then the ASan + UBSan
build), every dynoprof writes its sanitizer reports to DIR/san.PID (never to the
stderr that tests compare) and a test phase during which a report appeared fails,
printing the report.
  workload_dir    .output/workloads
  workload        workload("cpu_split") -> absolute path, failing if it was not built
  outdir          a fresh temporary directory (pytest's tmp_path)
  run_dynoprof    run_dynoprof(*args, timeout=..., cwd=..., prefix=[...]) -> (rc, out, err)
  start_workload  start_workload("cpu_split", "-d", "30") -> Popen, killed at teardown
  parse_folded    parse_folded(path) -> Folded (see below)
"""
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKLOAD_DIR = os.path.join(REPO_ROOT, ".output", "workloads")
DEFAULT_TIMEOUT = 60

# Summary line printed by `dynoprof record` on stderr, e.g.
# "dynoprof: 1234 samples (5.0 s, 3 processes), 0 lost".
SAMPLES_RE = re.compile(r"dynoprof: (\d+) samples")
LOST_RE = re.compile(r"(\d+) lost")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    config.addinivalue_line("markers", "xdist_group(name): tests run on one xdist worker")
    config.addinivalue_line("markers", "alone: `make test` runs it beside no other test")


# Before pytest-xdist's own hook reads the groups (`make test`: xdist_groups.py).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    import xdist_groups
    xdist_groups.assign_groups(config, items)


SAN_LOGS = os.environ.get("DYNOPROF_SAN_LOGS")
if SAN_LOGS:
    # Set before any test starts a process, so every dynoprof (record, diff, report and
    # the agent, whose leaks are checked when it exits) inherits them. LSan's leak check
    # at exit is on (detect_leaks=1); UBSan is built not to recover (it aborts).
    os.makedirs(SAN_LOGS, exist_ok=True)
    _san_prefix = os.path.join(SAN_LOGS, "san")
    # No detect_stack_use_after_return: its fake stacks made the agent's 56 concurrent
    # collections (one thread each) take over 120 s instead of 7.
    os.environ["ASAN_OPTIONS"] = (f"log_path={_san_prefix}:detect_leaks=1:halt_on_error=1:"
                                  "abort_on_error=1:disable_coredump=1")
    os.environ["UBSAN_OPTIONS"] = (f"log_path={_san_prefix}:halt_on_error=1:abort_on_error=1:"
                                   "print_stacktrace=1")
    os.environ["LSAN_OPTIONS"] = f"log_path={_san_prefix}"
    _san_seen = set(os.listdir(SAN_LOGS))


def _san_new_reports():
    """Sanitizer report files that appeared since the last call, with their text."""
    names = sorted(set(os.listdir(SAN_LOGS)) - _san_seen)
    _san_seen.update(names)
    reports = []
    for name in names:
        with open(os.path.join(SAN_LOGS, name), errors="replace") as f:
            reports.append(f"==== {os.path.join(SAN_LOGS, name)}\n{f.read()}")
    return reports


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if not SAN_LOGS:
        return
    reports = _san_new_reports()
    if reports:
        report = outcome.get_result()
        report.outcome = "failed"
        report.longrepr = (f"sanitizer report(s) during {call.when} of {item.nodeid}:\n" +
                           "\n".join(reports) +
                           (f"\n\n---- the test's own result:\n{report.longrepr}"
                            if report.longrepr else ""))


def pytest_sessionfinish(session, exitstatus):
    # Reports written after the last test phase (module fixtures torn down last).
    if SAN_LOGS:
        reports = _san_new_reports()
        if reports:
            print("\nsanitizer report(s) after the last test:\n" + "\n".join(reports))
            session.exitstatus = 1


def _binary_path():
    return os.path.abspath(os.environ.get("DYNOPROF", os.path.join(REPO_ROOT, "dynoprof")))


@pytest.fixture(scope="session", autouse=True)
def _require_root_and_binary():
    if os.geteuid() != 0:
        pytest.exit("the integration suite must run as root (it loads BPF programs)", 2)
    if not os.access(_binary_path(), os.X_OK):
        pytest.exit(f"{_binary_path()} not found: run `make dynoprof` (or `make test`)", 2)


@pytest.fixture(scope="session")
def dynoprof_bin():
    return _binary_path()


@pytest.fixture(scope="session")
def workload_dir():
    return WORKLOAD_DIR


def workload_path(name):
    path = os.path.join(WORKLOAD_DIR, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"workload {path} not built: run `make .output/workloads/{name}`")
    return path


@pytest.fixture(scope="session")
def workload():
    return workload_path


@pytest.fixture
def outdir(tmp_path):
    return str(tmp_path)


def run_dynoprof_cmd(*args, timeout=DEFAULT_TIMEOUT, cwd=None, prefix=()):
    """Runs dynoprof with args; returns (returncode, stdout, stderr) as text.

    prefix is prepended to the command line (e.g. a setpriv invocation). On
    timeout the process is killed and the test fails with what it printed.
    """
    cmd = list(prefix) + [_binary_path()] + [str(a) for a in args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, cwd=cwd, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout}s: {' '.join(cmd)}\nstdout: {out}\nstderr: {err}")
    return proc.returncode, out, err


@pytest.fixture(scope="session")
def run_dynoprof():
    return run_dynoprof_cmd


class WorkloadProcs:
    """Starts workloads and makes sure none outlives the test that started it."""

    def __init__(self):
        self.procs = []

    def start(self, name, *args, **popen_kwargs):
        popen_kwargs.setdefault("stdout", subprocess.DEVNULL)
        popen_kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen([workload_path(name)] + [str(a) for a in args], **popen_kwargs)
        self.procs.append(proc)
        return proc

    def close(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def start_workload():
    procs = WorkloadProcs()
    yield procs.start
    procs.close()


@pytest.fixture(scope="module")
def start_module_workload():
    """Like start_workload, for workloads shared by a whole test module."""
    procs = WorkloadProcs()
    yield procs.start
    procs.close()


def stop_workload(proc, timeout=10):
    """SIGTERMs a workload (which then writes its JSON) and waits for it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"workload pid {proc.pid} ignored SIGTERM")


class Folded:
    """A parsed folded-stacks file: a list of (frames, count), frames root first.

    frames[0] is the comm (as written by dynoprof: `comm;root;...;leaf COUNT`).
    """

    def __init__(self, stacks):
        self.stacks = stacks

    def __len__(self):
        return len(self.stacks)

    def total(self, comm=None):
        return sum(n for frames, n in self.stacks if comm is None or frames[0] == comm)

    def of_comm(self, comm):
        return Folded([(f, n) for f, n in self.stacks if f[0] == comm])

    def count_where(self, predicate):
        """Samples whose frame list satisfies predicate(frames)."""
        return sum(n for frames, n in self.stacks if predicate(frames))

    def count_with(self, function):
        """Samples with `function` anywhere on the stack (inclusive)."""
        return self.count_where(lambda frames: function in frames[1:])

    def count_leaf(self, function):
        """Samples whose leaf frame is `function` (exclusive/self)."""
        return self.count_where(lambda frames: frames[-1] == function)

    def comms(self):
        result = {}
        for frames, n in self.stacks:
            result[frames[0]] = result.get(frames[0], 0) + n
        return result

    def functions(self):
        return {f for frames, _ in self.stacks for f in frames[1:]}

    def describe(self, limit=15):
        """The heaviest stacks as text, for assertion messages."""
        top = sorted(self.stacks, key=lambda s: -s[1])[:limit]
        return "\n".join(f"{n:6d} {';'.join(frames)}" for frames, n in top)


def parse_folded_text(text):
    """Parses folded text, failing the test on a malformed line."""
    stacks = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        stack, sep, count = line.rpartition(" ")
        if not sep or not stack or not count.isdigit():
            pytest.fail(f"malformed folded line {lineno}: {line!r}")
        frames = stack.split(";")
        if any(f == "" for f in frames):
            pytest.fail(f"empty frame in folded line {lineno}: {line!r}")
        stacks.append((frames, int(count)))
    return Folded(stacks)


def parse_folded_file(path):
    with open(path, encoding="utf-8") as f:
        return parse_folded_text(f.read())


@pytest.fixture(scope="session")
def parse_folded():
    return parse_folded_file


def summary_samples(stderr):
    """The sample count from dynoprof's summary line, or None if absent."""
    m = SAMPLES_RE.search(stderr)
    return int(m.group(1)) if m else None


def summary_lost(stderr):
    """The lost-sample count from the summary line, or None if absent."""
    m = SAMPLES_RE.search(stderr)
    if not m:
        return None
    line = stderr[m.start():].splitlines()[0]
    lost = LOST_RE.search(line)
    return int(lost.group(1)) if lost else None


def proc_cpu_seconds(pid):
    """utime+stime of a live process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_for(predicate, timeout, interval=0.05):
    """Polls predicate() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def have_go():
    return shutil.which("go") is not None
