"""Django middleware: every request's samples carry its URL pattern.

    MIDDLEWARE = [
        "dynotag.django.DynotagMiddleware",   # FIRST: the outermost
        ...
    ]
    # and, for the whole request (Django's request set-up and URL
    # resolution before the middlewares), in wsgi.py:
    application = dynotag.wsgi.DynotagMiddleware(get_wsgi_application(),
                                                 endpoint=dynotag.wsgi.later)
    # or gunicorn -c python:dynotag.gunicorn (covers the worker's parsing too)

It must be first in MIDDLEWARE. Unless an outer layer (dynotag.wsgi,
dynotag.gunicorn) opened the request already, it opens a whole request when
Django calls it and ends it when the response is closed; the CPU of every
middleware, the URL resolution and the view goes to the endpoint set after
resolution. When it is not first in MIDDLEWARE and nothing outside opened the
request, it says so once on the "dynotag" logger (stderr by default).

After URL resolution (process_view) the endpoint becomes the matched route
pattern, e.g. "orders/<int:id>/" (with the prefixes of include()s), never the
raw path, so the number of distinct endpoints stays that of the URLconf; for
an empty route (the site root) it is the view's dotted name, e.g.
"shop.views.index". The request is counted when it ends, for that endpoint;
requests that never reach a view (404 from the resolver, a response from an
earlier middleware) count as "unresolved", their CPU too.

Without libdynotag (dynotag.available False) the middleware still passes
requests through, and says once per process on stderr that nothing is tagged.

Async views under WSGI (Django runs them through asgiref's async_to_sync on
an event loop thread of their own): importing this module makes Django's
handler use dynotag.asyncs.sharing(async_to_sync), so that thread joins the
request while the view's coroutine runs and its CPU goes to the endpoint.

Synchronous (WSGI) deployments only: under ASGI, requests of one thread
interleave and per-thread tags would mislabel them.
"""
import threading

import dynotag
from dynotag import _request_end, _request_open, warn_placement
from dynotag.asyncs import sharing

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
        self._first = _is_first(self)
        dynotag.warn_unavailable("dynotag.django.DynotagMiddleware")

    def __call__(self, request):
        thread = _get_ident()
        # A request of ours whose response was never closed: end it now.
        if _open.pop(thread, None):
            _request_end()
        if _request_open() != 1:
            return self.get_response(request)  # an outer layer opened it and ends it
        if not self._first:
            warn_placement("dynotag.django.DynotagMiddleware",
                           "not first in settings.MIDDLEWARE, and no outer layer "
                           "(dynotag.wsgi, dynotag.gunicorn) opened the request: the CPU "
                           "of the middlewares before it is credited to no endpoint")
        _open[thread] = True
        setattr(request, _BEGAN, thread)
        try:
            response = self.get_response(request)
        except BaseException:
            _end_on(thread)
            raise
        closers = getattr(response, "_resource_closers", None)  # Django >= 3.0
        if closers is not None:
            closers.append(lambda: _end_on(thread))  # when the server closes it
        else:
            _end_on(thread)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        dynotag.request_begin(endpoint_of(request, view_func))
        return None


def share_async_views():
    """Makes Django's handler run async views (and async responses' render)
    with dynotag.asyncs.sharing: their event loop thread joins the request.
    Idempotent; returns whether Django's handler is covered."""
    try:
        from django.core.handlers import base
    except ImportError:
        return False
    convert = getattr(base, "async_to_sync", None)
    if convert is None:
        return False
    base.async_to_sync = sharing(convert)
    return True


share_async_views()


def _is_first(middleware):
    """Whether this middleware is first in settings.MIDDLEWARE."""
    try:
        from django.conf import settings
        names = list(getattr(settings, "MIDDLEWARE", None) or [])
    except Exception:  # settings not configured: nothing to say
        return True
    cls = type(middleware)
    return bool(names) and names[0] in ("%s.%s" % (cls.__module__, cls.__qualname__),
                                        "dynotag.django.DynotagMiddleware")


# Threads with a request this middleware opened and has not ended.
_open = {}


def _end_on(thread):
    if _get_ident() == thread and _open.pop(thread, None):
        _request_end()
