"""Async views under WSGI: the coroutine's CPU goes to the request.

Django and Flask run an async view under WSGI through asgiref's
async_to_sync, which runs the coroutine on an event loop of its own in a new
thread while the request's thread waits. sharing(async_to_sync) returns an
async_to_sync whose coroutine joins the calling thread's open request on that
thread (dynotag.request_join) and leaves it when it returns, so the view's
CPU there is the request's, under its endpoint. dynotag.django installs it
for Django's handler (views, and async middlewares adapted after dynotag's
import), dynotag.flask for app.async_to_sync.

What stays outside: the loop thread's own start and asgiref's set-up and
tear-down of its loop around the coroutine (on the request's thread, the
creation of the loop and of the thread is in the request). When the
coroutine would run on a loop shared with other requests (an outer event
loop already running: ASGI), nothing is joined: per-thread tags cannot tell
the interleaved requests of one loop apart.
"""
import functools

from dynotag import _request_join, _request_leave, _request_number

__all__ = ["sharing"]


def _shared_loop(converter):
    """True when converter (an asgiref AsyncToSync) runs its coroutine on a
    running loop of another thread, shared with other work."""
    loop = getattr(converter, "main_event_loop", None)
    try:
        return loop is not None and loop.is_running()
    except Exception:  # an unknown object: do not join
        return True


def sharing(async_to_sync):
    """async_to_sync(awaitable, ...) -> a sync callable, as asgiref's, whose
    coroutine joins the calling thread's request on the thread it runs on."""
    if getattr(async_to_sync, "__dynotag_wrapped__", False):
        return async_to_sync

    @functools.wraps(async_to_sync)
    def async_to_sync_sharing(awaitable, *options, **kw_options):
        async def joined(_dynotag_request, *args, **kwargs):
            carried = bool(_dynotag_request) and _request_join(_dynotag_request) == 1
            try:
                return await awaitable(*args, **kwargs)
            finally:
                if carried:
                    _request_leave()  # the calling thread ends it

        converter = async_to_sync(joined, *options, **kw_options)

        @functools.wraps(awaitable)
        def run(*args, **kwargs):
            number = 0 if _shared_loop(converter) else _request_number()
            return converter(number, *args, **kwargs)
        return run
    async_to_sync_sharing.__dynotag_wrapped__ = True
    return async_to_sync_sharing
