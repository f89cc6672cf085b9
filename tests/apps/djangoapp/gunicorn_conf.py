"""gunicorn config of the whole-request tests: GUNICORN_CMD_ARGS="-c
python:djangoapp.gunicorn_conf". Each worker's per-request step
(dynotag.gunicorn.boundary: the sync worker's accept) is wrapped twice:
the truth (time.thread_time around the whole handling of a
request: accepting the connection, reading and parsing the request, the
application, writing and closing the response; accounted to the path's
endpoint by views.account_whole when a request was parsed), and around it
dynotag.gunicorn's hook, which opens the whole request for dynoprof. The
gthread worker's request ends after its done callback (finish_request: the
keep-alive connection parked or closed), as dynotag.gunicorn counts it.
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
    # gthread: the request ends after its done callback (finish_request) ran
    # in the same pool thread, as dynotag.gunicorn counts it.
    callback = name == "handle" and dynotag.gunicorn.finishes_in_callback(worker)

    def account():
        _paths.pending = False
        path = (_paths.path or "").lstrip("/")
        if _paths.path is not None:
            views.account_whole(path if path in wsgi.ENDPOINTS else "unresolved",
                                time.thread_time() - _paths.start)

    def measured(*args, **kwargs):
        if getattr(_paths, "pending", False):
            account()  # its callback ran on another thread
        _paths.path = None
        _paths.start = time.thread_time()
        done = False
        try:
            result = handle(*args, **kwargs)
            done = True
            return result
        finally:
            if callback and done:
                _paths.pending = True
            else:
                account()
    setattr(worker, name, measured)
    if callback:
        finish = worker.finish_request

        def finished(*args, **kwargs):
            try:
                return finish(*args, **kwargs)
            finally:
                if getattr(_paths, "pending", False):
                    account()
        worker.finish_request = finished
    # dynotag's hook outside the truth: the truth's own bookkeeping, after it
    # took its reading, is in the request rather than outside any.
    dynotag.gunicorn.post_worker_init(worker)
