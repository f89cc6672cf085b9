"""The agent's metrics use whole requests (issue 15): a Django app under
gunicorn with dynotag's gunicorn hook (the whole request, from parsing to
close) and its Django middleware (the endpoint, known after URL resolution),
loaded by wrk; between two scrapes, the agent's CPU per request of each
endpoint (dynoprof_cpu_seconds_total / dynoprof_requests_total) matches the
whole requests the app measured (time.thread_time around the worker's
handler), and the app's CPU outside any request (`endpoint="-"`) is small."""
import time

from agentutil import Agent, metric_values, wait_until
from apputil import ENDPOINTS, GunicornApp, Wrk

SERVICE = "wholereq"
LOAD_SECONDS = 40       # a bound: the measured interval ends long before
MIN_REQUESTS = 1500     # per endpoint in the measured interval


def scrape(agent):
    """{endpoint: (cpu seconds, requests)} of SERVICE, and its total CPU."""
    samples = agent.metrics()
    out, total = {}, 0.0
    for labels, v in metric_values(samples, "dynoprof_cpu_seconds_total", service=SERVICE):
        cpu, req = out.get(labels["endpoint"], (0.0, 0.0))
        out[labels["endpoint"]] = (cpu + v, req)
        total += v
    for labels, v in metric_values(samples, "dynoprof_requests_total", service=SERVICE):
        cpu, req = out.get(labels["endpoint"], (0.0, 0.0))
        out[labels["endpoint"]] = (cpu, req + v)
    return out, total


def test_agent_cpu_per_request_is_whole_request(tmp_path):
    app = GunicornApp(str(tmp_path), workers=2, middleware=True, env={
        "GUNICORN_CMD_ARGS": "-c python:djangoapp.gunicorn_conf", "DJANGOAPP_SCALE": "0.1",
        "DYNOPROF_SERVICE": SERVICE})
    agent = Agent(str(tmp_path), config={"frequency": 999})
    app.start()
    try:
        agent.start()
        app.warm_up()
        loads = [Wrk(app.url(e), LOAD_SECONDS, threads=1, connections=2) for e in ENDPOINTS]
        # Every endpoint counted (the agent found the library) before measuring.
        assert wait_until(lambda: all(scrape(agent)[0].get(e, (0, 0))[1] > 0
                                      for e in ENDPOINTS), 20, 0.5), scrape(agent)
        time.sleep(1.5)  # a window boundary
        m0, total0 = scrape(agent)
        t0 = app.stats(settle=0)
        deadline = time.monotonic() + LOAD_SECONDS - 8
        while time.monotonic() < deadline:
            time.sleep(1)
            t = app.stats(settle=0)
            if all(t[e]["whole_requests"] - t0[e]["whole_requests"] >= MIN_REQUESTS
                   for e in ENDPOINTS):
                break
        time.sleep(2.5)  # the windows holding the last requests closed
        m1, total1 = scrape(agent)
        t1 = app.stats(settle=0)
        for run in loads:
            run.result()
    finally:
        app.stop()
        agent.close()
    counted, truth = {}, {}
    for e in ENDPOINTS:
        cpu = m1[e][0] - m0.get(e, (0, 0))[0]
        req = m1[e][1] - m0.get(e, (0, 0))[1]
        counted[e] = cpu * 1e3 / req
        truth[e] = ((t1[e]["whole_cpu_s"] - t0[e]["whole_cpu_s"]) * 1e3 /
                    (t1[e]["whole_requests"] - t0[e]["whole_requests"]))
    outside = (m1.get("-", (0, 0))[0] - m0.get("-", (0, 0))[0]) / (total1 - total0)
    detail = "agent CPU ms/request %s, whole requests measured %s; endpoint=- %.1f%%" % (
        {e: round(v, 3) for e, v in counted.items()},
        {e: round(v, 3) for e, v in truth.items()}, 100 * outside)
    print(detail)
    # Scrapes and the app's snapshots are up to a window apart: 10%.
    for e in ENDPOINTS:
        assert abs(counted[e] / truth[e] - 1) <= 0.10, detail
    assert outside < 0.05, detail
