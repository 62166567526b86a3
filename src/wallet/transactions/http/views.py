"""The wallet API: deposits, withdrawals, the balance, its ledger entries and the transaction history."""

import dataclasses
import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wallet.accounts import public as accounts
from wallet.accounts.public import User
from wallet.core.db import TransactionConflictError
from wallet.core.errors import NotFoundError, ValidationFailedError
from wallet.core.http.idempotent import IDEMPOTENCY_KEY_PARAMETER, Outcome, idempotent_create
from wallet.core.http.pagination import NewestFirstCursorPagination
from wallet.core.http.throttling import PerUser, client_ip, limits
from wallet.core.idempotency import (
    IdempotencyKeyReusedError,
    InvalidIdempotencyKeyError,
    RequestInProgressError,
)
from wallet.ledger import public as ledger
from wallet.revio.public import BankAccount
from wallet.statements import public as statements
from wallet.transactions import hold as deposit_hold
from wallet.transactions import selectors, services
from wallet.transactions.errors import (
    DebtOutstandingError,
    DepositNotStartedError,
    DepositOutcomeUnknownError,
    DepositProviderUnavailableError,
    StepUpFailedError,
    StepUpRequiredError,
    WithdrawalLimitError,
)
from wallet.transactions.http import serializers as s
from wallet.transactions.models import TransactionType

_IDEMPOTENCY_ERRORS = (InvalidIdempotencyKeyError, IdempotencyKeyReusedError, RequestInProgressError)


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # noqa: S101 - IsAuthenticated guarantees it
    return request.user


def _validated(serializer_class: type[Any], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _transaction_payload(transaction_id: uuid.UUID) -> Outcome:
    txn = selectors.transaction_find(transaction_id=transaction_id)
    return 201, dict(s.TransactionOutputSerializer(txn).data)


class DepositCreateApi(APIView):
    throttle_classes = limits(("money_write_user", PerUser))
    documented_errors = (
        *_IDEMPOTENCY_ERRORS,
        DepositNotStartedError,
        DepositProviderUnavailableError,
        DepositOutcomeUnknownError,
    )

    @extend_schema(
        tags=["deposits"],
        request=s.DepositCreateInputSerializer,
        responses={201: s.TransactionOutputSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            "Starts a deposit: creates a Revio purchase and returns its `checkout_url`; send the customer "
            "there. The balance is credited only when Revio confirms the payment (poll "
            "`GET /api/v1/deposits/{id}`). If Revio refuses or is down, the answer is 502/503 and the "
            "deposit is marked failed; nothing is charged."
        ),
    )
    def post(self, request: Request) -> Any:
        user = _user(request)

        def execute(claim: Any) -> Outcome:
            # Validated here, after the key's lookup: a replay answers without parsing the body again.
            data = _validated(s.DepositCreateInputSerializer, request.data)
            deposit = services.deposit_create(
                user_id=user.id,
                email=user.email,
                amount=data["amount"],
                currency=data.get("currency", settings.WALLET_CURRENCY),
                claim=claim,
            )
            return 201, dict(s.TransactionOutputSerializer(deposit).data)

        return idempotent_create(
            request, scope="deposit_create", execute=execute, resume=_transaction_payload
        )


class WithdrawalCreateApi(APIView):
    throttle_classes = limits(("money_write_user", PerUser))
    documented_errors = (
        *_IDEMPOTENCY_ERRORS,
        ledger.InsufficientFundsError,
        WithdrawalLimitError,
        DebtOutstandingError,
        TransactionConflictError,
        StepUpRequiredError,
        StepUpFailedError,
        accounts.AccountLockedError,
        accounts.AccountLoginRateLimitedError,
    )

    @extend_schema(
        tags=["withdrawals"],
        request=s.WithdrawalCreateInputSerializer,
        responses={201: s.TransactionOutputSerializer},
        parameters=[IDEMPOTENCY_KEY_PARAMETER],
        description=(
            "Withdraws to a bank account. The amount is reserved at once (available → reserved) and the "
            "answer is 201 with `status` `pending`: a worker sends the payout to Revio after the answer, "
            "so this call never waits on Revio. Poll `GET /api/v1/withdrawals/{id}`: `processing` shortly "
            "after (Revio accepted), or `failed` (refused; the amount is back in the balance, see "
            "`failure_reason`); it stays `pending` while Revio is unavailable (sent later) or its answer "
            "proved nothing (resolved automatically, never paid twice). Bank details are stored "
            "encrypted and only the last four digits are ever shown. The first withdrawal to a bank account "
            "(no completed one to the same account number and bank code) needs `step_up_password`, the "
            "user's current password: 403 `step_up_required` without it, 403 `step_up_failed` when wrong "
            "(counted by the login lockout: 429 once locked); nothing is reserved either way."
        ),
    )
    def post(self, request: Request) -> Any:
        user = _user(request)

        def execute(claim: Any) -> Outcome:
            # Validated here, after the key's lookup: a replay answers without parsing the body again
            # (a key gets a record only with a valid request, so a replayed body was valid).
            data = _validated(s.WithdrawalCreateInputSerializer, request.data)
            _step_up_check(request, user, data)
            withdrawal = services.withdrawal_create(
                user_id=user.id,
                email=user.email,
                amount=data["amount"],
                currency=data.get("currency", settings.WALLET_CURRENCY),
                bank_account=BankAccount(**data["bank_account"]),
                claim=claim,
            )
            return 201, dict(s.TransactionOutputSerializer(withdrawal).data)

        return idempotent_create(
            request, scope="withdrawal_create", execute=execute, resume=_transaction_payload
        )


def _step_up_check(request: Request, user: User, data: dict[str, Any]) -> None:
    """A withdrawal to a bank account the user never withdrew to needs their password (issue 17 F10,
    docs/adr/0017-withdrawal-step-up.md): a stolen access token alone cannot send the balance to a new
    account. Checked before anything is reserved.

    :raises StepUpRequiredError: a new account and no password.
    :raises StepUpFailedError: a wrong password (a failed login for the lockout and the audit).
    :raises AccountLockedError, AccountLoginRateLimitedError: too many failures already.
    """
    if not settings.WITHDRAWAL_STEP_UP_NEW_ACCOUNT:
        return
    bank_account = data["bank_account"]
    if selectors.bank_account_used_before(
        user_id=user.id, account_number=bank_account["account_number"], bank_code=bank_account["bank_code"]
    ):
        return
    password = data.get("step_up_password")
    if not password:
        raise StepUpRequiredError()
    try:
        accounts.credentials_check(
            email=user.email, password=password, ip=client_ip(request), channel="withdrawal_step_up"
        )
    except accounts.InvalidCredentialsError:
        raise StepUpFailedError() from None


class BalanceApi(APIView):
    documented_errors = (ValidationFailedError,)

    @extend_schema(
        tags=["balance"],
        parameters=[statements.BalanceQuerySerializer],
        responses={200: s.BalanceOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        as_of = _validated(statements.BalanceQuerySerializer, request.query_params).get("as_of")
        if as_of is not None:  # summed from the ledger entries effective before as_of (ADR 0011)
            figures = ledger.balance_as_of(
                user_id=_user(request).id, currency=settings.WALLET_CURRENCY, as_of=as_of
            )
            return Response(s.BalanceOutputSerializer(figures).data)
        # Display only, so it may come from the cache (invalidated on commit); withdrawals lock the row.
        figures = ledger.balance_get(
            user_id=_user(request).id, currency=settings.WALLET_CURRENCY, cached=True
        )
        held = deposit_hold.deposit_hold_amount(
            user_id=_user(request).id,
            currency=figures.currency,
            available=figures.available,
            now=timezone.now(),
        )
        return Response(s.BalanceOutputSerializer({**dataclasses.asdict(figures), "hold": held}).data)


class EntryPagination(NewestFirstCursorPagination):
    ordering = "-id"


class BalanceEntryListApi(APIView):
    pagination_class = EntryPagination  # also tells the schema the list is paginated

    @extend_schema(
        tags=["balance"],
        responses={200: s.EntryOutputSerializer(many=True)},
        description="The ledger entries behind the balance, newest first: why the balance is what it is.",
    )
    def get(self, request: Request) -> Response:
        entries = ledger.entry_list_for_user(user_id=_user(request).id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(entries, request, view=self)
        return paginator.get_paginated_response(s.EntryOutputSerializer(page, many=True).data)


class TransactionListApi(APIView):
    pagination_class = NewestFirstCursorPagination  # also tells the schema the list is paginated

    @extend_schema(
        tags=["transactions"],
        parameters=[s.TransactionFilterSerializer],
        responses={200: s.TransactionOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = _validated(s.TransactionFilterSerializer, request.query_params)
        rows = selectors.transaction_list(user_id=_user(request).id, **filters)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(
            s.TransactionOutputSerializer(page, many=True).data  # type: ignore[arg-type]
        )


class TransactionDetailApi(APIView):
    transaction_type: str | None = None

    @extend_schema(
        tags=["transactions"],
        responses={200: s.TransactionOutputSerializer},
        parameters=[OpenApiParameter("transaction_id", type=uuid.UUID, location=OpenApiParameter.PATH)],
    )
    def get(self, request: Request, transaction_id: uuid.UUID) -> Response:
        txn = selectors.transaction_get(
            user_id=_user(request).id, transaction_id=transaction_id, type=self.transaction_type
        )
        if txn is None:
            raise NotFoundError()
        return Response(s.TransactionOutputSerializer(txn).data)


class DepositDetailApi(TransactionDetailApi):
    transaction_type = TransactionType.DEPOSIT


class WithdrawalDetailApi(TransactionDetailApi):
    transaction_type = TransactionType.WITHDRAWAL
