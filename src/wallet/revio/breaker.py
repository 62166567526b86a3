"""A circuit breaker around Revio, shared by every process through the Django cache (Redis).

Closed: calls go through; each failure of the retryable kind (unreachable, 429/503, 5xx, timeouts) adds
to a counter of consecutive failures (forgotten after REVIO_BREAKER_FAILURE_WINDOW_SECONDS without one),
and any answer from Revio, even a 4xx, resets it. After REVIO_BREAKER_FAILURE_THRESHOLD failures in a row
the breaker opens: calls fail at once with RevioCircuitOpenError, which never reaches Revio, for
REVIO_BREAKER_COOLDOWN_SECONDS. Then it is half-open: one trial call at a time goes through (a short cache
lease); a success closes the breaker, a failure opens it again for another cool-down.

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

_PREFIX = "revio:breaker:"
FAILURES_KEY = _PREFIX + "failures"
OPENED_AT_KEY = _PREFIX + "opened_at"
TRIAL_KEY = _PREFIX + "trial"


class RevioCircuitOpenError(RevioUnavailableError):
    """Revio failed repeatedly and the breaker is open: the request was not sent (nothing was created)."""

    def __init__(self, message: str = "Revio is unavailable (circuit breaker open); not sent") -> None:
        super().__init__(message, status=503, code="circuit_open")


@dataclass
class Permit:
    """What the breaker knew when it let a call through; decides what recording the result costs."""

    dirty: bool  # failures were counted or the breaker was open: a success must clear them
    trial: bool  # the half-open trial call


@dataclass(frozen=True)
class BreakerState:
    state: str  # "closed", "open" or "half_open"
    failures: int
    opened_at: float | None


def breaker_state(*, now: float | None = None) -> BreakerState:
    """The breaker as every process sees it (for operators, the health of the integration, and tests)."""
    now = time.time() if now is None else now
    values = cache.get_many([FAILURES_KEY, OPENED_AT_KEY])
    failures = int(values.get(FAILURES_KEY) or 0)
    opened_at = values.get(OPENED_AT_KEY)
    if opened_at is None:
        return BreakerState(state="closed", failures=failures, opened_at=None)
    if now < float(opened_at) + settings.REVIO_BREAKER_COOLDOWN_SECONDS:
        return BreakerState(state="open", failures=failures, opened_at=float(opened_at))
    return BreakerState(state="half_open", failures=failures, opened_at=float(opened_at))


def is_open() -> bool:
    """True while calls would be refused without reaching Revio (open, or half-open with a trial running)."""
    try:
        state = breaker_state()
        if state.state == "half_open":
            return cache.get(TRIAL_KEY) is not None
        return state.state == "open"
    except Exception:  # noqa: BLE001 - the cache is down: treat the breaker as closed
        return False


def breaker_reset() -> None:
    """Close the breaker and forget counted failures (an operator's switch, and tests)."""
    cache.delete_many([FAILURES_KEY, OPENED_AT_KEY, TRIAL_KEY])


def before_call() -> Permit:
    """Let a call through, or refuse it at once.

    :raises RevioCircuitOpenError: the breaker is open (or half-open with its trial call in flight).
    """
    if not settings.REVIO_BREAKER_ENABLED:
        return Permit(dirty=False, trial=False)
    try:
        state = breaker_state()
        if state.state == "open":
            metrics.increment("revio_breaker_refused")
            raise RevioCircuitOpenError()
        if state.state == "half_open":
            lease = int(settings.REVIO_CONNECT_TIMEOUT + settings.REVIO_READ_TIMEOUT) * 3 + 5
            if not cache.add(TRIAL_KEY, 1, timeout=lease):
                metrics.increment("revio_breaker_refused")
                raise RevioCircuitOpenError("Revio is unavailable (a trial call is in flight); not sent")
            return Permit(dirty=True, trial=True)
        return Permit(dirty=state.failures > 0, trial=False)
    except RevioCircuitOpenError:
        raise
    except Exception:  # the cache is down: the breaker must not take Revio down with it
        logger.warning("circuit breaker state unavailable; letting the call through", exc_info=True)
        return Permit(dirty=False, trial=False)


def record_success(permit: Permit) -> None:
    if not permit.dirty:
        return
    try:
        was_open = cache.get(OPENED_AT_KEY) is not None
        breaker_reset()
        if was_open:
            logger.warning("Revio circuit breaker closed: Revio answers again")
            metrics.increment("revio_breaker_closed")
    except Exception:
        logger.warning("circuit breaker: could not record a success", exc_info=True)


def record_failure(permit: Permit) -> None:
    if not settings.REVIO_BREAKER_ENABLED:
        return
    try:
        window = settings.REVIO_BREAKER_FAILURE_WINDOW_SECONDS
        if cache.add(FAILURES_KEY, 1, timeout=window):
            failures = 1
        else:
            failures = cache.incr(FAILURES_KEY)
            cache.touch(FAILURES_KEY, window)
        if permit.trial:
            cache.set(OPENED_AT_KEY, time.time(), timeout=None)
            cache.delete(TRIAL_KEY)
            logger.error("Revio circuit breaker re-opened: the trial call failed")
            metrics.increment("revio_breaker_opened")
        elif failures >= settings.REVIO_BREAKER_FAILURE_THRESHOLD and cache.add(
            OPENED_AT_KEY, time.time(), timeout=None
        ):
            logger.error("Revio circuit breaker opened after %d consecutive failures", failures)
            metrics.increment("revio_breaker_opened")
    except Exception:
        logger.warning("circuit breaker: could not record a failure", exc_info=True)


@contextmanager
def guard() -> Iterator[None]:
    """Wrap one logical call to Revio (with its own retries inside).

    :raises RevioCircuitOpenError: refused without calling Revio.
    """
    permit = before_call()
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
