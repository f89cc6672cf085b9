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
"unresolved".

gthread's main thread runs the event loop that serves every connection. A
request is opened when it waits in the poller; when the poller wakes for a
ready connection (a new one to accept, a keep-alive one with a new request),
the first callback (accept, reuse_connection) carries that request on, and
further ones open their own; enqueue_req hands it with the connection to the
pool thread that then handles it (dynotag.request_number / request_join). So
the main thread's work of waking for, accepting, taking back and handing over
the connection is the request's. A poll that times out, and a callback that
hands nothing over (no connection waiting, a connection already gone),
abandon theirs.

This is the honest boundary: what is left outside is the worker's idling
(waiting in the poller, the heartbeat, the check of the parent, the sweep of
finished futures and expired keep-alive connections, which serve every
connection at once) and the pool threads' wait for work.
"""
import functools
import threading

from dynotag import (_request_abandon, _request_end, _request_join, _request_leave,
                     _request_number, _request_open, warn_unavailable)

__all__ = ["post_worker_init", "wrap_handler", "wrap_finisher", "finishes_in_callback",
           "boundary", "wrap_dispatcher", "wrap_enqueuer"]

# This thread's request left open for its done callback (gthread).
_pending = threading.local()
class _Dispatch(threading.local):
    """gthread's main thread: the poll's request waiting for a callback, and
    whether the running callback handed its request over."""
    waiting = False
    handed = False


_dispatch = _Dispatch()
# The attribute of a gthread connection naming the request handed over with it.
_HANDED = "_dynotag_request"


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
        handed = getattr(args[0], _HANDED, 0) if args else 0
        if handed:  # opened by the main thread's poller callback: carry it on
            setattr(args[0], _HANDED, 0)
            opened = _request_join(handed)
        else:
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


def _drop(conn):
    """Abandons the request handed over with conn that no pool thread joined."""
    number = getattr(conn, _HANDED, 0)
    setattr(conn, _HANDED, 0)
    if number and _request_join(number) == 1:
        _request_abandon()


def wrap_finisher(finish):
    """finish (a done callback), ending the request this thread's handle left
    open once it has run."""
    @functools.wraps(finish)
    def finish_request(*args, **kwargs):
        try:
            return finish(*args, **kwargs)
        finally:
            _end_pending()
            conn = getattr(args[0], "conn", None) if args else None
            if getattr(conn, _HANDED, 0):  # handed over, never handled (cancelled)
                _drop(conn)
    finish_request.__dynotag_wrapped__ = True
    return finish_request


def wrap_select(select):
    """gthread's poller.select (main thread): opens a request while waiting,
    for the first ready connection's callback (wrap_dispatcher) to carry on;
    a poll that finds nothing abandons it, and so does the next poll when no
    callback took it."""
    @functools.wraps(select)
    def select_ready(*args, **kwargs):
        if _dispatch.waiting:
            _dispatch.waiting = False
            _request_abandon()  # no callback took the last poll's request
        opened = _request_open()
        events = None
        try:
            events = select(*args, **kwargs)
            return events
        finally:
            if opened == 1:
                if events:
                    _dispatch.waiting = True
                else:
                    _request_abandon()
    select_ready.__dynotag_wrapped__ = True
    return select_ready


def wrap_dispatcher(callback):
    """A gthread poller callback (accept, reuse_connection: main thread),
    run under a request for the connection it handles (the poll's, when it is
    the first callback after it, else one of its own); the request goes on
    with the connection when the callback hands it to the pool
    (wrap_enqueuer), else it is abandoned (no connection after all)."""
    @functools.wraps(callback)
    def dispatch(*args, **kwargs):
        if _dispatch.waiting:
            _dispatch.waiting = False
            opened = 1  # the poll's request: this callback ends or hands it
        else:
            opened = _request_open()
        _dispatch.handed = False
        try:
            return callback(*args, **kwargs)
        finally:
            if opened == 1:
                if _dispatch.handed:
                    _request_leave()  # the pool thread carries it on and ends it
                else:
                    _request_abandon()
    dispatch.__dynotag_wrapped__ = True
    return dispatch


def wrap_enqueuer(enqueue):
    """gthread's enqueue_req(conn): hands the calling thread's open request
    over with the connection, for the pool thread's handle to join."""
    @functools.wraps(enqueue)
    def enqueue_request(conn, *args, **kwargs):
        number = _request_number()
        if number:
            setattr(conn, _HANDED, number)
            _dispatch.handed = True
        return enqueue(conn, *args, **kwargs)
    enqueue_request.__dynotag_wrapped__ = True
    return enqueue_request


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
        for name in ("accept", "reuse_connection"):
            step = getattr(worker, name, None)
            if callable(step) and not getattr(step, "__dynotag_wrapped__", False):
                setattr(worker, name, wrap_dispatcher(step))
        worker.enqueue_req = wrap_enqueuer(worker.enqueue_req)
        poller = getattr(worker, "poller", None)
        if poller is not None and not getattr(poller.select, "__dynotag_wrapped__", False):
            poller.select = wrap_select(poller.select)
