"""Helpers for the tag and counting tests (test_tags.py, test_counting.py): the
Django test app (tests/apps/djangoapp) under gunicorn, wrk load, and a
`dynoprof record` running in the background.

  GunicornApp(tmpdir, ...)   .start() serves the app on 127.0.0.1:<free port>
                             and waits until every worker answers; .pids(),
                             .url(path), .warm_up(), .stats(), .stop()
  Wrk(url, seconds, ...)     one wrk run in the background; .result() ->
                             WrkResult(requests, errors, non2xx, seconds, text)
  Recording(args)            `dynoprof record ...` in the background; .wait_started()
                             returns once it prints that it is sampling;
                             .stop() ends it early (SIGINT) and returns (rc, stderr)
  parse_by_table(text)       the rows of `dynoprof report --by KEYS`
  python_script(tmpdir, name, code) / start_python(...)  a Python program with
                             dynotag importable and libdynotag loaded
"""
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import namedtuple

import pytest

from conftest import REPO_ROOT, _binary_path
from pyutil import distribution_python

APPS_DIR = os.path.join(REPO_ROOT, "tests", "apps")
DYNOTAG_PYTHON_DIR = os.path.join(REPO_ROOT, "libdynotag", "python")
DYNOTAG_LIBRARY = os.path.abspath(os.environ.get("DYNOTAG_LIBRARY") or os.path.join(
    REPO_ROOT, ".output", "libdynotag", "libdynotag.so.1"))
# gunicorn and Django are Debian packages, both for the distribution's Python.
GUNICORN = "/usr/bin/gunicorn"
APP_PYTHON = distribution_python()
WRK = "/usr/bin/wrk"
# Work per request of the app's endpoints (tests/apps/djangoapp/views.py).
ENDPOINTS = ("light", "medium", "heavy")
COST = {"light": 1, "medium": 3, "heavy": 9}
READY_TIMEOUT = 30

WrkResult = namedtuple("WrkResult", "requests errors non2xx seconds text")


def require_app_tools():
    """Fails (with what to install) when gunicorn, Django, wrk or libdynotag are missing."""
    missing = [p for p in (GUNICORN, APP_PYTHON, WRK) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail("missing %s: apt-get install gunicorn python3-django wrk" % missing)
    if not os.path.exists(DYNOTAG_LIBRARY):
        pytest.fail("%s not built: run `make libdynotag`" % DYNOTAG_LIBRARY)


def app_env(extra=None, middleware=False, stats_dir=None):
    """The environment of a process of the app (or of a script using dynotag)."""
    env = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONSTARTUP", "DYNOPROF_COMMIT", "GIT_COMMIT",
                 "SOURCE_VERSION", "DYNOPROF_TAGS", "DYNOPROF_SERVICE", "DYNOPROF_ENV"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([DYNOTAG_PYTHON_DIR, APPS_DIR])
    env["DYNOTAG_LIBRARY"] = DYNOTAG_LIBRARY
    env["DJANGO_SETTINGS_MODULE"] = "djangoapp.settings"
    env["DYNOTAG_MIDDLEWARE"] = "1" if middleware else "0"
    if stats_dir:
        env["DJANGOAPP_STATS_DIR"] = stats_dir
    env.update(extra or {})
    return env


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """The pids of pid's child processes."""
    found = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return found
    for tid in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                found += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return found


def http_get(url, timeout=5):
    """(status, body) of a GET, or (None, reason) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as e:
        return None, str(e)


class GunicornApp:
    """The Django test app under /usr/bin/gunicorn on 127.0.0.1:<free port>.

    workers sync processes (or gthread ones with `threads` threads each when
    threads > 1); middleware adds dynotag's Django middleware; env adds
    variables (e.g. DYNOPROF_COMMIT). Each worker writes its truth to
    <tmpdir>/stats-<n>/<pid>.json (see views.py); stats() sums them.
    """

    def __init__(self, tmpdir, workers=2, threads=1, middleware=True, env=None, name="app",
                 app="djangoapp.wsgi:application"):
        require_app_tools()
        self.app = app  # the WSGI application gunicorn serves (tests/apps/...)
        self.workers = workers
        self.threads = threads
        self.stats_dir = os.path.join(tmpdir, "stats-" + name)
        os.makedirs(self.stats_dir, exist_ok=True)
        self.log_path = os.path.join(tmpdir, "gunicorn-%s.log" % name)
        self.env = app_env(env, middleware=middleware, stats_dir=self.stats_dir)
        self.port = None
        self.proc = None
        self._log = None

    def url(self, path):
        return "http://127.0.0.1:%d/%s" % (self.port, path.lstrip("/"))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    SERVER = "gunicorn"

    def command(self, port):
        """The server's command line serving self.app on 127.0.0.1:port."""
        cmd = [GUNICORN, "--bind", "127.0.0.1:%d" % port, "--chdir", APPS_DIR,
               "--workers", str(self.workers), "--timeout", "120",
               "--graceful-timeout", "5", "--log-level", "warning"]
        if self.threads > 1:
            cmd += ["--worker-class", "gthread", "--threads", str(self.threads)]
        else:
            cmd += ["--worker-class", "sync"]
        return cmd + [self.app]

    def start(self):
        for _ in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            self._log = open(self.log_path, "a")
            self.proc = subprocess.Popen(self.command(self.port), env=self.env,
                                         stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT)
            if self._wait_ready():
                return self
            self.stop()
        pytest.fail("%s did not become ready:\n" % self.SERVER + self.log())

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if len(self.worker_pids()) == self.workers:
                status, _ = http_get(self.url("stats"), timeout=2)
                if status == 200:
                    return True
            time.sleep(0.1)
        return False

    def worker_pids(self):
        return children(self.proc.pid) if self.proc else []

    def pids(self):
        """The master and every worker: what `record -p` needs."""
        return [self.proc.pid] + self.worker_pids()

    def warm_up(self, seconds=1):
        """Loads every endpoint for `seconds` (first requests import and compile
        lazily, which is not what the tests measure). On a busy machine a first
        request outlasts such a run: each endpoint then gets 2 x workers x threads
        concurrent requests, each waited for (60 s at most), instead."""
        runs = [Wrk(self.url(e), seconds, threads=1, connections=2 * self.workers)
                for e in ENDPOINTS]
        results = [run.result() for run in runs]
        for r in results:
            if r.requests:
                check_wrk(r)
        if all(r.requests for r in results):
            return
        answers = []

        def get(url):
            answers.append((url,) + http_get(url, timeout=60))
        getters = [threading.Thread(target=get, args=(self.url(e),))
                   for e in ENDPOINTS for _ in range(2 * self.workers * self.threads)]
        for t in getters:
            t.start()
        for t in getters:
            t.join()
        for url, status, body in answers:
            assert status == 200, "GET %s -> %s: %r" % (url, status, str(body)[:300])

    def stats_per_pid(self):
        """{pid: {endpoint: {"requests", "cpu_s"}}} from the workers' files."""
        result = {}
        for name in os.listdir(self.stats_dir):
            if not name.endswith(".json"):
                continue
            try:
                with open(os.path.join(self.stats_dir, name)) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                continue
            result[doc["pid"]] = doc["endpoints"]
        return result

    def stats(self, settle=0.4):
        """{endpoint: {"requests": n, "cpu_s": s}} summed over workers, after
        the workers had time to flush what they counted."""
        time.sleep(settle)
        total = {}
        for endpoints in self.stats_per_pid().values():
            for name, entry in endpoints.items():
                acc = total.setdefault(name, {"requests": 0, "cpu_s": 0.0})
                for key, value in entry.items():  # also whole_requests, whole_cpu_s
                    acc[key] = acc.get(key, 0) + value
        return total

    def stop(self):
        if self.proc is None:
            return
        workers = self.worker_pids()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._log:
            self._log.close()
            self._log = None


class Wrk:
    """One `wrk` run in the background for `seconds` against url."""

    def __init__(self, url, seconds, threads=2, connections=4, script=None):
        # wrk takes whole seconds only.
        cmd = [WRK, "-t%d" % threads, "-c%d" % connections, "-d%ds" % max(1, round(seconds)),
               "--timeout", "10s", url]
        if script:
            cmd[1:1] = ["-s", script]
        self.url = url
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)

    def result(self, timeout=60):
        out, _ = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            pytest.fail("%s failed (rc=%d):\n%s" % (" ".join(self.cmd), self.proc.returncode, out))
        return parse_wrk(out)


WRK_REQUESTS_RE = re.compile(r"^\s*(\d+) requests in ([\d.]+)(ms|s|m)\b", re.M)
WRK_NON2XX_RE = re.compile(r"Non-2xx or 3xx responses: (\d+)")
WRK_ERRORS_RE = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(text):
    m = WRK_REQUESTS_RE.search(text)
    if not m:
        pytest.fail("no request count in wrk's output:\n" + text)
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(3)]
    non2xx = WRK_NON2XX_RE.search(text)
    errors = WRK_ERRORS_RE.search(text)
    return WrkResult(requests=int(m.group(1)),
                     errors=sum(int(x) for x in errors.groups()) if errors else 0,
                     non2xx=int(non2xx.group(1)) if non2xx else 0,
                     seconds=float(m.group(2)) * scale, text=text)


def check_wrk(result):
    """Fails on failed requests (a test app that errors proves nothing)."""
    assert result.requests > 0, result.text
    assert result.non2xx == 0, "the app answered errors:\n" + result.text
    # Closing connections at the end of a run may count a few read errors.
    assert result.errors <= max(5, result.requests // 100), result.text


class Recording:
    """`dynoprof record ARGS` in the background. Its stderr is collected by a
    thread, so the process never blocks on a full pipe."""

    def __init__(self, *args):
        self.cmd = [_binary_path()] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.started = threading.Event()
        self.started_at = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stdout = ""

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if line.startswith("dynoprof: sampling") and not self.started.is_set():
                self.started_at = time.monotonic()
                self.started.set()
        self.started.set()

    @property
    def stderr(self):
        return "".join(self.lines)

    def wait_started(self, timeout=30):
        """Returns once dynoprof samples (it prints "dynoprof: sampling ...")."""
        self.started.wait(timeout)
        if self.proc.poll() is not None or self.started_at is None:
            self.finish()
            pytest.fail("record did not start sampling (rc=%s): %s\n%s"
                        % (self.proc.returncode, " ".join(self.cmd), self.stderr))
        return self

    def stop(self, timeout=60):
        """Ends the capture now (SIGINT, as Ctrl-C) and waits; (rc, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.finish(timeout)

    def finish(self, timeout=60):
        """Waits for the end of the capture; (rc, stderr)."""
        try:
            self.stdout = self.proc.stdout.read() if self.proc.stdout else ""
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("record did not finish: %s\n%s" % (" ".join(self.cmd), self.stderr))
        self._reader.join(5)
        return self.proc.returncode, self.stderr

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def record_during(app_pids, out, record_seconds, run_load, extra=(), prime=None):
    """Records app_pids (`-d record_seconds`: a bound, the capture is stopped)
    while run_load() runs, started once dynoprof samples; prime: a URL loaded
    for 1 s first (dynoprof finds a process's libdynotag only some time after
    its first sample). run_load returns {url: WrkResult} and returns when the
    capture should end. Checks record's exit and every wrk result; returns
    ({url: WrkResult}, stderr). record_load and loadutil.record_until_served
    are its two loads."""
    rec = Recording("record", "-p", ",".join(map(str, app_pids)), "-d", record_seconds,
                    "-o", out, *extra)
    try:
        rec.wait_started()
        if prime:
            check_wrk(Wrk(prime, 1, threads=1, connections=4).result())
        results = run_load()
        rc, err = rec.stop()
    finally:
        rec.kill()
    assert rc == 0, "record failed (rc=%d): %s\n%s" % (rc, " ".join(rec.cmd), err)
    for result in results.values():
        check_wrk(result)
    return results, err


def record_load(app_pids, out, loads, extra=(), seconds=6, settle=0.3, prime=None):
    """Records app_pids while the wrk runs `loads` (list of (url, kwargs)) run
    for `seconds`, all started once dynoprof samples; the capture ends
    `settle` s after the last wrk run. prime: a URL loaded for 1 s before
    (dynoprof finds a process's libdynotag only some time after its first
    sample). Returns ({url: WrkResult}, stderr)."""
    def run_load():
        runs = [(url, Wrk(url, seconds, **kwargs)) for url, kwargs in loads]
        results = {url: run.result() for url, run in runs}
        time.sleep(settle)
        return results

    return record_during(app_pids, out, seconds + 30, run_load, extra, prime)


# ---- `dynoprof report --by KEYS` ----

ByRow = namedtuple("ByRow", "values samples share cpu_s requests top")


def parse_by_table(text, keys):
    """The rows of `report --by KEYS` output as {values: ByRow}, values being the
    tuple of the group's tag values in KEYS order ("-" for "without that tag").

    The table: SAMPLES SHARE% CPU [INSTRUCTIONS] [REQUESTS CPU-ms/REQ|INSTR/REQ]
    then the group's values joined by ", " (left-aligned under the header of
    the keys) and, after two spaces, the top function.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].lstrip().startswith("SAMPLES"):
        pytest.fail("no --by table header in:\n" + text)
    header = lines[0]
    columns = header.split()
    head = ", ".join(keys)
    start = header.find("  " + head + " ")
    if start < 0:
        pytest.fail("no %r column in the --by header:\n%s" % (head, header))
    start += 2
    numeric = columns[:columns.index(head.split()[0])]
    rows = {}
    for line in lines[1:]:
        fields = line[:start].split()
        if len(fields) != len(numeric):
            pytest.fail("malformed --by row %r (columns %s)" % (line, numeric))
        by_name = dict(zip(numeric, fields))
        group, _, top = line[start:].partition("  ")
        values = tuple(v.strip() for v in group.strip().split(", "))
        if len(values) != len(keys):
            pytest.fail("--by row %r: %d values for keys %s" % (line, len(values), keys))
        requests = by_name.get("REQUESTS")
        rows[values] = ByRow(values, int(by_name["SAMPLES"]),
                             float(by_name["SHARE%"].rstrip("%")) / 100,
                             float(by_name["CPU"].rstrip("s")),
                             int(requests) if requests is not None else None, top.strip())
    return rows


# ---- Python programs with dynotag ----

def python_script(tmpdir, name, code):
    path = os.path.join(tmpdir, name)
    with open(path, "w") as f:
        f.write(code)
    return path


def start_python(script, *args, env=None, stdin=subprocess.DEVNULL):
    """Starts `/usr/bin/python3.11 script args` with dynotag importable and
    libdynotag loaded; stdout and stderr are pipes (text)."""
    return subprocess.Popen([APP_PYTHON, script] + [str(a) for a in args],
                            env=app_env(env), stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
