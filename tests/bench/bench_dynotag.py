#!/usr/bin/python3
"""Microbenchmark of the dynotag Python package (not a test).

Prints, for the interpreter running it: ns per dynotag call and the overhead
per request of dynotag.wsgi.DynotagMiddleware (a full WSGI call: app, iterate,
close, minus the same without the middleware). Target: <= 3 us per request.

Usage: DYNOTAG_LIBRARY=.output/libdynotag/libdynotag.so.1 bench_dynotag.py [--n N]
(the library defaults to .output/libdynotag/libdynotag.so.1 of this tree).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import timeit

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("DYNOTAG_LIBRARY",
                      os.path.join(REPO_ROOT, ".output", "libdynotag", "libdynotag.so.1"))
sys.path.insert(0, os.path.join(REPO_ROOT, "libdynotag", "python"))

import dynotag  # noqa: E402
import dynotag.asyncs  # noqa: E402
import dynotag.gunicorn  # noqa: E402
from dynotag.wsgi import DynotagMiddleware, later  # noqa: E402

TARGET_NS = 3000


def best_ns(stmt, n, rounds=5):
    """Best of rounds, ns per call of stmt()."""
    return min(timeit.repeat(stmt, number=n, repeat=rounds)) / n * 1e9


def whole_requests(n):
    """n whole requests named late, through the WSGI middleware (what the
    Django middleware does after URL resolution) inside the gunicorn hook."""
    def late_app(environ, start_response):
        dynotag.request_begin("orders/<int:id>/")
        start_response("200 OK", [])
        return [b"ok"]
    wrapped = DynotagMiddleware(late_app, endpoint=later)
    environ = {"PATH_INFO": "/orders/42", "SCRIPT_NAME": "", "REQUEST_METHOD": "GET"}

    def one():
        result = wrapped(environ, lambda status, headers, exc_info=None: None)
        for _ in result:
            pass
        close = getattr(result, "close", None)
        if close is not None:
            close()
    handler = dynotag.gunicorn.wrap_handler(one)
    for _ in range(n):
        handler()


def syscalls_per_request(small=1000, large=101000):
    """Syscalls the requests make: strace -c of `small` and of `large` whole
    requests in a child; the difference over (large - small) requests."""
    strace = shutil.which("strace")
    if not strace:
        return None
    totals = []
    for n in (small, large):
        with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
            subprocess.run([strace, "-f", "-c", "-o", out.name, sys.executable,
                            os.path.abspath(__file__), "--child", str(n)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            total = [line.split() for line in out.read().splitlines()
                     if line.rstrip().endswith("total")]
            totals.append(int(total[-1][2]) if total else 0)
    return (totals[1] - totals[0]) / float(large - small)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200000, help="calls per round")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        whole_requests(args.child)
        return 0
    if not dynotag.available:
        sys.exit("bench_dynotag: libdynotag not loaded: %s" % dynotag.load_error)
    n = args.n
    print("%s, %s" % (sys.version.split()[0], dynotag.library_path))

    def app(environ, start_response):
        start_response("200 OK", [])
        return [b"ok"]

    def start_response(status, headers, exc_info=None):
        return None

    environ = {"PATH_INFO": "/orders/42", "SCRIPT_NAME": "", "REQUEST_METHOD": "GET"}
    wrapped = DynotagMiddleware(app, endpoint=lambda env: "orders/<id>")
    wrapped_default = DynotagMiddleware(app)

    # Whole request, endpoint known late: the WSGI middleware opens the request
    # (endpoint=later) and an inner layer names it (what the Django middleware's
    # process_view does), or the gunicorn hook opens it around the handler.
    def late_app(environ, start_response):
        dynotag.request_begin("orders/<int:id>/")
        return app(environ, start_response)
    wrapped_late = DynotagMiddleware(late_app, endpoint=later)

    def bare_late():
        result = app(environ, start_response)
        for _ in result:
            pass

    hooked = dynotag.gunicorn.wrap_handler(lambda: late_app(environ, start_response))

    def bare():
        result = app(environ, start_response)
        for _ in result:
            pass

    def through(middleware):
        def call():
            result = middleware(environ, start_response)
            for _ in result:
                pass
            result.close()
        return call

    # gthread: the main thread's poll and callback open the request and hand
    # it over with the connection; the pool thread joins it, the app names it,
    # the done callback ends it (one thread plays both parts here).
    class Conn(object):
        pass

    conn = Conn()
    steps = {"poll": lambda timeout=None: [(conn, 1)],
             "pool": lambda c: late_app(environ, start_response),
             "enqueue": lambda c: None, "finish": lambda fs: None}
    steps["dispatch"] = lambda: steps["enqueue"](conn)

    def gthread_bare():
        steps["poll"]()
        steps["dispatch"]()
        steps["pool"](conn)
        steps["finish"](None)

    hooked_steps = dict(steps, poll=dynotag.gunicorn.wrap_select(steps["poll"]),
                        pool=dynotag.gunicorn.wrap_handler(steps["pool"], keep_open=True),
                        enqueue=dynotag.gunicorn.wrap_enqueuer(steps["enqueue"]),
                        finish=dynotag.gunicorn.wrap_finisher(steps["finish"]))
    hooked_steps["dispatch"] = dynotag.gunicorn.wrap_dispatcher(
        lambda: hooked_steps["enqueue"](conn))

    def gthread():
        hooked_steps["poll"]()
        hooked_steps["dispatch"]()
        hooked_steps["pool"](conn)
        hooked_steps["finish"](None)

    # An async view: the coroutine joins the request and leaves it (asgiref's
    # own cost left out: the coroutine is run to completion in place).
    def run_in_place(awaitable):
        def call(*args, **kwargs):
            coro = awaitable(*args, **kwargs)
            try:
                coro.send(None)
            except StopIteration as done:
                return done.value
        return call

    async def view():
        return None
    plain_view = run_in_place(view)
    shared_view = dynotag.asyncs.sharing(run_in_place)(view)

    def shared_in_request():
        dynotag.request_open()
        shared_view()
        dynotag.request_end()

    def plain_in_request():
        dynotag.request_open()
        plain_view()
        dynotag.request_end()

    def begin_end():
        dynotag.request_begin("orders/<id>")
        dynotag.request_end()

    ctx = dynotag.tag(tenant="acme")

    def tag_block():
        with ctx:
            pass

    results = [
        ("request_begin+request_end", best_ns(begin_end, n)),
        ("set(key, value)", best_ns(lambda: dynotag.set("tenant", "acme"), n)),
        ("with tag(tenant=...)", best_ns(tag_block, n)),
    ]
    base = best_ns(bare, n)
    with_mw = best_ns(through(wrapped), n)
    with_default = best_ns(through(wrapped_default), n)
    with_late = best_ns(through(wrapped_late), n)
    with_hook = best_ns(hooked, n)
    bare_app = best_ns(lambda: app(environ, start_response), n)
    with_gthread = best_ns(gthread, n) - best_ns(gthread_bare, n)
    with_async = best_ns(shared_in_request, n) - best_ns(plain_in_request, n)
    results += [
        ("WSGI request, bare app", base),
        ("WSGI request, middleware", with_mw),
        ("middleware overhead (endpoint=)", with_mw - base),
        ("middleware overhead (default)", with_default - base),
        ("whole request, named late (wsgi)", with_late - base),
        ("whole request, gunicorn hook", with_hook - bare_app),
        ("whole request, gthread hand-over", with_gthread),
        ("async view joining its request", with_async),
    ]
    for name, ns in results:
        print("  %-34s %8.0f ns" % (name, ns))
    per_request = syscalls_per_request()
    if per_request is not None:
        print("  %-34s %8.4f" % ("syscalls per whole request", per_request))
    overhead = max(with_mw - base, with_default - base, with_late - base,
                   with_hook - bare_app, with_gthread)
    print("target <= %d ns per request: %s" % (TARGET_NS, "met" if overhead <= TARGET_NS
                                               else "MISSED"))
    return 0 if overhead <= TARGET_NS and (per_request or 0) < 0.01 else 1


if __name__ == "__main__":
    sys.exit(main())
