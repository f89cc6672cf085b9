"""SlowBranchMiddleware: DJANGOAPP_SLOW_BRANCH="medium=0.5" makes requests
to /medium do 0.5 times /medium's view work more in a middleware branch that
runs before URL resolution (routing_branch_work): a regression of one
endpoint that no view frame shows."""
import os

from djangoapp import views

_name, _frac = os.environ.get("DJANGOAPP_SLOW_BRANCH", "medium=0").split("=")
PATH = "/" + _name
ITERATIONS = int(views.ITERATIONS[_name] * float(_frac))


def routing_branch_work():
    return views._loop(ITERATIONS)


class SlowBranchMiddleware(object):
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == PATH:
            routing_branch_work()
        return self.get_response(request)
