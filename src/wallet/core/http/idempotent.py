"""The HTTP side of Idempotency-Key (wallet.core.idempotency has the rules and the record)."""

import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from wallet.core import idempotency
from wallet.core.errors import ApplicationError
from wallet.core.http.responses import error_body

IDEMPOTENCY_KEY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    location=OpenApiParameter.HEADER,
    required=False,
    type=str,
    description=(
        "Up to 255 printable ASCII characters, unique per request you mean to make once. Sending the same "
        "key with the same body replays the first response (same status and body, with "
        "`Idempotent-Replayed: true`); the same key with a different body gives 422 "
        "`idempotency_key_reused`; while the first request is still running, 409 `request_in_progress`. "
        "Keys are per user and kept at least 24 hours."
    ),
)

Outcome = tuple[int, dict[str, Any]]


def _render(status: int, payload: dict[str, Any]) -> HttpResponse:
    return HttpResponse(JSONRenderer().render(payload), status=status, content_type="application/json")


def idempotent_create(
    request: Request,
    *,
    scope: str,
    execute: Callable[[idempotency.IdempotencyClaim | None], Outcome],
    resume: Callable[[uuid.UUID], Outcome],
) -> HttpResponse:
    """Run `execute` at most once per Idempotency-Key and answer every retry with the same response.

    `execute` writes the key's record in its own money-moving transaction (idempotency.record_claim) and
    returns the status and payload; `resume` answers for a resource whose request died half-way.
    """
    user_id = request.user.pk
    assert isinstance(user_id, uuid.UUID)  # noqa: S101 - these endpoints require authentication
    claim = idempotency.claim_from_request(
        user_id=user_id, header=request.headers.get("Idempotency-Key"), scope=scope, body=request.data
    )
    if claim is not None:
        prior = idempotency.lookup(claim)
        if isinstance(prior, idempotency.Replay):
            response = HttpResponse(prior.body, status=prior.status, content_type="application/json")
            response["Idempotent-Replayed"] = "true"
            return response
        if isinstance(prior, idempotency.Resume):
            status, payload = resume(prior.resource_id)
            response = _render(status, payload)
            idempotency.complete(claim, status=status, body=response.content.decode())
            return response
    try:
        status, payload = execute(claim)
    except ApplicationError as exc:
        if claim is None or not exc.created_resource:
            raise
        # The resource exists (e.g. a deposit Revio refused): this error is the request's final answer.
        status, payload = exc.http_status, error_body(exc.code, exc.message, exc.details)
    response = _render(status, payload)
    idempotency.complete(claim, status=status, body=response.content.decode())
    return response
