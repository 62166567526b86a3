"""The admin API for refunds of deposits (issue 16): request one; approve or reject one proposed above the
four-eyes threshold.

Views are thin: the rules (finance duty, four eyes, refundable amount, the debit-first order that keeps an
ambiguous answer from Revio safe) are in wallet.transactions.refunds.
"""

import uuid
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wallet.accounts import public as accounts
from wallet.core.db import TransactionConflictError
from wallet.core.errors import NotFoundError
from wallet.core.http.fields import MinorUnitsField
from wallet.core.http.idempotent import IDEMPOTENCY_KEY_PARAMETER, Outcome, idempotent_create
from wallet.core.http.throttling import PerUser, client_ip, limits
from wallet.core.idempotency import (
    IdempotencyKeyReusedError,
    InvalidIdempotencyKeyError,
    RequestInProgressError,
)
from wallet.ledger import public as ledger
from wallet.transactions import refunds
from wallet.transactions.errors import (
    RefundExceedsRefundableError,
    RefundNotAllowedError,
    RefundNotProposedError,
)
from wallet.transactions.models import DepositReversal


class RefundCreateInputSerializer(serializers.Serializer[Any]):
    amount = MinorUnitsField(min_value=1, help_text="Minor units to refund to the card (all or part).")
    allow_debt = serializers.BooleanField(
        default=False,
        help_text="Refund even if the user's available balance is too low, leaving them owing the rest.",
    )
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class RefundOutputSerializer(serializers.Serializer[Any]):
    id = serializers.UUIDField()
    deposit_id = serializers.UUIDField()
    kind = serializers.CharField()
    status = serializers.CharField(
        help_text=(
            "proposed (awaiting a second finance admin; nothing moved), pending (debited; Revio's answer is "
            "not known yet), completed, failed (Revio refused; the debit was restored), or rejected (a "
            "second finance admin turned the proposal down; nothing moved)."
        )
    )
    amount = serializers.IntegerField()
    currency = serializers.CharField()
    allow_debt = serializers.BooleanField()
    taken_from_available = serializers.IntegerField()
    debt_created = serializers.IntegerField()
    provider_payment_id = serializers.CharField(allow_null=True)
    requested_by_id = serializers.UUIDField(allow_null=True)
    approved_by_id = serializers.UUIDField(allow_null=True)
    failure_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)


_REFUSALS = (
    accounts.NotAnAdminError,
    accounts.FourEyesError,
    NotFoundError,
    RefundNotAllowedError,
    RefundExceedsRefundableError,
    ledger.InsufficientFundsError,
    TransactionConflictError,
)


def _payload(row: DepositReversal, status: int) -> Outcome:
    return status, dict(RefundOutputSerializer(row).data)


def _resume(reversal_id: uuid.UUID) -> Outcome:
    row = DepositReversal.objects.get(id=reversal_id)
    return _payload(row, 202 if row.status == "proposed" else 201)


class DepositRefundCreateApi(APIView):
    permission_classes = (accounts.IsAdminRole,)
    throttle_classes = limits(("money_write_user", PerUser))
    documented_errors = (
        InvalidIdempotencyKeyError,
        IdempotencyKeyReusedError,
        RequestInProgressError,
        *_REFUSALS,
    )

    @extend_schema(
        tags=["admin"],
        request=RefundCreateInputSerializer,
        responses={201: RefundOutputSerializer, 202: RefundOutputSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            "Refunds (part of) a completed deposit to the card (finance admins). The user's available "
            "balance is debited first (409 `insufficient_funds` if too low, unless `allow_debt`), then "
            "Revio is asked to refund. Never more than is left of the deposit after earlier refunds and "
            "chargebacks (409 `refund_exceeds_refundable`). Above REFUND_FOUR_EYES_THRESHOLD the answer is "
            "202 with status `proposed`: a second finance admin approves it "
            "(`POST /api/v1/admin/refunds/{id}/approve`)."
        ),
    )
    def post(self, request: Request, transaction_id: uuid.UUID) -> Any:
        def execute(claim: Any) -> Outcome:
            serializer = RefundCreateInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            row = refunds.refund_request(
                actor=request.user,
                data=refunds.RefundInput(
                    deposit_id=transaction_id,
                    amount=data["amount"],
                    allow_debt=data["allow_debt"],
                    reason=data["reason"],
                ),
                claim=claim,
                ip=client_ip(request),
            )
            return _payload(row, 202 if row.status == "proposed" else 201)

        return idempotent_create(
            request, scope=f"deposit_refund:{transaction_id}", execute=execute, resume=_resume
        )


class RefundApproveApi(APIView):
    permission_classes = (accounts.IsAdminRole,)
    throttle_classes = limits(("money_write_user", PerUser))
    documented_errors = (*_REFUSALS, RefundNotProposedError)

    @extend_schema(
        tags=["admin"],
        request=None,
        responses={200: RefundOutputSerializer},
        description=(
            "A second finance admin (not the proposer, not nominated by or a nominator of them, not the "
            "user) approves a proposed refund: it is debited and sent to Revio, once."
        ),
    )
    def post(self, request: Request, refund_id: uuid.UUID) -> Response:
        row = refunds.refund_approve(reversal_id=refund_id, actor=request.user, ip=client_ip(request))
        return Response(RefundOutputSerializer(row).data)


class RefundRejectInputSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default="", help_text="Why it is turned down."
    )


class RefundRejectApi(APIView):
    permission_classes = (accounts.IsAdminRole,)
    throttle_classes = limits(("money_write_user", PerUser))
    documented_errors = (
        accounts.NotAnAdminError,
        accounts.FourEyesError,
        NotFoundError,
        RefundNotProposedError,
    )

    @extend_schema(
        tags=["admin"],
        request=RefundRejectInputSerializer,
        responses={200: RefundOutputSerializer},
        description=(
            "A second finance admin (under the same four-eyes rule as approval) rejects a proposed refund: "
            "its status becomes `rejected` and nothing moves (a proposal was never debited nor sent to "
            "Revio). Audited."
        ),
    )
    def post(self, request: Request, refund_id: uuid.UUID) -> Response:
        serializer = RefundRejectInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = refunds.refund_reject(
            reversal_id=refund_id,
            actor=request.user,
            note=serializer.validated_data["note"],
            ip=client_ip(request),
        )
        return Response(RefundOutputSerializer(row).data)
