"""A minimal Django project for dynoprof's tag and counting tests (no database).

Run it with gunicorn from tests/apps:  gunicorn djangoapp.wsgi:application
See views.py for the endpoints and settings.py for the environment it reads.
"""
