"""Load a Django app under gunicorn while dynoprof records it, for as long as it
takes to serve enough requests (a busy machine serves fewer per second), and
end the capture only once the app has finished every request it accepted.

  record_until_served(app, out, loads, min_requests=40, extra=(...))
      -> ({url: WrkResult summed over rounds}, record's stderr)
  served_between(before, after)  {endpoint: {"requests", "cpu_s"}} the app served
      between two GunicornApp.stats()

Unlike apputil.record_load (one wrk run of fixed length), the load runs in
rounds until every url had min_requests answered (at least min_seconds, at
most max_seconds), and the capture ends once the app's own request counts
(GunicornApp.stats) stop moving: requests wrk left queued when it closed its
connections are still served, and their CPU belongs to the captured period.
"""
import time

import pytest

from apputil import Wrk, WrkResult, record_during

DRAIN_TIMEOUT = 30


def _served(app):
    return sum(e["requests"] for e in app.stats(settle=0).values())


def wait_drained(app, timeout=DRAIN_TIMEOUT, quiet=0.5):
    """Returns once the app's request counts have not moved for `quiet` s (its
    workers flush them within 0.1 s); fails after timeout."""
    deadline = time.monotonic() + timeout
    last, since = _served(app), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = _served(app)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    pytest.fail("the app still served requests %d s after the load ended" % timeout)


def _add(a, b):
    if a is None:
        return b
    return WrkResult(requests=a.requests + b.requests, errors=a.errors + b.errors,
                     non2xx=a.non2xx + b.non2xx, seconds=a.seconds + b.seconds,
                     text=a.text + b.text)


def record_until_served(app, out, loads, min_requests, extra=(), min_seconds=6,
                        max_seconds=60, prime=None):
    """Records app.pids() while the wrk runs of `loads` (list of (url, kwargs))
    run for min_seconds, then again, each round as long as the slowest url's
    rate says it needs (2 s at least), until each url has min_requests answered
    (max_seconds in all; min_requests may also be {url: n}, one count per
    url); then waits for the app to finish what it accepted and ends the
    capture. Few rounds: each leaves wrk's open requests queued. prime: a URL loaded for 1 s
    first (dynoprof finds a process's libdynotag only some time after its first
    sample). Returns ({url: WrkResult}, stderr)."""
    wanted = min_requests if isinstance(min_requests, dict) else \
        {url: min_requests for url, _ in loads}

    def run_load():
        results = {url: None for url, _ in loads}
        start = time.monotonic()
        seconds = min_seconds
        while True:
            runs = [(url, Wrk(url, seconds, **kwargs)) for url, kwargs in loads]
            for url, run in runs:
                results[url] = _add(results[url], run.result())
            elapsed = time.monotonic() - start
            if elapsed >= max_seconds or all(r.requests >= wanted[url]
                                             for url, r in results.items()):
                break
            slowest = min(max(r.requests, 1) / elapsed for r in results.values())
            needed = max(wanted[url] - r.requests for url, r in results.items())
            seconds = max(2, min(max_seconds - elapsed, 1.2 * needed / slowest))
        wait_drained(app)
        return results

    return record_during(app.pids(), out, max_seconds + DRAIN_TIMEOUT + 30, run_load, extra,
                         prime)


def served_between(before, after):
    """What the app served between two GunicornApp.stats(): {endpoint:
    {"requests": n, "cpu_s": s}}."""
    zero = {"requests": 0, "cpu_s": 0.0}
    return {e: {k: v - before.get(e, zero).get(k, 0) for k, v in entry.items()}
            for e, entry in after.items()}
