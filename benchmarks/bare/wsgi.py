"""WSGI entry point of the bare baseline app (gunicorn benchmarks.bare.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

# The wallet's environment names its own settings module; this app always uses its own.
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.bare.settings"
application = get_wsgi_application()
