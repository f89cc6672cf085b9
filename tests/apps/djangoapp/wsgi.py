"""WSGI entry point: gunicorn djangoapp.wsgi:application (cwd or PYTHONPATH tests/apps).

The application the server calls is a truth wrapper that measures each whole
request with time.thread_time(), from the server's call to the response's
close (views.account_whole). DYNOTAG_WSGI=1 puts dynotag.wsgi's middleware
right inside it (endpoint=later: the Django middleware names the request
after URL resolution), so dynoprof sees the same whole request.
"""
import os
import time

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoapp.settings")
django_application = get_wsgi_application()

from djangoapp import urls, views  # noqa: E402  (after Django is set up)

ENDPOINTS = {str(p.pattern) for p in urls.urlpatterns}
_thread_time = time.thread_time

inner = django_application
if os.environ.get("DYNOTAG_WSGI") == "1":
    import dynotag.wsgi
    inner = dynotag.wsgi.DynotagMiddleware(django_application, endpoint=dynotag.wsgi.later)


class _Measured(object):
    """The response; close() closes it, then accounts the whole request."""

    def __init__(self, result, endpoint, start):
        self._result = result
        self._endpoint = endpoint
        self._start = start

    def __iter__(self):
        return iter(self._result)

    def close(self):
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            views.account_whole(self._endpoint, _thread_time() - self._start)


def application(environ, start_response):
    if os.environ.get("GUNICORN_CMD_ARGS"):  # gunicorn_conf.py measures the truth
        return inner(environ, start_response)
    start = _thread_time()
    path = environ.get("PATH_INFO", "").lstrip("/")
    endpoint = path if path in ENDPOINTS else "unresolved"
    return _Measured(inner(environ, start_response), endpoint, start)
