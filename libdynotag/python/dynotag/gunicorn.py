"""gunicorn hook: every request's CPU from the moment the worker starts on it
(reading and parsing the HTTP request) to the moment it is done with it
(response written and closed) belongs to the request's endpoint.

    gunicorn -c python:dynotag.gunicorn myapp.wsgi
    # or, in your own gunicorn config file:
    from dynotag.gunicorn import post_worker_init

post_worker_init wraps the worker's connection handler (Worker.handle: one
request per call for the sync worker, one request per call for gthread's
keep-alive connections): it opens a whole request (dynotag.request_open)
before and ends it after. The endpoint comes from the application: the Django
middleware (dynotag.django) after URL resolution, or a dynotag.wsgi
middleware; a request nobody names counts as "unresolved". This is the
honest boundary: nothing a worker does for a request happens outside it.
"""
import functools

from dynotag import _request_end, _request_open, warn_unavailable

__all__ = ["post_worker_init", "wrap_handler"]


def wrap_handler(handle):
    """handle, opening a whole request around each call."""
    @functools.wraps(handle)
    def handle_request(*args, **kwargs):
        opened = _request_open()
        try:
            return handle(*args, **kwargs)
        finally:
            if opened == 1:
                _request_end()
    handle_request.__dynotag_wrapped__ = True
    return handle_request


def post_worker_init(worker):
    """gunicorn server hook: wraps worker.handle (once)."""
    warn_unavailable("dynotag.gunicorn")
    handle = getattr(worker, "handle", None)
    if handle is not None and not getattr(handle, "__dynotag_wrapped__", False):
        worker.handle = wrap_handler(handle)
