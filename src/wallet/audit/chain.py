"""The hash chain's arithmetic: one canonical serialisation, shared by the writer and audit_verify."""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

GENESIS_HASH = "0" * 64


def canonical_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(
    *,
    id: int,
    created_at: datetime,
    action: str,
    actor_id: UUID | None,
    actor_email: str,
    subject_type: str,
    subject_id: str,
    ip: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the row's fields and the previous row's hash, serialised canonically as JSON."""
    payload = {
        "id": id,
        "created_at": canonical_timestamp(created_at),
        "action": action,
        "actor_id": str(actor_id) if actor_id else None,
        "actor_email": actor_email,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "ip": ip,
        "details": details,
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def event_hash(event: Any) -> str:
    """The hash an audit row must carry: row_hash over the row's own fields and its prev_hash."""
    return row_hash(
        id=event.id,
        created_at=event.created_at,
        action=event.action,
        actor_id=event.actor_id,
        actor_email=event.actor_email,
        subject_type=event.subject_type,
        subject_id=event.subject_id,
        ip=event.ip,
        details=event.details,
        prev_hash=event.prev_hash,
    )
