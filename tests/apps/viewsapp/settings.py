"""Settings of the endpoint-rule test app (gunicorn viewsapp.wsgi:application,
DJANGO_SETTINGS_MODULE=viewsapp.settings): no dynotag, an application
middleware with a process_view hook, Django's CommonMiddleware."""
SECRET_KEY = "dynoprof-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "viewsapp.urls"
INSTALLED_APPS = []
DATABASES = {}
USE_TZ = True
MIDDLEWARE = [
    "viewsapp.middleware.AuditMiddleware",
    "django.middleware.common.CommonMiddleware",
]
LOGGING_CONFIG = None
