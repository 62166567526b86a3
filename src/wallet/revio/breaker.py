"""A circuit breaker around Revio, shared by every process through the Django cache (Redis).

Closed: calls go through; each failure of the retryable kind (unreachable, 429/503, 5xx, timeouts) adds
to a counter of consecutive failures (forgotten after REVIO_BREAKER_FAILURE_WINDOW_SECONDS without one),
and any answer from Revio, even a 4xx, resets it. After REVIO_BREAKER_FAILURE_THRESHOLD failures in a row
the breaker opens: calls fail at once with RevioCircuitOpenError, which never reaches Revio, for
REVIO_BREAKER_COOLDOWN_SECONDS. Then it is half-open: one trial call at a time goes through (a short cache
lease); a success closes the breaker, a failure opens it again for another cool-down.

One breaker per Revio API (`GATEWAY`: purchases; `EFT`: the EFT payments API that pays withdrawals out):
an outage or a flood of reads on one never stops the other (issue 17 F1: forged EFT callbacks made reads
that opened the one shared breaker and stopped deposits). An answer, even a 4xx such as 404 for an id
Revio does not know, is a success, never a failure.

The breaker is advice, not a guard on money: if the cache is unreachable, calls simply go through.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

from wallet.core import metrics
from wallet.revio.errors import RevioOutcomeUnknownError, RevioUnavailableError

logger = logging.getLogger(__name__)

GATEWAY = "gateway"
EFT = "eft"
APIS = (GATEWAY, EFT)
_PREFIX = "revio:breaker:"


def _keys(api: str) -> tuple[str, str, str]:
    """(failures, opened_at, trial) cache keys of one API's breaker."""
    if api not in APIS:
        raise ValueError(f"unknown Revio API {api!r}")
    prefix = _PREFIX if api == GATEWAY else f"{_PREFIX}{api}:"  # the gateway keeps its existing keys
    return prefix + "failures", prefix + "opened_at", prefix + "trial"


FAILURES_KEY, OPENED_AT_KEY, TRIAL_KEY = _keys(GATEWAY)


class RevioCircuitOpenError(RevioUnavailableError):
    """Revio failed repeatedly and the breaker is open: the request was not sent (nothing was created)."""

    def __init__(self, message: str = "Revio is unavailable (circuit breaker open); not sent") -> None:
        super().__init__(message, status=503, code="circuit_open")


@dataclass
class Permit:
    """What the breaker knew when it let a call through; decides what recording the result costs."""

    dirty: bool  # failures were counted or the breaker was open: a success must clear them
    trial: bool  # the half-open trial call
    api: str = GATEWAY


@dataclass(frozen=True)
class BreakerState:
    state: str  # "closed", "open" or "half_open"
    failures: int
    opened_at: float | None


def breaker_state(*, now: float | None = None, api: str = GATEWAY) -> BreakerState:
    """The breaker as every process sees it (for operators, the health of the integration, and tests)."""
    now = time.time() if now is None else now
    failures_key, opened_at_key, _ = _keys(api)
    values = cache.get_many([failures_key, opened_at_key])
    failures = int(values.get(failures_key) or 0)
    opened_at = values.get(opened_at_key)
    if opened_at is None:
        return BreakerState(state="closed", failures=failures, opened_at=None)
    if now < float(opened_at) + settings.REVIO_BREAKER_COOLDOWN_SECONDS:
        return BreakerState(state="open", failures=failures, opened_at=float(opened_at))
    return BreakerState(state="half_open", failures=failures, opened_at=float(opened_at))


def is_open(api: str = GATEWAY) -> bool:
    """True while calls would be refused without reaching Revio (open, or half-open with a trial running)."""
    try:
        state = breaker_state(api=api)
        if state.state == "half_open":
            return cache.get(_keys(api)[2]) is not None
        return state.state == "open"
    except Exception:  # noqa: BLE001 - the cache is down: treat the breaker as closed
        return False


def breaker_reset(api: str | None = None) -> None:
    """Close one API's breaker (every API's without one) and forget counted failures (an operator's
    switch, and tests)."""
    cache.delete_many([key for name in ((api,) if api else APIS) for key in _keys(name)])


def before_call(api: str = GATEWAY) -> Permit:
    """Let a call through, or refuse it at once.

    :raises RevioCircuitOpenError: the breaker is open (or half-open with its trial call in flight).
    """
    if not settings.REVIO_BREAKER_ENABLED:
        return Permit(dirty=False, trial=False, api=api)
    try:
        state = breaker_state(api=api)
        if state.state == "open":
            metrics.increment("revio_breaker_refused")
            raise RevioCircuitOpenError()
        if state.state == "half_open":
            lease = int(settings.REVIO_CONNECT_TIMEOUT + settings.REVIO_READ_TIMEOUT) * 3 + 5
            if not cache.add(_keys(api)[2], 1, timeout=lease):
                metrics.increment("revio_breaker_refused")
                raise RevioCircuitOpenError("Revio is unavailable (a trial call is in flight); not sent")
            return Permit(dirty=True, trial=True, api=api)
        return Permit(dirty=state.failures > 0, trial=False, api=api)
    except RevioCircuitOpenError:
        raise
    except Exception:  # the cache is down: the breaker must not take Revio down with it
        logger.warning("circuit breaker state unavailable; letting the call through", exc_info=True)
        return Permit(dirty=False, trial=False, api=api)


def record_success(permit: Permit) -> None:
    if not permit.dirty:
        return
    try:
        was_open = cache.get(_keys(permit.api)[1]) is not None
        breaker_reset(permit.api)
        if was_open:
            logger.warning("Revio circuit breaker (%s) closed: Revio answers again", permit.api)
            metrics.increment("revio_breaker_closed")
    except Exception:
        logger.warning("circuit breaker: could not record a success", exc_info=True)


def record_failure(permit: Permit) -> None:
    if not settings.REVIO_BREAKER_ENABLED:
        return
    try:
        failures_key, opened_at_key, trial_key = _keys(permit.api)
        window = settings.REVIO_BREAKER_FAILURE_WINDOW_SECONDS
        if cache.add(failures_key, 1, timeout=window):
            failures = 1
        else:
            failures = cache.incr(failures_key)
            cache.touch(failures_key, window)
        if permit.trial:
            cache.set(opened_at_key, time.time(), timeout=None)
            cache.delete(trial_key)
            logger.error("Revio circuit breaker (%s) re-opened: the trial call failed", permit.api)
            metrics.increment("revio_breaker_opened")
        elif failures >= settings.REVIO_BREAKER_FAILURE_THRESHOLD and cache.add(
            opened_at_key, time.time(), timeout=None
        ):
            logger.error(
                "Revio circuit breaker (%s) opened after %d consecutive failures", permit.api, failures
            )
            metrics.increment("revio_breaker_opened")
    except Exception:
        logger.warning("circuit breaker: could not record a failure", exc_info=True)


@contextmanager
def guard(api: str = GATEWAY) -> Iterator[None]:
    """Wrap one logical call to one Revio API (with its own retries inside).

    :raises RevioCircuitOpenError: refused without calling Revio.
    """
    permit = before_call(api)
    try:
        yield
    except (RevioUnavailableError, RevioOutcomeUnknownError):
        record_failure(permit)
        raise
    except BaseException:
        # Any other error means Revio answered (a 4xx, an odd body): it is up.
        record_success(permit)
        raise
    record_success(permit)
