"""A bare Django + DRF project for the framework baselines: a DRF view that runs pgbench's TPC-B transaction
and a plain Django ping view.

It is deliberately not part of the product: no auth, no middleware, its own URLconf (benchmarks.bare.urls),
served by gunicorn with the same worker and thread count as the wallet (benchmarks/run.py).
"""

import os

import environ

env = environ.Env()

SECRET_KEY = os.environ.get("BARE_SECRET_KEY", "bare-benchmark-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.bare.urls"
WSGI_APPLICATION = "benchmarks.bare.wsgi.application"
DATABASES = {"default": env.db("BENCH_PGBENCH_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = 60
USE_TZ = True
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
PGBENCH_SCALE = int(os.environ.get("BENCH_PGBENCH_SCALE", "10"))
