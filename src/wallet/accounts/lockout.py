"""Login lockout: repeated wrong passwords for one account from one address lock that pair for a while.

Keyed on the normalised email and the client address together (PCI DSS 8.3.4: at most 10 failures, locked
at least 30 minutes; here LOGIN_LOCKOUT_FAILURES and LOGIN_LOCKOUT_MINUTES). Counters live in the cache
(Redis) so every web process sees them. The per-IP rate limit on the login endpoint bounds spraying across
accounts; the pair key keeps an attacker elsewhere from locking a user out of their own device.

The per-account limit (RATE_LIMITS["login_account"], e.g. "10/min") counts failed logins for one account
from any address: only a wrong password counts, never a request that merely names the email (a request
without a password, or one refused before the password is checked, costs the account owner nothing).
Both the API login and the console login use these functions, so both have the same limits.
"""

import hashlib
import time

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


class AccountLoginRateLimitedError(ApplicationError):
    """Raised when one account had too many failed logins (from any address) in the current window."""

    code = "rate_limited"
    http_status = 429
    default_message = "Too many failed logins for this account; try again shortly."


def _account_window() -> tuple[int, int] | None:
    rate = settings.RATE_LIMITS.get("login_account")
    if not rate:
        return None
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[0]]
    return int(count), seconds


def _account_key(email: str, window_start: int) -> str:
    return f"lockout:account:{hashlib.sha256(email.encode()).hexdigest()[:32]}:{window_start}"


def account_failures_check(*, email: str) -> None:
    """:raises AccountLoginRateLimitedError: the account used up its failed logins for this window."""
    window = _account_window()
    if window is None:
        return
    limit, seconds = window
    now = int(time.time())
    start = now - now % seconds
    failures = cache.get(_account_key(email, start)) or 0
    if failures >= limit:
        raise AccountLoginRateLimitedError(details={"retry_after_seconds": max(start + seconds - now, 1)})


def account_failure_record(*, email: str) -> bool:
    """Count a failed login for the account; returns True when this failure used up the window's allowance."""
    window = _account_window()
    if window is None:
        return False
    limit, seconds = window
    now = int(time.time())
    key = _account_key(email, now - now % seconds)
    if cache.add(key, 1, timeout=seconds + 1):
        return limit <= 1
    try:
        return int(cache.incr(key)) == limit
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=seconds + 1)
        return limit <= 1
