"""Revio's answer to a payout create, over real HTTP against the sandbox: only a definite refusal in the
platform's error shape fails a withdrawal. A 5xx, a proxy's page or a timeout after the payment was made
leaves it pending with an unknown outcome, never refunded and never sent again, until the payment is found
(docs/adr/0015-provider-answer-classification.md)."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.ledger.models import Journal, JournalKind
from wallet.ledger.selectors import balance_get
from wallet.reconciliation.models import StuckStatus, StuckTransaction
from wallet.reconciliation.recovery import recovery_run
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver, apply_payout

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]

# Each fault lets the sandbox make the payment and then answers something that proves nothing.
AMBIGUOUS_AFTER_CREATE: dict[str, dict[str, Any]] = {
    "503": {"status": 503},
    "503 with Retry-After": {"status": 503, "retry_after": 30},
    "502": {"status": 502},
    "504": {"status": 504},
    "500": {"status": 500},
    "HTML proxy page (502)": {"status": 502, "html": True},
    "HTML page with a 4xx status": {"status": 403, "html": True},
    "JSON that is not the platform's (400)": {"status": 400, "body": '{"error": "bad gateway"}'},
}


def figures(user: User) -> tuple[int, int]:
    balance = balance_get(user_id=user.id, currency="ZAR")
    return balance.available, balance.reserved


def journals(txn: Transaction) -> list[str]:
    return sorted(Journal.objects.filter(transaction_id=txn.id).values_list("kind", flat=True))


def withdraw(api: APIClient, amount: int) -> Any:
    """Withdraw, then read the withdrawal as the client sees it once the payouts worker tried its payout
    (the answer itself is always the committed reservation, `pending`)."""
    response = api.post("/api/v1/withdrawals", {"amount": amount, "bank_account": BANK}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    read = api.get(f"/api/v1/withdrawals/{response.json()['id']}")
    assert read.status_code == 200
    return read.json()


def later(**delta: float) -> Any:
    return timezone.now() + timedelta(**delta)


@pytest.mark.parametrize("fault", list(AMBIGUOUS_AFTER_CREATE), ids=list(AMBIGUOUS_AFTER_CREATE))
def test_an_ambiguous_answer_after_the_payment_was_made_is_never_refunded_nor_sent_again(
    user_api: APIClient, user: User, fund: Fund, eft: EftDriver, fault: str
) -> None:
    fund(user, 9_000)
    eft.sandbox.control.error_after_next(eft.create_endpoint, **AMBIGUOUS_AFTER_CREATE[fault])

    body = withdraw(user_api, 4_000)

    assert body["status"] == "pending"
    assert figures(user) == (5_000, 4_000)  # still reserved, not refunded
    assert len(eft.find(body["id"])) == 1  # the sandbox made it
    withdrawal = Transaction.objects.get(id=body["id"])
    assert journals(withdrawal) == [JournalKind.WITHDRAWAL_RESERVE]
    assert withdrawal.payout_attempts == 1
    assert withdrawal.events.filter(detail__startswith="payout outcome unknown").count() == 1
    # The payouts sweep never sends a request whose outcome is unknown.
    assert services.withdrawals_send_queued(now=later(hours=1)) == {}
    assert len(eft.find(body["id"])) == 1

    # Recovery finds the payment by our reference and applies it; Revio pays it; it completes once.
    recovery_run(now=later(hours=1))
    withdrawal.refresh_from_db()
    assert withdrawal.status == "processing"
    eft.succeed(withdrawal.provider_object_id or "")
    assert apply_payout(withdrawal) == services.Applied.CHANGED
    assert apply_payout(withdrawal) == services.Applied.UNCHANGED
    withdrawal.refresh_from_db()
    assert withdrawal.status == "completed"
    assert journals(withdrawal) == [JournalKind.WITHDRAWAL_RESERVE, JournalKind.WITHDRAWAL_SETTLE]
    assert figures(user) == (5_000, 0)
    assert len(eft.find(body["id"])) == 1


def test_a_timeout_after_the_payment_was_made_is_resolved_by_the_lookup(
    user_api: APIClient, user: User, fund: Fund, eft: EftDriver
) -> None:
    fund(user, 9_000)
    eft.create_times_out(seconds=5)
    body = withdraw(user_api, 4_000)
    assert body["status"] == "pending"
    assert figures(user) == (5_000, 4_000)
    recovery_run(now=later(hours=1))
    [payout] = eft.find(body["id"])
    eft.succeed(payout.id)
    withdrawal = Transaction.objects.get(id=body["id"])
    assert apply_payout(withdrawal) == services.Applied.CHANGED
    assert figures(user) == (5_000, 0)
    assert len(eft.find(body["id"])) == 1


def test_a_429_before_processing_is_queued_and_sent_once_later(
    user_api: APIClient, user: User, fund: Fund, eft: EftDriver
) -> None:
    fund(user, 9_000)
    eft.sandbox.control.fail_next(eft.create_endpoint, status=429, retry_after=1)

    body = withdraw(user_api, 4_000)

    assert body["status"] == "pending"
    assert figures(user) == (5_000, 4_000)  # queued, not refunded
    assert eft.find(body["id"]) == []
    withdrawal = Transaction.objects.get(id=body["id"])
    assert (withdrawal.payout_requested_at, withdrawal.payout_attempts) == (None, 0)

    assert services.withdrawals_send_queued(now=later(hours=1)) == {"sent": 1}
    assert services.withdrawals_send_queued(now=later(hours=2)) == {}
    withdrawal.refresh_from_db()
    assert withdrawal.status == "processing"
    assert len(eft.find(body["id"])) == 1
    assert figures(user) == (5_000, 4_000)


def test_a_refusal_in_the_platforms_error_shape_fails_and_returns_the_reservation(
    user_api: APIClient, user: User, fund: Fund, eft: EftDriver
) -> None:
    fund(user, 9_000)
    eft.fail_next_create(status=422)  # {"statusCode": 422, "message": ...}, before processing
    body = withdraw(user_api, 4_000)
    assert body["status"] == "failed"
    assert figures(user) == (9_000, 0)
    assert eft.find(body["id"]) == []


def test_an_unknown_outcome_with_an_empty_lookup_stays_reserved_and_goes_to_an_operator(
    user_api: APIClient, user: User, fund: Fund, eft: EftDriver
) -> None:
    """A 500 before anything was made: Revio has nothing, but an empty lookup alone proves nothing."""
    fund(user, 9_000)
    eft.fail_next_create(status=500)
    body = withdraw(user_api, 4_000)
    withdrawal = Transaction.objects.get(id=body["id"])

    recovery_run(now=later(hours=1))
    recovery_run(now=later(days=2))

    withdrawal.refresh_from_db()
    assert withdrawal.status == "pending"
    assert figures(user) == (5_000, 4_000)
    assert journals(withdrawal) == [JournalKind.WITHDRAWAL_RESERVE]
    assert withdrawal.needs_review is True
    row = StuckTransaction.objects.get(transaction_id=withdrawal.id)
    assert row.status == StuckStatus.OPERATOR
    assert eft.find(body["id"]) == []  # and it was never sent again
