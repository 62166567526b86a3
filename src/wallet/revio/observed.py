"""The Revio clients' request seam: every call counted by API, operation and outcome, and timed into a
latency histogram, in the shared counters (wallet.core.metrics) so web and Celery processes add up.

`call_figures` reads them back for /metrics (wallet.observability.metrics).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from wallet.core import metrics
from wallet.revio import breaker
from wallet.revio.errors import (
    RevioError,
    RevioOutcomeUnknownError,
    RevioRejectedError,
    RevioUnavailableError,
)

APIS = breaker.APIS
OPERATIONS = ("create", "read")
OUTCOMES = ("ok", "rejected", "unavailable", "unknown", "error")


def _histogram_name(api: str, operation: str) -> str:
    return f"revio_latency_{api}_{operation}"


@contextmanager
def observed(api: str, operation: str) -> Iterator[None]:
    """Count the call by outcome and put its time in the (api, operation) histogram: one round trip."""
    started = time.monotonic()
    outcome = "ok"
    try:
        yield
    except RevioRejectedError:
        outcome = "rejected"
        raise
    except RevioUnavailableError:
        outcome = "unavailable"
        raise
    except RevioOutcomeUnknownError:
        outcome = "unknown"
        raise
    except RevioError:
        outcome = "error"
        raise
    finally:
        metrics.increment_many(
            {
                f"revio_calls_{api}_{operation}_{outcome}": 1,
                **metrics.histogram_increments(_histogram_name(api, operation), time.monotonic() - started),
            }
        )


@dataclass(frozen=True)
class CallFigures:
    """Calls by (api, operation, outcome), and each (api, operation)'s latency histogram (seconds)."""

    calls: dict[tuple[str, str, str], int]
    latency: dict[tuple[str, str], metrics.Histogram]


def call_figures(values: dict[str, int] | None = None) -> CallFigures:
    """What the seam counted, every process together (`values`: read_all()'s, when already read)."""
    values = metrics.read_all() if values is None else values
    calls = {
        (api, operation, outcome): values[name]
        for api in APIS
        for operation in OPERATIONS
        for outcome in OUTCOMES
        if (name := f"revio_calls_{api}_{operation}_{outcome}") in values
    }
    latency = {
        (api, operation): histogram
        for api in APIS
        for operation in OPERATIONS
        if (histogram := metrics.histogram_read(values, _histogram_name(api, operation))) is not None
    }
    return CallFigures(calls=calls, latency=latency)
