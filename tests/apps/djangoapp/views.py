"""Endpoints with a known CPU cost, which measure the CPU they really used.

  /light /medium /heavy  pure-Python loops of 1:3:9 iterations (about 2, 6 and
                         18 ms of CPU here), each in its own function
                         (work_light, work_medium, work_heavy) so stacks tell
                         them apart; the response body is the thread CPU time
                         the work took, in seconds
  /racy?ms=N             for N ms of thread CPU time (default 50), flips this
                         thread's tag `phase` between "A" and "B" in a tight
                         loop: racy_work_a runs only under phase=A, racy_work_b
                         only under phase=B; `phase` is cleared before returning
  /asyncview             an async view doing /medium's work on asgiref's event
                         loop thread (whole-request truth: both threads)
  /stats                 this worker process's truth as JSON (below)

DJANGOAPP_EXTRA="medium=0.15" makes an endpoint that much more expensive;
DJANGOAPP_SCALE=0.1 scales every endpoint's work (0.1: light is about 0.2 ms).

Whole requests: wsgi.py's outermost WSGI wrapper measures each whole request
(time.thread_time from the server's call to the response's close) and adds
it as "whole_requests"/"whole_cpu_s" to the endpoint the path names, or to
"unresolved" for paths no view serves.

Truth: every worker process counts, per endpoint, the requests it served and
the thread CPU time (time.thread_time) their work took. /stats returns one
process's numbers; when DJANGOAPP_STATS_DIR is set, every process also writes
them to DJANGOAPP_STATS_DIR/<pid>.json (atomically, at most 0.1 s after a
change, and at exit), so a test sees all workers' numbers:
  {"pid": 123, "endpoints": {"heavy": {"requests": 10, "cpu_s": 0.18}, ...}}
"""
import atexit
import json
import os
import threading
import time

from django.http import HttpResponse, JsonResponse

import dynotag

# Loop iterations per request; the CPU cost is proportional to them (1:3:9).
ITERATIONS = {"light": 40000, "medium": 120000, "heavy": 360000}
# DJANGOAPP_EXTRA="medium=0.15,heavy=0.05": that much more work per request on
# those endpoints (a "new commit" that made them more expensive).
_scale = float(os.environ.get("DJANGOAPP_SCALE", "1"))
ITERATIONS = {k: max(1, int(v * _scale)) for k, v in ITERATIONS.items()}
for _item in filter(None, os.environ.get("DJANGOAPP_EXTRA", "").split(",")):
    _name, _frac = _item.split("=")
    ITERATIONS[_name] = int(ITERATIONS[_name] * (1 + float(_frac)))
# Iterations of each half of one /racy flip (a few microseconds each).
RACY_ITERATIONS = 100
STATS_DIR = os.environ.get("DJANGOAPP_STATS_DIR")
FLUSH_INTERVAL = 0.1

_lock = threading.Lock()
_stats = {}           # endpoint -> {"requests": int, "cpu_s": float}
_version = 0          # bumped on every change; the flusher writes when it moved
_flusher = None       # the flushing thread of this process (started lazily)
_flusher_pid = None   # the pid that started it (a forked child needs its own)


def _loop(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return acc


def work_light():
    return _loop(ITERATIONS["light"])


def work_medium():
    return _loop(ITERATIONS["medium"])


def work_heavy():
    return _loop(ITERATIONS["heavy"])


WORK = {"light": work_light, "medium": work_medium, "heavy": work_heavy}


def racy_work_a():
    return _loop(RACY_ITERATIONS)


def racy_work_b():
    return _loop(RACY_ITERATIONS)


def _snapshot():
    with _lock:
        return {"pid": os.getpid(),
                "endpoints": {k: dict(v) for k, v in _stats.items()}}


def _write_stats():
    path = os.path.join(STATS_DIR, "%d.json" % os.getpid())
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(_snapshot(), f)
    os.replace(tmp, path)


def _flush_forever():
    written = -1
    while True:
        time.sleep(FLUSH_INTERVAL)
        if _version != written:
            written = _version
            try:
                _write_stats()
            except OSError:
                pass


def _ensure_flusher():
    global _flusher, _flusher_pid
    if STATS_DIR is None or _flusher_pid == os.getpid():
        return
    with _lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
        _flusher = threading.Thread(target=_flush_forever, name="stats-flush", daemon=True)
        _flusher.start()
        atexit.register(_write_stats)


def _account(endpoint, cpu_s, requests="requests", cpu="cpu_s"):
    global _version
    with _lock:
        entry = _stats.setdefault(endpoint, {"requests": 0, "cpu_s": 0.0,
                                             "whole_requests": 0, "whole_cpu_s": 0.0})
        entry[requests] += 1
        entry[cpu] += cpu_s
        _version += 1


def account_whole_cpu(endpoint, cpu_s):
    """CPU of a whole request measured on another thread than the one that
    counted it (gthread's main thread: accepting or taking back its connection
    and handing it to the pool)."""
    global _version
    _ensure_flusher()
    with _lock:
        entry = _stats.setdefault(endpoint, {"requests": 0, "cpu_s": 0.0,
                                             "whole_requests": 0, "whole_cpu_s": 0.0})
        entry["whole_cpu_s"] += cpu_s
        _version += 1


def account_whole(endpoint, cpu_s):
    """A whole request's CPU, measured by the outermost WSGI wrapper."""
    _ensure_flusher()
    _account(endpoint, cpu_s, "whole_requests", "whole_cpu_s")


def _sized(response):
    """response with its Content-Length: uWSGI's HTTP/1.1 socket keeps a
    connection alive only for responses that have one."""
    response["Content-Length"] = str(len(response.content))
    return response


def _measured(endpoint):
    _ensure_flusher()
    start = time.thread_time()
    WORK[endpoint]()
    cpu_s = time.thread_time() - start
    _account(endpoint, cpu_s)
    return _sized(HttpResponse("%.6f\n" % cpu_s, content_type="text/plain"))


def light(request):
    return _measured("light")


def medium(request):
    return _measured("medium")


def heavy(request):
    return _measured("heavy")


async def asyncview(request):
    """An async view: under WSGI Django runs it through asgiref's async_to_sync
    on an event loop thread of its own. /medium's work there; that thread's
    CPU (time.thread_time) is the view's truth and, since the request's
    thread does not see it, is added to the whole request's truth."""
    start = time.thread_time()
    _ensure_flusher()
    _loop(ITERATIONS["medium"])
    cpu_s = time.thread_time() - start
    response = _sized(HttpResponse("%.6f\n" % cpu_s, content_type="text/plain"))
    _account("asyncview", cpu_s)
    account_whole_cpu("asyncview", time.thread_time() - start)
    return response


def racy(request):
    _ensure_flusher()
    try:
        budget = float(request.GET.get("ms", "50")) / 1000.0
    except ValueError:
        budget = 0.05
    start = time.thread_time()
    end = start + budget
    flips = 0
    set_tag = dynotag.set
    try:
        while time.thread_time() < end:
            set_tag("phase", "A")
            racy_work_a()
            set_tag("phase", "B")
            racy_work_b()
            flips += 2
    finally:
        dynotag.clear("phase")
    _account("racy", time.thread_time() - start)
    return _sized(HttpResponse("%d\n" % flips, content_type="text/plain"))


def stats(request):
    return _sized(JsonResponse(_snapshot()))
