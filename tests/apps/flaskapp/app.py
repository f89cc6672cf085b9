"""The Flask test app: gunicorn flaskapp.app:application (PYTHONPATH tests/apps).

  /light /medium /heavy  the work of djangoapp's endpoints (same truth: each
                         view measures its own CPU with time.thread_time), as
                         a function view, a MethodView and a function view (an
                         async view with FLASKAPP_ASYNC=1)
  /stats                 this worker's truth (djangoapp.views' format)

The application gunicorn calls is a truth wrapper measuring each whole request
(djangoapp.wsgi's), then, with DYNOTAG_FLASK=1, dynotag.flask's integration.
"""
import os
import time

from flask import Flask, Response, jsonify
from flask.views import MethodView

from djangoapp import views as truth

app = Flask(__name__)
_thread_time = time.thread_time


def _measured(endpoint):
    truth._ensure_flusher()
    start = _thread_time()
    truth.WORK[endpoint]()
    cpu_s = _thread_time() - start
    truth._account(endpoint, cpu_s)
    return Response("%.6f\n" % cpu_s, mimetype="text/plain")


@app.route("/light")
def light():
    return _measured("light")


class MediumView(MethodView):
    def get(self):
        return _measured("medium")


app.add_url_rule("/medium", view_func=MediumView.as_view("medium"))


if os.environ.get("FLASKAPP_ASYNC") == "1":
    # An async view: under WSGI, asgiref runs it on an event loop thread of its
    # own, outside the request thread's tags (and its thread_time).
    @app.route("/heavy")
    async def heavy():
        return _measured("heavy")
else:
    @app.route("/heavy")
    def heavy():
        return _measured("heavy")


@app.route("/stats")
def stats():
    return jsonify(truth._snapshot())


if os.environ.get("DYNOTAG_FLASK") == "1":
    import dynotag.flask
    dynotag.flask.init_app(app)

ENDPOINTS = {"light", "medium", "heavy", "stats"}
# The names `--endpoint-from flask` may give (module:qualname).
VIEWS = {"flaskapp.app:light", "flaskapp.app:MediumView.get", "flaskapp.app:heavy",
         "flaskapp.app:stats"}


class _Measured(object):
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
            truth.account_whole(self._endpoint, _thread_time() - self._start)


def application(environ, start_response):
    start = _thread_time()
    path = environ.get("PATH_INFO", "").lstrip("/")
    endpoint = path if path in ENDPOINTS else "unresolved"
    return _Measured(app(environ, start_response), endpoint, start)
