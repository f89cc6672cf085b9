"""Helpers for the agent and diff integration tests (test_agent.py, test_diff.py)
and the agent benchmark (tests/bench/bench_agent.py).

  Agent(tmpdir, config={...})   `dynoprof agent --config FILE` on 127.0.0.1:<free
                                port> with a temporary database; .start() waits for
                                /healthz, .get(path) -> (status, body bytes),
                                .stop() SIGTERMs it and asserts exit 0, .kill9(),
                                .reload(config) rewrites the file and SIGHUPs it
  TaggedApps(tmpdir)            tests/workloads/py/tagged_app.py processes with
                                dynotag loaded: .start(seconds, commit=..., extra=...)
                                -> TaggedRun (.wait_ready(), .snapshot() -> truth so
                                far, .stop() / .wait() -> truth)
  Prometheus(tmpdir, target)    /usr/bin/prometheus scraping target every second;
                                .query(expr) -> the result vector
  http_get(url, token=None, method="GET") -> (status, body bytes); (None, reason)
                                when nothing answered
  cpu_per_request(truths, endpoint)  seconds of CPU per request from workload truths
  truth_delta(before, after)    the truth between two TaggedRun.snapshot()s

Every process a helper starts is killed when the test's fixture closes it, also
when the test fails half way.
"""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from pyutil import distribution_python

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DYNOPROF = os.path.abspath(os.environ.get("DYNOPROF", os.path.join(REPO_ROOT, "dynoprof")))
DYNOTAG_PYTHON_DIR = os.path.join(REPO_ROOT, "libdynotag", "python")
DYNOTAG_LIBRARY = os.path.abspath(os.environ.get("DYNOTAG_LIBRARY") or os.path.join(
    REPO_ROOT, ".output", "libdynotag", "libdynotag.so.1"))
TAGGED_APP = os.path.join(REPO_ROOT, "tests", "workloads", "py", "tagged_app.py")
# The distribution's CPython: dynoprof walks its frames; its comm is python3.11.
APP_PYTHON = distribution_python()
PROMETHEUS = "/usr/bin/prometheus"
START_TIMEOUT = 40


class HelperError(AssertionError):
    """A helper could not do its job (the message says what happened)."""


def fail(message):
    """Fails the current test (pytest) or stops the script (the benchmark)."""
    pytest = sys.modules.get("pytest")
    if pytest is not None:
        pytest.fail(message)
    raise HelperError(message)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, token=None, method="GET", timeout=30, data=None):
    """(status, body bytes) of a request, or (None, reason) when nothing answered."""
    req = urllib.request.Request(url, method=method, data=data)
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, urllib.error.URLError) as e:
        return None, str(e)


def wait_until(predicate, timeout, interval=0.2):
    """Polls predicate() until it returns a true value or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def write_config(path, config):
    """Writes `key = value` lines (dict order)."""
    with open(path, "w") as f:
        f.write("# written by tests/integration/agentutil.py\n")
        for key, value in config.items():
            f.write("%s = %s\n" % (key, value))


class Agent:
    """`dynoprof agent --config FILE` with its own port, database and config file.

    config: keys to set on top of listen (127.0.0.1:<free port>), database
    (<tmpdir>/<name>.db) and window (1 s). args: extra command-line flags.
    token: the bearer token to send (when the config sets token_file).
    The agent's stderr is collected by a thread (.stderr).
    """

    def __init__(self, tmpdir, config=None, args=(), name="agent", token=None):
        self.tmpdir = tmpdir
        self.name = name
        self.config_path = os.path.join(tmpdir, name + ".conf")
        self.database = os.path.join(tmpdir, name + ".db")
        self.extra = dict(config or {})
        self.args = [str(a) for a in args]
        self.token = token
        self.port = None
        self.proc = None
        self.lines = []
        self._reader = None
        self.returncode = None

    # ---- lifecycle ----

    def config(self):
        """The config the file holds: defaults of the tests + self.extra."""
        c = {"listen": "127.0.0.1:%d" % self.port, "database": self.database, "window": 1}
        c.update(self.extra)
        return c

    def launch(self):
        """Starts the process without waiting for it (for tests of start-up errors)."""
        if self.port is None:
            self.port = free_port()
        write_config(self.config_path, self.config())
        self.lines = []
        self.proc = subprocess.Popen([DYNOPROF, "agent", "--config", self.config_path] +
                                     self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        return self

    def _read(self, proc):
        for line in proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self):
        return "".join(self.lines)

    def start(self, timeout=START_TIMEOUT):
        """Starts the agent and returns once /healthz answers 200. A port taken
        between the probe and the agent's bind is retried on a new port."""
        for attempt in range(3):
            self.launch()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                status, _ = self.get("/healthz", timeout=2)
                if status == 200:
                    return self
                time.sleep(0.1)
            if self.proc.poll() is None:
                self.kill9()
                fail("agent did not answer /healthz within %ds:\n%s" % (timeout, self.stderr))
            self.proc.wait()
            self._reader.join(5)
            if "in use" in self.stderr and attempt < 2:
                self.port = None
                continue
            fail("agent exited with %s at start:\n%s" % (self.proc.returncode, self.stderr))
        return self

    def restart(self, timeout=START_TIMEOUT):
        """Starts again on the same port, config and database."""
        return self.start(timeout)

    def stop(self, timeout=30):
        """SIGTERM; asserts that the agent exits 0 and says it flushed. Returns stderr."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            fail("agent ignored SIGTERM for %ds:\n%s" % (timeout, self.stderr))
        self._reader.join(5)
        assert self.returncode == 0, "agent exited %d after SIGTERM:\n%s" % (
            self.returncode, self.stderr)
        assert "flushed" in self.stderr, "no 'flushed' after SIGTERM:\n" + self.stderr
        return self.stderr

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._reader:
            self._reader.join(5)

    def close(self):
        """Teardown: kills the agent if it still runs (no assertion)."""
        self.kill9()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, **changes):
        """Applies changes to the config file (value None removes a key) and SIGHUPs."""
        for key, value in changes.items():
            if value is None:
                self.extra.pop(key, None)
            else:
                self.extra[key] = value
        write_config(self.config_path, self.config())
        self.signal(signal.SIGHUP)

    def wait_log(self, pattern, timeout=15, start=0):
        """The first stderr line from line index `start` matching regex pattern, or None."""
        rx = re.compile(pattern)

        def found():
            for line in self.lines[start:]:
                if rx.search(line):
                    return line
            return None
        return wait_until(found, timeout, 0.1)

    # ---- HTTP ----

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path, token="default", method="GET", timeout=60, data=None):
        """(status, body bytes) of a request; token "default" sends self.token."""
        return http_get(self.url(path), self.token if token == "default" else token,
                        method=method, timeout=timeout, data=data)

    def get_ok(self, path, timeout=60):
        """The body of a GET that must answer 200."""
        status, body = self.get(path, timeout=timeout)
        assert status == 200, "GET %s -> %s: %r\nagent stderr:\n%s" % (
            path, status, body[:500], self.stderr[-3000:])
        return body

    def get_json(self, path, timeout=60):
        body = self.get_ok(path, timeout)
        try:
            return json.loads(body)
        except ValueError as e:
            fail("GET %s: not JSON (%s): %r" % (path, e, body[:1000]))

    def healthz(self):
        return self.get_json("/healthz")

    def metrics(self):
        """{(name, frozenset(labels.items())): value} of /metrics."""
        return parse_metrics(self.get_ok("/metrics").decode())

    def groups(self, by="endpoint", **params):
        """The groups of /api/v1/groups?by=..."""
        q = dict(params, by=by)
        return self.get_json("/api/v1/groups?" + urllib.parse.urlencode(q))["groups"]


METRIC_LINE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """The samples of a Prometheus text exposition, failing on a malformed line."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_LINE_RE.match(line)
        if not m:
            fail("malformed /metrics line: %r" % line)
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


def metric_values(samples, name, **labels):
    """[(labels dict, value)] of metric `name` whose labels include `labels`."""
    out = []
    for (n, labs), value in samples.items():
        d = dict(labs)
        if n == name and all(d.get(k) == v for k, v in labels.items()):
            out.append((d, value))
    return out


# ---- the tagged workload ----

def app_env(service=None, commit=None, extra=None, env=None):
    """The environment of a tagged_app process."""
    e = dict(os.environ)
    for name in ("PYTHONHOME", "PYTHONSTARTUP", "DYNOPROF_COMMIT", "GIT_COMMIT",
                 "SOURCE_VERSION", "DYNOPROF_TAGS", "DYNOPROF_SERVICE", "DYNOPROF_ENV",
                 "TAGGED_APP_ENDPOINTS", "TAGGED_APP_EXTRA", "TAGGED_APP_UNIT",
                 "TAGGED_APP_SLEEP_MS"):
        e.pop(name, None)
    e["PYTHONPATH"] = DYNOTAG_PYTHON_DIR
    e["DYNOTAG_LIBRARY"] = DYNOTAG_LIBRARY
    if service:
        e["DYNOPROF_SERVICE"] = service
    if commit:
        e["DYNOPROF_COMMIT"] = commit
    if extra:
        e["TAGGED_APP_EXTRA"] = ",".join("%s=%s" % kv for kv in extra.items())
    e.update(env or {})
    return e


class TaggedRun:
    """One tagged_app process."""

    def __init__(self, proc, truth_path):
        self.proc = proc              # subprocess.Popen (stdout, stderr: text pipes)
        self.truth_path = truth_path  # where it writes its truth at exit

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.strip() == "ready":
                    return self
                if line == "":
                    break
        self.proc.kill()
        out, err = self.proc.communicate()
        fail("tagged_app pid %d never printed ready (exit %s):\n%s\n%s"
             % (self.proc.pid, self.proc.returncode, out, err))

    def wait(self, timeout=120):
        """Waits for the end of its run; returns its truth."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("tagged_app pid %d ran past its duration" % self.proc.pid)
        return self.truth()

    def stop(self, timeout=30):
        """Ends the run now (SIGTERM) and returns its truth."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def snapshot(self, timeout=10):
        """The truth so far (SIGUSR1 makes the process write it)."""
        self.snapshots = getattr(self, "snapshots", 0) + 1
        path = "%s.%d" % (self.truth_path, self.snapshots)
        if os.path.exists(path):
            os.unlink(path)
        self.proc.send_signal(signal.SIGUSR1)
        if not wait_until(lambda: os.path.exists(path), timeout, 0.02):
            fail("tagged_app pid %d wrote no snapshot %s" % (self.proc.pid, path))
        with open(path) as f:
            return json.load(f)

    def truth(self):
        if not os.path.exists(self.truth_path):
            err = self.proc.stderr.read() if self.proc.stderr else ""
            fail("tagged_app pid %d wrote no truth (exit %s):\n%s"
                 % (self.proc.pid, self.proc.returncode, err))
        with open(self.truth_path) as f:
            return json.load(f)


class TaggedApps:
    """Starts tagged_app processes; close() kills those still running."""

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self.runs = []

    def start(self, seconds, service=None, commit=None, extra=None, env=None,
              wait_ready=True, cpus=None):
        """Starts `tagged_app.py seconds truth.json`. extra: {endpoint: fraction} of
        extra work; env: more variables (e.g. TAGGED_APP_ENDPOINTS); cpus: a set of
        CPUs to pin it to."""
        if not os.path.exists(DYNOTAG_LIBRARY):
            fail("%s not built: run `make libdynotag`" % DYNOTAG_LIBRARY)
        truth = os.path.join(self.tmpdir, "truth-%d.json" % len(self.runs))
        proc = subprocess.Popen([APP_PYTHON, TAGGED_APP, str(seconds), truth],
                                env=app_env(service, commit, extra, env),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus
                                else None)
        run = TaggedRun(proc, truth)
        self.runs.append(run)
        if wait_ready:
            run.wait_ready()
        return run

    def close(self):
        for run in self.runs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
            for stream in (run.proc.stdout, run.proc.stderr):
                if stream:
                    stream.close()


def truth_delta(before, after):
    """The truth of the time between two snapshots of one process."""
    endpoints = {}
    for name, entry in after["endpoints"].items():
        old = before["endpoints"].get(name, {"requests": 0, "cpu_s": 0.0})
        endpoints[name] = dict(entry, requests=entry["requests"] - old["requests"],
                               cpu_s=entry["cpu_s"] - old["cpu_s"])
    return {"pid": after["pid"], "endpoints": endpoints,
            "cpu_s": after["cpu_s"] - before["cpu_s"]}


def cpu_per_request(truths, endpoint):
    """Thread CPU seconds per request of endpoint, summed over workload truths."""
    cpu = sum(t["endpoints"][endpoint]["cpu_s"] for t in truths)
    requests = sum(t["endpoints"][endpoint]["requests"] for t in truths)
    return cpu / requests


# ---- Prometheus ----

class Prometheus:
    """/usr/bin/prometheus on 127.0.0.1:<free port>, scraping `target` (host:port)
    every second, with its TSDB under tmpdir."""

    def __init__(self, tmpdir, target):
        self.tmpdir = tmpdir
        self.target = target
        self.port = None
        self.proc = None
        self.log_path = os.path.join(tmpdir, "prometheus.log")
        self._log = None

    def config_text(self):
        """prometheus.yml: scrape the target every second (subclasses add to it)."""
        return ("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                "scrape_configs:\n  - job_name: dynoprof\n    scrape_interval: 1s\n"
                "    scrape_timeout: 1s\n    static_configs:\n"
                "      - targets: ['%s']\n" % self.target)

    def start(self, timeout=60):
        config = os.path.join(self.tmpdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(self.config_text())
        for _ in range(3):
            self.port = free_port()
            self._log = open(self.log_path, "a")
            self.proc = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + config,
                 "--storage.tsdb.path=" + os.path.join(self.tmpdir, "prom-data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--storage.tsdb.retention.time=1h"],
                stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                status, _ = http_get("http://127.0.0.1:%d/-/ready" % self.port, timeout=2)
                if status == 200:
                    return self
                time.sleep(0.2)
            self.stop()
        fail("prometheus did not become ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def query(self, expr):
        """The result of an instant query: [(labels dict, float value)]."""
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.port, urllib.parse.urlencode({"query": expr}))
        status, body = http_get(url, timeout=10)
        if status != 200:
            fail("prometheus query %s -> %s: %r" % (expr, status, body[:500]))
        doc = json.loads(body)
        assert doc["status"] == "success", doc
        return [(r["metric"], float(r["value"][1])) for r in doc["data"]["result"]]

    def targets_health(self):
        status, body = http_get("http://127.0.0.1:%d/api/v1/targets" % self.port, timeout=10)
        if status != 200:
            return []
        return [(t["health"], t.get("lastError", ""))
                for t in json.loads(body)["data"]["activeTargets"]]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None


def proc_cpu_ticks(pid):
    """utime+stime of a process in clock ticks, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])


def proc_rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit("agentutil.py is a helper module (see its docstring)")
