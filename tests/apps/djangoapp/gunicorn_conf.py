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
Its main thread's poller callbacks (accept, reuse_connection), and the poll
that woke for the first of them, are measured too and added to the request of
the connection they hand to the pool, since dynotag.gunicorn credits them to
it.
"""
import threading
import time

import dynotag.gunicorn

_paths = threading.local()
# gthread's main thread: the truth box of the poller callback it is running.
_main = threading.local()
# Guards a box's hand-over between the main thread and the pool thread.
_box_lock = threading.Lock()


def _add_dispatch(box, endpoint):
    """Pool thread, once its request is accounted under endpoint: adds the CPU
    of the main thread's callback that handed the connection over, or leaves
    the endpoint for the main thread to add it when it is done."""
    with _box_lock:
        cpu, box["endpoint"] = box["cpu"], endpoint
    if cpu is not None:
        from djangoapp import views
        views.account_whole_cpu(endpoint, cpu)


def _selector(select):
    def measured_select(*args, **kwargs):
        _main.select_cpu = 0.0  # a poll's that no callback took
        start = time.thread_time()
        events = select(*args, **kwargs)
        if events:
            _main.select_cpu = time.thread_time() - start
        return events
    return measured_select


def _dispatcher(callback):
    def measured_dispatch(*args, **kwargs):
        box = _main.box = {"cpu": None, "endpoint": None}
        polled, _main.select_cpu = getattr(_main, "select_cpu", 0.0), 0.0
        start = time.thread_time()
        try:
            return callback(*args, **kwargs)
        finally:
            cpu = time.thread_time() - start + polled
            _main.box = None
            with _box_lock:
                box["cpu"], endpoint = cpu, box["endpoint"]
            if endpoint is not None:
                from djangoapp import views
                views.account_whole_cpu(endpoint, cpu)
    return measured_dispatch


def _enqueuer(enqueue):
    def measured_enqueue(conn):
        conn.truth_box = getattr(_main, "box", None)
        return enqueue(conn)
    return measured_enqueue


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
        box, _paths.box = getattr(_paths, "box", None), None
        if _paths.path is not None:
            endpoint = path if path in wsgi.ENDPOINTS else "unresolved"
            views.account_whole(endpoint, time.thread_time() - _paths.start)
            if box is not None:
                _add_dispatch(box, endpoint)

    def measured(*args, **kwargs):
        if getattr(_paths, "pending", False):
            account()  # its callback ran on another thread
        _paths.path = None
        _paths.box = None
        if callback and args:
            _paths.box, args[0].truth_box = getattr(args[0], "truth_box", None), None
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
        worker.accept = _dispatcher(worker.accept)
        worker.reuse_connection = _dispatcher(worker.reuse_connection)
        worker.enqueue_req = _enqueuer(worker.enqueue_req)
        worker.poller.select = _selector(worker.poller.select)
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
