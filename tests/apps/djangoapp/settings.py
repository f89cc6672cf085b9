"""Settings of the test app. Environment:

  DYNOTAG_MIDDLEWARE=1    add dynotag.django.DynotagMiddleware (endpoint tags)
  DJANGOAPP_STATS_DIR     where each worker process writes <pid>.json (see views.py)
  DJANGOAPP_SLOW_BRANCH=medium=0.5  a middleware (after dynotag's) does that
                          fraction of /medium's view work more, for /medium
                          only, before URL resolution (a routing-only change)
"""
import os

SECRET_KEY = "dynoprof-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "djangoapp.urls"
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
MIDDLEWARE = []
if os.environ.get("DYNOTAG_MIDDLEWARE") == "1":
    MIDDLEWARE.append("dynotag.django.DynotagMiddleware")
if os.environ.get("DJANGOAPP_SLOW_BRANCH"):
    MIDDLEWARE.append("djangoapp.middleware.SlowBranchMiddleware")
LOGGING_CONFIG = None
