"""Django middleware: every request's samples carry its URL pattern.

    MIDDLEWARE = [
        "dynotag.django.DynotagMiddleware",   # anywhere; first is best
        ...
    ]

After URL resolution (process_view) the endpoint becomes the matched route
pattern, e.g. "orders/<int:id>/" (with the prefixes of include()s), never the
raw path, so the number of distinct endpoints stays that of the URLconf; for
an empty route (the site root) it is the view's dotted name, e.g.
"shop.views.index". One request is counted there. The endpoint is cleared once
the response is built, or, for a StreamingHttpResponse, when the server
closes it (the body is produced after the middleware returns). Requests that
never reach a view (404 from the resolver, a response from an earlier
middleware) are neither tagged nor counted.

Without libdynotag (dynotag.available False) the middleware still passes
requests through, and says once per process on stderr that nothing is tagged.

Synchronous (WSGI) deployments only: under ASGI, requests of one thread
interleave and per-thread tags would mislabel them.
"""
import threading

import dynotag

__all__ = ["DynotagMiddleware", "endpoint_of"]

_get_ident = threading.get_ident
# Request attribute: the thread that began dynotag's request for it.
_BEGAN = "_dynotag_thread"


def endpoint_of(request, view_func):
    """The endpoint name for a resolved request: the route pattern, or the
    view's dotted name when the route is empty or unknown."""
    match = getattr(request, "resolver_match", None)
    route = getattr(match, "route", None)
    if route:
        return route
    func_path = getattr(match, "_func_path", None)
    if func_path:
        return func_path
    func = getattr(view_func, "view_class", None) or view_func
    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return module + "." + name if module else name


class DynotagMiddleware(object):
    """New-style (Django >= 1.10) middleware; see the module docstring."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response
        dynotag.warn_unavailable("dynotag.django.DynotagMiddleware")

    def __call__(self, request):
        try:
            response = self.get_response(request)
        except BaseException:
            self._end(request)
            raise
        if getattr(request, _BEGAN, None) is not None:
            closers = getattr(response, "_resource_closers", None)  # Django >= 3.0
            if getattr(response, "streaming", False) and closers is not None:
                thread = getattr(request, _BEGAN)
                closers.append(lambda: _end_on(thread))
            else:
                self._end(request)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        dynotag.request_begin(endpoint_of(request, view_func))
        setattr(request, _BEGAN, _get_ident())
        return None

    @staticmethod
    def _end(request):
        thread = getattr(request, _BEGAN, None)
        if thread is not None:
            _end_on(thread)


def _end_on(thread):
    if _get_ident() == thread:
        dynotag.request_end()
