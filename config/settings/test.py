"""Settings for the test suite: real PostgreSQL and Redis (make test starts them), fast hashing."""

from typing import Any, cast

from config.env import env

# Distinctive planted values: the suite-wide log scan (root conftest.py) fails the run if one is ever logged.
env.ENVIRON.setdefault("DJANGO_SECRET_KEY", "planted-django-secret-key-4f9c2e7a1b8d6035-never-log-me")
env.ENVIRON.setdefault("JWT_SIGNING_KEY", "planted-jwt-signing-key-7c1e9a3f5b2d8046-never-log-me")
env.ENVIRON.setdefault("LOG_FORMAT", "text")
# The sandbox marks every purchase is_test; production refuses test objects.
env.ENVIRON.setdefault("REVIO_ACCEPT_TEST_OBJECTS", "true")
env.ENVIRON.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdC1vbmx5LWZpZWxkLWVuY3J5cHRpb24ta2V5LTM=")
env.ENVIRON.setdefault("LOG_LEVEL", "WARNING")
env.ENVIRON.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
from config.settings.base import *  # noqa: E402

# Test defaults that must not leak into the environment of the processes tests start with production
# settings (os.environ is inherited): read here, not set with setdefault above.
EVENTS_ALLOW_LOCAL_URLS = env.bool("EVENTS_ALLOW_LOCAL_URLS", default=True)  # a receiver on this machine
DEPOSIT_HOLD_HOURS = env.int("DEPOSIT_HOLD_HOURS", default=0)  # tests of the hold turn it on themselves
DEPOSIT_HOLD_NEW_USER_HOURS = env.int("DEPOSIT_HOLD_NEW_USER_HOURS", default=0)
# Step-up for new withdrawal accounts is tested on its own (transactions/tests/test_step_up.py); elsewhere
# the suite withdraws to fresh accounts without a password.
WITHDRAWAL_STEP_UP_NEW_ACCOUNT = env.bool("WITHDRAWAL_STEP_UP_NEW_ACCOUNT", default=False)
# The EFT callback endpoint answers 404 where EFT is not configured; tests without the sandbox (the `revio`
# fixture sets the sandbox's credentials) still reach it.
REVIO_EFT_CLIENT_ID = env.str("REVIO_EFT_CLIENT_ID", default="test-eft-client")

# Argon2 at full cost would dominate the suite's run time; the hasher choice itself is tested separately.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# An eager drain runs inside the delivery that nudged it and lingers for the nudge's window: keep it short.
WEBHOOK_NUDGE_SECONDS = env.float("WEBHOOK_NUDGE_SECONDS", default=0.05)
# Serve static files from the apps' folders, as in development: no collectstatic before tests.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# Live-server request threads must not keep connections open, or the test database cannot be dropped.
DATABASES["default"]["CONN_MAX_AGE"] = 0
# Every INFO record reaches the root logger, so the log scan sees them all; the console still prints only
# LOG_LEVEL and above.
_logging = cast(dict[str, Any], LOGGING)
_logging["root"]["level"] = "INFO"
_logging["handlers"]["console"]["level"] = LOG_LEVEL
# Load shedding is tested on its own (wallet/core/tests/test_load_shedding.py); elsewhere the concurrency
# tests aim dozens of simultaneous requests at one process to test the money logic, not the limiter.
API_MAX_ACTIVE_REQUESTS = env.int("API_MAX_ACTIVE_REQUESTS", default=0)
