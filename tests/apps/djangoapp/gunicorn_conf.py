"""gunicorn config of the whole-request tests: GUNICORN_CMD_ARGS="-c
python:djangoapp.gunicorn_conf". Each worker's per-request step
(dynotag.gunicorn.boundary: the sync worker's accept) is wrapped twice:
the truth (time.thread_time around the whole handling of a
request: accepting the connection, reading and parsing the request, the
application, writing and closing the response; accounted to the path's
endpoint by views.account_whole when a request was parsed), and around it
dynotag.gunicorn's hook, which opens the whole request for dynoprof.
"""
import threading
import time

import dynotag.gunicorn

_paths = threading.local()


def post_request(worker, req, environ, resp):
    _paths.path = req.path


def post_worker_init(worker):
    name = dynotag.gunicorn.boundary(worker)
    handle = getattr(worker, name)
    from djangoapp import views, wsgi

    def measured(*args, **kwargs):
        _paths.path = None
        start = time.thread_time()
        try:
            return handle(*args, **kwargs)
        finally:
            path = (_paths.path or "").lstrip("/")
            if _paths.path is not None:
                views.account_whole(path if path in wsgi.ENDPOINTS else "unresolved",
                                    time.thread_time() - start)
    setattr(worker, name, measured)
    # dynotag's hook outside the truth: the truth's own bookkeeping, after it
    # took its reading, is in the request rather than outside any.
    dynotag.gunicorn.post_worker_init(worker)
