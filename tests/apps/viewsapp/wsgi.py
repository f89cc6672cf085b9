"""gunicorn viewsapp.wsgi:application"""
import os

from django.core.wsgi import get_wsgi_application

os.environ["DJANGO_SETTINGS_MODULE"] = "viewsapp.settings"
application = get_wsgi_application()
