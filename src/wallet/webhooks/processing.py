"""Webhook processing: claim a logged event with a lease, apply it with its handler, record the outcome;
retries with backoff, the sweep, dead letters, replay and the retention purge.

Failures are retried with exponential backoff by a periodic sweep, which also picks up events whose Celery
message was lost (broker restart) or whose worker died (expired lease); after WEBHOOK_MAX_ATTEMPTS an event
is dead-lettered for an operator. Applying an event twice is harmless: the wallet's services are
idempotent, so at-least-once processing never moves money twice.
"""

import logging
import math
import time
import traceback
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache as default_cache
from django.db import connection, transaction
from django.utils import timezone

from wallet.audit import public as audit
from wallet.core import cache as shared_cache
from wallet.core import metrics
from wallet.core.db import model_columns, model_from_row
from wallet.core.faults import crash_point
from wallet.webhooks.errors import RetryLaterError
from wallet.webhooks.handlers import event_dispatch, prefetched_rereads
from wallet.webhooks.models import WebhookLog, WebhookRejection, WebhookStatus

logger = logging.getLogger(__name__)


_NUDGE_KEY = "webhooks:drain:nudged"
# How long past its nudge's window a nudged drain keeps looking for events (a nudge held back by the window
# may belong to an event inserted at its very end).
_LINGER_MARGIN_SECONDS = 0.05


def nudge(log_id: int | None = None) -> bool:
    """Wake the drain: at most one Celery message per WEBHOOK_NUDGE_SECONDS across every process (Redis
    SET NX with that expiry), never one per event. Returns whether a message was sent.

    The nudged drain keeps claiming until the window that held back later nudges has passed, so an event
    whose nudge was held back is claimed by the drain that holds the window (docs/adr/0021). `log_id` is
    unused: the drain claims whatever is due; it is the seam's signature (services._enqueue).
    """
    from wallet.webhooks.tasks import webhooks_drain_task  # here: the tasks module imports this one

    window = settings.WEBHOOK_NUDGE_SECONDS
    nudged_at = time.time()
    try:
        if not _window_take(window):
            return False
        # One quick retry only: the event is safe in the log, and Revio is waiting for our answer.
        webhooks_drain_task.apply_async(
            kwargs={"linger_until": nudged_at + window + _LINGER_MARGIN_SECONDS},
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.2},
        )
    except Exception:  # Redis or the broker down: the periodic sweep finds the event in the log
        logger.warning("could not wake the webhook drain; the sweep will pick events up", exc_info=True)
        return False
    return True


def _window_take(window: float) -> bool:
    """True if no nudge was sent in the last `window` seconds (and this one now holds the window)."""
    client = shared_cache.redis_client()
    key = default_cache.make_and_validate_key(_NUDGE_KEY)
    if client is not None:
        return bool(client.set(key, b"1", nx=True, px=max(int(window * 1000), 1)))
    return bool(default_cache.add(_NUDGE_KEY, 1, timeout=max(math.ceil(window), 1)))


def wake_worker(log_id: int) -> None:
    """Hand a due event to the worker. Looked up on the services module at call time: that is the one
    seam to the broker, which tests replace to play the worker themselves."""
    from wallet.webhooks import services  # here: services imports this module

    services._enqueue(log_id)


def webhook_process(*, log_id: int, now: datetime | None = None) -> str | None:
    """Process one logged event if it is due and nobody else holds it; returns its new status (or None).

    Safe to call any number of times, concurrently too: the claim is a lease on the row, and the wallet
    services it calls are idempotent.
    """
    now = now or timezone.now()
    log = _claim(log_id=log_id, now=now)
    if log is None:
        return None
    return _process_claimed(log, now=now)


def _process_claimed(log: WebhookLog, *, now: datetime) -> str:
    """Apply a claimed event with its handler and record what became of it; returns its new status."""
    crash_point("webhook.claimed")
    try:
        status, result, review = event_dispatch(log)
    except RetryLaterError as exc:
        return _fail(log, str(exc), now=now)
    except Exception as exc:
        logger.exception("webhook %s (%s) failed", log.id, log.event_type)
        return _fail(log, "".join(traceback.format_exception(exc))[-4000:], now=now)
    crash_point("webhook.applied")
    WebhookLog.objects.filter(id=log.id).update(
        status=status,
        result=result[:255],
        processed_at=timezone.now(),
        lease_expires_at=None,
        last_error="",
        next_attempt_at=None,
    )
    if review:
        metrics.increment("webhooks_flagged_for_review")
    metrics.increment(f"webhooks_{status}")
    return status


def webhooks_drain(
    *, now: datetime | None = None, linger_until: float | None = None, budget_seconds: float | None = None
) -> int:
    """Claim due events in batches and process them until none is due; returns how many were processed.

    Due: received, failed past its backoff, or processing with its worker's lease run out. Each batch is
    claimed in one statement that skips rows another worker holds, so concurrent drains share the backlog
    and never take one event twice. The batch's re-reads from Revio run first, concurrently in a bounded
    pool; then each event is applied in order. A drain woken by a nudge keeps looking until `linger_until`
    (Unix time); after `budget_seconds` (WEBHOOK_DRAIN_SECONDS) it hands the rest to a fresh drain.
    """
    budget = settings.WEBHOOK_DRAIN_SECONDS if budget_seconds is None else budget_seconds
    started = time.monotonic()
    processed = 0
    while True:
        at = now or timezone.now()
        batch = _claim_batch(now=at, limit=settings.WEBHOOK_BATCH_SIZE)
        if batch:
            with prefetched_rereads(batch):
                for log in batch:
                    _process_claimed(log, now=at)
            processed += len(batch)
            if time.monotonic() - started > budget:
                nudge()  # the backlog is not empty: the next drain takes it from here
                break
            continue
        remaining = (linger_until or 0) - time.time()
        if remaining <= 0:
            break
        time.sleep(min(remaining, _LINGER_MARGIN_SECONDS))
    if processed:
        metrics.increment("webhooks_drained", processed)
    return processed


# Due: received; failed, once its backoff is over; processing, once its worker's lease ran out.
_DUE_SQL = "status = %s OR (status = %s AND next_attempt_at <= %s) OR (status = %s AND lease_expires_at < %s)"
# The batch claim: due rows in id order, those another transaction holds skipped (FOR UPDATE SKIP LOCKED),
# leased in the same statement. The subquery's lock re-checks its WHERE on a row changed since the
# statement's snapshot, so a row another drain has just claimed is not claimed again.
_CLAIM_BATCH_SQL = f"""
    UPDATE webhook_logs
    SET status = %s, attempts = attempts + 1, lease_expires_at = %s
    WHERE id IN (
        SELECT id FROM webhook_logs
        WHERE {_DUE_SQL}
        ORDER BY id
        LIMIT %s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING {model_columns(WebhookLog)}
"""  # noqa: S608  # nosec B608


def _claim_batch(*, now: datetime, limit: int) -> list[WebhookLog]:
    """Take a lease on up to `limit` due events nobody else holds, in one autocommit statement."""
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_BATCH_SQL, [*_lease_params(now), *_due_params(now), limit])
        rows = cursor.fetchall()
    logs = [model_from_row(WebhookLog, row, alias=connection.alias) for row in rows]
    return sorted(logs, key=lambda log: log.id)


def _lease_params(now: datetime) -> list[str | datetime]:
    lease_expires_at = now + timedelta(seconds=settings.WEBHOOK_PROCESSING_LEASE_SECONDS)
    return [WebhookStatus.PROCESSING.value, lease_expires_at]


def _due_params(now: datetime) -> list[str | datetime]:
    return [
        WebhookStatus.RECEIVED.value,
        WebhookStatus.FAILED.value,  # a retry waits out its backoff
        now,
        WebhookStatus.PROCESSING.value,  # a dead worker's event, once its lease ran out
        now,
    ]


# The claimed row comes back whole (the model's own column names, never input: hence noqa and nosec).
_CLAIM_SQL = f"""
    UPDATE webhook_logs
    SET status = %s, attempts = attempts + 1, lease_expires_at = %s
    WHERE id = %s AND ({_DUE_SQL})
    RETURNING {model_columns(WebhookLog)}
"""  # noqa: S608  # nosec B608


def _claim(*, log_id: int, now: datetime) -> WebhookLog | None:
    """Take a lease on the event if it is due (received, a failed one past its backoff, or one whose
    worker's lease expired) and nobody else holds it; the claimed row, or None."""
    # One autocommit UPDATE ... RETURNING instead of BEGIN / SELECT ... FOR UPDATE / UPDATE / COMMIT.
    # It waits for the row rather than skipping it (no SKIP LOCKED): a duplicate delivery's counter update
    # holds it for a moment, and skipping would leave the event to the sweep. Under READ COMMITTED an
    # UPDATE that waited re-evaluates its WHERE on the row's new version, so a row another worker just
    # claimed (processing, lease valid) no longer matches and is not claimed twice.
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [*_lease_params(now), log_id, *_due_params(now)])
        row = cursor.fetchone()
    if row is None:
        return None
    return model_from_row(WebhookLog, row, alias=connection.alias)


def _fail(log: WebhookLog, error: str, *, now: datetime) -> str:
    if log.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        status, next_attempt = WebhookStatus.DEAD_LETTERED, None
        metrics.increment("webhooks_dead_lettered")
        logger.error(
            "webhook %s (%s %s) dead-lettered after %d attempts: %s",
            log.id,
            log.event_type,
            log.object_id,
            log.attempts,
            error.splitlines()[-1] if error else "",
        )
    else:
        delay = min(
            settings.WEBHOOK_RETRY_BASE_SECONDS * 2 ** (log.attempts - 1), settings.WEBHOOK_RETRY_MAX_SECONDS
        )
        status, next_attempt = WebhookStatus.FAILED, now + timedelta(seconds=delay)
        logger.info("webhook %s attempt %d failed; retry at %s", log.id, log.attempts, next_attempt)
    WebhookLog.objects.filter(id=log.id).update(
        status=status, last_error=error, next_attempt_at=next_attempt, lease_expires_at=None
    )
    return status


def webhooks_sweep(*, now: datetime | None = None) -> int:
    """The periodic drain: process every event that is due (failed ones whose backoff passed, received
    ones whose nudge was lost, processing ones whose worker's lease expired). Returns how many."""
    return webhooks_drain(now=now)


_FINAL_STATUSES = (WebhookStatus.PROCESSED, WebhookStatus.IGNORED, WebhookStatus.DEAD_LETTERED)


def webhooks_purge(*, now: datetime | None = None, batch: int = 5_000) -> tuple[int, int]:
    """Delete webhook log rows in a final state and rejections older than WEBHOOK_LOG_RETENTION_DAYS
    (issue 17 F1: the log and the rejections grew without bound). Events still to be processed are kept
    whatever their age. Returns (log rows, rejections) deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    purged = [0, 0]
    targets = (
        (0, WebhookLog.objects.filter(status__in=_FINAL_STATUSES, received_at__lt=cutoff)),
        (1, WebhookRejection.objects.filter(received_at__lt=cutoff)),
    )
    for slot, queryset in targets:
        while True:  # in batches: one huge DELETE would hold its locks and bloat the WAL at once
            ids = list(queryset.order_by("id").values_list("id", flat=True)[:batch])
            if not ids:
                break
            purged[slot] += queryset.model.objects.filter(id__in=ids).delete()[0]
    if any(purged):
        logger.info("purged %d webhook log rows and %d rejections before %s", *purged, cutoff)
    return purged[0], purged[1]


def webhook_replay(*, log_id: int, actor: str, now: datetime | None = None, ip: str | None = None) -> bool:
    """Send a failed or dead-lettered event through processing again (an operator's action, audited)."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = WebhookLog.objects.filter(
            id=log_id, status__in=[WebhookStatus.FAILED, WebhookStatus.DEAD_LETTERED]
        ).update(
            status=WebhookStatus.RECEIVED,
            attempts=0,
            next_attempt_at=None,
            replayed_by=actor[:254],
            replayed_at=now,
        )
        if updated:
            audit.audit_record(
                action=audit.AuditAction.WEBHOOK_REPLAYED,
                actor=actor,
                subject_type="webhooks.webhooklog",
                subject_id=str(log_id),
                ip=ip,
                now=now,
            )
    if updated:
        logger.warning("webhook %s replayed by %s", log_id, actor)
        transaction.on_commit(lambda: wake_worker(log_id))
    return bool(updated)
