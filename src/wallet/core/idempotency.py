"""Idempotency-Key handling for POST endpoints that move money (the IETF httpapi draft's semantics).

- Same key, same body: the first response is replayed, same status code and the same bytes.
- Same key, different body: 422 idempotency_key_reused.
- Same key while the first request is still running: 409 request_in_progress.
- Keys are scoped per user and kept at least IDEMPOTENCY_KEY_TTL_HOURS.

The record is written by the service inside the transaction that moves the money (`record_claim`), so a
request that fails before moving anything leaves no record and may simply be retried. A request that died
after moving money leaves its record in progress; once its lease passes, a retry takes it over and answers
with the resource's current state instead of moving money again.

A completed record is final, so its answer is also kept in Redis: a replay is then one Redis round trip and
no SQL (issue 18: a replay costs no more than a read). The database record stays the truth; a cache miss or
outage reads it.
"""

import hashlib
import json
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from wallet.core.db import insert_if_absent, select_one
from wallet.core.errors import ApplicationError
from wallet.core.models import IdempotencyRecord

logger = logging.getLogger(__name__)

_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII without spaces, as header values allow


class InvalidIdempotencyKeyError(ApplicationError):
    code = "invalid_idempotency_key"
    http_status = 400
    default_message = "The Idempotency-Key header must be 1 to 255 printable ASCII characters without spaces."


class IdempotencyKeyReusedError(ApplicationError):
    code = "idempotency_key_reused"
    http_status = 422
    default_message = "This Idempotency-Key was already used with a different request."


class RequestInProgressError(ApplicationError):
    code = "request_in_progress"
    http_status = 409
    default_message = "A request with this Idempotency-Key is still being processed; retry shortly."


@dataclass(frozen=True)
class IdempotencyClaim:
    user_id: uuid.UUID
    key: str
    scope: str
    fingerprint: str


@dataclass(frozen=True)
class Replay:
    status: int
    body: str


@dataclass(frozen=True)
class Resume:
    """A dead request's record, taken over: answer with the resource's current state."""

    resource_id: uuid.UUID


# Secrets in a body are not part of what the request asks for, and a fast hash of them must not be stored:
# a withdrawal retried with its step-up password (issue 17 F10) is the same request.
_NOT_FINGERPRINTED = frozenset({"step_up_password"})


def fingerprint(scope: str, body: Any) -> str:
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key not in _NOT_FINGERPRINTED}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{scope}\n{canonical}".encode()).hexdigest()


def claim_from_request(
    *, user_id: uuid.UUID, header: str | None, scope: str, body: Any
) -> IdempotencyClaim | None:
    if header is None:
        return None
    if not _KEY_PATTERN.match(header):
        raise InvalidIdempotencyKeyError()
    return IdempotencyClaim(user_id=user_id, key=header, scope=scope, fingerprint=fingerprint(scope, body))


def lookup(claim: IdempotencyClaim, *, now: Any = None) -> Replay | Resume | None:
    """What an earlier use of this key says: replay its response, take it over, or nothing yet.

    :raises IdempotencyKeyReusedError: the key was used for a different request.
    :raises RequestInProgressError: the earlier request is still running.
    """
    now = now or timezone.now()
    cached = _replay_cached(claim)
    if cached is not None:
        return cached
    # Fast path, one statement and no transaction: a new key (the common case) or a completed one (a
    # replay, which is final) needs no lock. A new key's race is settled by the unique constraint when the
    # record is written in the money transaction (record_claim).
    record = select_one(IdempotencyRecord, user_id=claim.user_id, key=claim.key)
    if record is None:
        return None
    if record.fingerprint != claim.fingerprint or record.scope != claim.scope:
        raise IdempotencyKeyReusedError()
    if record.state == IdempotencyRecord.State.COMPLETED:
        _replay_cache(claim, status=record.response_status or 200, body=record.response_body)
        return Replay(status=record.response_status or 200, body=record.response_body)
    with transaction.atomic():
        record = IdempotencyRecord.objects.select_for_update().get(id=record.id)
        if record.state == IdempotencyRecord.State.COMPLETED:
            return Replay(status=record.response_status or 200, body=record.response_body)
        if record.locked_until and record.locked_until > now:
            raise RequestInProgressError()
        # The request holding it died after committing its money movement; this one finishes the answer.
        record.locked_until = now + timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)
        record.save(update_fields=["locked_until"])
        assert record.resource_id is not None  # noqa: S101 - written in the same transaction as the record
        return Resume(resource_id=record.resource_id)


def record_claim(claim: IdempotencyClaim | None, *, resource_id: uuid.UUID) -> None:
    """Write the key's record inside the caller's transaction (the one that moves the money).

    :raises RequestInProgressError: another request claimed the key first.
    """
    if claim is None:
        return
    record = IdempotencyRecord(
        user_id=claim.user_id,
        key=claim.key,
        scope=claim.scope,
        fingerprint=claim.fingerprint,
        resource_id=resource_id,
        locked_until=timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS),
    )
    # One statement; a conflict (the unique key) must not poison the caller's transaction.
    if not insert_if_absent(record):
        raise RequestInProgressError()


def complete(claim: IdempotencyClaim | None, *, status: int, body: str) -> None:
    if claim is None:
        return
    IdempotencyRecord.objects.filter(user_id=claim.user_id, key=claim.key).update(
        state=IdempotencyRecord.State.COMPLETED, response_status=status, response_body=body, locked_until=None
    )
    _replay_cache(claim, status=status, body=body)


def _replay_cache_key(claim: IdempotencyClaim) -> str:
    # Hashed: a client's key may be 255 characters of any printable ASCII.
    return "idem:" + hashlib.sha256(f"{claim.user_id}\n{claim.key}".encode()).hexdigest()[:40]


def _replay_cache(claim: IdempotencyClaim, *, status: int, body: str) -> None:
    """Keep a completed answer for replays, as long as the record is kept. Never from inside a transaction
    (the record could still roll back), and an outage only costs the next replay a database read."""
    if connection.in_atomic_block:
        return
    try:
        cache.set(
            _replay_cache_key(claim),
            (claim.scope, claim.fingerprint, status, body),
            timeout=settings.IDEMPOTENCY_KEY_TTL_HOURS * 3600,
        )
    except Exception:
        logger.warning("idempotency replay not cached", exc_info=True)


def _replay_cached(claim: IdempotencyClaim) -> Replay | None:
    """The cached answer of a completed request with this key, or None (not cached, or the cache is down).

    :raises IdempotencyKeyReusedError: the key was used for a different request.
    """
    if connection.in_atomic_block:
        return None
    try:
        cached = cache.get(_replay_cache_key(claim))
    except Exception:
        logger.warning("idempotency replay cache unavailable", exc_info=True)
        return None
    if not isinstance(cached, tuple) or len(cached) != 4:
        return None
    scope, fingerprint_, status, body = cached
    if fingerprint_ != claim.fingerprint or scope != claim.scope:
        raise IdempotencyKeyReusedError()
    return Replay(status=status, body=body)


def purge_expired(*, now: Any = None) -> int:
    """Delete records older than the retention period; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
