"""Event endpoints, an admin's actions: register, change, delete, and rotate the signing secret.

Every URL goes through the SSRF check (wallet.events.addresses) before it is stored. Secrets are generated
here, returned once, and stored encrypted (wallet.core.crypto) as a list, the newest first: during a
rotation's grace period the previous one still signs (wallet.events.signing).
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from wallet.audit import public as audit
from wallet.core import crypto
from wallet.core.errors import NotFoundError, ValidationFailedError
from wallet.events import addresses, catalogue, signing
from wallet.events.models import Delivery, DeliveryStatus, EventEndpoint

logger = logging.getLogger(__name__)

_UNSET: Any = object()


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: EventEndpoint
    secret: str  # shown once, when created or rotated


def _validated_filters(event_types: list[str]) -> list[str]:
    unknown = [name for name in event_types if not catalogue.is_valid_filter(name)]
    if unknown:
        raise ValidationFailedError.for_fields(
            {"event_types": [f"Unknown event type or family: {', '.join(sorted(set(unknown)))}."]}
        )
    return sorted(set(event_types))


def endpoint_create(
    *,
    url: str,
    description: str = "",
    event_types: list[str] | None = None,
    enabled: bool = True,
    now: datetime,
    actor: Any = None,
    ip: str | None = None,
) -> EndpointWithSecret:
    """Register the client backend's endpoint; its signing secret is returned this once.

    :raises EndpointUrlRefusedError: not https, or the host resolves to a refused address.
    :raises ValidationFailedError: an unknown event type in the filter.
    """
    filters = _validated_filters(event_types or [])
    addresses.resolve(url)
    secret = signing.secret_new()
    endpoint = EventEndpoint.objects.create(
        url=url,
        description=description,
        event_types=filters,
        enabled=enabled,
        secrets_encrypted=crypto.encrypt_json({"secrets": [{"secret": secret, "retires_at": None}]}),
        created_at=now,
        updated_at=now,
    )
    _audit(endpoint, "created", actor=actor, ip=ip, now=now, url=url, event_types=filters, enabled=enabled)
    logger.info("event endpoint %s registered", endpoint.id)
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


def endpoint_update(
    *,
    endpoint_id: uuid.UUID,
    url: str = _UNSET,
    description: str = _UNSET,
    event_types: list[str] = _UNSET,
    enabled: bool = _UNSET,
    now: datetime,
    actor: Any = None,
    ip: str | None = None,
) -> EventEndpoint:
    """Change an endpoint; arguments left out keep their value. A new URL is checked like a new endpoint's.

    :raises NotFoundError: no such endpoint (or a deleted one).
    :raises EndpointUrlRefusedError: the new URL is refused.
    """
    changes: dict[str, Any] = {}
    if url is not _UNSET:
        addresses.resolve(url)
        changes["url"] = url
    if description is not _UNSET:
        changes["description"] = description
    if event_types is not _UNSET:
        changes["event_types"] = _validated_filters(event_types)
    if enabled is not _UNSET:
        changes["enabled"] = enabled
    with transaction.atomic():
        endpoint = endpoint_locked(endpoint_id)
        for name, value in changes.items():
            setattr(endpoint, name, value)
        endpoint.updated_at = now
        endpoint.save(update_fields=[*changes, "updated_at"])
        _audit(endpoint, "updated", actor=actor, ip=ip, now=now, **changes)
    return endpoint


def endpoint_delete(
    *, endpoint_id: uuid.UUID, now: datetime, actor: Any = None, ip: str | None = None
) -> None:
    """Stop sending to an endpoint for good. Its deliveries stay as the record of what was sent.

    :raises NotFoundError: no such endpoint (or already deleted).
    """
    with transaction.atomic():
        endpoint = endpoint_locked(endpoint_id)
        endpoint.deleted_at = endpoint.updated_at = now
        endpoint.enabled = False
        endpoint.save(update_fields=["deleted_at", "updated_at", "enabled"])
        Delivery.objects.filter(endpoint_id=endpoint.id, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED, updated_at=now, last_error="endpoint deleted"
        )
        _audit(endpoint, "deleted", actor=actor, ip=ip, now=now)


def _audit(
    endpoint: EventEndpoint, change: str, *, actor: Any, ip: str | None, now: datetime, **fields: Any
) -> None:
    """Where the wallet sends users' money events is a security decision (F4-style redirection): every
    registration, change and deletion is in the audit chain, with what changed (never the secret)."""
    audit.audit_record(
        action=audit.AuditAction.EVENT_ENDPOINT_CHANGED,
        actor=actor,
        subject_type="events.eventendpoint",
        subject_id=str(endpoint.id),
        ip=ip,
        details={"change": change, **fields},
        now=now,
    )


def endpoint_rotate_secret(
    *, endpoint_id: uuid.UUID, now: datetime, actor: Any = None, ip: str | None = None
) -> EndpointWithSecret:
    """Give the endpoint a new secret (returned this once); the old one keeps signing alongside it for
    EVENTS_SECRET_ROTATION_GRACE_SECONDS, so the receiver can switch without losing a delivery. Audited.

    :raises NotFoundError: no such endpoint.
    """
    grace = timedelta(seconds=settings.EVENTS_SECRET_ROTATION_GRACE_SECONDS)
    secret = signing.secret_new()
    with transaction.atomic():
        endpoint = endpoint_locked(endpoint_id)
        current = secrets_in_use(endpoint, now=now)[0]
        kept = [{"secret": secret, "retires_at": None}]
        if grace:
            kept.append({"secret": current, "retires_at": (now + grace).isoformat()})
        endpoint.secrets_encrypted = crypto.encrypt_json({"secrets": kept})
        endpoint.secret_rotated_at = endpoint.updated_at = now
        endpoint.save(update_fields=["secrets_encrypted", "secret_rotated_at", "updated_at"])
        audit.audit_record(
            action=audit.AuditAction.KEY_ROTATED,
            actor=actor,
            subject_type="events.eventendpoint",
            subject_id=str(endpoint.id),
            ip=ip,
            details={"what": "event endpoint signing secret", "previous_retires_at": kept[-1]["retires_at"]},
            now=now,
        )
    logger.warning("event endpoint %s secret rotated", endpoint.id)
    return EndpointWithSecret(endpoint=endpoint, secret=secret)


def endpoint_locked(endpoint_id: uuid.UUID) -> EventEndpoint:
    endpoint = EventEndpoint.objects.select_for_update().filter(id=endpoint_id, deleted_at=None).first()
    if endpoint is None:
        raise NotFoundError()
    return endpoint


def secret_retires_at(endpoint: EventEndpoint, *, now: datetime) -> datetime | None:
    """When the previous secret stops signing, while a rotation's grace period runs; else None."""
    stored = crypto.decrypt_json(endpoint.secrets_encrypted)["secrets"]
    ends = [datetime.fromisoformat(s["retires_at"]) for s in stored if s["retires_at"]]
    live = [end for end in ends if end > now]
    return max(live) if live else None


def secrets_in_use(endpoint: EventEndpoint, *, now: datetime) -> list[str]:
    """The secrets that sign right now: the newest first, then any whose grace period has not ended."""
    stored = crypto.decrypt_json(endpoint.secrets_encrypted)["secrets"]
    return [
        s["secret"]
        for s in stored
        if s["retires_at"] is None or datetime.fromisoformat(s["retires_at"]) > now
    ]
