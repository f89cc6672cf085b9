"""The fleet-host test (issue 11): the agent on a host running a real Django app
under real gunicorn, through the churn of a real deploy, against the kernel's
own count of the CPU the app used.

The app (tests/apps/djangoapp, dynotag middleware: endpoint tags and request
counts) runs under gunicorn with 2 sync workers in a cgroup v2 of its own,
driven by wrk on loopback (/heavy and /medium, 2 connections each), its
processes tagged service=<unique name> and commit=<commit> (DYNOPROF_SERVICE,
DYNOPROF_COMMIT). Churn while it serves: workers recycled by --max-requests, a
`kill -HUP` reload of the master, a `kill -9` of a worker, a burst of 200
short-lived Python processes in the cgroup, and rolling deploys: the next
commit's gunicorn starts on the same port (SO_REUSEPORT), then the old one is
SIGTERMed. Deploy k makes one endpoint 15% more expensive (DJANGOAPP_EXTRA):
odd deploys /heavy, even deploys /medium; the other stays as it was.

Truth: the cgroup's cpu.stat usage_usec (it keeps the CPU of exited processes),
read every 10 ms with CLOCK_REALTIME stamps and interpolated at each of the
agent's window boundaries (start_ns/end_ns of its SQLite history: the HTTP API
does not tell where a window starts and ends); for the deploy checks, the
workers' own thread_time per endpoint.

Short variant (in `make test`): 2-s windows at 199 Hz, one deploy, checks over
30 s. Soak (`make soak`, SOAK_MINUTES, default 10): the agent at its default
frequency and window, checks over 180 s at its default confidence, each
commit's churn halfway through its check range and a deploy every ~3.5
minutes (at least two), 3 wrk connections to /medium and 1 to /heavy (about
equal CPU: either deploy's check has the same power), and the agent's own CPU
and RSS at start, middle and end; run with -s for the tables (each check's
samples per side and the sampling error they leave are printed beside its
interval).
"""
import math
import os
import re
import sqlite3
import threading
import time
import uuid

import pytest

from agentutil import Agent, TaggedApps, metric_values, wait_until
from apputil import free_port, python_script, start_python
from fleetutil import (AgentMonitor, Cgroup, FleetApp, Load, StatsRecorder, UsagePoller,
                       agent_windows, burst, regressions_list, remove_stale_cgroups)
from pyutil import decode_pprof

pytestmark = pytest.mark.slow

ENDPOINTS = ("heavy", "medium")
EXTRA = 0.15           # a deploy's extra work on its regressed endpoint
BURST = 200            # short-lived processes per burst
MIN_REQUESTS = 150     # per endpoint in the old commit's checked range
MAX_EXTRA_S = 60       # longest wait for them past the range itself
# Conservation bounds (see conservation_bound): over the run, 1%; per window,
# 1% plus what the sampling period leaves unassigned at each boundary.
TOTAL_BOUND = 0.01
# Deploy checks: a flag needs its interval above 0 at 99% and a point estimate
# of at least 5%, so an unchanged endpoint is not flagged by chance (a 95%
# interval misses one unchanged endpoint in forty by design) while +15% is.
# The soak's longer checks keep the agent's default confidence (95%, what
# issue 11 asks for): with ~2% sampling error the 5% minimum effect alone
# keeps an unchanged endpoint's false flag under 1%.
MIN_EFFECT = 0.05
CHECK_CONFIG = {"deploy_check_min_effect": MIN_EFFECT, "deploy_check_confidence": 0.99}
SOAK_CHECK_CONFIG = {"deploy_check_min_effect": MIN_EFFECT}
TRUTH_MARGIN = 0.05    # of a check's interval against the workers' truth
SWITCH_RE = re.compile(r"dynoprof agent: (\S+) switched commit (\S+) -> (\S+);")
SOAK = os.environ.get("DYNOPROF_SOAK") == "1"
# The agent's own footprint at its defaults in the soak (issue 11): CPU share
# of one core after warm-up (the first third: startup scans, first symbol
# tables), RSS at the end, and RSS growth from the middle to the end.
AGENT_CPU_MAX = 0.005
AGENT_RSS_MAX = 40 * 2 ** 20
AGENT_RSS_GROWTH_MAX = 2 * 2 ** 20


def commit_extra(k):
    """DJANGOAPP_EXTRA of commit k: /heavy grows 15% at odd deploys, /medium at
    even ones."""
    return {"heavy": round(1.15 ** ((k + 1) // 2) - 1, 6),
            "medium": round(1.15 ** (k // 2) - 1, 6)}


def regressed_endpoint(k):
    """The endpoint deploy k (commit k-1 -> k) made 15% more expensive."""
    return "heavy" if k % 2 else "medium"


NODATA_OLD = r"""
import time
end = time.monotonic() + float(__import__("sys").argv[1])
acc = 0
while time.monotonic() < end:
    for i in range(1000):
        acc = (acc * 31 + i) & 0xFFFFFFFF
"""


class Fleet:
    """One run of the scenario and everything it measured. close() kills every
    process it started and removes its cgroup, whatever state the run is in."""

    def __init__(self, tmpdir, agent_config, deploys, check_s, connections=None,
                 check_config=CHECK_CONFIG):
        remove_stale_cgroups()
        # wrk connections per endpoint (2 each unless told).
        self.connections = dict({e: 2 for e in ENDPOINTS}, **(connections or {}))
        self.tmpdir = tmpdir
        self.service = "fleet" + uuid.uuid4().hex[:8]
        self.nodata_service = self.service + "nd"
        self.deploys = deploys
        self.check_s = check_s
        self.window_s = float(agent_config["window"])
        self.commits = ["%s-c%d" % (self.service, k) for k in range(deploys + 1)]
        self.switches = []        # (k, unix ns the new master started, ns the old one ended)
        self.events = []          # (unix ns, what happened)
        self.apps = []
        self.load = None
        self.monitor = None
        self.tagged = TaggedApps(tmpdir)
        self.nodata_procs = []
        self.agent = Agent(tmpdir, config=dict(agent_config, **check_config), name="fleet")
        self.cgroup = Cgroup(self.service)
        self.poller = UsagePoller(self.cgroup)
        self.recorder = StatsRecorder()

    def close(self):
        if self.load:
            self.load.stop()
        for app in self.apps:
            app.stop()
        self.cgroup.kill_all()
        self.poller.stop()
        self.recorder.stop()
        if self.monitor:
            self.monitor.stop()
        self.cgroup.remove()
        for proc in self.nodata_procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.tagged.close()
        self.agent.close()

    def note(self, what):
        """Logs an event of the scenario; fails at once if the agent died."""
        self.events.append((time.time_ns(), what))
        self.check_agent(what)

    def check_agent(self, what):
        if not self.agent.alive():
            pytest.fail("the agent died (exit %s, %s) before: %s\n%s" % (
                self.agent.proc.returncode,
                "a crash" if (self.agent.proc.returncode or 0) < 0 else "its own exit",
                what, self.agent.stderr[-3000:]))

    # ---- the scenario ----

    def start_app(self, k):
        app = FleetApp(self.tmpdir, self.cgroup, self.port, self.service, self.commits[k],
                       extra=commit_extra(k))
        self.apps.append(app)
        started = time.time_ns()
        app.start()
        self.recorder.add(app)
        return app, started

    def run(self, monitor=False, final_churn=True, min_seconds=0, churn_in_ranges=False):
        """Commit 0: churn, then a steady base; then per deploy: the new commit
        steady until its check ran, churn, a steady base for the next deploy.
        (Churn outside the checked ranges keeps the checks' power on a busy
        machine; recycling by --max-requests and the rolling restart itself
        happen inside them.) churn_in_ranges: after commit 0, each commit's
        churn comes halfway through its check range, and its next deploy as
        soon as its check ran and it served a whole range: the range it was
        checked on is also the base of its own successor's check, so deploys
        come every check range (plus a window or two) instead of every two."""
        began = time.monotonic()
        self.agent.start()
        self.agent_started_ns = time.time_ns()
        if monitor:
            self.monitor = AgentMonitor(self.agent.proc.pid).start()
        self.poller.start()
        self.port = free_port()
        nodata = threading.Thread(target=self.run_nodata_deploy, daemon=True)
        nodata.start()
        app, _ = self.start_app(0)
        self.recorder.start()
        self.load = Load([app.url(e) for e in ENDPOINTS],
                         connections={app.url(e): self.connections[e] for e in ENDPOINTS}).start()
        deployed = None  # monotonic s of the last deploy
        for k in range(self.deploys + 1):
            if k and churn_in_ranges:
                time.sleep(max(0.0, deployed + self.check_s / 2 - time.monotonic()))
                self.churn(app)
            if k:
                self.wait_check(k)
            if k == self.deploys:
                if final_churn and not churn_in_ranges:
                    self.churn(app)
                break
            if k and churn_in_ranges:
                self.steady_base(app, began=deployed)
            else:
                self.churn(app)
                self.steady_base(app)
            app = self.rolling_deploy(app, k + 1)
            deployed = time.monotonic()
        remaining = min_seconds - (time.monotonic() - began)
        if remaining > 0:
            self.note("serving %.0f s more" % remaining)
            time.sleep(remaining)
        self.load.stop()
        app.terminate()
        self.note("stopped")
        assert self.cgroup.wait_empty(30), "cgroup not empty: %s" % self.cgroup.procs()
        nodata.join(60)
        self.emptied_ns = time.time_ns()
        # The windows holding the last CPU are closed: one ended a window
        # after the cgroup emptied.
        wait_until(lambda: any(w[1] > self.emptied_ns + self.window_s * 1e9 for w in
                               agent_windows(self.agent.database, self.service)),
                   3 * self.window_s + 30, 0.5)
        self.poller.stop()
        self.recorder.stop()
        if self.monitor:
            self.monitor.stop()
        self.collect()
        return self

    def wait_check(self, k):
        line = self.agent.wait_log(r"deploy check %s %s -> %s" % (
            self.service, self.commits[k - 1], self.commits[k]),
            timeout=self.check_s + 4 * self.window_s + 30)
        self.note("check %d logged" % k if line else "check %d NOT logged" % k)

    def churn(self, app):
        """A HUP, a kill -9 and a burst while the app serves."""
        app.hup()
        self.note("HUP %s" % app.commit)
        time.sleep(3)
        self.note("kill -9 worker %d of %s" % (app.kill9_worker(), app.commit))
        time.sleep(3)
        self.note("burst start")
        ok = burst(self.cgroup, BURST, {"DYNOPROF_SERVICE": self.service,
                                        "DYNOPROF_COMMIT": app.commit})
        self.note("burst end: %d of %d exited 0" % (ok, BURST))
        assert ok == BURST, "%d of %d burst processes failed" % (BURST - ok, BURST)

    def steady_base(self, app, began=None):
        """The old commit serves (recycling its workers) for at least a check
        range and two windows (from `began`, monotonic s, or now), and on until
        that range holds MIN_REQUESTS per endpoint (bounded: a starved machine
        gets a weaker check, not a hang)."""
        began = time.monotonic() if began is None else began
        span = self.check_s + 2 * self.window_s
        while True:
            time.sleep(1)
            self.check_agent("the steady base of %s" % app.commit)
            waited = time.monotonic() - began
            now = time.time_ns()
            served = {e: self.recorder.truth(app.commit, e, now - int(self.check_s * 1e9),
                                             now)[0] for e in ENDPOINTS}
            if waited >= span and (min(served.values()) >= MIN_REQUESTS or
                                   waited >= span + MAX_EXTRA_S):
                self.note("base of %s: %s requests in the last %gs" % (
                    app.commit, served, self.check_s))
                return

    def rolling_deploy(self, old, k):
        new, started = self.start_app(k)
        old.terminate()
        self.switches.append((k, started, time.time_ns()))
        self.note("deploy %s -> %s" % (old.commit, new.commit))
        return new

    def run_nodata_deploy(self):
        """A commit switch of another service whose old commit served no
        request: its check has nothing to compare on any endpoint."""
        script = python_script(self.tmpdir, "nodata_old.py", NODATA_OLD)
        # The old commit alone for at least a whole window: which ran first
        # is then a fact, not the order of two commits inside one window.
        old = start_python(script, 2 * self.window_s + 1,
                           env={"DYNOPROF_SERVICE": self.nodata_service,
                                "DYNOPROF_COMMIT": "nd-old"})
        self.nodata_procs.append(old)
        old.wait(timeout=60)
        # The new commit too runs in at least two windows (what makes a switch).
        self.tagged.start(2 * self.window_s + 1, service=self.nodata_service,
                          commit="nd-new").wait(timeout=120)

    # ---- what the agent and the kernel said ----

    def collect(self):
        a = self.agent
        self.windows = agent_windows(a.database, self.service)
        self.cgroup_total_ns = self.poller.values[-1]
        samples = a.metrics()
        self.prom_cpu_s = sum(v for _, v in metric_values(samples, "dynoprof_cpu_seconds_total",
                                                          service=self.service))
        q = {"by": "service", "service": self.service,
             "from": "%.3f" % (self.agent_started_ns / 1e9 - 1), "to": "%.3f" % (time.time())}
        groups = a.get_json("/api/v1/groups?" + "&".join("%s=%s" % kv for kv in q.items()))
        self.groups_cpu_ns = sum(g["cpu_ns"] for g in groups["groups"])
        path = os.path.join(self.tmpdir, "history.pb.gz")
        with open(path, "wb") as f:
            f.write(a.get_ok("/debug/pprof/profile?from=%s&to=%s&service=%s"
                             % (q["from"], q["to"], self.service)))
        self.pprof_cpu_ns = sum(s.values[1] for s in decode_pprof(path))
        self.checks = regressions_list(a.get_json("/api/v1/regressions"))
        self.log = a.stderr

    # ---- analysis ----

    def conservation_rows(self):
        """Per window overlapping the run: (start_ns, end_ns, agent s, cgroup s,
        relative error, bound s, unlabelled agent s)."""
        first = self.poller.times[0]
        rows = []
        for start, end, cpu, unlabelled in self.windows:
            if end <= first or start >= self.emptied_ns + self.window_s * 1e9:
                continue
            truth = self.poller.between(start, end) / 1e9
            agent = cpu / 1e9
            err = (agent - truth) / truth if truth > 0 else float("inf") if agent else 0.0
            rows.append((start, end, agent, truth, err,
                         conservation_bound(truth, self.frequency), unlabelled / 1e9))
        return rows

    def print_conservation(self, title):
        rows = self.conservation_rows()
        t0 = rows[0][0] if rows else 0
        print("\n%s: service %s, %d windows (agent vs cgroup cpu.stat)" % (
            title, self.service, len(rows)))
        print("%8s %7s %9s %9s %8s %8s %9s  %s" % ("START_S", "LEN_S", "AGENT_S", "CGROUP_S",
                                                  "ERR", "BOUND", "NO-SVC_S", "EVENTS"))
        events_all = sorted(self.events + self.recorder.events)
        for start, end, agent, truth, err, bound, unl in rows:
            events = "; ".join(w for t, w in events_all if start <= t < end)
            print("%8.2f %7.3f %9.3f %9.3f %+7.2f%% %7.3fs %9.3f  %s" % (
                (start - t0) / 1e9, (end - start) / 1e9, agent, truth, 100 * err, bound, unl,
                events))
        agent_total = sum(r[2] for r in rows)
        print("total: agent windows %.3f s, cgroup %.3f s (%+.2f%%); Prometheus %.3f s "
              "(%+.2f%%); /api/v1/groups %.3f s (%+.2f%%); history pprof %.3f s (%+.2f%%)" % (
                  agent_total, self.cgroup_total_ns / 1e9, 100 * self.total_error(agent_total),
                  self.prom_cpu_s, 100 * self.total_error(self.prom_cpu_s),
                  self.groups_cpu_ns / 1e9, 100 * self.total_error(self.groups_cpu_ns / 1e9),
                  self.pprof_cpu_ns / 1e9, 100 * self.total_error(self.pprof_cpu_ns / 1e9)))
        return rows

    def total_error(self, seconds):
        return seconds / (self.cgroup_total_ns / 1e9) - 1

    def check_rows(self):
        """Per deploy and endpoint: (k, endpoint, check or None, true change)."""
        out = []
        for k, started, _ in self.switches:
            base, new = self.commits[k - 1], self.commits[k]
            for endpoint in ENDPOINTS:
                check = next((c for c in self.checks if c.get("service") == self.service and
                              c.get("base") == base and c.get("new") == new and
                              c.get("endpoint") == endpoint), None)
                out.append((k, endpoint, check, self.true_change(check, base, new, endpoint)))
        return out

    def true_change(self, check, base, new, endpoint):
        """The change in CPU per request the workers measured over the ranges
        the check compared (the whole commits when there is no check)."""
        if check:
            bf, bt = (int(x * 1e9) for x in check["base_range"])
            nf, nt = (int(x * 1e9) for x in check["new_range"])
        else:
            bf, bt, nf, nt = 0, 2 ** 62, 0, 2 ** 62
        breq, bcpu = self.recorder.truth(base, endpoint, bf, bt)
        nreq, ncpu = self.recorder.truth(new, endpoint, nf, nt)
        if not (breq and nreq and bcpu > 0):
            return None
        return (ncpu / nreq) / (bcpu / breq) - 1

    def print_checks(self):
        print("\ndeploy checks (%s):" % self.service)
        print("%-7s %-7s %-22s %8s %-20s %8s" % ("DEPLOY", "ENDPOINT", "VERDICT", "CHANGE",
                                                 "CI", "TRUTH"))
        for k, endpoint, check, truth in self.check_rows():
            if check is None:
                print("%-7d %-7s %-22s" % (k, endpoint, "(no check)"))
                continue
            print("%-7d %-7s %-22s %+7.1f%% [%+6.1f%%, %+6.1f%%] %+7.1f%%  %s" % (
                k, endpoint, check["verdict"], 100 * (check.get("change") or 0),
                100 * (check.get("ci_low") or 0), 100 * (check.get("ci_high") or 0),
                100 * truth if truth is not None else float("nan"),
                self.sampling_error(k, endpoint, check)))
        # The workers' own CPU per request over time: how much a busy
        # machine moves the truth the verdicts are judged against.
        t0 = self.poller.times[0]
        for commit in self.commits:
            snaps = self.recorder.snaps.get(commit, [])
            if not snaps:
                continue
            for endpoint in ENDPOINTS:
                cells = []
                start = snaps[0][0]
                while start < snaps[-1][0]:
                    n, cpu = self.recorder.truth(commit, endpoint, start, start + int(10e9))
                    if n:
                        cells.append("%.0fs:%.2f" % ((start - t0) / 1e9, 1000 * cpu / n))
                    start += int(10e9)
                print("truth %s %-6s ms/request per 10 s: %s" % (commit, endpoint,
                                                                 " ".join(cells)))
        for c in self.checks:
            if c.get("service") == self.service and c.get("endpoint") == "(all)":
                print("check %s -> %s (all): %s (reason: %s)" % (
                    c.get("base"), c.get("new"), c.get("verdict"), c.get("reason")))
        nodata = [c for c in self.checks if c.get("service") == self.nodata_service]
        for c in nodata:
            print("no-data check %s -> %s %s: %s (reason: %s)" % (
                c.get("base"), c.get("new"), c.get("endpoint"), c.get("verdict"),
                c.get("reason")))

    def sampling_error(self, k, endpoint, check):
        """What sampling alone leaves uncertain in a check of an endpoint: its
        samples on each side (windows starting in the side's range) and the
        binomial standard error of the change (each sample lands in the
        endpoint with its share p of the commit's samples: relative error
        sqrt((1 - p) / n) per side, the two sides combined)."""
        var = 0.0
        counts = []
        for commit, (f, t) in ((self.commits[k - 1], check["base_range"]),
                               (self.commits[k], check["new_range"])):
            n, total = agent_samples(self.agent.database, self.service, commit, endpoint,
                                     int(f * 1e9), int(t * 1e9))
            counts.append(n)
            if not n:
                return "samples %s" % counts
            var += (1 - n / total) / n
        return "samples %d/%d, sampling SE %.1f%%" % (counts[0], counts[1],
                                                       100 * math.sqrt(var))

    def switch_lines(self):
        return [m.groups() for m in SWITCH_RE.finditer(self.log)
                if m.group(1) in (self.service, self.nodata_service)]


def agent_samples(database, service, commit, endpoint, from_ns, to_ns):
    """(samples of the endpoint, samples of the commit) in the agent's
    windows that start in [from_ns, to_ns)."""
    db = sqlite3.connect("file:%s?mode=ro" % database, uri=True, timeout=30)
    try:
        return db.execute(
            "SELECT COALESCE(SUM(CASE WHEN t.endpoint = ?3 THEN g.samples END), 0),"
            " COALESCE(SUM(g.samples), 0)"
            " FROM windows w JOIN groups g ON g.window_id = w.id JOIN tags t ON t.id = g.tag_id"
            " WHERE t.service = ?1 AND t.\"commit\" = ?2 AND w.start_ns >= ?4 AND w.start_ns < ?5",
            (service, commit, endpoint, from_ns, to_ns)).fetchone()
    finally:
        db.close()


def conservation_bound(truth_s, frequency):
    """What a window's CPU may differ from the kernel's: 1%, plus, at each of
    its two boundaries, a sampling period per CPU. The agent learns a thread's
    CPU at the thread's samples (and its exit): what a running thread used
    since its last sample lands in the next window, at most a period per CPU
    at any instant."""
    return 0.01 * truth_s + 2 * os.cpu_count() / frequency


# ---- the short variant (make test) ----

SHORT_AGENT = {"window": 2, "frequency": 199, "deploy_check_window": "30s"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    run = Fleet(str(tmp_path_factory.mktemp("fleet")), SHORT_AGENT, deploys=1,
                check_s=30)
    run.frequency = SHORT_AGENT["frequency"]
    try:
        run.run(final_churn=False)
        run.print_conservation("fleet-host test")
        run.print_checks()
        yield run
    finally:
        run.close()


def assert_windows_conserve(run):
    rows = run.conservation_rows()
    assert len(rows) >= 5, "too few windows: %s" % run.windows
    bad = [(round((s - rows[0][0]) / 1e9, 2), round(agent, 3), round(truth, 3),
            "%+.1f%%" % (100 * err)) for s, e, agent, truth, err, bound, _ in rows
           if abs(agent - truth) > bound]
    agent_total = sum(r[2] for r in rows)
    detail = ("windows over their bound (start s, agent s, cgroup s, error): %s\n"
              "total: agent %.3f s, cgroup %.3f s" % (bad, agent_total, run.cgroup_total_ns / 1e9))
    assert abs(run.total_error(agent_total)) <= TOTAL_BOUND, detail
    assert not bad, detail


def test_every_window_conserves_the_cgroup_cpu(fleet):
    """Each closed window's CPU of the service is what the kernel counted for
    the cgroup over that window (its bound: conservation_bound), and all of
    them add up to the cgroup's total within 1%."""
    assert_windows_conserve(fleet)


def test_prometheus_groups_and_pprof_totals_conserve(fleet):
    """dynoprof_cpu_seconds_total summed over the service's series, the
    groups API and the history's pprof all say what the cgroup used (1%)."""
    totals = {"prometheus": fleet.prom_cpu_s, "groups": fleet.groups_cpu_ns / 1e9,
              "pprof": fleet.pprof_cpu_ns / 1e9}
    errors = {k: "%+.2f%%" % (100 * fleet.total_error(v)) for k, v in totals.items()}
    assert all(abs(fleet.total_error(v)) <= TOTAL_BOUND for v in totals.values()), (
        "cgroup %.3f s; agent: %s (%s)" % (fleet.cgroup_total_ns / 1e9, totals, errors))


def assert_deploy_checks(run, strict=True):
    """strict: a regression the workers measured (>= +10%) must be flagged;
    otherwise it may also read "no significant change" (30 s of a busy VM,
    whose speed moves +-10% every 10 s, give intervals of about +-19% at 99%)."""
    rows = run.check_rows()
    detail = "\n".join("deploy %d %s: %s (true change %s)" % (
        k, e, c, "%+.3f" % t if t is not None else "?") for k, e, c, t in rows)
    detail += "\n" + "\n".join(l for l in run.log.splitlines() if "deploy check" in l)
    missing = [(k, e) for k, e, c, _ in rows if c is None]
    assert not missing, "no check result for %s:\n%s" % (missing, detail)
    window_ns = run.window_s * 1e9
    for k, endpoint, check, truth in rows:
        started = next(s for kk, s, _ in run.switches if kk == k)
        # A rolling deploy (README): the new commit's first check_s from the
        # window it began in, against the old one's last check_s before the
        # switch (its draining rollout windows left out).
        nf, nt = (x * 1e9 for x in check["new_range"])
        bf, bt = (x * 1e9 for x in check["base_range"])
        assert check["canary"] is False, detail
        assert nf - window_ns - 1e8 <= started <= nf + window_ns + 1e8, detail
        assert abs((nt - nf) - run.check_s * 1e9) < 1e6, detail
        assert abs(bf - (nf - run.check_s * 1e9)) < 1e6 and abs(bt - nf) < 1e6, detail
        # The estimate holds what the workers measured over the same ranges
        # (their loop's thread_time: the app's own overhead per request dilutes
        # the change the agent sees a little, hence the margin).
        assert truth is not None, detail
        assert check["ci_low"] - TRUTH_MARGIN <= truth <= check["ci_high"] + TRUTH_MARGIN, detail
        if endpoint == regressed_endpoint(k):
            # +15% in the code; what the workers measured decides what the
            # agent must say (two periods of a busy VM differ by several %).
            if truth >= 2 * MIN_EFFECT and strict:
                assert check["verdict"] == "regression", detail
            elif truth >= MIN_EFFECT:
                assert check["verdict"] in ("regression", "no significant change"), detail
        else:
            # Unchanged code: no flag, unless the workers' own CPU per request
            # really moved that way by more than the minimum effect.
            fair = (check["verdict"] in ("no significant change", "insufficient data") or
                    (check["verdict"] == "regression" and truth >= MIN_EFFECT)
                    or (check["verdict"] == "improvement" and truth <= -MIN_EFFECT))
            assert fair, detail
    # A busy VM moves every endpoint's CPU per request together by +-20% from
    # one minute to the next (the workers' own truth shows it), which can
    # hide or double the +15% in absolute terms; relative to the unchanged
    # endpoint of the same deploy it stays +15%, and so must the agent's.
    for k, _, _ in run.switches:
        by = {e: (c, t) for kk, e, c, t in rows if kk == k}
        reg = regressed_endpoint(k)
        other = next(e for e in ENDPOINTS if e != reg)
        (creg, treg), (coth, toth) = by[reg], by[other]
        if creg.get("change") is None or coth.get("change") is None:
            continue  # insufficient data was judged above
        seen = (1 + creg["change"]) / (1 + coth["change"]) - 1
        true = (1 + treg) / (1 + toth) - 1
        # The ratio of two estimates is as uncertain as both together: each
        # endpoint's half-width (99%, 95% in the soak), combined (a wide interval on a short
        # check leaves room that the per-endpoint truth checks above bound).
        half = [(c["ci_high"] - c["ci_low"]) / 2 for c in (creg, coth)]
        allowed = max(2 * TRUTH_MARGIN, math.hypot(*half))
        assert seen >= EXTRA / 3 and abs(seen - true) <= allowed, (
            "deploy %d: %s relative to %s: agent %+.3f, workers %+.3f (allowed +-%.3f)\n%s"
            % (k, reg, other, seen, true, allowed, detail))


def test_deploy_check_flags_only_the_regressed_endpoint(fleet):
    """The rolling deploy A -> B (+15% on heavy): each endpoint's interval
    holds the change the workers measured, the verdicts follow it (medium not
    flagged unless the machine itself moved it; heavy flagged or, when 30 s
    of a busy host leave too wide an interval, not significant: the soak
    requires the flag), heavy is +15% relative to medium as in the code, and
    the compared ranges are the documented ones."""
    assert_deploy_checks(fleet, strict=False)


def assert_switches(run):
    want = [(run.service, run.commits[k - 1], run.commits[k]) for k, _, _ in run.switches]
    want.append((run.nodata_service, "nd-old", "nd-new"))
    assert sorted(run.switch_lines()) == sorted(want), (
        "commit switches logged %s, deploys made %s" % (run.switch_lines(), want))


def test_no_commit_switch_that_did_not_happen(fleet):
    assert_switches(fleet)


def assert_nodata_check(run):
    mine = [c for c in run.checks if c.get("service") == run.nodata_service]
    detail = "checks of %s: %s\nlog:\n%s" % (
        run.nodata_service, mine,
        "\n".join(l for l in run.log.splitlines() if run.nodata_service in l))
    assert mine, "a check with no data on the old side stored no verdict\n" + detail
    assert all(c["verdict"] == "insufficient data" for c in mine), detail
    assert all(isinstance(c.get("reason"), str) and len(c["reason"]) > 5 for c in mine), detail
    # Nothing logged as done that did not run.
    logged = [l for l in run.log.splitlines() if "deploy check %s " % run.nodata_service in l]
    assert logged and not any(l.rstrip().endswith(" done") for l in logged), detail


def test_check_without_old_data_says_insufficient_data(fleet):
    """The other service's old commit served no request: its check stores and
    serves `insufficient data` with the reason (not silence, not "done")."""
    assert_nodata_check(fleet)


# ---- the soak (make soak) ----

@pytest.mark.skipif(not SOAK, reason="the soak runs with `make soak` (DYNOPROF_SOAK=1)")
def test_soak_fleet_host(tmp_path):
    """SOAK_MINUTES of the scenario with a deploy every ~3.5 minutes, the agent
    at its default frequency and window: every window conserves, every deploy
    is flagged on its regressed endpoint only, no spurious switch, and the
    agent's own CPU and RSS at start, middle and end: after warm-up at most
    0.5% of a core, at most 40 MB, growing at most 2 MB from middle to end."""
    minutes = float(os.environ.get("SOAK_MINUTES", "10"))
    # What a check can resolve is set by the endpoint's samples: at the
    # default 19 Hz an endpoint gets about 10 samples/s here, and a 60-s check
    # (6 windows a side, ~600 samples) has a sampling error of ~5% on the
    # change and a 99% interval of about +-15 points (bootstrap-t on 6
    # clusters): +10% was missed. 180 s (18 windows a side) and a load that
    # gives both endpoints about half the CPU (3 connections to medium, a
    # third of heavy's cost, 1 to heavy) bring the sampling error to ~2% on
    # a quiet host, and the interval at the default 95% to about +-5 points,
    # so +15% (+10% after the machine moves it) is flagged. (A host that
    # leaves the app half a core halves the samples: each check prints its
    # samples and sampling error.) The default deploy_check_window is 5 min.
    check_s = 180
    # Commit 0's churn and base range, then a deploy per check range and its
    # log's delay (churn inside the ranges: Fleet.run): about 3.5 minutes.
    deploys = max(2, int((minutes * 60 - check_s - 30) // (check_s + 25)))
    config = {"deploy_check_window": "%ds" % check_s}
    defaults = {"window": 10, "frequency": 19}
    run = Fleet(str(tmp_path), dict(defaults, **config), deploys=deploys, check_s=check_s,
                connections={"heavy": 1, "medium": 3}, check_config=SOAK_CHECK_CONFIG)
    run.frequency = defaults["frequency"]
    began = time.monotonic()
    try:
        run.run(monitor=True, min_seconds=minutes * 60, churn_in_ranges=True)
        ended = time.monotonic()
        run.print_conservation("soak (%.1f min, %d deploys)" % ((ended - began) / 60, deploys))
        run.print_checks()
        third = (ended - began) / 3
        print("\nagent's own resources (pid %d; targets: <= 0.5%% of a core, <= 40 MB):"
              % run.agent.proc.pid)
        print("%-8s %12s %10s" % ("PHASE", "CPU(%core)", "RSS(MB)"))
        for name, i in (("start", 0), ("middle", 1), ("end", 2)):
            share, rss = run.monitor.phase(began + i * third, began + (i + 1) * third)
            print("%-8s %11.2f%% %10.1f  %s" % (
                name, 100 * (share or 0), (rss or 0) / 2 ** 20,
                "ok" if (share or 0) <= 0.005 and (rss or 0) <= 40 * 2 ** 20 else "OVER TARGET"))
        share, _ = run.monitor.phase(began, ended)
        peak = max(s[2] or 0 for s in run.monitor.samples)
        print("%-8s %11.2f%% %10.1f (max)" % ("whole", 100 * (share or 0), peak / 2 ** 20))
        failures = []
        warm, _ = run.monitor.phase(began + third, ended)
        _, rss_middle = run.monitor.phase(began + third, began + 2 * third)
        _, rss_end = run.monitor.phase(began + 2 * third, ended)
        print("%-8s %11.2f%% %10.1f (after warm-up: middle and end; RSS growth %+.1f MB)"
              % ("warm", 100 * (warm or 0), (rss_end or 0) / 2 ** 20,
                 ((rss_end or 0) - (rss_middle or 0)) / 2 ** 20))
        if warm is None or warm > AGENT_CPU_MAX:
            failures.append("agent CPU after warm-up %s of a core > %.1f%%" % (
                "unknown" if warm is None else "%.2f%%" % (100 * warm), 100 * AGENT_CPU_MAX))
        if rss_end is None or rss_middle is None or rss_end > AGENT_RSS_MAX or \
                rss_end - rss_middle > AGENT_RSS_GROWTH_MAX:
            failures.append("agent RSS %s MB at the middle, %s MB at the end (<= %d MB, growth "
                            "<= %d MB)" % (rss_middle and round(rss_middle / 2 ** 20, 1),
                                           rss_end and round(rss_end / 2 ** 20, 1),
                                           AGENT_RSS_MAX // 2 ** 20,
                                           AGENT_RSS_GROWTH_MAX // 2 ** 20))
        for check in (assert_windows_conserve, assert_deploy_checks, assert_switches,
                      assert_nodata_check):
            try:
                check(run)
            except AssertionError as e:
                failures.append("%s: %s" % (check.__name__, str(e)[:3000]))
        assert not failures, "\n\n".join(failures)
    finally:
        run.close()
