"""Rate limits kept in Redis (the Django cache), so they hold across processes and machines.

Rates are settings (RATE_LIMITS, e.g. "10/min"), read at request time. The client address is the peer
address unless TRUSTED_PROXY_COUNT proxies are configured, so a forged X-Forwarded-For buys nothing
(DRF's NUM_PROXIES follows the same setting). Over the limit: 429 `rate_limited` with Retry-After.

The count is a sliding window kept in a Redis sorted set and updated by one Lua script, so checking and
recording a request is atomic: DRF's own throttle reads the history, appends and writes it back, and
concurrent requests overwrite each other's updates (32 threads got twice the limit through).
"""

import hashlib
import logging
import threading
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from wallet.core import cache as shared_cache

logger = logging.getLogger(__name__)

# KEYS[1]: the window's sorted set. ARGV: window (ms), limit, a unique member. Times come from Redis's
# clock, so every web process and machine counts on the same one. Returns {allowed, ms until a slot frees}.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(tonumber(oldest[2]) + window - now, 0)}
"""
# One registered script per connection pool (not per client object: a client made per call would leave one
# Script, holding its client, per request).
_scripts: dict[int, Any] = {}
_scripts_lock = threading.Lock()


def _sliding_window_script(client: Any) -> Any:
    key = id(client.connection_pool)
    with _scripts_lock:
        script = _scripts.get(key)
        if script is None:
            script = _scripts[key] = client.register_script(_SLIDING_WINDOW)
        return script


class _Limit(SimpleRateThrottle):
    scope: str
    _wait_seconds: float | None = None

    def get_rate(self) -> str | None:
        rate: str | None = settings.RATE_LIMITS.get(self.scope)
        return rate

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        client = shared_cache.redis_client()
        if client is None:  # not Redis (make run's embedded mode): DRF's non-atomic history is enough there
            return super().allow_request(request, view)
        num_requests, duration = self.parse_rate(self.rate)
        if num_requests is None or duration is None:
            return True
        try:
            allowed, wait_ms = _sliding_window_script(client)(
                keys=[cache.make_and_validate_key(self.key)],
                args=[int(duration * 1000), num_requests, uuid.uuid4().hex],
            )
        except RedisError:
            # Fail open: a limit protects capacity, it guards no money, and refusing every request (Revio's
            # webhooks among them) while Redis restarts would be the bigger harm. Login lockout is separate.
            logger.warning("rate limit %s not applied: Redis unavailable", self.scope, exc_info=True)
            return True
        self._wait_seconds = int(wait_ms) / 1000
        return bool(allowed)

    def wait(self) -> float | None:
        if self._wait_seconds is not None:
            return self._wait_seconds
        return super().wait()

    def key_for(self, request: Request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        ident = self.key_for(request)
        if ident is None:
            return None
        # Hashed: the identifier is client input (an email of any length and characters), and a raw one
        # would make an invalid cache key and put personal data into Redis key names.
        return f"throttle:{self.scope}:{hashlib.sha256(ident.encode(errors='surrogatepass')).hexdigest()}"


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


def client_ip(request: Request | HttpRequest) -> str | None:
    """The client's address by the same rule the rate limits use (DRF's, on request.META only)."""
    return PerClientIp().get_ident(request)  # type: ignore[arg-type]
