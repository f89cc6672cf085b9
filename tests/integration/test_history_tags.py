"""The history's "other tags" under a hostile process (README: Other tags in
the history): a real agent (3-second windows, 499 Hz) profiles two busy
Python processes of one service that carry 10 environment tags (z0..z9) and
set a thread tag `a_user` to one of 1,000 values before each short spin, so a
window with more than 256 samples holds more than 256 distinct tag sets, and
every sample more than 8 other tags. They run until the agent has counted
both cuts (on a busy host a window may hold fewer samples: bounded by 60 s).

Asserted, with the workloads' own time.process_time() as ground truth: every
stored group keeps at most 8 other tags in at most 1 KiB, a window at most 256
distinct sets plus the overflow set; both cuts are counted in
dynoprof_agent_history_tags_dropped_total{reason="pairs"|"tag_sets"}; nothing
is lost: the service's unfiltered CPU in /api/v1/groups is the processes' CPU,
and the groups a tag filter (z0=x0) selects plus the overflow set's are
exactly that total.
"""
import json
import os
import sqlite3
import subprocess
import time

from agentutil import (APP_PYTHON, DYNOTAG_LIBRARY, DYNOTAG_PYTHON_DIR, Agent, metric_values,
                       wait_until)

MAX_SECONDS = 60
CPU_TOLERANCE = 0.05

WORKLOAD = r"""
import json, os, sys, time
import dynotag
values = ["u%d" % i for i in range(1000)]
end = time.monotonic() + float(sys.argv[1])
i = 0
while time.monotonic() < end and not (i % 100 == 0 and os.path.exists(sys.argv[3])):
    dynotag.set("a_user", values[i % 1000])
    i += 1
    s = 0
    for k in range(2000):
        s += k * k
with open(sys.argv[2], "w") as f:
    json.dump({"cpu_s": time.process_time()}, f)
"""


def workload_env(service):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("DYNOPROF_", "HOSTILE_")) and
         k not in ("GIT_COMMIT", "SOURCE_VERSION", "PYTHONHOME", "PYTHONSTARTUP")}
    e["PYTHONPATH"] = DYNOTAG_PYTHON_DIR
    e["DYNOTAG_LIBRARY"] = DYNOTAG_LIBRARY
    e["DYNOPROF_SERVICE"] = service
    e["DYNOPROF_TAGS"] = ",".join("z%d=x%d" % (i, i) for i in range(10))
    return e


def dropped(agent, reason):
    return sum(v for _, v in metric_values(
        agent.metrics(), "dynoprof_agent_history_tags_dropped_total", reason=reason))


def test_history_tag_bounds(tmp_path):
    agent = Agent(str(tmp_path), config={"frequency": 499, "window": 3}, name="tags-agent")
    procs = []
    try:
        agent.start()
        service = "hist%d" % os.getpid()
        start = int(time.time()) - 1
        truths = [tmp_path / ("truth%d.json" % i) for i in range(2)]
        stop = tmp_path / "stop"
        for t in truths:
            procs.append(subprocess.Popen([APP_PYTHON, "-c", WORKLOAD, str(MAX_SECONDS), str(t),
                                           str(stop)],
                                          env=workload_env(service), stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        wait_until(lambda: dropped(agent, "pairs") > 0 and dropped(agent, "tag_sets") > 0,
                   MAX_SECONDS, 0.5)
        stop.write_text("")
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        cpu_s = sum(json.loads(t.read_text())["cpu_s"] for t in truths)
        # Every window holding the processes is closed and stored.
        end = int(time.time()) + 1
        n = agent.healthz()["windows"]
        assert wait_until(lambda: agent.healthz()["windows"] >= n + 2, 30, 0.2), agent.stderr
        rng = {"from": start, "to": end + 3}

        total = agent.groups(by="service", service=service, **rng)
        assert len(total) == 1, total
        profiled = total[0]["cpu_ns"] / 1e9
        assert abs(profiled - cpu_s) <= CPU_TOLERANCE * cpu_s + 0.05, (profiled, cpu_s)
        tagged = agent.groups(by="service", service=service, **dict(rng, **{"tag.z0": "x0"}))
        over = agent.groups(by="service", service=service,
                            **dict(rng, **{"tag.dynoprof_overflow": "tag sets"}))
        assert tagged and over, (tagged, over)   # both kinds stored
        assert tagged[0]["cpu_ns"] + over[0]["cpu_ns"] == total[0]["cpu_ns"], (tagged, over, total)
        assert tagged[0]["samples"] + over[0]["samples"] == total[0]["samples"]
        # z7..z9 sort after a_user, z0..z6: never kept.
        assert agent.groups(by="service", service=service,
                            **dict(rng, **{"tag.z9": "x9"})) == []

        for reason in ("pairs", "tag_sets"):
            assert dropped(agent, reason) > 0, (reason, agent.get_ok("/metrics")[-3000:])

        db = sqlite3.connect("file:%s?mode=ro" % agent.database, uri=True, timeout=30)
        try:
            per_window = db.execute(
                "SELECT g.window_id, count(DISTINCT t.extra), max(length(t.extra)),"
                " max((SELECT count(*) FROM json_each(t.extra)))"
                " FROM groups g JOIN tags t ON t.id = g.tag_id"
                " WHERE t.service = ? GROUP BY g.window_id", (service,)).fetchall()
        finally:
            db.close()
        assert per_window
        assert max(r[1] for r in per_window) <= 256 + 1, per_window   # + the overflow set
        assert max(r[1] for r in per_window) == 256 + 1, per_window   # the budget was reached
        assert max(r[2] for r in per_window) <= 1024
        assert max(r[3] for r in per_window) == 8, per_window
        assert agent.alive(), agent.stderr[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        agent.close()
