"""Rate limits kept in Redis (the Django cache), so they hold across processes and machines.

Rates are settings (RATE_LIMITS, e.g. "10/min"), read at request time. The client address is the peer
address unless TRUSTED_PROXY_COUNT proxies are configured, so a forged X-Forwarded-For buys nothing
(DRF's NUM_PROXIES follows the same setting). Over the limit: 429 `rate_limited` with Retry-After.
"""

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class _Limit(SimpleRateThrottle):
    scope: str

    def get_rate(self) -> str | None:
        rate: str | None = settings.RATE_LIMITS.get(self.scope)
        return rate

    def key_for(self, request: Request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        ident = self.key_for(request)
        return None if ident is None else f"throttle:{self.scope}:{ident}"


class PerClientIp(_Limit):
    def key_for(self, request: Request) -> str | None:
        return self.get_ident(request)


class PerUser(_Limit):
    def key_for(self, request: Request) -> str | None:
        return (
            str(request.user.pk)
            if request.user and request.user.is_authenticated
            else self.get_ident(request)
        )


class PerAccountInBody(_Limit):
    """Keyed on the email in the request body, normalised, so letter case and spaces are one account."""

    def key_for(self, request: Request) -> str | None:
        data = request.data
        email = data.get("email") if isinstance(data, dict) else None
        # The same normalisation as accounts' (trimmed, lower-cased); core imports no app.
        return email.strip().lower() if isinstance(email, str) and email.strip() else None


def limits(*scopes_and_kinds: tuple[str, type[_Limit]]) -> tuple[type[_Limit], ...]:
    """Throttle classes for a view: limits(("login_ip", PerClientIp), ("login_account", PerAccountInBody))."""
    return tuple(
        type(f"{kind.__name__}_{scope}", (kind,), {"scope": scope}) for scope, kind in scopes_and_kinds
    )


def client_ip(request: Request) -> str | None:
    """The client's address by the same rule the rate limits use."""
    return PerClientIp().get_ident(request)
