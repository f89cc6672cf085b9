"""`--endpoint-from django|flask` on real apps under gunicorn, driven by wrk
(no dynotag): the endpoints are exactly the application's views (a decorated
function view, a class-based view / MethodView, an async view), never the
framework's internals (URL resolution, make_view_atomic, check_response,
asyncio helpers) nor an application middleware's process_view hook, whose
work is sampled too (tests/apps/viewsapp, tests/apps/flaskapp)."""
import os

import pytest

from apputil import GunicornApp, parse_by_table, record_load
from conftest import run_dynoprof_cmd

APPS = {
    # framework: (WSGI application, the views module's VIEWS)
    "django": ("viewsapp.wsgi:application", "viewsapp.views"),
    "flask": ("flaskapp.app:application", "flaskapp.app"),
}
PATHS = ("light", "medium", "heavy")
# Views that run under the loads (stats is only hit by the readiness check).
LOADED = {"django": {"viewsapp.views:light", "viewsapp.views:MediumView.get",
                     "viewsapp.views:heavy"},
          "flask": {"flaskapp.app:light", "flaskapp.app:MediumView.get",
                    "flaskapp.app:heavy"}}


@pytest.mark.parametrize("framework", sorted(APPS))
def test_endpoint_from_names_exactly_the_views(outdir, framework):
    wsgi, module = APPS[framework]
    app = GunicornApp(outdir, workers=2, middleware=False, app=wsgi, name=framework,
                      env={"DJANGOAPP_SCALE": "0.2", "FLASKAPP_ASYNC": "1"})
    out = os.path.join(outdir, "%s.pb.gz" % framework)
    app.start()
    try:
        app.warm_up()
        record_load(app.pids(), out,
                    [(app.url(p), {"threads": 1, "connections": 2}) for p in PATHS],
                    extra=("-F", "499", "--endpoint-from", framework), seconds=5)
    finally:
        app.stop()
    rc, text, err = run_dynoprof_cmd("report", "-i", out, "--by", "endpoint")
    assert rc == 0, err
    rows = parse_by_table(text, ["endpoint"])
    named = {values[0] for values in rows} - {"-"}
    detail = "endpoints %s\n%s" % (sorted(named), text[:3000])
    print(detail)
    views = {"django": {"viewsapp.views:stats"}, "flask": {"flaskapp.app:stats"}}[framework] \
        | LOADED[framework]
    assert named <= views, detail
    assert LOADED[framework] <= named, detail
