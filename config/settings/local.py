"""One-machine development settings used by `make run` (which starts PostgreSQL and Valkey itself and
passes DATABASE_URL / REDIS_URL; by hand, `make services` prints them)."""

from config.env import env

# make run writes real random secrets to .run/env; these fallbacks only let manage.py start by hand.
env.ENVIRON.setdefault("DJANGO_SECRET_KEY", "django-insecure-local-development-only")
env.ENVIRON.setdefault("JWT_SIGNING_KEY", "local-development-only-jwt-signing-key-not-for-production")
env.ENVIRON.setdefault("LOG_FORMAT", "text")
# The sandbox marks every purchase is_test; production refuses test objects.
env.ENVIRON.setdefault("REVIO_ACCEPT_TEST_OBJECTS", "true")
env.ENVIRON.setdefault("FIELD_ENCRYPTION_KEYS", "bG9jYWwtZGV2ZWxvcG1lbnQtb25seS1rZXktMzJieXQ=")
env.ENVIRON.setdefault("DJANGO_DEBUG", "true")
env.ENVIRON.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
# make run always passes the URLs of the servers it started; by hand (and for mypy's django plugin, which
# only loads settings) the conventional local ports are assumed.
env.ENVIRON.setdefault("DATABASE_URL", "postgres://wallet@127.0.0.1:5432/wallet")
env.ENVIRON.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
env.ENVIRON.setdefault("EVENTS_ALLOW_LOCAL_URLS", "true")  # a receiver on this machine (http, loopback)
env.ENVIRON.setdefault("DEPOSIT_HOLD_HOURS", "0")  # make run: no cooling-off (docs/adr/0016)
env.ENVIRON.setdefault("DEPOSIT_HOLD_NEW_USER_HOURS", "0")

from config.settings.base import *  # noqa: E402
