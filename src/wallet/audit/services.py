"""Audit writes: append one event to the chain, under the chain head's row lock.

The caller's transaction, if any, is joined: the event commits or rolls back with the action it records.
Actions that fail (a refused login) are recorded by the caller outside any transaction the failure undoes.
"""

import ipaddress
import json
import logging
from datetime import datetime
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from wallet.audit.chain import GENESIS_HASH, event_hash
from wallet.audit.models import AuditChainHead, AuditEvent

logger = logging.getLogger(__name__)


def _normalised_ip(ip: str | None) -> str:
    if not ip:
        return ""
    try:
        return ipaddress.ip_address(ip.strip()).compressed
    except ValueError:
        return ""


def _subject(subject: object | None, subject_type: str, subject_id: str) -> tuple[str, str]:
    if isinstance(subject, models.Model):
        return f"{subject._meta.app_label}.{subject._meta.model_name}", str(subject.pk)
    return subject_type, subject_id


def _chain_head_locked() -> AuditChainHead:
    # Created on first use (and again after a test flush); ignore_conflicts makes concurrent creation safe.
    AuditChainHead.objects.bulk_create(
        [AuditChainHead(id=1, last_id=0, last_hash=GENESIS_HASH)], ignore_conflicts=True
    )
    return AuditChainHead.objects.select_for_update().get(id=1)


def audit_record(
    *,
    action: str,
    actor: Any = None,
    subject: object | None = None,
    subject_type: str = "",
    subject_id: str = "",
    ip: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Append an event to the audit chain. Never pass secrets (passwords, tokens) in `details`.

    `actor` is the user who acted (anything with `id` and `email`), a name (str) for an actor known only
    by name, or None for the system or an anonymous caller; `subject` is the model instance acted on
    (or give `subject_type` and `subject_id`).
    """
    # Stored as JSON and read back before hashing, so the hash covers exactly what the database holds.
    clean_details: dict[str, Any] = json.loads(json.dumps(details or {}, default=str))
    kind, key = _subject(subject, subject_type, subject_id)
    if isinstance(actor, str):  # a name for a non-user actor, such as an operator's email on the command line
        actor_id, actor_email = None, actor
    else:
        actor_id, actor_email = getattr(actor, "id", None), str(getattr(actor, "email", "") or "")
    with transaction.atomic():
        head = _chain_head_locked()
        event = AuditEvent(
            id=head.last_id + 1,
            created_at=now or timezone.now(),
            action=action,
            actor_id=actor_id,
            actor_email=actor_email[:254],
            subject_type=kind[:64],
            subject_id=key[:64],
            ip=_normalised_ip(ip),
            details=clean_details,
            prev_hash=head.last_hash,
        )
        event.hash = event_hash(event)
        event.save(force_insert=True)
        head.last_id, head.last_hash = event.id, event.hash
        head.save(update_fields=["last_id", "last_hash"])
    logger.info("audit #%s %s by %s", event.id, action, actor_email or "system")
    return event
