"""Login lockout: repeated wrong passwords for one account from one address lock that pair for a while.

Keyed on the normalised email and the client address together (PCI DSS 8.3.4: at most 10 failures, locked
at least 30 minutes; here LOGIN_LOCKOUT_FAILURES and LOGIN_LOCKOUT_MINUTES). Counters live in the cache
(Redis) so every web process sees them. The per-IP rate limit on the login endpoint bounds spraying across
accounts; the pair key keeps an attacker elsewhere from locking a user out of their own device.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache

from wallet.core.errors import ApplicationError


class AccountLockedError(ApplicationError):
    """Raised when a login is attempted for an account and address that are locked out."""

    code = "account_locked"
    http_status = 429
    default_message = "Too many failed logins; try again later or reset your password."


def _key(kind: str, email: str, ip: str | None) -> str:
    pair = hashlib.sha256(f"{email}|{ip or '-'}".encode()).hexdigest()[:32]
    return f"lockout:{kind}:{pair}"


def lockout_check(*, email: str, ip: str | None) -> None:
    """:raises AccountLockedError: the pair is locked; details say for how long."""
    ttl = cache.ttl(_key("locked", email, ip)) if hasattr(cache, "ttl") else None
    if cache.get(_key("locked", email, ip)):
        seconds = int(ttl) if isinstance(ttl, int) and ttl > 0 else settings.LOGIN_LOCKOUT_MINUTES * 60
        raise AccountLockedError(details={"retry_after_seconds": seconds})


def lockout_record_failure(*, email: str, ip: str | None) -> bool:
    """Count a failure; returns True when this failure locked the pair."""
    window = settings.LOGIN_LOCKOUT_MINUTES * 60
    key = _key("failures", email, ip)
    if cache.add(key, 1, timeout=window):
        failures = 1
    else:
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)
            failures = 1
    if failures >= settings.LOGIN_LOCKOUT_FAILURES:
        cache.set(_key("locked", email, ip), 1, timeout=window)
        cache.delete(key)
        return True
    return False


def lockout_clear(*, email: str, ip: str | None) -> None:
    cache.delete_many([_key("failures", email, ip), _key("locked", email, ip)])
