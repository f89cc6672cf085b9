"""gunicorn hook: every request's CPU from the moment the worker starts on it
(accepting the connection, reading and parsing the HTTP request) to the moment
it is done with it (response written and closed) belongs to the request's
endpoint.

    gunicorn -c python:dynotag.gunicorn myapp.wsgi
    # or, in your own gunicorn config file:
    from dynotag.gunicorn import post_worker_init

post_worker_init wraps the worker's per-request step, boundary(worker): the
sync worker's accept (accepting the connection and handling its one request;
a loop that finds no connection waiting abandons the request, which then
counts as nothing), other workers' connection handler (gthread: one request
per call on keep-alive connections). It opens a whole request
(dynotag.request_open) before and ends it after. The gthread worker finishes a
request after handle returns, in the same pool thread: the future's done
callback, finish_request, parks the keep-alive connection in the poller (or
closes it); the request stays open until that callback has run (if the main
thread ran it, because the request finished before the callback was added,
until the pool thread's next request begins). The endpoint comes from the
application: the Django middleware (dynotag.django) after URL resolution,
dynotag.flask, or a dynotag.wsgi middleware; a request nobody names counts as
"unresolved". This is the honest boundary: what is left outside is the
worker's idling (waiting, heartbeats) and, with gthread, its main thread's
event loop, which serves every connection at once: polling, the heartbeat,
accepting a connection or taking a keep-alive one back from the poller and
handing it to the pool (another thread: a thread's request is its own).
"""
import functools
import threading

from dynotag import _request_abandon, _request_end, _request_open, warn_unavailable

__all__ = ["post_worker_init", "wrap_handler", "wrap_finisher", "finishes_in_callback",
           "boundary"]

# This thread's request left open for its done callback (gthread).
_pending = threading.local()


def boundary(worker):
    """The name of the worker method that handles one request: "accept" for
    the sync worker (it handles the connection it accepts), else "handle"."""
    return "accept" if hasattr(worker, "run_for_one") and hasattr(worker, "accept") \
        else "handle"


def _end_pending():
    if getattr(_pending, "open", False):
        _pending.open = False
        _request_end()


def wrap_handler(handle, keep_open=False):
    """handle, opening a whole request around each call; a call that raises
    before returning (no connection waiting) abandons it. keep_open: a call
    that returns leaves the request open for wrap_finisher's callback."""
    @functools.wraps(handle)
    def handle_request(*args, **kwargs):
        if keep_open:
            _end_pending()  # the last callback ran on another thread
        opened = _request_open()
        done = False
        try:
            result = handle(*args, **kwargs)
            done = True
            return result
        finally:
            if opened == 1:
                if not done:
                    _request_abandon()
                elif keep_open:
                    _pending.open = True
                else:
                    _request_end()
    handle_request.__dynotag_wrapped__ = True
    return handle_request


def wrap_finisher(finish):
    """finish (a done callback), ending the request this thread's handle left
    open once it has run."""
    @functools.wraps(finish)
    def finish_request(*args, **kwargs):
        try:
            return finish(*args, **kwargs)
        finally:
            _end_pending()
    finish_request.__dynotag_wrapped__ = True
    return finish_request


def finishes_in_callback(worker):
    """True for the gthread worker: handle's result goes to finish_request, a
    done callback of the pool's future (gunicorn.workers.gthread)."""
    return callable(getattr(worker, "finish_request", None)) and \
        callable(getattr(worker, "enqueue_req", None))


def post_worker_init(worker):
    """gunicorn server hook: wraps the worker's per-request step (once)."""
    warn_unavailable("dynotag.gunicorn")
    name = boundary(worker)
    step = getattr(worker, name, None)
    if step is None or getattr(step, "__dynotag_wrapped__", False):
        return
    callback = name == "handle" and finishes_in_callback(worker)
    setattr(worker, name, wrap_handler(step, keep_open=callback))
    if callback:
        worker.finish_request = wrap_finisher(worker.finish_request)
