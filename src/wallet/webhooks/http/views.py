"""The endpoints Revio posts to: signed webhooks (the signature is the authentication) and unsigned EFT
payment callbacks (only a trigger to re-read the payment)."""

import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wallet.core import metrics
from wallet.core.http.throttling import PerClientIp, client_ip, limits
from wallet.webhooks import services
from wallet.webhooks.errors import (
    EventTooOldError,
    MalformedEventError,
    SignatureInvalidError,
    SignatureMissingError,
)
from wallet.webhooks.keys import KeysUnavailableError

logger = logging.getLogger(__name__)

# The answer to a delivery: one component shared by both endpoints (so one status enum in the schema).
_ACCEPTED = inline_serializer(
    "WebhookAccepted", {"status": serializers.ChoiceField(["accepted", "duplicate"])}
)


class RevioWebhookApi(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    parser_classes = ()  # the raw body is verified as it arrived; nothing parses it first
    throttle_classes = limits(("webhook_source", PerClientIp))
    documented_errors = (
        SignatureMissingError,
        SignatureInvalidError,
        MalformedEventError,
        EventTooOldError,
        KeysUnavailableError,
    )

    @extend_schema(
        tags=["webhooks"],
        request={"application/json": {"type": "object", "description": "A Revio object plus event_type."}},
        parameters=[
            OpenApiParameter(
                "X-Signature",
                location=OpenApiParameter.HEADER,
                required=True,
                type=str,
                description="base64 RSA PKCS#1 v1.5 SHA-256 signature of the raw body",
            )
        ],
        responses={
            200: OpenApiResponse(
                _ACCEPTED,
                description="Stored (or already stored); processed asynchronously.",
            )
        },
        auth=[],
        description=(
            "Revio's webhook and success_callback deliveries. Verified against Revio's keys before anything "
            "else, stored once per (object, event type, updated_on), acknowledged at once and applied "
            "asynchronously after re-reading the object from Revio."
        ),
    )
    def post(self, request: Request) -> Response:
        received = services.webhook_receive(
            body=request.body,
            signature=request.headers.get("X-Signature"),
            source_ip=client_ip(request),
            headers={key.lower(): value for key, value in request.headers.items()},
            now=timezone.now(),
        )
        body: dict[str, Any] = {"status": "duplicate" if received.duplicate else "accepted"}
        return Response(body)


class EftCallbackSourceAllowed(BasePermission):
    """EFT callbacks only where EFT is configured, and only from REVIO_EFT_CALLBACK_ALLOWED_NETWORKS.

    Anyone else gets 404, as if the endpoint did not exist, and nothing is stored (issue 17 F1). Checked
    before the rate limit (DRF runs permissions first), so refused sources do not spend Revio's budget.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        if not settings.REVIO_EFT_CLIENT_ID:
            raise NotFound()
        networks: list[str] = settings.REVIO_EFT_CALLBACK_ALLOWED_NETWORKS
        if not networks:
            return True
        source = client_ip(request)
        try:
            address = ipaddress.ip_address(source or "")
        except ValueError:
            address = None
        if address is not None and any(
            address in ipaddress.ip_network(network, strict=False) for network in networks
        ):
            return True
        metrics.increment("webhooks_eft_callback_refused_source")
        logger.warning("EFT callback from %s refused: not in REVIO_EFT_CALLBACK_ALLOWED_NETWORKS", source)
        raise NotFound()


class RevioEftCallbackApi(APIView):
    """Revio's EFT_PAYMENT callbacks. Unsigned (none is documented): a callback only triggers a re-read."""

    authentication_classes = ()
    permission_classes = (EftCallbackSourceAllowed,)
    parser_classes = ()
    throttle_classes = limits(("eft_callback_source", PerClientIp))
    documented_errors = (MalformedEventError,)

    @extend_schema(
        tags=["webhooks"],
        request={"application/json": {"type": "object", "description": "An EFT payment callback."}},
        responses={
            200: OpenApiResponse(
                _ACCEPTED,
                description="Stored (or already stored); the payment is re-read from Revio asynchronously.",
            )
        },
        auth=[],
        description=(
            "Revio's EFT payments API callbacks (callbackType EFT_PAYMENT). They carry no signature, so "
            "nothing in them is trusted: only sources in REVIO_EFT_CALLBACK_ALLOWED_NETWORKS are heard "
            "(others, and every caller where EFT is not configured, get 404), at a lower rate than "
            "signed webhooks; a callback for a payment already waiting to be re-read is a duplicate, any "
            "other triggers a re-read of the payment from the EFT API with the wallet's own token; only "
            "what the API says is applied. Only the fields used are stored."
        ),
    )
    def post(self, request: Request) -> Response:
        received = services.eft_callback_receive(
            body=request.body,
            source_ip=client_ip(request),
            headers={key.lower(): value for key, value in request.headers.items()},
            now=timezone.now(),
        )
        body: dict[str, Any] = {"status": "duplicate" if received.duplicate else "accepted"}
        return Response(body)
