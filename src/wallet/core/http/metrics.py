"""GET /metrics: Prometheus exposition of django-prometheus's series and the wallet's own.

The wallet's series are read at scrape time, so every web process answers the same figures: transaction
counts by type and status, stuck transactions, webhook log counts, processing lag and dead letters from
PostgreSQL (each one indexed aggregate), and the event counters every process increments in Redis
(wallet.core.metrics: webhook intake outcomes, retries, breaker transitions, reconciliation alerts).

Not public: the caller needs `Authorization: Bearer $METRICS_TOKEN` or an address in
METRICS_ALLOWED_NETWORKS. Others get 404 (or 401 for a wrong token) in the API's error shape.
"""

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from wallet.core import metrics as counters
from wallet.core.http.responses import error_response
from wallet.core.http.throttling import client_ip

logger = logging.getLogger(__name__)

TRANSACTION_TYPES = ("deposit", "withdrawal")
OPEN_STATUSES = ("pending", "processing")
WEBHOOK_STATUSES = ("received", "processing", "processed", "ignored", "failed", "dead_lettered")
WEBHOOK_WAITING = ("received", "failed")
# Counter name prefixes that describe webhook intake (wallet.webhooks.services increments them).
INTAKE_COUNTERS = {"webhooks_received": "accepted", "webhooks_duplicate": "duplicate"}


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


class WalletCollector(Collector):
    """The wallet's own series, computed when scraped."""

    def __init__(self, *, stuck_after_seconds: int) -> None:
        self.stuck_after_seconds = stuck_after_seconds

    def collect(self) -> Iterator[Metric]:
        yield from self._database_series()
        yield from self._counter_series()
        yield from self._revio_series()

    def _database_series(self) -> Iterable[Metric]:
        now = timezone.now()
        transactions = GaugeMetricFamily(
            "wallet_transactions", "Deposits and withdrawals by status.", labels=["type", "status"]
        )
        stuck = GaugeMetricFamily(
            "wallet_transactions_stuck",
            "Pending or processing transactions unchanged for longer than METRICS_STUCK_AFTER_SECONDS.",
            labels=["type", "status"],
        )
        webhooks = GaugeMetricFamily(
            "wallet_webhook_events", "Webhook log rows by status.", labels=["status"]
        )
        dead = GaugeMetricFamily("wallet_webhook_dead_letters", "Webhook events dead-lettered.")
        lag = GaugeMetricFamily(
            "wallet_webhook_processing_lag_seconds",
            "Age of the oldest webhook event waiting to be processed (0 when none waits).",
        )
        discrepancies = GaugeMetricFamily(
            "wallet_reconciliation_discrepancies", "Reconciliation discrepancies recorded."
        )
        stuck_since = now - timedelta(seconds=self.stuck_after_seconds)
        with connection.cursor() as cursor:
            cursor.execute("SELECT type, status, COUNT(*) FROM transactions GROUP BY type, status")
            seen = {(kind, status): count for kind, status, count in cursor.fetchall()}
            cursor.execute(
                "SELECT type, status, COUNT(*) FROM transactions "
                "WHERE status IN (%s, %s) AND updated_at < %s GROUP BY type, status",
                [*OPEN_STATUSES, stuck_since],
            )
            stuck_seen = {(kind, status): count for kind, status, count in cursor.fetchall()}
            cursor.execute("SELECT status, COUNT(*) FROM webhook_logs GROUP BY status")
            webhook_seen = dict(cursor.fetchall())
            cursor.execute(
                "SELECT MIN(received_at) FROM webhook_logs WHERE status IN (%s, %s)", list(WEBHOOK_WAITING)
            )
            row = cursor.fetchone()
            oldest = row[0] if row else None
            discrepancy_count = self._discrepancy_count(cursor)
        for kind, status in sorted(seen):
            transactions.add_metric([kind, status], seen[(kind, status)])
        for kind in TRANSACTION_TYPES:
            for status in OPEN_STATUSES:
                stuck.add_metric([kind, status], stuck_seen.get((kind, status), 0))
        for status in WEBHOOK_STATUSES:
            webhooks.add_metric([status], webhook_seen.get(status, 0))
        dead.add_metric([], webhook_seen.get("dead_lettered", 0))
        lag.add_metric([], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield from (transactions, stuck, webhooks, dead, lag)
        if discrepancy_count is not None:
            discrepancies.add_metric([], discrepancy_count)
            yield discrepancies

    @staticmethod
    def _discrepancy_count(cursor: CursorWrapper) -> int | None:
        # The reconciliation tables may not exist in every deployment's schema yet.
        cursor.execute("SELECT to_regclass('reconciliation_discrepancies') IS NOT NULL")
        row = cursor.fetchone()
        if not row or not row[0]:
            return None
        cursor.execute("SELECT COUNT(*) FROM reconciliation_discrepancies")
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _counter_series() -> Iterable[Metric]:
        values = counters.read_all()
        events = CounterMetricFamily(
            "wallet_events", "Counters every process increments (wallet.core.metrics).", labels=["event"]
        )
        intake = CounterMetricFamily(
            "wallet_webhook_intake", "Webhook deliveries by outcome at intake.", labels=["outcome"]
        )
        for name, value in values.items():
            events.add_metric([name], value)
            if name in INTAKE_COUNTERS:
                intake.add_metric([INTAKE_COUNTERS[name]], value)
            elif name.startswith("webhooks_rejected_"):
                intake.add_metric(["rejected_" + name.removeprefix("webhooks_rejected_")], value)
        yield events
        yield intake

    @staticmethod
    def _revio_series() -> Iterable[Metric]:
        """Calls to Revio by operation and outcome, their total time, and the circuit breaker's state."""
        values = counters.read_all()
        calls = CounterMetricFamily(
            "wallet_revio_calls", "Calls to Revio by outcome.", labels=["operation", "outcome"]
        )
        seconds = CounterMetricFamily(
            "wallet_revio_call_seconds", "Total time spent in calls to Revio.", labels=["operation"]
        )
        for name, value in sorted(values.items()):
            if name.startswith("revio_calls_"):
                operation, _, outcome = name.removeprefix("revio_calls_").partition("_")
                calls.add_metric([operation, outcome], value)
            elif name.startswith("revio_call_ms_"):
                seconds.add_metric([name.removeprefix("revio_call_ms_")], value / 1000)
        yield calls
        yield seconds
        from wallet.revio.public.breaker import breaker_state  # here: core must not import revio at load

        state = breaker_state()
        breaker = GaugeMetricFamily(
            "wallet_revio_breaker_state",
            "The Revio circuit breaker: 1 for its current state.",
            labels=["state"],
        )
        for name in ("closed", "open", "half_open"):
            breaker.add_metric([name], 1 if state.state == name else 0)
        yield breaker
        failures = GaugeMetricFamily(
            "wallet_revio_breaker_failures", "Consecutive failures the breaker counted."
        )
        failures.add_metric([], state.failures)
        yield failures


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
