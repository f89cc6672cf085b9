"""The dynotag Python package (libdynotag/python) under every CPython 3.8+ here.

No BPF: each check runs a script in a subprocess of one interpreter, which
reads back what the library wrote by decoding `dynotag_runtime` with ctypes
structures written from bpf/dynotag_abi.h (string table, arena, the thread's
record through its pthread key, request counters), as dynoprof would.

Needs .output/libdynotag/libdynotag.so.1 (`make libdynotag`) or
$DYNOTAG_LIBRARY. Runs without the rest of the suite's fixtures:
    python3 -m pytest --noconftest tests/integration/test_dynotag_python.py
"""
import os
import subprocess
import sys
import textwrap

import pytest

from pyutil import distribution_python, find_interpreters

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGE_DIR = os.path.join(REPO_ROOT, "libdynotag", "python")
DEFAULT_LIBRARY = os.path.join(REPO_ROOT, ".output", "libdynotag", "libdynotag.so.1")
DEBIAN_PYTHON = distribution_python()


def _interpreters():
    """(id, path) of every CPython >= 3.8 (pyutil.find_interpreters)."""
    found = [pytest.param(i.path, id="%s-%d.%d" % ((i.kind,) + i.minor))
             for i in find_interpreters() if i.minor >= (3, 8) and not i.root]
    return found or [pytest.param(sys.executable, id="current")]


INTERPRETERS = _interpreters()


@pytest.fixture(scope="session")
def library():
    path = os.environ.get("DYNOTAG_LIBRARY") or DEFAULT_LIBRARY
    if not os.path.exists(path):
        pytest.fail("%s not built: run `make libdynotag`" % path)
    return os.path.abspath(path)


# Decodes dynotag_runtime as bpf/dynotag_abi.h lays it out; imported by the
# scripts below (written next to them as abi_reader.py).
ABI_READER = r'''
import ctypes
import dynotag

u32, s32, u64 = ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64

class Pair(ctypes.Structure):
    _fields_ = [("key", u32), ("value", u32)]

class Record(ctypes.Structure):
    _fields_ = [("seq", u32), ("count", u32), ("tags", Pair * 9), ("request", u32),
                ("pad", u32)]

class String(ctypes.Structure):
    _fields_ = [("offset", u32), ("length", u32)]

class Runtime(ctypes.Structure):
    _fields_ = [("magic", u64), ("abi_version", u32), ("tss_key", s32),
                ("strings", u64), ("arena", u64), ("requests", u64),
                ("string_count", u32), ("string_capacity", u32),
                ("arena_size", u32), ("arena_used", u32), ("process", Record),
                ("request_log", u64), ("request_log_size", u32), ("pad", u32)]

# The _Static_asserts of the header, and its field offsets.
assert ctypes.sizeof(Pair) == 8 and ctypes.sizeof(String) == 8
assert ctypes.sizeof(Record) == 88 and ctypes.sizeof(Runtime) == 160
assert (Runtime.tss_key.offset, Runtime.strings.offset, Runtime.requests.offset,
        Runtime.string_count.offset, Runtime.arena_used.offset,
        Runtime.process.offset) == (12, 16, 32, 40, 52, 56), "offsets"

rt = Runtime.in_dll(dynotag._lib, "dynotag_runtime")
assert rt.magic == 0x316761746f6e7964, hex(rt.magic)
assert rt.abi_version == 2
assert 0 <= rt.tss_key < 32, rt.tss_key
libc = ctypes.CDLL(None)
libc.pthread_getspecific.restype = ctypes.c_void_p
libc.pthread_getspecific.argtypes = [ctypes.c_uint]

def string(ident):
    assert 1 <= ident <= rt.string_count, ident
    entry = String.from_address(rt.strings + (ident - 1) * ctypes.sizeof(String))
    return ctypes.string_at(rt.arena + entry.offset, entry.length).decode("utf-8")

def decode(record):
    seq = record.seq
    assert seq % 2 == 0, "record left mid-write"
    tags = {}
    for i in range(record.count):
        pair = record.tags[i]
        if pair.key:
            tags[string(pair.key)] = string(pair.value)
    for i in range(record.count, 9):
        assert record.tags[i].key == 0, "pair beyond count"
    assert record.seq == seq
    return tags

def my_tags():
    """This thread's tags, read through its pthread key like the sampler."""
    address = libc.pthread_getspecific(rt.tss_key)
    return decode(Record.from_address(address)) if address else {}

def process_tags():
    return decode(rt.process)

def requests(endpoint):
    """The request counter of endpoint (0 when never interned)."""
    for ident in range(1, rt.string_count + 1):
        if string(ident) == endpoint:
            return u64.from_address(rt.requests + 8 * ident).value
    return 0

def my_request():
    """This thread's open request number (0: none)."""
    address = libc.pthread_getspecific(rt.tss_key)
    return Record.from_address(address).request if address else 0

def logged(number):
    """The endpoint the request log has for request number, or None."""
    entry = u64.from_address(rt.request_log + 8 * (number % rt.request_log_size)).value
    return string(entry & 0xFFFFFFFF) if entry >> 32 == number else None
'''

NOOP_SCRIPT = r'''
import dynotag, dynotag.wsgi
assert not dynotag.available and dynotag.library_path is None, dynotag.library_path
print("load_error:", dynotag.load_error)
dynotag.set("k", "v"); dynotag.set("k", None); dynotag.clear("k"); dynotag.clear_all()
dynotag.set_endpoint("/x"); dynotag.request_begin("/x"); dynotag.request_end()
dynotag.set_process("commit", "abc"); dynotag.clear_process("commit")
with dynotag.tag(a="1", b=None):
    pass
@dynotag.tag(a="2")
def f():
    return 42
assert f() == 42
with dynotag.request("/y"):
    pass
for i in range(20):
    dynotag.set("key%d" % i, "v")   # no limit without the library
try:
    dynotag.set("", "v")
    raise SystemExit("empty key accepted")
except ValueError:
    pass
app = dynotag.wsgi.DynotagMiddleware(lambda env, sr: [b"ok"])
assert list(app({"PATH_INFO": "/"}, None)) == [b"ok"]
print("NOOP OK")
'''

LAYOUT_SCRIPT = r'''
import threading
import dynotag
from abi_reader import my_tags, process_tags, requests, rt

assert dynotag.available, dynotag.load_error
assert my_tags() == {}

dynotag.set("tenant", "acme")
dynotag.set("plan", "pro")
assert my_tags() == {"tenant": "acme", "plan": "pro"}, my_tags()
dynotag.set("tenant", "globex")
dynotag.set("plan", None)
assert my_tags() == {"tenant": "globex"}, my_tags()

with dynotag.request("orders/<int:id>/"):
    assert my_tags() == {"endpoint": "orders/<int:id>/", "tenant": "globex"}, my_tags()
    with dynotag.tag(tenant="initech", region="eu"):
        assert my_tags() == {"endpoint": "orders/<int:id>/", "tenant": "initech",
                             "region": "eu"}, my_tags()
    assert my_tags() == {"endpoint": "orders/<int:id>/", "tenant": "globex"}, my_tags()
assert my_tags() == {"tenant": "globex"}, my_tags()
assert requests("orders/<int:id>/") == 1
for _ in range(9):
    dynotag.request_begin("orders/<int:id>/")
    dynotag.request_end()
assert requests("orders/<int:id>/") == 10

@dynotag.tag(job="reindex", tenant=None)
def job(depth):
    assert my_tags() == {"job": "reindex"}, my_tags()
    if depth:
        job(depth - 1)
    return "done"
assert job(2) == "done"
assert my_tags() == {"tenant": "globex"}, my_tags()

# Per-thread: another thread starts empty and does not disturb this one.
seen = {}
def worker():
    seen["start"] = my_tags()
    dynotag.set("tenant", "thread")
    dynotag.set_endpoint("/worker")
    seen["set"] = my_tags()
t = threading.Thread(target=worker)
t.start(); t.join()
assert seen == {"start": {}, "set": {"endpoint": "/worker", "tenant": "thread"}}, seen
assert my_tags() == {"tenant": "globex"}, my_tags()

# Process-wide tags.
dynotag.set_process("service", "checkout")
dynotag.set_process("commit", "0123abcd")
assert process_tags() == {"service": "checkout", "commit": "0123abcd"}, process_tags()
dynotag.set_process("service", None)
assert process_tags() == {"commit": "0123abcd"}, process_tags()

# Strings: cut with an ellipsis, escaped when not UTF-8, non-str values.
dynotag.clear_all()
dynotag.set("k" * 100, "\u00e9" * 200)
assert my_tags() == {"k" * 61 + "\u2026": "\u00e9" * 126 + "\u2026"}, my_tags()
dynotag.clear_all()
dynotag.set("raw", b"ab\xffc")
dynotag.set("escaped", "caf\udce9")        # surrogateescape'd byte 0xe9
dynotag.set("number", 42)
assert my_tags() == {"raw": "ab\\xffc", "escaped": "caf\\xe9", "number": "42"}, my_tags()
dynotag.clear_all()
dynotag.set("flag", True)                   # 1 == True as dict keys: not confused
dynotag.set("one", 1)
dynotag.set("list", [1, 2])
assert my_tags() == {"flag": "True", "one": "1", "list": "[1, 2]"}, my_tags()

# Limits and errors.
dynotag.clear_all()
for i in range(8):
    dynotag.set("key%d" % i, "v")
try:
    dynotag.set("key8", "v")
    raise SystemExit("9th key accepted")
except dynotag.TagLimitError:
    pass
try:
    with dynotag.tag(key0="w", key9="v"):
        raise SystemExit("entered with a 9th key")
except dynotag.TagLimitError:
    pass
assert my_tags()["key0"] == "v", my_tags()   # partial tag() rolled back
try:
    dynotag.set("", "v")
    raise SystemExit("empty key accepted")
except ValueError:
    pass
dynotag.clear_all()
assert my_tags() == {}
print("strings", rt.string_count, "arena", rt.arena_used)
print("LAYOUT OK")
'''

WSGI_SCRIPT = r'''
import io, threading, urllib.request
from wsgiref.simple_server import make_server, WSGIRequestHandler
import dynotag
from dynotag.wsgi import DynotagMiddleware
from abi_reader import my_tags, requests

during = []

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/list":
        during.append(("list", my_tags()))
        return [b"list ", b"body"]
    if environ["PATH_INFO"] == "/file":
        during.append(("file", my_tags()))
        return environ["wsgi.file_wrapper"](io.BytesIO(b"file body"))
    def body():                      # streamed: runs after app() returned
        for i in range(3):
            during.append((i, my_tags()))
            yield b"chunk%d\n" % i
    return body()

def route(environ):
    path = environ["PATH_INFO"]
    return None if path == "/untagged" else ("orders/<id>" if path.startswith("/orders/")
                                              else path)

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

httpd = make_server("127.0.0.1", 0, DynotagMiddleware(app, endpoint=route), handler_class=Quiet)
after = []
def serve():
    for _ in range(5):
        httpd.handle_request()
        after.append(my_tags())
server = threading.Thread(target=serve)
server.start()
base = "http://127.0.0.1:%d" % httpd.server_port
assert urllib.request.urlopen(base + "/orders/17").read() == b"chunk0\nchunk1\nchunk2\n"
assert urllib.request.urlopen(base + "/orders/18").read() == b"chunk0\nchunk1\nchunk2\n"
assert urllib.request.urlopen(base + "/file").read() == b"file body"
assert urllib.request.urlopen(base + "/list").read() == b"list body"
assert urllib.request.urlopen(base + "/untagged").read() == b"chunk0\nchunk1\nchunk2\n"
server.join()
httpd.server_close()
ep = {"endpoint": "orders/<id>"}
assert during == [(0, ep), (1, ep), (2, ep)] * 2 + [("file", {"endpoint": "/file"}),
    ("list", {"endpoint": "/list"})] + [(0, {}), (1, {}), (2, {})], during
assert after == [{}] * 5, after
assert requests("orders/<id>") == 2 and requests("/file") == 1 and requests("/list") == 1
assert requests("/untagged") == 0
# Default endpoint: the path.
mw = DynotagMiddleware(lambda env, sr: [my_tags()])
assert list(mw({"PATH_INFO": "/plain", "SCRIPT_NAME": "/app"}, None)) == \
    [{"endpoint": "/app/plain"}]
print("WSGI OK")
'''

DJANGO_SCRIPT = r'''
import sys
import django
from django.conf import settings

settings.configure(
    DEBUG=False, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
    SECRET_KEY="dynotag-test", DATABASES={}, INSTALLED_APPS=[],
    MIDDLEWARE=["dynotag.django.DynotagMiddleware"],
)
django.setup()

from django.http import HttpResponse, StreamingHttpResponse
from django.test import Client
from django.urls import include, path, re_path
from abi_reader import logged, my_request, my_tags, requests

seen = []

def order(request, id):
    seen.append(my_tags())
    return HttpResponse("order %d" % id)

def index(request):
    seen.append(my_tags())
    return HttpResponse("index")

def stream(request):
    def body():
        for i in range(2):
            seen.append(my_tags())
            yield b"part%d" % i
    return StreamingHttpResponse(body())

def legacy(request, year):
    seen.append(my_tags())
    return HttpResponse(year)

urlpatterns = [
    path("orders/<int:id>/", order),
    path("", index),
    path("api/", include([path("stream/", stream)])),
    re_path(r"^archive/(?P<year>[0-9]{4})/$", legacy),
]

client = Client()
for i in (1, 2, 3):
    assert client.get("/orders/%d/" % i).content == b"order %d" % i
    assert my_tags() == {}, my_tags()
assert seen == [{"endpoint": "orders/<int:id>/"}] * 3, seen
assert requests("orders/<int:id>/") == 3

del seen[:]
assert client.get("/").content == b"index"
assert seen == [{"endpoint": "__main__.index"}], seen
assert my_tags() == {}

del seen[:]
response = client.get("/api/stream/")
assert b"".join(response.streaming_content) == b"part0part1"
assert seen == [{"endpoint": "api/stream/"}] * 2, seen
response.close()
assert my_tags() == {}, my_tags()

del seen[:]
assert client.get("/archive/2024/").content == b"2024"
assert seen == [{"endpoint": "^archive/(?P<year>[0-9]{4})/$"}], seen

before = requests("unresolved")
assert client.get("/missing/").status_code == 404
assert my_tags() == {}
assert requests("unresolved") == before + 1  # a 404 is an unresolved request

# Whole requests: a request opened outside (the WSGI middleware, the gunicorn
# hook) gets its number first and its endpoint after URL resolution.
import dynotag
assert dynotag.request_open()
number = my_request()
assert number and my_tags() == {}
count = requests("orders/<int:id>/")
assert client.get("/orders/7/").content == b"order 7"
assert my_request() == number  # the outer layer ends it, not the middleware
assert logged(number) == "orders/<int:id>/", logged(number)
dynotag.request_end()
assert my_request() == 0 and requests("orders/<int:id>/") == count + 1

# The gunicorn gthread hook: a request stays open over the done callback that
# its pool thread runs after handle; a callback run on another thread leaves
# it to the thread's next request to end first.
import threading
import dynotag.gunicorn
handle = dynotag.gunicorn.wrap_handler(lambda: client.get("/orders/8/").content,
                                       keep_open=True)
finish = dynotag.gunicorn.wrap_finisher(my_request)
count = requests("orders/<int:id>/")
assert handle() == b"order 8"
number = my_request()
assert number and requests("orders/<int:id>/") == count
assert finish() == number  # the callback runs inside the request
assert my_request() == 0 and requests("orders/<int:id>/") == count + 1
assert logged(number) == "orders/<int:id>/", logged(number)
assert handle() == b"order 8"
elsewhere = threading.Thread(target=finish)
elsewhere.start()
elsewhere.join()
assert my_request() and requests("orders/<int:id>/") == count + 1
assert handle() == b"order 8"  # ends the last one, then runs its own
assert requests("orders/<int:id>/") == count + 2
finish()
assert my_request() == 0 and requests("orders/<int:id>/") == count + 3
print("django", django.get_version(), "DJANGO OK")
'''


PLACEMENT_SCRIPT = r'''
import io
import logging

import django
from django.conf import settings

settings.configure(
    DEBUG=False, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
    SECRET_KEY="dynotag-test", DATABASES={}, INSTALLED_APPS=[],
    MIDDLEWARE=["django.middleware.common.CommonMiddleware",
                "dynotag.django.DynotagMiddleware"],
)
django.setup()
from django.http import HttpResponse
from django.test import Client
from django.urls import path

import dynotag
import dynotag.gunicorn
import dynotag.wsgi

urlpatterns = [path("a/", lambda request: HttpResponse("a"))]
said = io.StringIO()
logging.getLogger("dynotag").addHandler(logging.StreamHandler(said))

# The Django middleware is not first and nothing outside opened the request:
# said once, however many requests.
client = Client()
for _ in range(3):
    assert client.get("/a/").content == b"a"
assert said.getvalue().count("DynotagMiddleware") == 1, said.getvalue()
assert "not first in settings.MIDDLEWARE" in said.getvalue(), said.getvalue()

# The WSGI middleware called by another layer: said once.
said.truncate(0)
said.seek(0)
def app(environ, start_response):
    start_response("200 OK", [])
    return [b"x"]
inner = dynotag.wsgi.DynotagMiddleware(app, endpoint=dynotag.wsgi.later)
def outer_layer(environ, start_response):
    return inner(environ, start_response)
for _ in range(3):
    result = outer_layer({"PATH_INFO": "/"}, lambda *a: None)
    list(result)
    result.close()
assert said.getvalue().count("not the outermost WSGI application") == 1, said.getvalue()

# Inside the gunicorn hook (the request is open already): nothing to say.
said.truncate(0)
said.seek(0)
quiet = dynotag.wsgi.DynotagMiddleware(app, endpoint=dynotag.wsgi.later)
hooked = dynotag.gunicorn.wrap_handler(lambda: list(quiet({"PATH_INFO": "/"}, lambda *a: None)))
hooked()
assert said.getvalue() == "", said.getvalue()
print("PLACEMENT OK")
'''


def run_script(python, tmp_path, source, library, marker):
    """Runs source under python with the package importable; asserts it prints
    marker and returns its output."""
    (tmp_path / "abi_reader.py").write_text(ABI_READER)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_DIR, str(tmp_path)])
    env.pop("PYTHONHOME", None)
    if library is None:
        env.pop("DYNOTAG_LIBRARY", None)
    else:
        env["DYNOTAG_LIBRARY"] = library
    proc = subprocess.run([python, str(script)], cwd=str(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and marker in proc.stdout, "%s failed:\n%s" % (python, out)
    return out


@pytest.mark.parametrize("python", INTERPRETERS)
def test_import_without_library_is_a_noop(python, tmp_path):
    out = run_script(python, tmp_path, NOOP_SCRIPT, "", "NOOP OK")
    assert "load_error: libdynotag not found" in out
    out = run_script(python, tmp_path, NOOP_SCRIPT, "/nonexistent/libdynotag.so.1", "NOOP OK")
    assert "/nonexistent/libdynotag.so.1" in out


@pytest.mark.parametrize("python", INTERPRETERS)
def test_tags_read_back_through_the_abi(python, tmp_path, library):
    run_script(python, tmp_path, LAYOUT_SCRIPT, library, "LAYOUT OK")


@pytest.mark.parametrize("python", INTERPRETERS)
def test_wsgi_middleware_streaming(python, tmp_path, library):
    run_script(python, tmp_path, WSGI_SCRIPT, library, "WSGI OK")


def test_library_found_next_to_package(tmp_path, library):
    """Without DYNOTAG_LIBRARY, a libdynotag.so.1 inside the package is used."""
    package = tmp_path / "pkg" / "dynotag"
    package.mkdir(parents=True)
    for name in os.listdir(os.path.join(PACKAGE_DIR, "dynotag")):
        if name.endswith(".py"):
            with open(os.path.join(PACKAGE_DIR, "dynotag", name)) as f:
                (package / name).write_text(f.read())
    with open(library, "rb") as f:
        (package / "libdynotag.so.1").write_bytes(f.read())
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "pkg"))
    env.pop("DYNOTAG_LIBRARY", None)
    out = subprocess.run(
        [sys.executable, "-c", "import dynotag; print(dynotag.available, dynotag.library_path)"],
        env=env, stdout=subprocess.PIPE, universal_newlines=True, timeout=60).stdout
    assert out.split() == ["True", str(package / "libdynotag.so.1")]


def test_django_middleware_sets_route_pattern(tmp_path, library):
    if not os.access(DEBIAN_PYTHON, os.X_OK):
        pytest.fail("%s missing: apt-get install python3 python3-django (scripts/deps.sh test)"
                    % DEBIAN_PYTHON)
    check = subprocess.run([DEBIAN_PYTHON, "-c", "import django"], stderr=subprocess.PIPE)
    if check.returncode != 0:
        pytest.fail("python3-django missing: apt-get install -y python3-django")
    run_script(DEBIAN_PYTHON, tmp_path, DJANGO_SCRIPT, library, "DJANGO OK")


def test_middlewares_say_once_when_not_outermost(tmp_path, library):
    """The Django middleware not first in MIDDLEWARE (nothing outside opened
    the request) and the WSGI middleware called by another layer each say so
    once on the "dynotag" logger; inside the gunicorn hook nothing is said."""
    run_script(DEBIAN_PYTHON, tmp_path, PLACEMENT_SCRIPT, library, "PLACEMENT OK")


SHARED_SCRIPT = r'''
import threading

from asgiref.sync import async_to_sync

import dynotag
import dynotag.asyncs
from abi_reader import logged, my_request, my_tags, requests

# A request handed to another thread: it joins, names and ends it; the opener
# leaves it. Both carried the same number; it counts once.
assert dynotag.request_number() == 0
assert dynotag.request_open()
number = dynotag.request_number()
assert number and my_request() == number & 0xFFFFFFFF
seen = {}

def pool():
    seen["joined"] = dynotag.request_join(number)
    seen["carried"] = my_request()
    dynotag.request_begin("shared/<id>")
    dynotag.request_end()
    seen["after"] = my_request()
worker = threading.Thread(target=pool)
worker.start()
worker.join()
assert seen == {"joined": True, "carried": number & 0xFFFFFFFF, "after": 0}, seen
dynotag.request_leave()
assert my_request() == 0 and dynotag.request_number() == 0
assert requests("shared/<id>") == 1 and logged(number & 0xFFFFFFFF) == "shared/<id>"
assert not dynotag.request_join(0)

# An async view through asgiref's real async_to_sync: its coroutine runs on
# another thread, which carries the request (with its endpoint) while it runs.
async def view(x):
    return threading.get_ident(), my_request(), my_tags().get("endpoint"), x

shared = dynotag.asyncs.sharing(async_to_sync)(view)
assert dynotag.request_open()
dynotag.request_begin("async/<id>")
number = my_request()
ident, carried, endpoint, x = shared(7)
assert ident != threading.get_ident() and x == 7
assert (carried, endpoint) == (number, "async/<id>"), (carried, endpoint, number)
dynotag.request_end()
assert requests("async/<id>") == 1
# Outside a request the coroutine joins nothing.
assert shared(8)[1:] == (0, None, 8)

# A Flask async view (app.async_to_sync, shared by dynotag.flask.init_app).
import flask
import dynotag.flask
app = dynotag.flask.init_app(flask.Flask("shared"))
main = threading.get_ident()

@app.route("/orders/<int:n>")
async def orders(n):
    return "%s %s" % (threading.get_ident() != main, my_tags().get("endpoint"))
assert app.test_client().get("/orders/3").data == b"True /orders/<int:n>"
print("SHARED OK")
'''


def test_requests_shared_across_threads(tmp_path, library):
    """request_number/request_join/request_leave across threads, and
    dynotag.asyncs with asgiref's own async_to_sync (Debian's python3-asgiref,
    a dependency of python3-django) and in a Flask async view."""
    run_script(DEBIAN_PYTHON, tmp_path, SHARED_SCRIPT, library, "SHARED OK")
