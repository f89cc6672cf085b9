"""gunicorn config of the whole-request tests: GUNICORN_CMD_ARGS="-c
python:djangoapp.gunicorn_conf". Each worker's connection handler is wrapped
twice: outermost, the truth (time.thread_time around the whole handling of a
request: reading and parsing it, the application, writing and closing the
response; accounted to the path's endpoint by views.account_whole), and
inside it dynotag.gunicorn's hook, which opens the whole request for dynoprof.
"""
import threading
import time

import dynotag.gunicorn

_paths = threading.local()


def post_request(worker, req, environ, resp):
    _paths.path = req.path


def post_worker_init(worker):
    dynotag.gunicorn.post_worker_init(worker)
    handle = worker.handle
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
    worker.handle = measured
