"""An application middleware whose hooks do measurable work: their samples
must never be named as endpoints."""
from djangoapp.views import _loop


def audit_work():
    return _loop(3000)


class AuditMiddleware(object):
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        audit_work()
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        audit_work()
        return None
