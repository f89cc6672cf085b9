"""dynotag: tag what this thread is doing so dynoprof's samples carry the tags.

    import dynotag

    dynotag.set_process("service", "checkout")    # every thread, every sample
    with dynotag.request("orders/<int:id>/"):     # endpoint + request counter
        with dynotag.tag(tenant="acme"):           # custom tags, restored on exit
            handle()

    @dynotag.tag(job="reindex")                   # also a decorator
    def reindex(): ...

Tags are per thread (the endpoint plus up to 8 custom key=value pairs) and are
written by libdynotag.so with a few memory stores: no syscall, no lock once a
string has been seen. Each distinct string is interned once and its id cached
here, so a call is one ctypes call with integers.

Finding the library, in order:
  1. $DYNOTAG_LIBRARY: a path (set it to "" to disable tagging);
  2. libdynotag.so.1 (or libdynotag.so) next to this file;
  3. where `make install` put it (LIBDIR in dynotag/_install.py, written at
     install), or, in a source tree, the build's .output/libdynotag/;
  4. ctypes.util.find_library("dynotag") (ld.so's cache).
When none loads, importing still works and every function is a no-op: the
process simply has no tags. `available` says which case holds,
`library_path` what was loaded and `load_error` why nothing was (every path
tried). The WSGI and Django middlewares warn once per process when the library
is missing (warn_unavailable()), so a deployment never runs untagged silently.

Strings: keys longer than 64 bytes and values longer than 256 bytes (UTF-8)
are cut and end in "…"; text that is not valid UTF-8 is escaped as \\xNN.
Every distinct string stays interned for the life of the process (16384
strings, 1 MiB); past that, new strings read "__overflow__". Do not tag with
unbounded values (request ids, user ids, raw paths with ids in them).

Errors: an empty key raises ValueError (also without the library); a 9th
custom key on a thread raises TagLimitError and changes nothing.

Whole requests: request_open() where the server starts handling a request,
request_begin(endpoint) once the endpoint is known (after URL resolution),
request_end() at its end: the whole request's CPU goes to its final endpoint,
and a request that never gets one counts as "unresolved". The middlewares
(dynotag.wsgi, dynotag.django) and the gunicorn hook (dynotag.gunicorn) do
this; whichever opens the request first (the outermost) ends it. A request
whose work runs on several threads is shared: request_number() on the thread
that has it, request_join(number) on the other, which then ends it or
request_leave()s it (gthread's hand-over, dynotag.asyncs for async views).

Threads: gunicorn sync and gthread workers, uWSGI threads and plain threads
each have their own tags. asyncio tasks share their thread's tags: set them
around synchronous sections only.
"""
import ctypes
import ctypes.util
import errno
import functools
import os
import threading
import warnings

__all__ = [
    "available", "library_path", "load_error", "TagLimitError", "UnavailableWarning",
    "warn_unavailable",
    "set", "clear", "clear_all", "set_endpoint", "request_begin", "request_end",
    "set_process", "clear_process", "tag", "request", "request_open",
    "request_number", "request_join", "request_leave",
]

__version__ = "1.2.0"

ENDPOINT_KEY = "endpoint"
_ID_ENDPOINT = 1
_ID_OVERFLOW = 2
# Interned ids cached per distinct Python string. The C table holds at most
# 16384 strings, but many long strings can share one id (cut to the same
# prefix), so the caches stop growing here and further strings are looked up
# in C each time (still lock-free).
_CACHE_LIMIT = 32768


class TagLimitError(RuntimeError):
    """A thread (or the process) already has the maximum of 8 custom tags."""


def _candidates():
    """Paths (or sonames) to try, in order of preference."""
    env = os.environ.get("DYNOTAG_LIBRARY")
    if env is not None:
        return [env] if env else []
    here = os.path.dirname(os.path.abspath(__file__))
    found = [os.path.join(here, name) for name in ("libdynotag.so.1", "libdynotag.so")
             if os.path.exists(os.path.join(here, name))]
    if found:
        return found
    for path in _install_paths():
        if os.path.exists(path):
            return [path]
    name = ctypes.util.find_library("dynotag")
    return [name] if name else []


def _install_paths():
    """Where a built or installed libdynotag.so.1 sits: make install's LIBDIR
    (dynotag/_install.py), else, in a source tree, the build's .output/."""
    try:
        from dynotag._install import LIBDIR  # written by make install
        return [os.path.join(LIBDIR, "libdynotag.so.1")]
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))
        return [os.path.normpath(os.path.join(here, "..", "..", "..", ".output",
                                              "libdynotag", "libdynotag.so.1"))]


def _searched():
    """Where the library was looked for, for messages."""
    env = os.environ.get("DYNOTAG_LIBRARY")
    if env is not None:
        return "$DYNOTAG_LIBRARY=%r" % env
    here = os.path.dirname(os.path.abspath(__file__))
    return ", ".join([os.path.join(here, "libdynotag.so.1")] + _install_paths() +
                     ["the ld.so cache (ldconfig -p)"])


def _load():
    """(library, path, error): the loaded libdynotag with its prototypes, or None."""
    errors = []
    for path in _candidates():
        try:
            # PyDLL: calls keep the GIL (they never block for long), which saves
            # a GIL release/acquire per call.
            lib = ctypes.PyDLL(path)
            lib.dynotag_version.restype = ctypes.c_uint
            lib.dynotag_version.argtypes = ()
            version = lib.dynotag_version()
            if version // 10000 != 1:
                errors.append("%s: incompatible version %d" % (path, version))
                continue
            u32, u32p, c_int, c_char_p = (ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32),
                                          ctypes.c_int, ctypes.c_char_p)
            # Functions taking only ids get no argtypes: a Python int is passed
            # as a C int (ids are < 2**31) and the per-argument conversion
            # objects would double the cost of a call.
            for name, args in (
                    ("dynotag_intern_len", (c_char_p, u32, u32p)),
                    ("dynotag_intern_key_len", (c_char_p, u32, u32p)),
                    ("dynotag_clear_process", (c_char_p,)),
                    ("dynotag_set_ids", None),
                    ("dynotag_exchange_ids", None),
                    ("dynotag_clear_id", None),
                    ("dynotag_clear_all", ()),
                    ("dynotag_request_begin_id", None),
                    ("dynotag_request_end", ()),
                    ("dynotag_request_open", ()),
                    ("dynotag_request_abandon", ()),
                    ("dynotag_set_process_ids", None),
                    # A request number is an opaque token here: returned
                    # and passed as a C int (its 32 bits round-trip).
                    ("dynotag_request_join", None),
                    ("dynotag_request_leave", ()),
                    ("dynotag_request_number", ())):
                fn = getattr(lib, name)
                if args is not None:
                    fn.argtypes = args
                fn.restype = c_int
            return lib, path, None
        except (OSError, AttributeError) as e:
            errors.append("%s: %s" % (path, e))
    return None, None, "; ".join(errors) or "libdynotag not found (looked at %s)" % _searched()


_lib, library_path, load_error = _load()
available = _lib is not None


class UnavailableWarning(RuntimeWarning):
    """libdynotag could not be loaded: this process's samples carry no tags."""


_warned = False


def warn_unavailable(who="dynotag"):
    """Says once per process, on stderr (a warnings.warn, which
    logging.captureWarnings sends to logging), that tagging is off and why;
    does nothing when the library is loaded or DYNOTAG_LIBRARY="" turned it
    off. Returns whether it warned."""
    global _warned
    if available or _warned or os.environ.get("DYNOTAG_LIBRARY") == "":
        return False  # loaded, said already, or turned off on purpose
    _warned = True
    warnings.warn("%s: libdynotag is not loaded, so requests are NOT tagged or counted "
                  "(pid %d): %s. Install it with `make install`, or set DYNOTAG_LIBRARY "
                  "to the path of libdynotag.so.1." % (who, os.getpid(), load_error),
                  UnavailableWarning, stacklevel=3)
    return True

_placement_warned = set()


def warn_placement(who, message):
    """Says once per process and middleware, loudly (logging's "dynotag"
    logger at WARNING: on stderr when logging is not configured), that a
    middleware is not where it must be."""
    if who in _placement_warned:
        return False
    _placement_warned.add(who)
    import logging
    logging.getLogger("dynotag").warning("%s (pid %d): %s", who, os.getpid(), message)
    return True


if available:
    _intern_len = _lib.dynotag_intern_len
    _intern_key_len = _lib.dynotag_intern_key_len
    _set_ids = _lib.dynotag_set_ids
    _clear_id = _lib.dynotag_clear_id
    _exchange_ids = _lib.dynotag_exchange_ids
    _clear_all = _lib.dynotag_clear_all
    _request_begin_id = _lib.dynotag_request_begin_id
    _request_end = _lib.dynotag_request_end
    _request_open = _lib.dynotag_request_open
    _request_abandon = _lib.dynotag_request_abandon
    _set_process_ids = _lib.dynotag_set_process_ids
    _request_number = _lib.dynotag_request_number
    _request_join = _lib.dynotag_request_join
    _request_leave = _lib.dynotag_request_leave
    _clear_process = _lib.dynotag_clear_process
else:
    def _intern_len(data, length, out):
        return 0

    _intern_key_len = _intern_len

    def _set_ids(key_id, value_id):
        return 0

    def _clear_id(key_id):
        return 0

    def _exchange_ids(key_id, value_id):
        return 0

    def _clear_all():
        return 0

    def _request_begin_id(endpoint_id):
        return 0

    def _request_end():
        return 0

    def _request_open():
        return 0

    _request_abandon = _request_open
    _request_number = _request_open
    _request_leave = _request_open

    def _request_join(number):
        return 0

    _set_process_ids = _set_ids

    def _clear_process(key):
        return 0

_value_ids = {}  # value string -> id
_key_ids = {ENDPOINT_KEY: _ID_ENDPOINT}  # key string -> id


def _encode(text):
    """UTF-8 bytes of a str (bytes pass through); the library escapes what is
    not valid UTF-8 (surrogate-escaped bytes come back as \\xNN)."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def _intern(text, cache, intern_fn):
    data = _encode(text)  # text: str or bytes
    out = ctypes.c_uint32(0)
    intern_fn(data, len(data), ctypes.byref(out))
    ident = out.value
    if ident and ident != _ID_OVERFLOW and len(cache) < _CACHE_LIMIT:
        cache[text] = ident
    return ident


def _value_id(value):
    """The id of a value: str and bytes as such, anything else by its str()
    (only str and bytes are cached: 1, 1.0 and True are equal dict keys)."""
    try:
        ident = _value_ids.get(value)
    except TypeError:  # unhashable
        ident = None
    if ident is None:
        if not isinstance(value, (str, bytes)):
            value = str(value)
            ident = _value_ids.get(value)
            if ident is not None:
                return ident
        ident = _intern(value, _value_ids, _intern_len)
    return ident


def _key_id(key):
    ident = _key_ids.get(key) if isinstance(key, (str, bytes)) else None
    if ident is None:
        if not isinstance(key, (str, bytes)):
            return _key_id(str(key))
        if not key:
            raise ValueError("dynotag: empty tag key")
        ident = _intern(key, _key_ids, _intern_key_len)
    return ident


def _check(rc, key):
    if rc == -errno.ENOSPC:
        raise TagLimitError("dynotag: no slot for tag %r: 8 custom tags already set" % (key,))


def set(key, value):  # noqa: A001 - the natural name, as in dynotag_set()
    """Sets this thread's tag key=value (value None clears it). key "endpoint"
    is the endpoint. Raises ValueError (empty key) or TagLimitError."""
    if value is None:
        return clear(key)
    _check(_set_ids(_key_id(key), _value_id(value)), key)


def clear(key):
    """Removes this thread's tag key (nothing happens if it is not set)."""
    _clear_id(_key_id(key))


def clear_all():
    """Removes all this thread's tags, the endpoint included."""
    _clear_all()


def set_endpoint(endpoint):
    """Sets this thread's endpoint without counting a request (None clears)."""
    if endpoint is None:
        _clear_id(_ID_ENDPOINT)
    else:
        _set_ids(_ID_ENDPOINT, _value_id(endpoint))


def request_begin(endpoint):
    """Starts a request on this thread: sets the endpoint and counts one request
    for it. Pair with request_end()."""
    ident = _value_ids.get(endpoint)
    if ident is None:
        ident = _intern(endpoint, _value_ids, _intern_len)
    _request_begin_id(ident)


def request_end():
    """Ends this thread's request: counts it for its endpoint ("unresolved"
    when it has none) and clears the endpoint (custom tags stay)."""
    _request_end()


def request_open():
    """Opens a whole request on this thread, its endpoint not known yet (set it
    later with request_begin(endpoint)): dynoprof credits all the CPU from here
    to request_end() to the endpoint the request ends with. Returns True when
    it opened one (then call request_end()), False when one was open already
    (an outer layer opened it and ends it)."""
    return _request_open() == 1


def request_number():
    """The number of this thread's open request (0: none), for another thread
    to join (request_join) when part of the request's work runs there."""
    return _request_number()


def request_join(number):
    """Makes this thread carry request `number`, opened by another thread of
    this process (request_number() there): its CPU goes to that request until
    it ends it (request_end(): counts it, once for all threads) or leaves it
    (request_leave()). Returns True when it joined, False when this thread has
    a request open already (nothing changed) or number is 0."""
    return bool(number) and _request_join(number) == 1


def request_leave():
    """This thread stops carrying its open request without ending it (another
    thread ends and counts it)."""
    _request_leave()


def set_process(key, value):
    """Sets a process-wide tag (e.g. commit, service, env) carried by every
    thread's samples; value None clears it. Meant for start-up (takes a mutex).
    Raises ValueError (empty key) or TagLimitError."""
    if value is None:
        return clear_process(key)
    _check(_set_process_ids(_key_id(key), _value_id(value)), key)


def clear_process(key):
    """Removes a process-wide tag."""
    if not isinstance(key, (str, bytes)):
        key = str(key)
    if not key:
        raise ValueError("dynotag: empty tag key")
    _clear_process(_encode(key))


class tag(object):
    """Sets tags for a block or a function, restoring the previous values after:

        with dynotag.tag(tenant="acme", plan="pro"): ...
        @dynotag.tag(job="reindex")
        def reindex(): ...

    A value of None clears the key inside the block. Keys that are not Python
    identifiers can be passed as a dict: tag(**{"db.shard": "3"}). One object
    may be entered by several threads and recursively.
    """

    __slots__ = ("_items", "_saved")

    def __init__(self, **tags):
        self._items = [(_key_id(k), k, v) for k, v in tags.items()]
        self._saved = {}  # thread ident -> stack of saved states

    def _apply(self):
        """Sets the tags; returns [(key id, previous value id or 0)]."""
        saved = []
        for key_id, key, value in self._items:
            previous = _exchange_ids(key_id, 0 if value is None else _value_id(value))
            if previous < 0:
                _restore(saved)
                _check(previous, key)  # raises for a 9th key
                return []  # -ENOMEM/-EAGAIN: no tags on this thread, like no library
            saved.append((key_id, previous))
        return saved

    def __enter__(self):
        saved = self._apply()
        self._saved.setdefault(threading.get_ident(), []).append(saved)
        return self

    def __exit__(self, exc_type, exc, tb):
        ident = threading.get_ident()
        stack = self._saved[ident]
        saved = stack.pop()
        if not stack:
            del self._saved[ident]
        _restore(saved)
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def tagged(*args, **kwargs):
            saved = self._apply()
            try:
                return func(*args, **kwargs)
            finally:
                _restore(saved)
        return tagged


def _restore(saved):
    for key_id, previous in reversed(saved):
        _exchange_ids(key_id, previous)


class request(object):
    """Context manager (and decorator) for one request: request_begin(endpoint)
    on entry, request_end() on exit."""

    __slots__ = ("_endpoint_id",)

    def __init__(self, endpoint):
        self._endpoint_id = _value_id(endpoint)

    def __enter__(self):
        _request_begin_id(self._endpoint_id)
        return self

    def __exit__(self, exc_type, exc, tb):
        _request_end()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def in_request(*args, **kwargs):
            _request_begin_id(self._endpoint_id)
            try:
                return func(*args, **kwargs)
            finally:
                _request_end()
        return in_request
