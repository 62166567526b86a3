"""GET /metrics: Prometheus exposition of django-prometheus's series and the wallet's own.

It sits above the apps (docs/adr/0018-boundaries.md): each figure comes from the app that owns it, through
its public selectors, so no table is read here. The wallet's series are read at scrape time, so every web
process answers the same figures:

- from PostgreSQL, each an index range scan over rows still being worked (never a whole table): open and
  stuck transactions, webhook log rows waiting, failing or dead-lettered, the processing lag, and the
  latest reconciliation run's discrepancies;
- from Redis: the counters every process increments (wallet.core.metrics: webhook intake outcomes,
  retries, breaker transitions, Revio calls and their latency histogram), each Revio API's breaker, and
  the depth of each Celery queue (LLEN of its list in the broker);
- django-prometheus's request series, summed across the gunicorn workers from PROMETHEUS_MULTIPROC_DIR
  (config/gunicorn.py sets it up) rather than whichever worker answered the scrape.

Not public: the caller needs `Authorization: Bearer $METRICS_TOKEN` or an address in
METRICS_ALLOWED_NETWORKS. Others get 404 (or 401 for a wrong token) in the API's error shape.
"""

import atexit
import functools
import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from wallet.core import metrics as counters
from wallet.core.http.responses import error_response
from wallet.core.http.throttling import client_ip
from wallet.reconciliation import public as reconciliation
from wallet.revio import public as revio
from wallet.revio.public import breaker as revio_breaker
from wallet.transactions import public as transactions
from wallet.webhooks import public as webhooks

logger = logging.getLogger(__name__)

# Counter name prefixes that describe webhook intake (wallet.webhooks.services increments them).
INTAKE_COUNTERS = {"webhooks_received": "accepted", "webhooks_duplicate": "duplicate"}
# kombu's Redis transport keeps a queue's messages sent with a priority in sibling lists.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _allowed(request: HttpRequest) -> bool | None:
    """True: let in. False: a token was offered and is wrong (401). None: not for this caller (404)."""
    token: str = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip().encode(), token.encode()) or False
    networks: list[str] = settings.METRICS_ALLOWED_NETWORKS
    if networks:
        try:
            # The client as the rate limits see it (TRUSTED_PROXY_COUNT), not the proxy it came through:
            # behind Railway's edge every request's peer is the proxy, inside the allowed network.
            address = ipaddress.ip_address(client_ip(request) or "")
        except ValueError:
            return None
        if any(address in ipaddress.ip_network(network, strict=False) for network in networks):
            return True
    return False if header else None


def celery_queues() -> list[str]:
    """Every queue the wallet routes tasks to (settings CELERY_TASK_DEFAULT_QUEUE and CELERY_TASK_ROUTES)."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *routed})


@functools.cache
def _broker(url: str) -> Any:
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    atexit.register(client.close)  # its pooled sockets, closed rather than left to the garbage collector
    return client


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue: LLEN of its lists in the Redis broker, in one round trip."""
    queues = celery_queues()
    pipe = _broker(settings.CELERY_BROKER_URL).pipeline(transaction=False)
    for queue in queues:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    lengths = pipe.execute()
    step = len(_PRIORITY_SUFFIXES)
    return {queue: sum(lengths[i * step : (i + 1) * step]) for i, queue in enumerate(queues)}


class WalletCollector(Collector):
    """The wallet's own series, computed when scraped."""

    def __init__(self, *, stuck_after_seconds: int) -> None:
        self.stuck_after_seconds = stuck_after_seconds

    def collect(self) -> Iterator[Metric]:
        yield from self._transaction_series()
        yield from self._webhook_series()
        yield from self._reconciliation_series()
        values = counters.read_all()
        yield from self._counter_series(values)
        yield from self._revio_series(values)
        yield from self._queue_series()

    def _transaction_series(self) -> Iterable[Metric]:
        figures = transactions.transaction_open_figures(
            stuck_before=timezone.now() - timedelta(seconds=self.stuck_after_seconds)
        )
        open_ = GaugeMetricFamily(
            "wallet_transactions", "Open deposits and withdrawals by status.", labels=["type", "status"]
        )
        stuck = GaugeMetricFamily(
            "wallet_transactions_stuck",
            "Pending or processing transactions unchanged for longer than METRICS_STUCK_AFTER_SECONDS.",
            labels=["type", "status"],
        )
        for (kind, status), count in sorted(figures.open.items()):
            open_.add_metric([kind, status], count)
        for (kind, status), count in sorted(figures.stuck.items()):
            stuck.add_metric([kind, status], count)
        return (open_, stuck)

    @staticmethod
    def _webhook_series() -> Iterable[Metric]:
        figures = webhooks.webhook_log_figures()
        events = GaugeMetricFamily(
            "wallet_webhook_events",
            "Webhook log rows still to be worked, or dead-lettered.",
            labels=["status"],
        )
        for status, count in figures.by_status.items():
            events.add_metric([status], count)
        dead = GaugeMetricFamily("wallet_webhook_dead_letters", "Webhook events dead-lettered.")
        dead.add_metric([], figures.by_status.get("dead_lettered", 0))
        lag = GaugeMetricFamily(
            "wallet_webhook_processing_lag_seconds",
            "Age of the oldest webhook event waiting to be processed (0 when none waits).",
        )
        oldest = figures.oldest_waiting_received_at
        lag.add_metric([], max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else 0.0)
        return (events, dead, lag)

    @staticmethod
    def _reconciliation_series() -> Iterable[Metric]:
        found = reconciliation.latest_run_discrepancies()
        if found is None:
            return ()
        discrepancies = GaugeMetricFamily(
            "wallet_reconciliation_discrepancies",
            "Discrepancies the latest completed reconciliation run found.",
        )
        discrepancies.add_metric([], found)
        return (discrepancies,)

    @staticmethod
    def _counter_series(values: dict[str, int]) -> Iterable[Metric]:
        events = CounterMetricFamily(
            "wallet_events", "Counters every process increments (wallet.core.metrics).", labels=["event"]
        )
        intake = CounterMetricFamily(
            "wallet_webhook_intake", "Webhook deliveries by outcome at intake.", labels=["outcome"]
        )
        for name, value in values.items():
            if name.startswith(("revio_calls_", "revio_latency_")):
                continue  # the Revio series below
            events.add_metric([name], value)
            if name in INTAKE_COUNTERS:
                intake.add_metric([INTAKE_COUNTERS[name]], value)
            elif name.startswith("webhooks_rejected_"):
                intake.add_metric(["rejected_" + name.removeprefix("webhooks_rejected_")], value)
        return (events, intake)

    @staticmethod
    def _revio_series(values: dict[str, int]) -> Iterable[Metric]:
        """Calls to Revio by API, operation and outcome, their latency, and each API's circuit breaker."""
        figures = revio.call_figures(values)
        calls = CounterMetricFamily(
            "wallet_revio_calls", "Calls to Revio by outcome.", labels=["api", "operation", "outcome"]
        )
        for (api, operation, outcome), count in sorted(figures.calls.items()):
            calls.add_metric([api, operation, outcome], count)
        latency = HistogramMetricFamily(
            "wallet_revio_call_duration_seconds",
            "How long calls to Revio took, retries included, by API and operation.",
            labels=["api", "operation"],
        )
        for (api, operation), histogram in sorted(figures.latency.items()):
            latency.add_metric([api, operation], histogram.buckets, histogram.sum_seconds)
        breaker = GaugeMetricFamily(
            "wallet_revio_breaker_state",
            "Each Revio API's circuit breaker: 1 for its current state.",
            labels=["api", "state"],
        )
        failures = GaugeMetricFamily(
            "wallet_revio_breaker_failures", "Consecutive failures the breaker counted.", labels=["api"]
        )
        for api in revio_breaker.APIS:
            state = revio_breaker.breaker_state(api=api)
            for name in ("closed", "open", "half_open"):
                breaker.add_metric([api, name], 1 if state.state == name else 0)
            failures.add_metric([api], state.failures)
        return (calls, latency, breaker, failures)

    @staticmethod
    def _queue_series() -> Iterable[Metric]:
        try:
            depths = queue_depths()
        except (redis.RedisError, ValueError):  # down, or not a Redis URL: the rest still answers
            logger.warning("celery queue depths not read", exc_info=True)
            return ()
        depth = GaugeMetricFamily(
            "wallet_celery_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        for queue, count in depths.items():
            depth.add_metric([queue], count)
        return (depth,)


def _process_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several gunicorn workers: django-prometheus's series are summed across them from the files.
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    allowed = _allowed(request)
    if allowed is None:
        return error_response(404, "not_found", "Not found.")
    if not allowed:
        return error_response(401, "authentication_failed", "Invalid metrics token.")
    own = CollectorRegistry(auto_describe=False)
    own.register(WalletCollector(stuck_after_seconds=settings.METRICS_STUCK_AFTER_SECONDS))
    body = generate_latest(_process_registry()) + generate_latest(own)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
