"""The Django test app (tests/apps/djangoapp) under uWSGI (Debian's uwsgi with
uwsgi-plugin-python3, scripts/deps.sh test), with dynotag's uWSGI hook
(dynotag.uwsgi) as the callable uWSGI calls:

  UwsgiApp(tmpdir, workers=2, threads=1, env=...)  the same interface as
      apputil.GunicornApp (.start(), .pids(), .url(), .warm_up(), .stats(),
      .stop()); a master process and `workers` worker processes serving
      HTTP themselves (--http-socket) on 127.0.0.1:<free port>.
"""
import os
import shutil

import pytest

from apputil import APPS_DIR, GunicornApp

UWSGI = shutil.which("uwsgi") or "/usr/bin/uwsgi"
PLUGIN_DIR = "/usr/lib/uwsgi/plugins"


def require_uwsgi():
    """Fails (with what to install) when uwsgi or its Python 3 plugin is missing."""
    if not os.access(UWSGI, os.X_OK) or \
            not os.path.exists(os.path.join(PLUGIN_DIR, "python3_plugin.so")):
        pytest.fail("missing uwsgi or its python3 plugin: apt-get install uwsgi "
                    "uwsgi-plugin-python3 (scripts/deps.sh test)")


class UwsgiApp(GunicornApp):
    """djangoapp.wsgi:application under uWSGI, wrapped by dynotag.uwsgi."""

    def __init__(self, tmpdir, workers=2, threads=1, middleware=True, env=None, name="app",
                 app="djangoapp.wsgi:application"):
        require_uwsgi()
        super().__init__(tmpdir, workers=workers, threads=threads, middleware=middleware,
                         env=env, name=name, app=app)

    SERVER = "uwsgi"

    def command(self, port):
        return [UWSGI, "--plugin", "python3", "--master", "--die-on-term",
                "--need-app", "--enable-threads", "--disable-logging", "--tcp-nodelay",
                "--http11-socket", "127.0.0.1:%d" % port, "--chdir", APPS_DIR,
                "--workers", str(self.workers), "--threads", str(self.threads),
                "--module", "dynotag.uwsgi:application",
                "--set", "dynotag-app=" + self.app]
