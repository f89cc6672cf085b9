"""The application's views, one of each kind: a decorated function view
(light), a class-based view (medium), an async view (heavy, run by asgiref
under WSGI) and stats. Each does its work in its own body."""
from django.http import HttpResponse, JsonResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from djangoapp.views import ITERATIONS


def _work(n):
    acc = 0
    for i in range(n):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return acc


@csrf_exempt
@require_GET
def light(request):
    acc = 0
    for i in range(ITERATIONS["light"]):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return HttpResponse("%d\n" % acc, content_type="text/plain")


class MediumView(View):
    def get(self, request):
        acc = 0
        for i in range(ITERATIONS["medium"]):
            acc = (acc * 31 + i) & 0xFFFFFFFF
        return HttpResponse("%d\n" % acc, content_type="text/plain")


async def heavy(request):
    acc = 0
    for i in range(ITERATIONS["heavy"]):
        acc = (acc * 31 + i) & 0xFFFFFFFF
    return HttpResponse("%d\n" % acc, content_type="text/plain")


def stats(request):
    return JsonResponse({"ok": True})


# The names `--endpoint-from django` may give (module:qualname).
VIEWS = {"viewsapp.views:light", "viewsapp.views:MediumView.get", "viewsapp.views:heavy",
         "viewsapp.views:stats"}
