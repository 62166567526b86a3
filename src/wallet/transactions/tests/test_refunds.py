"""Admin refunds of deposits (issue 16 part 2), against the sandbox over real HTTP and real PostgreSQL."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import login
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.audit.models import AuditEvent
from wallet.ledger import public as ledger
from wallet.ledger.models import Journal
from wallet.ledger.selectors import balance_get
from wallet.revio.client import get_client, purchase_take_back
from wallet.transactions import refunds, reversals
from wallet.transactions import services as wallet
from wallet.transactions.models import DepositReversal, Transaction
from wallet.transactions.tests.conftest import BANK

Fund = Callable[[User, int], Transaction]


def figures(user: User) -> tuple[int, int, int]:
    b = balance_get(user_id=user.id, currency="ZAR")
    return b.available, b.reserved, b.debt


def finance_admin(make_user: Callable[..., User], email: str) -> User:
    return make_user(email=email, role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client, user.email)['access']}")
    return client


def refund(client: APIClient, deposit: Transaction, key: str | None = None, **body: Any) -> Any:
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/v1/admin/deposits/{deposit.id}/refunds", body, format="json", **headers)


def revio_payments(revio: SandboxProcess, deposit: Transaction) -> list[dict[str, Any]]:
    return revio.control.purchase_payments(deposit.provider_object_id or "")


def apply_revio_payment(deposit: Transaction, payment: dict[str, Any], kind: str) -> str:
    """What the payment.* webhook does: re-read the purchase, apply the Payment."""
    state = purchase_take_back(get_client(), deposit.provider_object_id or "")
    return reversals.reversal_apply_from_revio(
        deposit_id=deposit.id,
        reversal=reversals.RevioReversal(
            kind=kind,
            payment_id=payment["id"],
            amount=payment["amount"],
            currency="ZAR",
            purchase_taken_back=state.taken_back,
        ),
        origin="revio",
        source="webhook",
    )


@pytest.mark.django_db
class TestAdminRefund:
    def test_the_same_key_twice_refunds_once_at_revio_and_debits_once(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess
    ) -> None:
        admin = client_for(finance_admin(make_user, "fin@example.com"))
        deposit = fund(user, 20_000)
        first = refund(admin, deposit, "refund-1", amount=5_000)
        second = refund(admin, deposit, "refund-1", amount=5_000)
        assert first.status_code == 201, first.content
        assert first.json()["status"] == "completed"
        assert (second.status_code, second.content) == (201, first.content)
        assert second["Idempotent-Replayed"] == "true"
        assert len(revio_payments(revio, deposit)) == 1
        assert Journal.objects.filter(kind="deposit_refund").count() == 1
        assert figures(user) == (15_000, 0, 0)
        assert AuditEvent.objects.filter(action="refund_requested").count() == 1
        # Its payment.refunded event, when it comes, is the same payment: no second debit.
        assert apply_revio_payment(deposit, revio_payments(revio, deposit)[0], "refund") == "already"
        assert figures(user) == (15_000, 0, 0)

    def test_beyond_the_refundable_amount_is_refused_and_nothing_moves(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess
    ) -> None:
        admin = client_for(finance_admin(make_user, "fin@example.com"))
        deposit = fund(user, 20_000)
        chargeback = revio.control.purchase_chargeback(deposit.provider_object_id or "", amount=15_000)
        assert apply_revio_payment(deposit, chargeback, "chargeback") == "debited"
        response = refund(admin, deposit, "too-much", amount=6_000)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "refund_exceeds_refundable"
        assert response.json()["error"]["details"]["refundable"] == 5_000
        assert figures(user) == (5_000, 0, 0)
        assert len(revio_payments(revio, deposit)) == 1  # only the chargeback
        assert DepositReversal.objects.filter(kind="refund").count() == 0

    def test_revios_refusal_restores_the_debit(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess
    ) -> None:
        # A dashboard refund whose event we have not processed yet: Revio has less left than we think.
        admin = client_for(finance_admin(make_user, "fin@example.com"))
        deposit = fund(user, 20_000)
        with revio.api_client() as api:
            api.post(
                f"purchases/{deposit.provider_object_id}/refund/", json={"amount": 15_000}
            ).raise_for_status()
        response = refund(admin, deposit, "refused", amount=10_000)
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "failed"
        assert figures(user) == (20_000, 0, 0)
        kinds = sorted(
            Journal.objects.filter(kind__startswith="deposit_refund").values_list("kind", flat=True)
        )
        assert kinds == ["deposit_refund", "deposit_refund_reversed"]

    def test_an_ambiguous_answer_keeps_it_pending_and_the_event_does_not_debit_again(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess, settings: Any
    ) -> None:
        admin = client_for(finance_admin(make_user, "fin@example.com"))
        deposit = fund(user, 20_000)
        revio.control.error_after_next("purchases.refund", 502)  # refunded at Revio, then a proxy error
        response = refund(admin, deposit, "ambiguous", amount=7_000)
        assert response.status_code == 201, response.content
        assert response.json()["status"] == "pending"
        assert figures(user) == (13_000, 0, 0)  # debited: cannot be withdrawn meanwhile
        (payment,) = revio_payments(revio, deposit)
        assert apply_revio_payment(deposit, payment, "refund") == "matched"
        row = DepositReversal.objects.get()
        assert (row.status, row.provider_payment_id) == ("completed", payment["id"])
        settings.REFUND_PENDING_GRACE_SECONDS = 0
        assert refunds.refunds_resolve_pending(now=timezone.now()) == {
            "completed": 0,
            "restored": 0,
            "waiting": 0,
        }
        assert figures(user) == (13_000, 0, 0)
        assert Journal.objects.filter(kind="deposit_refund").count() == 1

    def test_a_lost_answer_revio_never_acted_on_is_restored_by_the_re_read(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess, settings: Any
    ) -> None:
        admin = client_for(finance_admin(make_user, "fin@example.com"))
        deposit = fund(user, 20_000)
        revio.control.fail_next("purchases.refund", status=500)  # not processed; the answer proves nothing
        response = refund(admin, deposit, "lost", amount=7_000)
        assert response.json()["status"] == "pending"
        assert figures(user) == (13_000, 0, 0)
        assert refunds.refunds_resolve_pending(now=timezone.now())["waiting"] == 0  # inside the grace
        assert figures(user) == (13_000, 0, 0)
        settings.REFUND_PENDING_GRACE_SECONDS = 0
        assert refunds.refunds_resolve_pending(now=timezone.now())["restored"] == 1
        assert refunds.refunds_resolve_pending(now=timezone.now())["restored"] == 0  # once
        assert figures(user) == (20_000, 0, 0)
        assert DepositReversal.objects.get().status == "failed"

    def test_too_little_available_is_refused_unless_debt_is_allowed(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess
    ) -> None:
        admin = client_for(finance_admin(make_user, "fin@example.com"))
        deposit = fund(user, 20_000)
        wallet.withdrawal_create(
            user_id=user.id,
            email=user.email,
            amount=18_000,
            currency="ZAR",
            bank_account=wallet.BankAccount(**BANK),
        )
        refused = refund(admin, deposit, "short", amount=5_000)
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "insufficient_funds"
        assert figures(user) == (2_000, 18_000, 0)
        assert revio_payments(revio, deposit) == []
        allowed = refund(admin, deposit, "short-debt", amount=5_000, allow_debt=True)
        assert allowed.status_code == 201, allowed.content
        assert (allowed.json()["taken_from_available"], allowed.json()["debt_created"]) == (2_000, 3_000)
        assert figures(user) == (0, 18_000, 3_000)

    def test_above_the_threshold_a_second_finance_admin_approves(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess, settings: Any
    ) -> None:
        settings.REFUND_FOUR_EYES_THRESHOLD = 10_000
        proposer = finance_admin(make_user, "fin1@example.com")
        approver = finance_admin(make_user, "fin2@example.com")
        operations = make_user(email="ops2@example.com", role=User.Role.ADMIN)
        deposit = fund(user, 20_000)
        proposed = refund(client_for(proposer), deposit, "big", amount=12_000)
        assert proposed.status_code == 202, proposed.content
        assert proposed.json()["status"] == "proposed"
        assert figures(user) == (20_000, 0, 0)
        assert revio_payments(revio, deposit) == []
        url = f"/api/v1/admin/refunds/{proposed.json()['id']}/approve"
        assert client_for(proposer).post(url).json()["error"]["code"] == "four_eyes_required"
        assert client_for(operations).post(url).json()["error"]["code"] == "admin_required"
        approved = client_for(approver).post(url)
        assert approved.status_code == 200, approved.content
        assert approved.json()["status"] == "completed"
        assert client_for(approver).post(url).json()["error"]["code"] == "refund_not_proposed"
        assert figures(user) == (8_000, 0, 0)
        assert len(revio_payments(revio, deposit)) == 1

    def test_a_second_finance_admin_rejects_a_proposal_and_nothing_moves(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess, settings: Any
    ) -> None:
        settings.REFUND_FOUR_EYES_THRESHOLD = 10_000
        proposer = finance_admin(make_user, "fin1@example.com")
        second = finance_admin(make_user, "fin2@example.com")
        operations = make_user(email="ops2@example.com", role=User.Role.ADMIN)
        deposit = fund(user, 20_000)
        proposed = refund(client_for(proposer), deposit, "big", amount=12_000)
        assert proposed.status_code == 202, proposed.content
        refund_id = proposed.json()["id"]
        reject = f"/api/v1/admin/refunds/{refund_id}/reject"
        approve = f"/api/v1/admin/refunds/{refund_id}/approve"
        # The proposer can neither approve nor reject their own proposal; an operations admin and the user
        # cannot decide it at all.
        for client in (client_for(proposer),):
            assert client.post(approve).json()["error"]["code"] == "four_eyes_required"
            assert client.post(reject, {"note": "mine"}, format="json").json()["error"]["code"] == (
                "four_eyes_required"
            )
        assert client_for(operations).post(reject).json()["error"]["code"] == "admin_required"
        assert client_for(user).post(reject).status_code == 403
        assert DepositReversal.objects.get(id=refund_id).status == "proposed"

        rejected = client_for(second).post(
            reject, {"note": "the customer withdrew the request"}, format="json"
        )
        assert rejected.status_code == 200, rejected.content
        assert rejected.json()["status"] == "rejected"
        # Decided: neither a second rejection nor an approval can act on it now.
        assert client_for(second).post(reject).json()["error"]["code"] == "refund_not_proposed"
        assert client_for(second).post(approve).json()["error"]["code"] == "refund_not_proposed"
        assert figures(user) == (20_000, 0, 0)
        assert revio_payments(revio, deposit) == []
        assert not Journal.objects.filter(kind__startswith="deposit_refund").exists()
        (event,) = AuditEvent.objects.filter(action="refund_rejected")
        assert (event.actor_id, event.subject_id) == (second.id, refund_id)
        assert event.details["note"] == "the customer withdrew the request"
        assert event.details["proposed_by"] == str(proposer.id)
        # A rejected proposal is not counted as taken back: the whole deposit can still be refunded.
        again = refund(client_for(second), deposit, "again", amount=20_000)
        assert again.status_code == 202, again.content

    def test_rejecting_a_refund_that_needed_no_approval_is_refused(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess
    ) -> None:
        first = finance_admin(make_user, "fin1@example.com")
        second = finance_admin(make_user, "fin2@example.com")
        deposit = fund(user, 20_000)
        done = refund(client_for(first), deposit, "small", amount=1_000)
        assert done.json()["status"] == "completed"
        response = client_for(second).post(f"/api/v1/admin/refunds/{done.json()['id']}/reject")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "refund_not_proposed"
        missing = client_for(second).post("/api/v1/admin/refunds/00000000-0000-0000-0000-000000000000/reject")
        assert missing.status_code == 404
        assert figures(user) == (19_000, 0, 0)

    def test_an_operations_admin_or_a_user_cannot_refund(
        self, make_user: Any, user: User, fund: Fund, revio: SandboxProcess
    ) -> None:
        deposit = fund(user, 20_000)
        operations = make_user(email="ops2@example.com", role=User.Role.ADMIN)
        assert refund(client_for(operations), deposit, amount=1_000).status_code == 403
        assert refund(client_for(user), deposit, amount=1_000).status_code == 403
        assert figures(user) == (20_000, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_refunds_of_one_deposit_never_pass_its_amount(
    make_user: Any, fund: Fund, revio: SandboxProcess
) -> None:
    user = make_user()
    admin = finance_admin(make_user, "fin@example.com")
    deposit = fund(user, 20_000)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        try:
            barrier.wait()
            row = refunds.refund_request(
                actor=admin, data=refunds.RefundInput(deposit_id=deposit.id, amount=6_000, allow_debt=True)
            )
            results.append(row.status)
        except Exception as exc:  # noqa: BLE001 - the refusals are what is counted
            results.append(getattr(exc, "code", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["completed"] * 3 + ["refund_exceeds_refundable"] * 5
    assert len(revio.control.purchase_payments(deposit.provider_object_id or "")) == 3
    assert figures(user) == (2_000, 0, 0)
    assert ledger.ledger_problems() == []


@pytest.mark.django_db(transaction=True)
def test_approve_and_reject_at_once_decide_a_proposal_once(
    make_user: Any, fund: Fund, revio: SandboxProcess, settings: Any
) -> None:
    settings.REFUND_FOUR_EYES_THRESHOLD = 10_000
    user = make_user()
    proposer = finance_admin(make_user, "fin1@example.com")
    deciders = [finance_admin(make_user, f"fin{n}@example.com") for n in (2, 3)]
    deposit = fund(user, 20_000)
    row = refunds.refund_request(
        actor=proposer, data=refunds.RefundInput(deposit_id=deposit.id, amount=12_000)
    )
    assert row.status == "proposed"
    results: list[str] = []
    barrier = threading.Barrier(4)

    def decide(index: int) -> None:
        try:
            barrier.wait()
            if index % 2:
                results.append(refunds.refund_reject(reversal_id=row.id, actor=deciders[index % 2]).status)
            else:
                results.append(refunds.refund_approve(reversal_id=row.id, actor=deciders[index % 2]).status)
        except Exception as exc:  # noqa: BLE001 - the refusals are what is counted
            results.append(getattr(exc, "code", repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=decide, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    decided = [r for r in results if r != "refund_not_proposed"]
    assert len(decided) == 1, results
    final = DepositReversal.objects.get(id=row.id)
    assert final.status == decided[0]
    payments = revio.control.purchase_payments(deposit.provider_object_id or "")
    if final.status == "completed":
        assert (len(payments), figures(user)) == (1, (8_000, 0, 0))
    else:
        assert final.status == "rejected"
        assert (len(payments), figures(user)) == (0, (20_000, 0, 0))
    assert ledger.ledger_problems() == []


@pytest.mark.django_db
def test_the_console_lists_proposals_and_a_second_admin_approves_or_rejects(
    make_user: Any, user: User, fund: Fund, revio: SandboxProcess, settings: Any
) -> None:
    """Through the Django admin: the proposer's own decision is refused with a message and changes nothing;
    another finance admin rejects one proposal (nothing moves) and approves another (debited, refunded)."""
    settings.REFUND_FOUR_EYES_THRESHOLD = 5_000
    proposer = finance_admin(make_user, "fin1@example.com")
    second = finance_admin(make_user, "fin2@example.com")
    deposit = fund(user, 20_000)
    to_reject, to_approve = (
        refunds.refund_request(actor=proposer, data=refunds.RefundInput(deposit_id=deposit.id, amount=amount))
        for amount in (9_000, 6_000)
    )
    url = "/admin/transactions/depositreversal/"
    own, other = Client(), Client()
    own.force_login(proposer)
    other.force_login(second)
    listing = other.get(url)
    assert listing.status_code == 200
    assert str(to_reject.id) in listing.content.decode()

    refused = own.post(
        url, {"action": "reject_selected", "_selected_action": [str(to_reject.id)]}, follow=True
    )
    assert "a different admin must decide it" in refused.content.decode()
    refused = own.post(
        url, {"action": "approve_selected", "_selected_action": [str(to_approve.id)]}, follow=True
    )
    assert "a different admin must decide it" in refused.content.decode()
    assert set(DepositReversal.objects.values_list("status", flat=True)) == {"proposed"}

    other.post(url, {"action": "reject_selected", "_selected_action": [str(to_reject.id)]}, follow=True)
    other.post(url, {"action": "approve_selected", "_selected_action": [str(to_approve.id)]}, follow=True)
    to_reject.refresh_from_db()
    to_approve.refresh_from_db()
    assert (to_reject.status, to_approve.status) == ("rejected", "completed")
    assert to_approve.approved_by_id == second.id
    assert figures(user) == (14_000, 0, 0)
    assert len(revio_payments(revio, deposit)) == 1
    actions = list(AuditEvent.objects.filter(actor_id=second.id).values_list("action", "subject_id"))
    assert ("refund_rejected", str(to_reject.id)) in actions
    assert ("refund_approved", str(to_approve.id)) in actions
