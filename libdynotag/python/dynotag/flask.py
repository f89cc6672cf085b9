"""Flask integration: every request's CPU, from the WSGI call to the
response's close, goes to its URL rule.

    import dynotag.flask
    app = Flask(__name__)
    dynotag.flask.init_app(app)

init_app wraps app.wsgi_app with dynotag.wsgi.DynotagMiddleware (opening the
whole request where Flask.__call__ hands it over; wrap it before any other
WSGI middleware you add, so that it stays outermost, or use the
dynotag.gunicorn hook) and adds a before_request hook that names the request
after URL matching: the endpoint is the rule ("/orders/<int:id>"), never the
raw path. A request that matches no rule (404, 405) counts as "unresolved".
Async views (app.async_to_sync, asgiref) run on an event loop thread that
joins the request while the view runs (dynotag.asyncs), so their CPU is the
endpoint's too.
"""
import dynotag
from dynotag.asyncs import sharing
from dynotag.wsgi import DynotagMiddleware, later

__all__ = ["init_app"]


def init_app(app):
    """Tags app's requests; returns app."""
    from flask import request

    app.wsgi_app = DynotagMiddleware(app.wsgi_app, endpoint=later)
    app.async_to_sync = sharing(app.async_to_sync)

    @app.before_request
    def _dynotag_endpoint():
        rule = request.url_rule
        if rule is not None:
            dynotag.request_begin(rule.rule)
        return None
    return app
