"""Settings shared by every environment.

Every setting lives here; local.py, test.py and production.py only override. Values that differ between
deployments come from the environment (config/env.py) with defaults that are safe for production.
"""

from datetime import timedelta
from pathlib import Path

import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, env

# Lets annotations like ModelAdmin[User] work at run time as they do for the type checker.
django_stubs_ext.monkeypatch()

# ---------------------------------------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------------------------------------
SECRET_KEY = env("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS: list[str] = env.list("DJANGO_ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "config.admin.OpsAdminConfig",  # django.contrib.admin with the operations console site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt",
    # Without the blacklist app installed, refresh-token rotation silently keeps old tokens valid.
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "wallet.core",
    "wallet.accounts",
    "wallet.ledger",
    "wallet.transactions",
    "wallet.notifications",
    "wallet.webhooks",
    "wallet.reconciliation",
    "wallet.adjustments",
    "wallet.audit",
    "wallet.webapp",
    "wallet.statements",
    "wallet.events",
]

MIDDLEWARE = [
    # Request counts and latencies for /metrics; the Before/After pair brackets everything else.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "wallet.core.middleware.RequestIdMiddleware",
    "wallet.core.middleware.ProxyHeaderCheckMiddleware",
    "wallet.core.middleware.LoadSheddingMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "wallet.core.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wallet.core.middleware.AdminContentSecurityPolicyMiddleware",
    "wallet.core.db_router.ReplicaReadsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# System checks to skip, by id: the compose stack names the production checks its sandbox cannot pass
# (wallet.core.checks). Production sets none.
SILENCED_SYSTEM_CHECKS: list[str] = env.list("DJANGO_SILENCED_SYSTEM_CHECKS", default=[])

# The admin lives on a configurable path so it is not where every scanner looks first.
ADMIN_URL = env.str("DJANGO_ADMIN_URL", default="admin/")

# ---------------------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------------------
# PostgreSQL in every mode: `make run` and `make test` start their own when DATABASE_URL is unset
# (scripts/testenv.py, docs/adr/0013), so nothing here runs on another engine.
RUN_DIR = Path(env.str("WALLET_RUN_DIR", default=str(BASE_DIR / ".run")))
DATABASES = {"default": env.db("DATABASE_URL")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must name a PostgreSQL database (postgres://...); `make run`, `make test` and "
        "`make services` start one when it is unset."
    )
# Transactions are explicit: money-moving services own theirs (docs/adr/0001).
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

# A read replica (docs/scaling.md): only the reads wallet.core.db_router sends there, never a money
# decision. Unset, everything uses the primary.
DATABASE_REPLICA_URL: str = env.str("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db_url_config(DATABASE_REPLICA_URL)
    DATABASES["replica"]["ATOMIC_REQUESTS"] = False
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"].get("CONN_MAX_AGE", 0)
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["wallet.core.db_router.ReplicaRouter"]
# Read-only endpoints whose GET may be served from the replica (regexes on the path). Not the balance:
# it feeds withdrawal decisions and fills the balance cache, so it is always read from the primary.
DATABASE_REPLICA_PATHS: list[str] = env.list(
    "DATABASE_REPLICA_PATHS",
    default=[r"^/api/v1/transactions$", r"^/api/v1/balance/entries$", r"^/api/v1/admin/users$"],
)

# ---------------------------------------------------------------------------------------------------------
# Redis (Valkey in make run and make test; docs/adr/0013): cache, rate limits, Celery broker.
# ---------------------------------------------------------------------------------------------------------
REDIS_URL: str = env.str("REDIS_URL")
CACHES = {"default": {"BACKEND": "wallet.core.cache.SharedPoolRedisCache", "LOCATION": REDIS_URL}}

# Balance reads for GET /api/v1/balance are cached this long; a balance change deletes the entry on
# commit, so the TTL only bounds how long a missed invalidation could show an old figure. 0 disables.
BALANCE_CACHE_SECONDS = env.int("BALANCE_CACHE_SECONDS", default=300)
# The user an access token names (email, role, duty, active, the password's fingerprint; never its hash) is
# cached this long for the authentication of each request; any save of the user invalidates it on commit.
USER_CACHE_SECONDS = env.int("USER_CACHE_SECONDS", default=300)

# /metrics (wallet.observability.metrics): a bearer token and/or allow-listed networks; neither set = 404.
METRICS_TOKEN: str = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS: list[str] = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# A pending or processing transaction unchanged this long counts as stuck in wallet_transactions_stuck.
METRICS_STUCK_AFTER_SECONDS = env.int("METRICS_STUCK_AFTER_SECONDS", default=30 * 60)

# ---------------------------------------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_TOKEN_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_TOKEN_DAYS", default=7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # An explicit algorithm and a key of its own: a leaked SECRET_KEY must not mint tokens (RFC 8725).
    "ALGORITHM": "HS256",
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY"),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    # Access tokens carry a hash of the password, so a password change ends every session at once.
    "CHECK_REVOKE_TOKEN": True,
    "LEEWAY": 0,
}

# ---------------------------------------------------------------------------------------------------------
# The client's address (rate limits, lockout, audit, /metrics' allow-list)
# ---------------------------------------------------------------------------------------------------------
# Proxies in front of the web process that append to X-Forwarded-For: 1 on Railway (its edge), 0 when
# clients connect straight to gunicorn. Wrong either way is a hole (docs/deploy.md): too low and every
# client is the proxy (one shared lockout and rate limit); too high and clients choose their address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Where the process runs, as far as the checks need to know (Railway sets these for every deployment), and
# which process this is (the entrypoint exports it: web, worker, release ...).
DEPLOY_PLATFORM = (
    "railway"
    if env.str("RAILWAY_ENVIRONMENT_NAME", default="") or env.str("RAILWAY_PROJECT_ID", default="")
    else ""
)
WALLET_ROLE = env.str("WALLET_ROLE", default="")

# ---------------------------------------------------------------------------------------------------------
# REST framework and the OpenAPI schema
# ---------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["wallet.accounts.http.authentication.WalletJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["wallet.core.http.parsers.StrictJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "wallet.core.http.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "wallet.core.http.exception_handler.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "wallet.core.http.schema.WalletAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    # Only views that name a throttle_scope are limited (ScopedRateThrottle); counters live in the cache.
    # Behind N trusted proxies the client is the Nth address from the right of X-Forwarded-For; with 0 it
    # is the peer address, so a forged header changes nothing (rate limits, lockout, audit).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "DEFAULT_THROTTLE_RATES": {
        "password_reset": "5/hour",  # per client IP: reset emails cannot be used to flood an inbox
        "password_reset_confirm": "10/hour",
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Wallet API",
    "DESCRIPTION": (
        "Balances, deposits through Revio Pay's hosted checkout and withdrawals through Revio payouts. "
        'Every error has the shape {"error": {"code", "message", "details"}}. '
        "Amounts are integers in minor units (cents) with a currency."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {},
    "SECURITY": [{"jwtAuth": []}],
}

# Rate limits (wallet.core.http.throttling), kept in Redis so they hold across processes. "N/s|min|hour|day".
RATE_LIMITS = {
    "login_ip": env.str("RATE_LIMIT_LOGIN_IP", default="30/min"),
    "login_account": env.str("RATE_LIMIT_LOGIN_ACCOUNT", default="10/min"),
    "refresh_ip": env.str("RATE_LIMIT_REFRESH_IP", default="60/min"),
    "register_ip": env.str("RATE_LIMIT_REGISTER_IP", default="20/hour"),
    "money_write_user": env.str("RATE_LIMIT_MONEY_WRITE_USER", default="60/min"),
    "webhook_source": env.str("RATE_LIMIT_WEBHOOK_SOURCE", default="6000/min"),
    # Unsigned EFT callbacks (issue 17 F1): each may cost a read of the EFT API, so far below the signed ones.
    "eft_callback_source": env.str("RATE_LIMIT_EFT_CALLBACK_SOURCE", default="120/min"),
    # POST /me/password: each attempt is an Argon2 hash and a guess at the current password.
    "password_change_user": env.str("RATE_LIMIT_PASSWORD_CHANGE_USER", default="10/hour"),
    "password_change_ip": env.str("RATE_LIMIT_PASSWORD_CHANGE_IP", default="30/hour"),
}

# -- Webhook intake hardening (docs/security.md round 2, webhooks: issue 17 F1, F8, F12) --------------------
# Networks (CIDRs) allowed to post unsigned EFT callbacks, matched against the client address as the rate
# limits resolve it (TRUSTED_PROXY_COUNT). Empty allows every source: for the sandbox and tests only;
# production refuses to start without it (wallet.E011). Others get 404 and nothing is stored.
REVIO_EFT_CALLBACK_ALLOWED_NETWORKS: list[str] = env.list("REVIO_EFT_CALLBACK_ALLOWED_NETWORKS", default=[])
# Webhook log rows in a final state (processed, ignored, dead-lettered) and rejections are purged after
# this many days (webhooks.purge, daily). Reconciliation, not the log, is the record of money.
WEBHOOK_LOG_RETENTION_DAYS = env.int("WEBHOOK_LOG_RETENTION_DAYS", default=90)
# A withdrawal to a bank account the user never completed one to needs their current password (issue 17
# F10, docs/adr/0017-withdrawal-step-up.md).
WITHDRAWAL_STEP_UP_NEW_ACCOUNT = env.bool("WITHDRAWAL_STEP_UP_NEW_ACCOUNT", default=True)

# Wrong passwords for one account from one address before that pair is locked, and for how long (PCI 8.3.4).
LOGIN_LOCKOUT_FAILURES = env.int("LOGIN_LOCKOUT_FAILURES", default=5)
LOGIN_LOCKOUT_MINUTES = env.int("LOGIN_LOCKOUT_MINUTES", default=30)

# -- Accounts and console hardening (docs/adr/0009-admin-grant-four-eyes.md, docs/security.md round 2) --
# A proposed admin grant waits this long for a second admin's approval.
ADMIN_GRANT_TTL_HOURS = env.int("ADMIN_GRANT_TTL_HOURS", default=72)
# Console (Django admin) sessions: short, and ended when the browser closes. Django's default is two weeks.
SESSION_COOKIE_AGE = env.int("ADMIN_SESSION_SECONDS", default=4 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# Browsers may call the API only from the frontend's origin(s).
_frontend_origin = env.str("FRONTEND_URL", default="http://localhost:3000").rstrip("/")
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[_frontend_origin])
CORS_ALLOW_HEADERS = ("authorization", "content-type", "idempotency-key", "x-request-id")
CORS_EXPOSE_HEADERS = ("x-request-id", "retry-after", "idempotent-replayed")
CORS_URLS_REGEX = r"^/api/.*$"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Bodies larger than this are refused with 400 before any parser reads them.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
# Load shedding (wallet.core.middleware.LoadSheddingMiddleware), per web process: requests doing work at
# once, requests allowed to wait for a slot, and how long one may wait (in that queue, or in gunicorn's
# when it runs wallet.core.http.gunicorn_worker.QueueTimedThreadWorker, as the image does) before a 503.
# With that worker, threads = API_MAX_ACTIVE_REQUESTS (4) measured best here: more threads per process
# only contend for the GIL (docs/benchmarks.md). 0 disables.
API_MAX_ACTIVE_REQUESTS = env.int("API_MAX_ACTIVE_REQUESTS", default=4)
API_MAX_QUEUED_REQUESTS = env.int("API_MAX_QUEUED_REQUESTS", default=8)
API_QUEUE_TIMEOUT_SECONDS = env.float("API_QUEUE_TIMEOUT_SECONDS", default=1.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
# JSON bodies nested deeper than this are refused with 400 (wallet.core.http.parsers); Revio's objects and
# the API's own inputs are a few levels deep.
API_MAX_JSON_DEPTH = env.int("API_MAX_JSON_DEPTH", default=32)

# ---------------------------------------------------------------------------------------------------------
# Celery
# ---------------------------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # How long Redis waits before handing an unacknowledged task to another worker; longer than the
    # longest task so a slow task is not run twice (acks_late tasks must still be idempotent).
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
}
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celerybeat-schedule")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# One queue per kind of work, so each can get its own workers and be watched on its own.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "webhooks.*": {"queue": "webhooks"},
    "notifications.*": {"queue": "notifications"},
    "reconciliation.*": {"queue": "reconciliation"},
    "payouts.*": {"queue": "payouts"},
    "events.*": {"queue": "events"},
}

# ---------------------------------------------------------------------------------------------------------
# Logging: one line per event, with the request id; JSON in production.
# ---------------------------------------------------------------------------------------------------------
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "wallet.core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # Handled API errors are answered, not failures of the server; 5xx are logged by the handler.
        "django.request": {"level": "ERROR"},
    },
}

# ---------------------------------------------------------------------------------------------------------
# Integrations
# ---------------------------------------------------------------------------------------------------------
FRONTEND_URL = env.str("FRONTEND_URL", default="http://localhost:3000")

# ---------------------------------------------------------------------------------------------------------
# The wallet's own rules (amounts in minor units)
# ---------------------------------------------------------------------------------------------------------
WALLET_CURRENCY = env.str("WALLET_CURRENCY", default="ZAR")

# Crash points (wallet.core.faults), for the proof suite's crash harness only: a comma-separated list of
# points at which the first process to arrive kills itself. Always empty in production.
WALLET_CRASH_POINTS = frozenset(env.list("WALLET_CRASH_POINTS", default=[]))
WALLET_CRASH_MARKER_DIR = env.str("WALLET_CRASH_MARKER_DIR", default="")
DEPOSIT_MIN_AMOUNT = env.int("DEPOSIT_MIN_AMOUNT", default=1_000)  # R 10.00
DEPOSIT_MAX_AMOUNT = env.int("DEPOSIT_MAX_AMOUNT", default=5_000_000)  # R 50,000.00
WITHDRAWAL_MIN_AMOUNT = env.int("WITHDRAWAL_MIN_AMOUNT", default=1_000)
WITHDRAWAL_MAX_AMOUNT = env.int("WITHDRAWAL_MAX_AMOUNT", default=2_500_000)  # per withdrawal
WITHDRAWAL_DAILY_MAX_AMOUNT = env.int("WITHDRAWAL_DAILY_MAX_AMOUNT", default=5_000_000)  # rolling 24 h
WITHDRAWAL_MAX_OPEN = env.int("WITHDRAWAL_MAX_OPEN", default=5)  # pending + processing at once
# Idempotency-Key records are kept at least this long (Stripe keeps 24 h).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=48)
# A request holding a key longer than this is presumed dead; a retry may then take the key over.
IDEMPOTENCY_LEASE_SECONDS = env.int("IDEMPOTENCY_LEASE_SECONDS", default=120)

# Refunds, chargebacks and the deposit hold (issue 16; docs/wallet.md, docs/adr/0016-deposit-hold.md).
# An admin refund above this amount (minor units) needs a second finance admin's approval.
REFUND_FOUR_EYES_THRESHOLD = env.int("REFUND_FOUR_EYES_THRESHOLD", default=500_000)  # R 5,000.00
# A refund whose answer was lost stays pending (debited) at least this long before a re-read of the
# purchase that shows no refund restores it.
REFUND_PENDING_GRACE_SECONDS = env.int("REFUND_PENDING_GRACE_SECONDS", default=3_600)
# Reconciliation re-reads every deposit completed within this many days (chargebacks arrive for months).
RECONCILIATION_LOOKBACK_DAYS = env.int("RECONCILIATION_LOOKBACK_DAYS", default=120)
# Cooling-off before a deposit's money can be withdrawn (hours; 0 disables), tiered by history.
DEPOSIT_HOLD_HOURS = env.int("DEPOSIT_HOLD_HOURS", default=24)
DEPOSIT_HOLD_NEW_USER_HOURS = env.int("DEPOSIT_HOLD_NEW_USER_HOURS", default=72)
DEPOSIT_HOLD_NEW_USER_DEPOSITS = env.int("DEPOSIT_HOLD_NEW_USER_DEPOSITS", default=3)
DEPOSIT_HOLD_NEW_USER_DAYS = env.int("DEPOSIT_HOLD_NEW_USER_DAYS", default=30)

# A balance-correction proposal not decided by a second admin within this time expires.
ADJUSTMENT_PROPOSAL_TTL_HOURS = env.int("ADJUSTMENT_PROPOSAL_TTL_HOURS", default=72)

# Outgoing events to the client's backend (wallet.events, docs/events.md). Endpoint URLs must be https and
# resolve only to public addresses; EVENTS_ALLOW_LOCAL_URLS (local and test settings) also allows http and
# loopback, for a receiver on this machine. The lease must outlast a delivery's timeout with room to spare.
EVENTS_ALLOW_LOCAL_URLS = env.bool("EVENTS_ALLOW_LOCAL_URLS", default=False)
EVENTS_DELIVERY_TIMEOUT_SECONDS = env.float("EVENTS_DELIVERY_TIMEOUT_SECONDS", default=10.0)
EVENTS_DELIVERY_LEASE_SECONDS = env.int("EVENTS_DELIVERY_LEASE_SECONDS", default=60)
EVENTS_MAX_ATTEMPTS = env.int("EVENTS_MAX_ATTEMPTS", default=16)  # ~2 days with the defaults below
EVENTS_RETRY_BASE_SECONDS = env.int("EVENTS_RETRY_BASE_SECONDS", default=30)
EVENTS_RETRY_MAX_SECONDS = env.int("EVENTS_RETRY_MAX_SECONDS", default=6 * 3600)
EVENTS_SWEEP_GRACE_SECONDS = env.int("EVENTS_SWEEP_GRACE_SECONDS", default=30)
EVENTS_SECRET_ROTATION_GRACE_SECONDS = env.int("EVENTS_SECRET_ROTATION_GRACE_SECONDS", default=24 * 3600)
EVENTS_REPLAY_MAX_EVENTS = env.int("EVENTS_REPLAY_MAX_EVENTS", default=10_000)

# Bank details are encrypted at rest with Fernet; comma-separated keys, the first encrypts (rotation).
FIELD_ENCRYPTION_KEYS: list[str] = env.list("FIELD_ENCRYPTION_KEYS")

from config.settings.integrations.email import *  # noqa: E402
from config.settings.integrations.reconciliation import *  # noqa: E402
from config.settings.integrations.revio import *  # noqa: E402
from config.settings.integrations.sentry import *  # noqa: E402
