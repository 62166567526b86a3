"""One-machine development settings used by `make run` without DATABASE_URL/REDIS_URL."""

from config.env import env

# make run writes real random secrets to .run/env; these fallbacks only let manage.py start by hand.
env.ENVIRON.setdefault("DJANGO_SECRET_KEY", "django-insecure-local-development-only")
env.ENVIRON.setdefault("JWT_SIGNING_KEY", "local-development-only-jwt-signing-key-not-for-production")
env.ENVIRON.setdefault("LOG_FORMAT", "text")
env.ENVIRON.setdefault("FIELD_ENCRYPTION_KEYS", "bG9jYWwtZGV2ZWxvcG1lbnQtb25seS1rZXktMzJieXQ=")
env.ENVIRON.setdefault("DJANGO_DEBUG", "true")
env.ENVIRON.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
env.ENVIRON.setdefault("EVENTS_ALLOW_LOCAL_URLS", "true")  # a receiver on this machine (http, loopback)

from config.settings.base import *  # noqa: E402
