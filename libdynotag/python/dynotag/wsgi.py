"""WSGI middleware: every request's samples carry its endpoint.

    from dynotag.wsgi import DynotagMiddleware
    application = DynotagMiddleware(application)
    # or, with a bounded name per route (recommended when paths carry ids):
    application = DynotagMiddleware(application, endpoint=lambda environ: route_of(environ))

The endpoint is set (and one request counted) when the server calls the
application, and cleared when the server closes the response, so the CPU spent
producing a streaming response body is attributed too. Tags are per thread,
which is what gunicorn's sync and gthread workers (and wsgiref, uWSGI threads,
waitress) give a request from start to close. If a server closes the response
on another thread than the one that started it, the endpoint is left for the
starting thread's next request to replace, rather than clearing a tag the
closing thread may be using.
"""
import threading

from dynotag import _request_begin_id, _request_end, _value_id, _value_ids, warn_unavailable

__all__ = ["DynotagMiddleware", "path_endpoint"]

_get_ident = threading.get_ident


def path_endpoint(environ):
    """The default endpoint: SCRIPT_NAME + PATH_INFO (the raw path; pass an
    `endpoint` callable when paths contain ids, or the string table fills up)."""
    return (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")) or "/"


class DynotagMiddleware(object):
    """Wraps a WSGI application. endpoint(environ) -> str or None names the
    request (None: leave this request untagged and uncounted); the default is
    path_endpoint."""

    def __init__(self, app, endpoint=None):
        self.app = app
        self.endpoint = endpoint if endpoint is not None else path_endpoint
        warn_unavailable("dynotag.wsgi.DynotagMiddleware")

    def __call__(self, environ, start_response):
        name = self.endpoint(environ)
        if name is None:
            return self.app(environ, start_response)
        # dynotag.request_begin(name), inlined: this runs on every request.
        ident = _value_ids.get(name)
        if ident is None:
            ident = _value_id(name)
        _request_begin_id(ident)
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
