"""uWSGI hook: dynotag's WSGI middleware as the outermost callable uWSGI calls.

    uwsgi --plugin python3 --enable-threads --module dynotag.uwsgi:application \\
          --set dynotag-app=myproject.wsgi:application ...
    # or, in the ini file:
    #   module = dynotag.uwsgi:application
    #   set = dynotag-app=myproject.wsgi:application
    # (the environment variable DYNOTAG_WSGI_APP works too)

uWSGI's request loop is C (accepting the connection, reading and parsing the
request, building environ, logging it afterwards); the first Python it runs
for a request is the application callable, and the last the response's
close(), after it wrote the response. That is the boundary: the request is
opened when uWSGI calls this module's `application` and ended when it closes
the response, so the CPU of the application, of writing the response and of
closing it goes to the request's endpoint; uWSGI's C work before the call
and after close() belongs to no request.

The endpoint is named by an inner layer (dynotag.django after URL
resolution, dynotag.flask, dynotag.request_begin); with
`--set dynotag-endpoint=path` it is the raw path instead (only when paths
carry no ids). A request nobody names counts as "unresolved".

`--enable-threads` is needed only for the application's own threads; tags
are per thread, so `--threads N` workers are fine.
"""
import importlib
import os

from dynotag.wsgi import DynotagMiddleware, later, path_endpoint

__all__ = ["application", "load", "wrap"]

# Where the application to wrap is named (uWSGI option, then environment).
OPTION = "dynotag-app"
ENDPOINT_OPTION = "dynotag-endpoint"
ENVIRONMENT = "DYNOTAG_WSGI_APP"


def _option(name):
    """A uWSGI option (--set name=value) as str, None outside uWSGI or unset."""
    try:
        import uwsgi
    except ImportError:
        return None
    value = uwsgi.opt.get(name)
    if isinstance(value, list):  # given more than once: the last one counts
        value = value[-1]
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


def load(target):
    """The callable `module:attribute` (attribute defaults to `application`)."""
    module, _, attribute = target.partition(":")
    if not module:
        raise ImportError("dynotag.uwsgi: empty application name %r" % target)
    obj = importlib.import_module(module)
    for part in (attribute or "application").split("."):
        obj = getattr(obj, part)
    return obj


def wrap(app, endpoint=None):
    """app under dynotag's outermost WSGI middleware (endpoint: "path", or
    None for an inner layer to name the request)."""
    return DynotagMiddleware(app, endpoint=path_endpoint if endpoint == "path" else later)


def _application():
    target = _option(OPTION) or os.environ.get(ENVIRONMENT)
    if not target:
        raise ImportError("dynotag.uwsgi: no application to wrap: pass --set %s=module:callable "
                          "(or set %s)" % (OPTION, ENVIRONMENT))
    return wrap(load(target), _option(ENDPOINT_OPTION))


application = _application()
