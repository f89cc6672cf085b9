"""WSGI middleware: every request's samples carry its endpoint.

    from dynotag.wsgi import DynotagMiddleware
    application = DynotagMiddleware(application)
    # or, with a bounded name per route (recommended when paths carry ids):
    application = DynotagMiddleware(application, endpoint=lambda environ: route_of(environ))
    # or, when an inner layer names the request (dynotag.django after URL
    # resolution), just open the whole request here:
    application = DynotagMiddleware(get_wsgi_application(), endpoint=later)

It must be OUTERMOST: the application the server calls. It opens a whole
request (dynotag.request_open) when the server calls the application and ends
it (counting one request) when the server closes the response, so all the CPU
in between, the streaming of a response body included, goes to the endpoint
the request ends with, even one an inner layer sets late; a request nobody
names counts as "unresolved". When it is called by something other than a
WSGI server and no outer layer (dynotag.gunicorn) opened the request, it says
so once, on the "dynotag" logger (stderr by default): the CPU of the layers
outside it belongs to no endpoint. Tags are per thread,
which is what gunicorn's sync and gthread workers (and wsgiref, uWSGI threads,
waitress) give a request from start to close. If a server closes the response
on another thread than the one that started it, the endpoint is left for the
starting thread's next request to replace, rather than clearing a tag the
closing thread may be using.
"""
import sys
import threading

from dynotag import (_request_begin_id, _request_end, _request_open, _value_id, _value_ids,
                     warn_placement, warn_unavailable)

__all__ = ["DynotagMiddleware", "path_endpoint", "later"]

_get_ident = threading.get_ident
# Modules whose calling the application means it is the outermost one.
_SERVERS = ("gunicorn.", "wsgiref.", "waitress.", "werkzeug.serving", "uwsgi", "meinheld.",
            "flask.app",  # Flask.__call__ hands the request to app.wsgi_app
            "bjoern", "cheroot.", "twisted.web.wsgi", "mod_wsgi", "dynotag.")


def later(environ):
    """An endpoint function naming no endpoint: an inner layer (dynotag.django
    after URL resolution, or dynotag.request_begin) names the request."""
    return None


def path_endpoint(environ):
    """The default endpoint: SCRIPT_NAME + PATH_INFO (the raw path; pass an
    `endpoint` callable when paths contain ids, or the string table fills up)."""
    return (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"


class DynotagMiddleware(object):
    """Wraps a WSGI application. endpoint(environ) -> str or None names the
    request (None: an inner layer names it, else it counts as "unresolved");
    the default is path_endpoint."""

    def __init__(self, app, endpoint=None):
        self.app = app
        self.endpoint = endpoint if endpoint is not None else path_endpoint
        self._placement_checked = False
        warn_unavailable("dynotag.wsgi.DynotagMiddleware")

    def _check_placement(self):
        """Once: warns when the caller is not a WSGI server."""
        self._placement_checked = True
        try:
            caller = sys._getframe(2).f_globals.get("__name__", "") or ""
        except ValueError:  # called from C: a server
            return
        if not caller.startswith(_SERVERS):
            warn_placement("dynotag.wsgi.DynotagMiddleware",
                           "not the outermost WSGI application (called from %s): the CPU "
                           "spent before it is credited to no endpoint; wrap the application "
                           "the server calls, or use the dynotag.gunicorn hook" % caller)

    def __call__(self, environ, start_response):
        opened = _request_open()
        if opened != 1 and not self._placement_checked:
            self._placement_checked = True  # an outer layer opened it: fine
        elif not self._placement_checked:
            self._check_placement()
        name = self.endpoint(environ)
        if name is not None:
            # dynotag.request_begin(name), inlined: this runs on every request.
            ident = _value_ids.get(name)
            if ident is None:
                ident = _value_id(name)
            _request_begin_id(ident)
        if opened != 1:
            return self.app(environ, start_response)  # the outer layer ends it
        thread = _get_ident()
        try:
            result = self.app(environ, start_response)
        except BaseException:
            _request_end()
            raise
        return _wrap(result, thread, environ)


def _end_on(thread):
    if _get_ident() == thread:
        _request_end()


def _wrap(result, thread, environ):
    """The response with a close() that also ends the request. A
    wsgi.file_wrapper response keeps its type (servers send those with
    sendfile) and gets the extra work through its own close."""
    kind = type(result)
    if kind is list or kind is tuple:  # the common non-streaming case
        return _SequenceResponse(result, thread)
    inner_close = getattr(result, "close", None)
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and isinstance(result, file_wrapper):
        def close():
            try:
                if inner_close is not None:
                    inner_close()
            finally:
                _end_on(thread)
        try:
            result.close = close
            return result
        except AttributeError:
            pass
    if hasattr(result, "__len__"):
        return _SizedClosingResponse(result, thread, inner_close)
    return _ClosingResponse(result, thread, inner_close)


class _ClosingResponse(object):
    """Iterates like the application's response; close() closes it and ends
    the request."""

    __slots__ = ("_result", "_thread", "_close")

    def __init__(self, result, thread, close):
        self._result = result
        self._thread = thread
        self._close = close

    def __iter__(self):
        return iter(self._result)

    def close(self):
        try:
            if self._close is not None:
                self._close()
        finally:
            _end_on(self._thread)


class _SizedClosingResponse(_ClosingResponse):
    """A _ClosingResponse for sized responses: servers that see __len__ use it
    for Content-Length, so only sized responses have one."""

    __slots__ = ()

    def __len__(self):
        return len(self._result)


class _SequenceResponse(object):
    """A list or tuple response (nothing to close but the request)."""

    __slots__ = ("_result", "_thread")

    def __init__(self, result, thread):
        self._result = result
        self._thread = thread

    def __iter__(self):
        return iter(self._result)

    def __len__(self):
        return len(self._result)

    def close(self):
        if _get_ident() == self._thread:
            _request_end()
