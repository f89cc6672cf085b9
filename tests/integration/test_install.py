"""`make install`: what it lays out, that the systemd unit verifies, that the
system Python finds the installed dynotag package and its library with no
PYTHONPATH tricks, and that a missing library is said once, loudly.

Every install goes into a temporary directory (DESTDIR, or a temporary PREFIX
for the checks that need the files at their real paths): the real system is
never touched.
"""
import os
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import REPO_ROOT
from pyutil import decode_pprof

PYTHON = sys.executable  # the Python running the suite: make's $(PYTHON) too
PY_VERSION = "%d.%d" % sys.version_info[:2]


def make(*args, timeout=300):
    """Runs make in the repository; returns its output, failing on an error."""
    r = subprocess.run(["make", "-C", REPO_ROOT, "--no-print-directory", "PYTHON=" + PYTHON]
                       + list(args), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "make %s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr)
    return r.stdout + r.stderr


def clean_env(**extra):
    """The environment of a user's shell: no path variables pointing into the tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LD_LIBRARY_PATH", "DYNOTAG_LIBRARY", "PYTHONHOME",
                        "MANPATH", "PYTHONWARNINGS")}
    env.update(extra)
    return env


def system_sys_path():
    out = subprocess.run([PYTHON, "-c", "import sys; print('\\n'.join(sys.path))"],
                         capture_output=True, text=True, env=clean_env(), cwd="/",
                         check=True).stdout
    return out.split()


def site_dir(prefix):
    """Where make installs the package for prefix (Debian's layout)."""
    if prefix == "/usr":
        return "/usr/lib/python3/dist-packages"
    return "%s/lib/python%s/dist-packages" % (prefix, PY_VERSION)


EXPECTED = {  # path under DESTDIR (PREFIX=/usr/local) -> mode
    "usr/local/bin/dynoprof": 0o755,
    "usr/local/lib/libdynotag.so.1": 0o755,
    "usr/local/include/dynotag.h": 0o644,
    "usr/local/lib/systemd/system/dynoprof-agent.service": 0o644,
    "usr/local/share/man/man1/dynoprof.1": 0o644,
    "etc/dynoprof/agent.conf": 0o644,
    site_dir("/usr/local").lstrip("/") + "/dynotag/__init__.py": 0o644,
    site_dir("/usr/local").lstrip("/") + "/dynotag/django.py": 0o644,
    site_dir("/usr/local").lstrip("/") + "/dynotag/wsgi.py": 0o644,
    site_dir("/usr/local").lstrip("/") + "/dynotag/_install.py": 0o644,
}


def test_install_lays_out_every_file_and_keeps_an_existing_config(tmp_path):
    dest = str(tmp_path / "root")
    make("install", "DESTDIR=" + dest, "PREFIX=/usr/local")
    for rel, mode in EXPECTED.items():
        path = os.path.join(dest, rel)
        assert os.path.isfile(path), "make install did not install /%s" % rel
        assert stat.S_IMODE(os.stat(path).st_mode) == mode, rel
    link = os.path.join(dest, "usr/local/lib/libdynotag.so")
    assert os.readlink(link) == "libdynotag.so.1"
    with open(os.path.join(REPO_ROOT, "dynoprof"), "rb") as a, \
            open(os.path.join(dest, "usr/local/bin/dynoprof"), "rb") as b:
        assert a.read() == b.read()
    with open(os.path.join(dest, "usr/local/lib/systemd/system/dynoprof-agent.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/local/bin/dynoprof agent --config /etc/dynoprof/agent.conf" in unit
    assert dest not in unit  # the paths of the running system, not of the staging tree
    assert "Documentation=man:dynoprof(1)" in unit
    with open(os.path.join(dest, site_dir("/usr/local").lstrip("/"), "dynotag/_install.py")) as f:
        assert "LIBDIR = '/usr/local/lib'" in f.read()
    # The package lands where the system Python looks for this prefix.
    assert site_dir("/usr/local") in system_sys_path()

    # A second install never overwrites the operator's config.
    conf = os.path.join(dest, "etc/dynoprof/agent.conf")
    with open(conf, "a") as f:
        f.write("frequency = 7  # edited by the operator\n")
    out = make("install", "DESTDIR=" + dest, "PREFIX=/usr/local")
    assert "kept the existing" in out
    with open(conf) as f:
        assert "frequency = 7  # edited by the operator" in f.read()

    # uninstall removes what install wrote, but not an edited config.
    make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr/local")
    left = sorted(os.path.relpath(os.path.join(d, n), dest)
                  for d, _, names in os.walk(dest) for n in names)
    assert left == ["etc/dynoprof/agent.conf"]


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """A real install into a temporary prefix (the files at their real paths)."""
    root = str(tmp_path_factory.mktemp("prefix"))
    make("install", "PREFIX=" + root, "SYSCONFDIR=" + root + "/etc")
    return root


def test_systemd_analyze_verify_passes_on_the_installed_unit(prefix):
    """verify checks ExecStart's binary exists and the man page named in
    Documentation= is found by man (MANPATH: the prefix's, as man would for
    /usr/local)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: apt-get install systemd (scripts/deps.sh test)"
    unit = os.path.join(prefix, "lib/systemd/system/dynoprof-agent.service")
    with open(unit) as f:
        assert "ExecStart=%s/bin/dynoprof agent --config %s/etc/dynoprof/agent.conf" % (
            prefix, prefix) in f.read()
    r = subprocess.run([analyze, "verify", unit], capture_output=True, text=True, timeout=60,
                       env=clean_env(MANPATH=os.path.join(prefix, "share/man")))
    assert r.returncode == 0 and "dynoprof" not in r.stdout + r.stderr, r.stdout + r.stderr
    # The man page renders (no roff errors) and names every command.
    r = subprocess.run(["man", "--warnings", "-l", os.path.join(prefix, "share/man/man1/dynoprof.1")],
                       capture_output=True, text=True, timeout=60,
                       env=clean_env(MANWIDTH="100", MANPAGER="cat", PAGER="cat"))
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    for word in ("record", "agent", "diff", "report", "README", "--children"):
        assert word in r.stdout.replace("\u2010", "-")


DJANGO_CHECK = r"""
import os, sys, time, warnings
import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

BURN_S = float(os.environ.get("BURN_S", "0"))

def burn_in_view(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        sum(range(1000))

def view(request, n):
    burn_in_view(BURN_S)
    return HttpResponse("ok %d" % n)

urlpatterns = [path("orders/<int:n>/", view)]
settings.configure(DEBUG=False, ALLOWED_HOSTS=["testserver"], ROOT_URLCONF=__name__,
                   MIDDLEWARE=["dynotag.django.DynotagMiddleware"], LOGGING_CONFIG=None)
django.setup()
from django.test import Client
import dynotag
print("available", dynotag.available, dynotag.library_path, file=sys.stderr)
for _ in range(2):  # two handlers, two requests each: one warning at most
    client = Client()
    for n in (1, 2):
        assert client.get("/orders/%d/" % n).content == b"ok %d" % n
print("served", file=sys.stderr)
"""


def run_django(prefix, tmp_path, record=(), **env):
    script = tmp_path / "django_check.py"
    script.write_text(DJANGO_CHECK)
    # Only the prefix's site directory: as if the system Python had it on its
    # path, like /usr/local's (checked in the layout test).
    return subprocess.run(list(record) + [PYTHON, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=str(tmp_path),
                          env=clean_env(PYTHONPATH=site_dir(prefix), **env))


def test_installed_middleware_tags_reach_the_profile(prefix, tmp_path):
    """The installed binary profiles a Django app using the installed package
    and library: samples in the view carry its route as their endpoint."""
    out = str(tmp_path / "django.pb.gz")
    r = run_django(prefix, tmp_path, BURN_S="0.4",
                   record=(os.path.join(prefix, "bin", "dynoprof"), "record", "-F", "499",
                           "-o", out, "--"))
    assert r.returncode == 0, r.stderr
    in_view = [s for s in decode_pprof(out)
               if any(f.function.endswith("burn_in_view") for f in s.frames)]
    n_view = sum(s.values[0] for s in in_view)
    n_tagged = sum(s.values[0] for s in in_view if s.labels.get("endpoint") == "orders/<int:n>/")
    # Four requests of 0.4 s CPU; tags are read once dynoprof saw the library
    # loaded (at the latest from the second request on).
    assert n_view >= 100 and n_tagged >= 0.5 * n_view, (n_view, n_tagged, r.stderr)


def test_installed_dynotag_loads_its_library_and_the_middleware_is_quiet(prefix, tmp_path):
    r = run_django(prefix, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "available True %s/lib/libdynotag.so.1" % prefix in r.stderr
    assert "served" in r.stderr and "Warning" not in r.stderr, r.stderr


def test_missing_library_is_said_once_loudly(prefix, tmp_path):
    """The package installed but its library gone: the middleware still serves,
    and stderr carries exactly one warning naming the path it looked at."""
    lib = os.path.join(prefix, "lib", "libdynotag.so.1")
    moved = lib + ".away"
    os.rename(lib, moved)
    try:
        r = run_django(prefix, tmp_path)
    finally:
        os.rename(moved, lib)
    assert r.returncode == 0, r.stderr
    assert "available False" in r.stderr and "served" in r.stderr
    warnings = [line for line in r.stderr.splitlines() if "UnavailableWarning" in line]
    assert len(warnings) == 1, r.stderr
    assert "NOT tagged" in warnings[0] and lib in warnings[0], warnings[0]
    assert "dynotag.django.DynotagMiddleware" in warnings[0]
