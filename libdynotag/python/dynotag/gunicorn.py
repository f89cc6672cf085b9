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
(dynotag.request_open) before and ends it after. The endpoint comes from the
application: the Django middleware (dynotag.django) after URL resolution,
dynotag.flask, or a dynotag.wsgi middleware; a request nobody names counts as
"unresolved". This is the honest boundary: what is left outside is the
worker's idling (waiting, heartbeats).
"""
import functools

from dynotag import _request_abandon, _request_end, _request_open, warn_unavailable

__all__ = ["post_worker_init", "wrap_handler", "boundary"]


def boundary(worker):
    """The name of the worker method that handles one request: "accept" for
    the sync worker (it handles the connection it accepts), else "handle"."""
    return "accept" if hasattr(worker, "run_for_one") and hasattr(worker, "accept") \
        else "handle"


def wrap_handler(handle):
    """handle, opening a whole request around each call; a call that raises
    before returning (no connection waiting) abandons it."""
    @functools.wraps(handle)
    def handle_request(*args, **kwargs):
        opened = _request_open()
        done = False
        try:
            result = handle(*args, **kwargs)
            done = True
            return result
        finally:
            if opened == 1:
                if done:
                    _request_end()
                else:
                    _request_abandon()
    handle_request.__dynotag_wrapped__ = True
    return handle_request


def post_worker_init(worker):
    """gunicorn server hook: wraps the worker's per-request step (once)."""
    warn_unavailable("dynotag.gunicorn")
    name = boundary(worker)
    step = getattr(worker, name, None)
    if step is not None and not getattr(step, "__dynotag_wrapped__", False):
        setattr(worker, name, wrap_handler(step))
