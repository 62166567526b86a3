"""Deposits against the Revio sandbox over real HTTP: creation, Revio's faults, and applying its states."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.models import Entry
from wallet.ledger.selectors import balance_get
from wallet.revio.client import get_client
from wallet.revio.contracts import Purchase, PurchaseOutcome
from wallet.transactions import services
from wallet.transactions.errors import IllegalTransitionError
from wallet.transactions.models import Transaction, TransactionEvent
from wallet.transactions.tests.conftest import apply_deposit, pay_deposit

pytestmark = pytest.mark.django_db


def available(user: User) -> int:
    return balance_get(user_id=user.id, currency="ZAR").available


class TestCreate:
    def test_creates_a_pending_deposit_with_a_revio_checkout(
        self, user_api: APIClient, user: User, revio: SandboxProcess
    ) -> None:
        response = user_api.post("/api/v1/deposits", {"amount": 15_000}, format="json")
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["type"] == "deposit"
        assert body["status"] == "pending"
        assert body["amount"] == 15_000
        assert body["currency"] == "ZAR"
        assert body["checkout_url"].startswith(f"{revio.base_url}/p/")
        assert body["bank_account"] is None
        purchase = revio.control.purchase(body["checkout_url"].rstrip("/").rsplit("/", 1)[1])
        assert purchase["reference"] == body["id"]
        assert purchase["purchase"]["total"] == 15_000
        assert purchase["client"]["email"] == user.email
        assert purchase["success_redirect"].endswith(f"/deposits/{body['id']}?result=success")
        assert purchase["success_callback"].endswith("/api/v1/webhooks/revio")
        assert available(user) == 0  # nothing is credited before Revio confirms payment

    def test_each_purchase_is_due_deposit_due_seconds_after_its_deposit(
        self, user: User, revio: SandboxProcess, settings: Any
    ) -> None:
        settings.DEPOSIT_DUE_SECONDS = 900
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=2_000, currency="ZAR")
        purchase = revio.control.purchase(deposit.provider_object_id or "")
        assert purchase["due"] == int(deposit.created_at.timestamp()) + 900  # a unix timestamp, ours
        assert purchase["purchase"]["due_strict"] is True  # past due it expires instead of staying payable

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({}, "amount"),
            ({"amount": 0}, "amount"),
            ({"amount": -500}, "amount"),
            ({"amount": "1500"}, "amount"),
            ({"amount": 1500.5}, "amount"),
            ({"amount": 1500.0}, "amount"),
            ({"amount": True}, "amount"),
            ({"amount": 999}, "amount"),  # below the minimum
            ({"amount": 5_000_001}, "amount"),  # above the maximum
            ({"amount": 1500, "currency": "USD"}, "currency"),
        ],
    )
    def test_bad_amounts_are_refused_and_nothing_is_created(
        self, user_api: APIClient, revio: SandboxProcess, payload: dict[str, Any], field: str
    ) -> None:
        response = user_api.post("/api/v1/deposits", payload, format="json")
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == "validation_error"
        assert field in response.json()["error"]["details"]["fields"]
        assert Transaction.objects.count() == 0

    def test_revio_unavailable_marks_the_deposit_failed(
        self, user_api: APIClient, revio: SandboxProcess
    ) -> None:
        revio.control.fail_next("purchases.create", status=503, count=5)
        response = user_api.post("/api/v1/deposits", {"amount": 2_000}, format="json")
        assert response.status_code == 503
        error = response.json()["error"]
        assert error["code"] == "provider_unavailable"
        deposit = Transaction.objects.get(id=error["details"]["deposit_id"])
        assert deposit.status == "failed"
        assert deposit.checkout_url == ""

    def test_revio_refusal_marks_the_deposit_failed(
        self, user_api: APIClient, revio: SandboxProcess, settings: Any
    ) -> None:
        settings.REVIO_BRAND_ID = "00000000-0000-4000-8000-000000000000"  # a brand Revio does not know
        response = user_api.post("/api/v1/deposits", {"amount": 2_000}, format="json")
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "provider_error"
        assert Transaction.objects.get().status == "failed"

    @pytest.mark.parametrize("fault", ["server_error", "timeout"])
    def test_unknown_outcome_leaves_the_deposit_pending(
        self, user_api: APIClient, revio: SandboxProcess, fault: str
    ) -> None:
        if fault == "server_error":
            revio.control.fail_next("purchases.create", status=500)
        else:
            revio.control.timeout_after_processing("purchases.create", seconds=5)
        response = user_api.post("/api/v1/deposits", {"amount": 2_000}, format="json")
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "provider_timeout"
        deposit = Transaction.objects.get()
        assert deposit.status == "pending"
        assert Entry.objects.count() == 0


class TestApplyingRevioStates:
    def test_paid_credits_once_however_often_it_is_applied(self, user: User, revio: SandboxProcess) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=12_345, currency="ZAR")
        assert pay_deposit(revio, deposit) == services.Applied.CHANGED
        deposit.refresh_from_db()
        assert (deposit.status, deposit.provider_status) == ("completed", "paid")  # one write, both fields
        assert apply_deposit(deposit) == services.Applied.UNCHANGED
        deposit.refresh_from_db()
        assert deposit.status == "completed"
        assert deposit.completed_at is not None
        assert available(user) == 12_345
        assert Entry.objects.filter(journal__transaction_id=deposit.id).count() == 2

    def test_a_declined_attempt_changes_nothing_and_payment_can_follow(
        self, user: User, revio: SandboxProcess
    ) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")
        assert deposit.provider_object_id
        revio.control.purchase_decline(deposit.provider_object_id)
        purchase = get_client().purchase_get(deposit.provider_object_id)
        assert purchase.outcome == PurchaseOutcome.ATTEMPT_FAILED
        result = services.deposit_apply_provider_state(
            deposit_id=deposit.id,
            purchase=purchase,
            source="webhook",
        )
        assert result == services.Applied.UNCHANGED
        assert pay_deposit(revio, deposit) == services.Applied.CHANGED
        assert available(user) == 5_000

    def test_cancelled_then_paid_late_is_still_credited(self, user: User, revio: SandboxProcess) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=4_000, currency="ZAR")
        services.deposit_apply_provider_state(
            deposit_id=deposit.id,
            purchase=Purchase(
                id=deposit.provider_object_id or "",
                status="cancelled",
                outcome=PurchaseOutcome.CANCELLED,
                amount=4_000,
                currency="ZAR",
                reference=str(deposit.id),
                checkout_url="",
                updated_on=0,
                is_test=False,
            ),
            source="webhook",
        )
        deposit.refresh_from_db()
        assert deposit.status == "cancelled"
        assert pay_deposit(revio, deposit) == services.Applied.CHANGED
        assert available(user) == 4_000

    def test_cancelled_after_paid_is_stale(self, user: User, revio: SandboxProcess) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=4_000, currency="ZAR")
        pay_deposit(revio, deposit)
        result = services.deposit_apply_provider_state(
            deposit_id=deposit.id,
            purchase=Purchase(
                id=deposit.provider_object_id or "",
                status="cancelled",
                outcome=PurchaseOutcome.CANCELLED,
                amount=4_000,
                currency="ZAR",
                reference=str(deposit.id),
                checkout_url="",
                updated_on=0,
                is_test=False,
            ),
            source="webhook",
        )
        assert result == services.Applied.STALE
        deposit.refresh_from_db()
        assert deposit.status == "completed"
        assert available(user) == 4_000

    @pytest.mark.parametrize(
        ("amount", "currency", "purchase"),
        [(4_001, "ZAR", None), (4_000, "USD", None), (4_000, "ZAR", "someone-elses-purchase")],
    )
    def test_a_disagreeing_provider_record_is_flagged_and_not_credited(
        self, user: User, revio: SandboxProcess, amount: int, currency: str, purchase: str | None
    ) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=4_000, currency="ZAR")
        result = services.deposit_apply_provider_state(
            deposit_id=deposit.id,
            purchase=Purchase(
                id=purchase or deposit.provider_object_id,
                status="paid",
                outcome=PurchaseOutcome.PAID,
                amount=amount,
                currency=currency,
                reference=str(deposit.id),
                checkout_url="",
                updated_on=0,
                is_test=False,
            ),
            source="webhook",
        )
        assert result == services.Applied.FLAGGED
        deposit.refresh_from_db()
        assert deposit.status == "pending"
        assert deposit.needs_review is True
        assert deposit.review_reason
        assert available(user) == 0

    def test_a_reversed_purchase_moves_no_money_and_is_never_credited(
        self, user: User, revio: SandboxProcess
    ) -> None:
        # On a credited deposit the payment.* events debit (reversals.py); the purchase status moves nothing.
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=4_000, currency="ZAR")
        pay_deposit(revio, deposit)
        result = services.deposit_apply_provider_state(
            deposit_id=deposit.id,
            purchase=Purchase(
                id=deposit.provider_object_id or "",
                status="chargeback",
                outcome=PurchaseOutcome.REVERSED,
                amount=4_000,
                currency="ZAR",
                reference=str(deposit.id),
                checkout_url="",
                updated_on=0,
                is_test=False,
            ),
            source="webhook",
        )
        assert result == services.Applied.UNCHANGED
        assert available(user) == 4_000
        # On a deposit we never credited, a reversed purchase is flagged, never credited.
        pending = services.deposit_create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")
        result = services.deposit_apply_provider_state(
            deposit_id=pending.id,
            purchase=Purchase(
                id=pending.provider_object_id or "",
                status="refunded",
                outcome=PurchaseOutcome.REVERSED,
                amount=5_000,
                currency="ZAR",
                reference=str(pending.id),
                checkout_url="",
                updated_on=0,
                is_test=False,
            ),
            source="webhook",
        )
        assert result == services.Applied.FLAGGED
        pending.refresh_from_db()
        assert (pending.status, pending.needs_review) == ("pending", True)
        assert available(user) == 4_000

    def test_illegal_transitions_are_refused_and_logged(
        self, user: User, revio: SandboxProcess, caplog: pytest.LogCaptureFixture
    ) -> None:
        deposit = services.deposit_create(user_id=user.id, email=user.email, amount=4_000, currency="ZAR")
        pay_deposit(revio, deposit)
        with pytest.raises(IllegalTransitionError):
            services.transaction_transition(transaction_id=deposit.id, to_status="pending", source="operator")
        assert "refused illegal transition" in caplog.text
        deposit.refresh_from_db()
        assert deposit.status == "completed"
        history = list(
            TransactionEvent.objects.filter(transaction=deposit).values_list("to_status", flat=True)
        )
        assert history == ["pending", "completed"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_confirmations_credit_once(make_user: Callable[..., User], revio: SandboxProcess) -> None:
    user = make_user()
    deposit = services.deposit_create(user_id=user.id, email=user.email, amount=9_999, currency="ZAR")
    assert deposit.provider_object_id
    revio.control.purchase_pay(deposit.provider_object_id)
    purchase = get_client().purchase_get(deposit.provider_object_id)
    results: list[str] = []
    barrier = threading.Barrier(10)

    def confirm() -> None:
        try:
            barrier.wait()
            results.append(
                services.deposit_apply_provider_state(
                    deposit_id=deposit.id,
                    purchase=purchase,
                    source="webhook",
                )
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["changed"] + ["unchanged"] * 9
    assert available(user) == 9_999
