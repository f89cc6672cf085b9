"""Helpers for the CPython integration tests (test_python.py).

  find_interpreters()     the CPython interpreters on this machine (`pyenv root`, PATH,
                          /usr/bin/python3.*), found at run time, and those of the
                          Debian unstable root scripts/python-root.sh builds (run
                          through chroot: tags sid-3.13, sid-3.14, sid-3.14-dbg, ...)
  interpreter_supported(i)  whether dynoprof walks that interpreter's frames today
  python_root()           that root's directory when it is built, else None
  distribution_python()   the distribution's python3 (Debian's python3-django, gunicorn)
  PyWorkloads             starts tests/workloads/py/*.py under an interpreter, one copy
                          of the script per run so each run's frames carry its own path
  parse_py_frame(frame)   a folded Python frame `MODULE:QUALNAME (FILENAME[:LINE])`
  decode_pprof(path)      the samples of a (gzipped) pprof file, with their labels
"""
import glob
import gzip
import json
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections import namedtuple

import pytest

from conftest import REPO_ROOT, Folded

PY_WORKLOAD_DIR = os.path.join(REPO_ROOT, "tests", "workloads", "py")
# Oldest and newest minor version dynoprof walks (3.14 and 3.15 and their debug
# builds run from the test root below).
SUPPORTED = ((3, 8), (3, 15))
READY_TIMEOUT = 30
PYTHON_ROOT_SCRIPT = os.path.join(REPO_ROOT, "scripts", "python-root.sh")

# `MODULE:QUALNAME (FILENAME:LINE)`, or `MODULE:QUALNAME (FILENAME)` with
# --python-lines=off. QUALNAME has no spaces (e.g. `Looper.spin`, `<module>`,
# `outer.<locals>.inner`); MODULE may be a non-path name like `<frozen zipimport>`.
PY_FRAME_RE = re.compile(
    r"^(?P<module>[^;]+?):(?P<qualname>[^\s;:][^\s;]*) \((?P<filename>[^;]*?)"
    r"(?::(?P<line>\d+))?\)$")

PyFrame = namedtuple("PyFrame", "module qualname filename line")


def wait_for_ready_line(proc, label, timeout=READY_TIMEOUT):
    """Waits (bounded: select, never a blocking read) for proc's stdout line
    "ready"; kills it and fails the test with its output when it exits or the
    time runs out first. label names it in the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()
            if line.strip() == "ready":
                return
            if line == "":
                break
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"{label} never printed ready (exit {proc.returncode}):\n{out}\n{err}")

class Interpreter(namedtuple("Interpreter", "path version kind root debug",
                             defaults=(None, False))):
    """One python executable: path, version (major, minor, micro), kind pyenv (under
    `pyenv root`), debian (/usr/bin), path (elsewhere on PATH) or the name of the
    root it runs in (sid). root: that directory, None on the host; path is then the
    executable as processes in the root see it (run it with .command). debug: a
    debug build (python3.14d)."""

    @property
    def tag(self):
        """A short unique id, e.g. pyenv-3.12.1 or sid-3.14-dbg (test ids, directory
        names)."""
        if self.root:
            return f"{self.kind}-{self.version[0]}.{self.version[1]}" + (
                "-dbg" if self.debug else "")
        return f"{self.kind}-{'.'.join(map(str, self.version))}"

    def command(self, cwd=None, unshare=False):
        """argv prefix that runs this interpreter (in its root through chroot, in
        directory cwd as the root sees it). unshare: in new mount and PID
        namespaces instead (`unshare --mount --pid --fork --root`), like a
        container: the interpreter is then the child of the process started."""
        if not self.root:
            return [self.path]
        if unshare:
            return ["unshare", "--mount", "--pid", "--fork", "--kill-child",
                    "--root", self.root, "/usr/bin/env", "-C", cwd or "/", self.path]
        return ["chroot", self.root, "/usr/bin/env", "-C", cwd or "/", self.path]

    def host_path(self, path):
        """Where the host sees a file this interpreter's processes see at path."""
        return os.path.join(self.root, path.lstrip("/")) if self.root else path

    @property
    def comm(self):
        """The kernel comm of its main thread: the executable's basename, 15 chars."""
        return os.path.basename(self.path)[:15]

    @property
    def minor(self):
        return self.version[:2]

    @property
    def supported(self):
        return interpreter_supported(self)

    @property
    def has_qualname(self):
        """True when frames show co_qualname (3.11+), else co_name."""
        return self.minor >= (3, 11)


def interpreter_supported(interp):
    """True when dynoprof walks interp's frames today (SUPPORTED)."""
    return SUPPORTED[0] <= interp.minor <= SUPPORTED[1]


def unsupported_reason(interp):
    """Why a test skips an interpreter interpreter_supported() refuses."""
    return (f"{interp.tag}: CPython {interp.minor[0]}.{interp.minor[1]} is not walked by "
            f"dynoprof yet (pyutil.SUPPORTED: 3.{SUPPORTED[0][1]}-3.{SUPPORTED[1][1]}; "
            f"3.14/3.15 are issue 14)")


def python_root():
    """The directory of the Debian unstable root scripts/python-root.sh builds
    ($DYNOPROF_PYTHON_ROOT or /var/cache/dynoprof-test/sid) when it is complete
    (`make test` builds it through test-deps), else None."""
    try:
        res = subprocess.run(["sh", PYTHON_ROOT_SCRIPT, "--check"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    root = res.stdout.strip()
    return root if res.returncode == 0 and os.path.isdir(root) else None


def _version_of(path, prefix=()):
    try:
        out = subprocess.run(list(prefix) + [path, "-c",
                                             "import sys; print(*sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=30).stdout.split()
        return tuple(int(x) for x in out[:3]) if len(out) >= 3 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None


_interpreters_cache = []


def pyenv_roots():
    """Where pyenv keeps its builds: $PYENV_ROOT, `pyenv root` (pyenv on PATH) and
    pyenv's own default ~/.pyenv, those that exist."""
    roots = [os.environ.get("PYENV_ROOT", "")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            res = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30)
            roots.append(res.stdout.strip() if res.returncode == 0 else "")
        except (OSError, subprocess.TimeoutExpired):
            pass
    roots.append(os.path.expanduser("~/.pyenv"))
    found = []
    for root in roots:
        if root and os.path.isdir(root) and os.path.realpath(root) not in found:
            found.append(os.path.realpath(root))
    return found


def _is_elf(path):
    """True for an executable file (not a script such as a pyenv shim, which runs
    whichever version pyenv selects under its own name)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def find_interpreters():
    """Every CPython 3 interpreter found at run time, sorted by version: pyenv builds
    (PIE, shared libpython) under each pyenv root, the distribution's /usr/bin/python3.X
    (non-PIE, static libpython) and any other python3.X on PATH. One entry per
    executable file (symlinks and merged /bin, /usr/bin are one)."""
    if _interpreters_cache:
        return list(_interpreters_cache)
    candidates = []
    for root in pyenv_roots():
        candidates += [(p, "pyenv") for p in
                       sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin", "python3.*")))]
    candidates += [(p, "debian") for p in sorted(glob.glob("/usr/bin/python3.*"))]
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            candidates += [(p, "path") for p in
                           sorted(glob.glob(os.path.join(directory, "python3.*")))]
    seen = set()
    found = []
    for path, kind in candidates:
        if not re.search(r"/python3\.\d+$", path) or not os.access(path, os.X_OK):
            continue
        real = os.path.realpath(path)
        if real in seen or not _is_elf(real):
            continue
        seen.add(real)
        version = _version_of(path)
        if version:
            found.append(Interpreter(path, version, kind))
    found += _root_interpreters()
    found.sort(key=lambda i: (i.version, i.kind, i.debug))
    _interpreters_cache.extend(found)
    return list(found)


def _root_interpreters():
    """The python3.X and python3.Xd (debug) executables of python_root(), run
    through chroot (root only: chroot needs CAP_SYS_CHROOT)."""
    root = python_root()
    if not root or os.geteuid() != 0:
        return []
    kind = os.path.basename(root.rstrip("/"))
    found = []
    for host in sorted(glob.glob(os.path.join(root, "usr", "bin", "python3.*"))):
        name = os.path.basename(host)
        m = re.fullmatch(r"python3\.\d+(d?)", name)
        if not m or os.path.islink(host) or not _is_elf(host):
            continue
        path = "/usr/bin/" + name
        version = _version_of(path, ["chroot", root])
        if version:
            found.append(Interpreter(path, version, kind, root, bool(m.group(1))))
    return found


def distribution_python():
    """The distribution's python3 as the executable it links to (e.g. /usr/bin/python3.11,
    whose comm is python3.11): the interpreter Debian's python3-django and gunicorn are
    installed for (scripts/deps.sh test). /usr/bin/python3 when it is missing, so that
    the tests needing it fail naming it."""
    return os.path.realpath("/usr/bin/python3")


def parse_py_frame(frame):
    """The PyFrame of a folded Python frame, or None for native/kernel/special frames."""
    if frame.endswith("_[k]"):
        return None
    m = PY_FRAME_RE.match(frame)
    if not m:
        return None
    line = m.group("line")
    return PyFrame(m.group("module"), m.group("qualname"), m.group("filename"),
                   int(line) if line is not None else None)


def is_python_frame(frame):
    return parse_py_frame(frame) is not None


def names_function(frame, name):
    """True when frame is a Python frame of function `name` (co_name or the last
    component of co_qualname)."""
    py = parse_py_frame(frame)
    return py is not None and (py.qualname == name or py.qualname.endswith("." + name))


def has_function(frames, name):
    return any(names_function(f, name) for f in frames[1:])


def function_count(frames, name):
    """How many frames of the stack belong to Python function `name`."""
    return sum(1 for f in frames[1:] if names_function(f, name))


def python_frames(frames):
    return [f for f in frames[1:] if is_python_frame(f)]


def innermost_python(frames):
    """The leafmost Python frame of a stack as PyFrame, or None."""
    for f in reversed(frames[1:]):
        py = parse_py_frame(f)
        if py:
            return py
    return None


def called_from(frames, caller, callee):
    """True when Python function `caller` is the Python frame right above `callee`."""
    py = [parse_py_frame(f) for f in frames[1:]]
    py = [p.qualname.rsplit(".", 1)[-1] for p in py if p]
    return any(py[i] == caller and py[i + 1] == callee for i in range(len(py) - 1))


def of_file(prof, path):
    """The stacks with at least one Python frame from file `path`."""
    return Folded([(frames, n) for frames, n in prof.stacks
                   if any((parse_py_frame(f) or PyFrame("", "", "", 0)).filename == path
                          for f in frames[1:])])


def hot_line_number(script):
    """The line number of the `# HOT-LINE` marker in a workload script."""
    with open(script) as f:
        for lineno, line in enumerate(f, 1):
            code, sep, comment = line.partition("#")
            if sep and code.strip() and comment.strip() == "HOT-LINE":
                return lineno
    raise AssertionError(f"no # HOT-LINE marker in {script}")


class ChildProc:
    """A subprocess.Popen of `unshare --fork ...` that stands for the child it
    forked (the interpreter): pid, signals and kill go to the child; waiting,
    pipes and the exit code are the unshare process's (it exits with the child)."""

    def __init__(self, popen, timeout=READY_TIMEOUT):
        self.popen = popen
        self.pid = None
        deadline = time.monotonic() + timeout
        while self.pid is None and time.monotonic() < deadline and popen.poll() is None:
            try:
                with open(f"/proc/{popen.pid}/task/{popen.pid}/children") as f:
                    children = f.read().split()
                self.pid = int(children[0]) if children else None
            except OSError:
                pass
            if self.pid is None:
                time.sleep(0.01)
        if self.pid is None:
            popen.kill()
            popen.wait()
            pytest.fail(f"{popen.args}: no child process within {timeout} s")

    def __getattr__(self, name):  # stdout, stderr, returncode, wait, poll, communicate
        return getattr(self.popen, name)

    def send_signal(self, sig):
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self):
        self.send_signal(signal.SIGKILL)
        self.popen.kill()


class PyRun:
    """One workload process: interpreter, script copy, process, truth file."""

    def __init__(self, interp, script, proc, truth_path):
        self.interp = interp          # the Interpreter running it
        self.script = script          # absolute path of its private script copy, as
                                      # the process sees it (its co_filename)
        self.proc = proc              # subprocess.Popen
        self.truth_path = truth_path  # where it writes its JSON at exit (host path)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=20):
        """SIGTERMs the run (if alive), waits, and returns its truth JSON."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"{self.interp.tag} {self.script} ignored SIGTERM")
        return self.truth()

    def snapshot(self, timeout=READY_TIMEOUT):
        """The run's measured seconds so far, from a workload that appends a JSON
        line to TRUTH.snapshots on SIGUSR1 (ground_truth.py)."""
        path = self.truth_path + ".snapshots"

        def lines():
            try:
                with open(path) as f:
                    return [line for line in f.read().split("\n") if line]
            except FileNotFoundError:
                return []
        n = len(lines())
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = lines()
            # A line still being written does not parse yet: read it again.
            if len(now) > n:
                try:
                    return json.loads(now[n])
                except ValueError:
                    pass
            time.sleep(0.02)
        pytest.fail(f"{self.interp.tag} {self.script} wrote no snapshot in {timeout} s")

    def truth(self):
        if not os.path.exists(self.truth_path):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            pytest.fail(f"{self.interp.tag} {self.script} wrote no {self.truth_path} "
                        f"(exit {self.proc.returncode}):\n{err}")
        with open(self.truth_path) as f:
            return json.load(f)


class PyWorkloads:
    """Starts Python workloads; none outlives the fixture that owns this object.

    Each run gets its own copy of the script under basedir/<tag>[-<n>]/, so the
    FILENAME in its frames tells runs of different interpreters apart within one
    capture (even two that share a comm, like pyenv and Debian python3.11), while
    the module name stays the workload's name. An interpreter in another root
    gets its copy in a directory of that root's /tmp, removed by close().
    """

    def __init__(self, basedir):
        self.basedir = basedir
        self.runs = []
        self.root_dirs = {}  # root -> the directory made in its /tmp (host path)

    def _basedir_for(self, interp):
        """basedir as interp's processes see it (a fresh directory in its root)."""
        if not interp.root:
            return self.basedir
        if interp.root not in self.root_dirs:
            self.root_dirs[interp.root] = tempfile.mkdtemp(
                prefix="dynoprof-test-", dir=os.path.join(interp.root, "tmp"))
        return "/" + os.path.relpath(self.root_dirs[interp.root], interp.root)

    def start(self, interp, workload, duration=120, *extra, wait_ready=True,
              relative=False, unshare=False):
        """Starts workload (e.g. "ground_truth") under interp; waits for "ready".

        relative: name the script relative to its directory (the process's cwd) on
        the command line, so its co_filename is relative where the interpreter keeps
        it so (3.8; 3.9+ make the main script's path absolute).
        unshare: an interpreter of a root runs in its own mount and PID namespaces
        (Interpreter.command); run.pid is its host pid.
        """
        n = len(self.runs)
        rundir = os.path.join(self._basedir_for(interp), f"{workload}-{interp.tag}-{n}")
        os.makedirs(interp.host_path(rundir))
        script = os.path.join(rundir, workload + ".py")
        shutil.copyfile(os.path.join(PY_WORKLOAD_DIR, workload + ".py"),
                        interp.host_path(script))
        truth_path = os.path.join(rundir, "truth.json")
        argv_script = os.path.basename(script) if relative else script
        proc = subprocess.Popen(interp.command(rundir, unshare=unshare) +
                                [argv_script, truth_path, str(duration)] +
                                [str(e) for e in extra], cwd=interp.host_path(rundir),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if unshare and interp.root:
            proc = ChildProc(proc)
        run = PyRun(interp, script, proc, interp.host_path(truth_path))
        self.runs.append(run)
        if wait_ready:
            self.wait_ready(run)
        return run

    def wait_ready(self, run, timeout=READY_TIMEOUT):
        wait_for_ready_line(run.proc, f"{run.interp.tag} {run.script}", timeout)

    def close(self):
        for run in self.runs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
            for stream in (run.proc.stdout, run.proc.stderr):
                if stream:
                    stream.close()
        for directory in self.root_dirs.values():
            shutil.rmtree(directory, ignore_errors=True)
        self.root_dirs = {}


# ---- pprof (profile.proto) decoding, enough for samples, locations and labels ----

def _varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    """Yields (field_number, wire_type, value) of one message; value is an int for
    varints and fixed types, bytes for length-delimited fields."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value, pos = int.from_bytes(buf[pos:pos + 8], "little"), pos + 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = int.from_bytes(buf[pos:pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"pprof: unsupported wire type {wire}")
        yield field, wire, value


def _ints(wire, value):
    """A repeated integer field's values, packed or not."""
    if wire != 2:
        return [value]
    out, pos = [], 0
    while pos < len(value):
        v, pos = _varint(value, pos)
        out.append(v)
    return out


PprofSample = namedtuple("PprofSample", "frames values labels")
PprofFrame = namedtuple("PprofFrame", "function filename line")


def decode_pprof(path):
    """The samples of a pprof file (gzipped or not): frames root first, as
    PprofFrame(function, filename, line); values; labels {key: str or int}."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    strings, functions, locations, raw_samples = [], {}, {}, []
    for field, wire, value in _fields(data):
        if field == 6:
            strings.append(value.decode("utf-8", "replace"))
        elif field == 5:
            fn = {}
            for f2, _, v2 in _fields(value):
                fn[f2] = v2
            functions[fn.get(1, 0)] = fn
        elif field == 4:
            loc = {"lines": []}
            for f2, _, v2 in _fields(value):
                if f2 == 1:
                    loc["id"] = v2
                elif f2 == 4:
                    loc["lines"].append({f3: v3 for f3, _, v3 in _fields(v2)})
            locations[loc.get("id", 0)] = loc
        elif field == 2:
            raw_samples.append(value)

    def string(i):
        return strings[i] if 0 <= i < len(strings) else ""

    samples = []
    for raw in raw_samples:
        loc_ids, values, labels = [], [], {}
        for field, wire, value in _fields(raw):
            if field == 1:
                loc_ids += _ints(wire, value)
            elif field == 2:
                values += _ints(wire, value)
            elif field == 3:
                lab = {f2: v2 for f2, _, v2 in _fields(value)}
                key = string(lab.get(1, 0))
                labels[key] = string(lab[2]) if lab.get(2) else lab.get(3, 0)
        frames = []  # leaf first while collecting
        for loc_id in loc_ids:
            for line in locations.get(loc_id, {"lines": []})["lines"]:
                fn = functions.get(line.get(1, 0), {})
                frames.append(PprofFrame(string(fn.get(2, 0)), string(fn.get(4, 0)),
                                         line.get(2, 0)))
        samples.append(PprofSample(list(reversed(frames)), values, labels))
    return samples
