"""Deployment checks (`manage.py check --deploy`, which the image's entrypoint runs before web, worker and
release start): production refuses to start on the sandbox's defaults.

Every setting below has a default that makes `make run` and the tests work against the local sandbox. In
production each default is a hole: the wallet would talk to 127.0.0.1 with no API key, credit Revio's test
objects, accept browsers from localhost:3000, or key every rate limit on the proxy's address. Each check
names the variable to set (docs/deploy.md lists them). Errors, not warnings: Django's own --deploy checks
already warn, and warnings do not stop a start.
"""

import ipaddress
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

# Anything that only ever talks to this machine or a developer's. "0.0.0.0" is a value refused, not bound.
_LOCAL_HOSTS = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "0.0.0.0", ""}  # noqa: S104  # nosec B104
)
_TEST_EMAIL_BACKENDS = frozenset(
    {
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
    }
)
MIN_JWT_KEY_BYTES = 32  # HS256 wants a key at least as long as its 256-bit output (RFC 7518 §3.2)


def _is_local(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in _LOCAL_HOSTS or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def url_problem(url: str) -> str | None:
    """Why a URL cannot be a production Revio (or public) address, or None."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return "is not https"
    if _is_local(parts.hostname or ""):
        return "points at this machine"
    return None


def _error(check_id: str, message: str, hint: str) -> Error:
    return Error(message, hint=hint, id=f"wallet.{check_id}")


def _revio_urls() -> Iterable[CheckMessage]:
    for name in ("REVIO_BASE_URL", "REVIO_EFT_BASE_URL", "REVIO_EFT_TOKEN_URL"):
        value: str = getattr(settings, name)
        problem = url_problem(value)
        if problem:
            yield _error("E001", f"{name} {problem} ({value!r}): that is the sandbox.", f"Set {name}.")


def _revio_keys() -> Iterable[CheckMessage]:
    for name in ("REVIO_API_KEY", "REVIO_BRAND_ID", "REVIO_EFT_CLIENT_ID", "REVIO_EFT_CLIENT_SECRET"):
        if not str(getattr(settings, name)).strip():
            yield _error("E002", f"{name} is empty.", f"Set {name} to the value Revio issued.")
    if settings.REVIO_ACCEPT_TEST_OBJECTS:
        yield _error(
            "E003",
            "REVIO_ACCEPT_TEST_OBJECTS is on: Revio's test purchases would credit real wallets.",
            "Unset REVIO_ACCEPT_TEST_OBJECTS (it is for the sandbox only).",
        )


def _backing_services() -> Iterable[CheckMessage]:
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        yield _error(
            "E004", "The database is not PostgreSQL (DATABASE_URL unset?).", "Set DATABASE_URL=postgres://..."
        )
    if not settings.REDIS_URL:
        yield _error(
            "E005",
            "REDIS_URL is unset: rate limits, lockouts and the task queue would live on the local disk.",
            "Set REDIS_URL.",
        )
    if not settings.EMAIL_BACKEND_EXPLICIT or settings.EMAIL_BACKEND in _TEST_EMAIL_BACKENDS:
        yield _error(
            "E006",
            f"No production email backend ({settings.EMAIL_BACKEND}): password resets would go nowhere.",
            "Set SENDGRID_API_KEY (and DJANGO_DEFAULT_FROM_EMAIL), or DJANGO_EMAIL_BACKEND.",
        )


def _keys() -> Iterable[CheckMessage]:
    key = settings.SIMPLE_JWT["SIGNING_KEY"]
    if len(str(key).encode()) < MIN_JWT_KEY_BYTES:
        yield _error(
            "E007",
            f"JWT_SIGNING_KEY is shorter than {MIN_JWT_KEY_BYTES} bytes: HS256 tokens could be brute-forced.",
            "Set JWT_SIGNING_KEY to at least 32 random bytes (e.g. `openssl rand -base64 48`).",
        )


def _browser_origins() -> Iterable[CheckMessage]:
    for origin in settings.CORS_ALLOWED_ORIGINS:
        problem = url_problem(origin)
        if problem:
            yield _error(
                "E008",
                f"CORS allows {origin!r}, which {problem}.",
                "Set FRONTEND_URL (or CORS_ALLOWED_ORIGINS) to the frontend's https origin.",
            )
    for name in ("FRONTEND_URL", "PUBLIC_BASE_URL"):
        value: str = getattr(settings, name)
        problem = url_problem(value)
        if problem:
            yield _error("E009", f"{name} {problem} ({value!r}).", f"Set {name} to the public https address.")


def _proxies() -> Iterable[CheckMessage]:
    # Only the web process reads client addresses; the worker and the pre-deploy step do not.
    if settings.WALLET_ROLE not in ("", "web"):
        return
    if settings.DEPLOY_PLATFORM == "railway" and settings.TRUSTED_PROXY_COUNT < 1:
        yield _error(
            "E010",
            "On Railway every request arrives from Railway's proxy, but TRUSTED_PROXY_COUNT is 0: every "
            "client would share one address, one rate limit and one login lockout.",
            "Start web with `entrypoint.sh web --trusted-proxies 1` (railway/web.json does), or set "
            "TRUSTED_PROXY_COUNT.",
        )


def _outgoing_events() -> Iterable[CheckMessage]:
    if settings.EVENTS_ALLOW_LOCAL_URLS:
        yield _error(
            "E012",
            "EVENTS_ALLOW_LOCAL_URLS is on: event endpoints could be http or this machine's own addresses "
            "(server-side request forgery through the client's webhooks).",
            "Unset EVENTS_ALLOW_LOCAL_URLS (it is for local receivers in development and tests).",
        )


def _eft_callback_sources() -> Iterable[CheckMessage]:
    # Only web receives callbacks. Unsigned EFT callbacks from anywhere cost EFT API reads (issue 17 F1).
    if settings.WALLET_ROLE not in ("", "web"):
        return
    if settings.REVIO_EFT_CLIENT_ID and not settings.REVIO_EFT_CALLBACK_ALLOWED_NETWORKS:
        yield _error(
            "E011",
            "REVIO_EFT_CALLBACK_ALLOWED_NETWORKS is empty: anyone could post unsigned EFT callbacks.",
            "Set REVIO_EFT_CALLBACK_ALLOWED_NETWORKS to the networks Revio's EFT callbacks come from.",
        )


@register(Tags.security, deploy=True)
def production_configuration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [
        *_revio_urls(),
        *_revio_keys(),
        *_backing_services(),
        *_keys(),
        *_browser_origins(),
        *_proxies(),
        *_outgoing_events(),
        *_eft_callback_sources(),
    ]
