"""Provider reconciliation finds each planted discrepancy class and moves no money."""

import csv
import io
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.models import Journal
from wallet.reconciliation.models import Discrepancy, DiscrepancyKind, ReconciliationRun, RunStatus
from wallet.reconciliation.provider import provider_reconciliation_run
from wallet.reconciliation.services import provider_reconciliation_daily
from wallet.reconciliation.tests.conftest import later
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver
from wallet.webhooks.models import WebhookLog

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]


def log_event(object_type: str, object_id: str, reference: str, event_type: str) -> None:
    now = int(time.time())
    WebhookLog.objects.create(
        dedup_key=f"{object_id}:{event_type}:{now}",
        event_type=event_type,
        object_type=object_type,
        object_id=object_id,
        reference=reference,
        updated_on=now,
        body="{}",
        verified_with="test",
        status="processed",
    )


def create_at_revio(revio: SandboxProcess, path: str, body: dict[str, Any]) -> dict[str, Any]:
    with revio.api_client() as client:
        response = client.post(path, json={"brand_id": revio.brand_id, **body})
        response.raise_for_status()
        return dict(response.json())


@pytest.fixture
def planted(user: User, fund: Fund, revio: SandboxProcess, eft: EftDriver) -> dict[str, Transaction]:
    fund(user, 20_000)  # a clean, completed deposit: no discrepancy
    create = services.deposit_create
    paid_not_applied = create(user_id=user.id, email=user.email, amount=3_000, currency="ZAR")
    revio.control.purchase_pay(paid_not_applied.provider_object_id or "")  # the webhook was lost
    wrong_amount = create(user_id=user.id, email=user.email, amount=4_000, currency="ZAR")
    Transaction.objects.filter(id=wrong_amount.id).update(amount=4_500)  # not a ledger column
    unknown_at_revio = create(user_id=user.id, email=user.email, amount=5_000, currency="ZAR")
    Transaction.objects.filter(id=unknown_at_revio.id).update(provider_object_id=str(uuid.uuid4()))
    withdrawal = services.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=6_000,
        currency="ZAR",
        bank_account=services.BankAccount(**BANK),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    # A second payout with the same reference (someone re-sent it by hand): a possible double payout.
    eft.create_by_hand(reference=str(withdrawal.id), amount=6_000, account_number="62001234567")
    # A second purchase naming a deposit that already has one; and a purchase that is not ours at all.
    second = create_at_revio(
        revio,
        "purchases/",
        {
            "reference": str(paid_not_applied.id),
            "client": {"email": user.email},
            "purchase": {"products": [{"name": "x", "price": 3_000}]},
        },
    )
    log_event("purchase", second["id"], str(paid_not_applied.id), "purchase.created")
    stranger = create_at_revio(
        revio,
        "purchases/",
        {
            "reference": "ORDER-1",
            "client": {"email": "a@b.c"},
            "purchase": {"products": [{"name": "x", "price": 1}]},
        },
    )
    log_event("purchase", stranger["id"], "ORDER-1", "purchase.paid")
    return {
        "paid_not_applied": paid_not_applied,
        "wrong_amount": wrong_amount,
        "unknown_at_revio": unknown_at_revio,
        "withdrawal": withdrawal,
        "stranger": Transaction(id=uuid.uuid4()),
        "stranger_id": stranger["id"],  # type: ignore[dict-item]
    }


def test_finds_each_planted_class_and_moves_no_money(planted: dict[str, Any]) -> None:
    journals_before = Journal.objects.count()
    statuses_before = dict(Transaction.objects.values_list("id", "status"))
    today = timezone.now().date()

    run = provider_reconciliation_run(date_from=today, date_to=today, triggered_by="test")

    assert run.status == RunStatus.COMPLETED, run.error
    assert (run.deposits_checked, run.withdrawals_checked, run.events_checked) == (4, 1, 2)
    found = {(d.kind, str(d.transaction_id or d.object_id)) for d in run.discrepancies.all()}
    assert found == {
        (DiscrepancyKind.STATUS_MISMATCH, str(planted["paid_not_applied"].id)),
        (DiscrepancyKind.AMOUNT_MISMATCH, str(planted["wrong_amount"].id)),
        (DiscrepancyKind.MISSING_REVIO, str(planted["unknown_at_revio"].id)),
        (DiscrepancyKind.DUPLICATE, str(planted["withdrawal"].id)),  # two payouts, one reference
        (DiscrepancyKind.DUPLICATE, str(planted["paid_not_applied"].id)),  # a second purchase
        (DiscrepancyKind.MISSING_OURS, planted["stranger_id"]),
    }
    assert run.discrepancies_found == 6
    amount = run.discrepancies.get(kind=DiscrepancyKind.AMOUNT_MISMATCH)
    assert "amount: ours 4500, Revio 4000" in amount.detail
    assert Journal.objects.count() == journals_before  # it proposes; it moves nothing
    assert dict(Transaction.objects.values_list("id", "status")) == statuses_before


def test_a_past_period_still_rereads_open_transactions_and_recent_deposits(planted: dict[str, Any]) -> None:
    # Issue 16: late changes (a chargeback months on, a pending one paid) are found whatever the period.
    today = timezone.now().date()
    day = today - timezone.timedelta(days=30)
    past = provider_reconciliation_run(date_from=day, date_to=day, triggered_by="test")
    current = provider_reconciliation_run(date_from=today, date_to=today, triggered_by="test")
    assert past.status == RunStatus.COMPLETED
    assert 0 < past.deposits_checked <= current.deposits_checked

    def found(run: ReconciliationRun) -> set[tuple[str, Any]]:
        return set(run.discrepancies.exclude(kind="missing_ours").values_list("kind", "transaction_id"))

    assert found(past) <= found(current)
    assert found(past)


def test_the_daily_run_reconciles_yesterday_once(planted: dict[str, Any]) -> None:
    first = provider_reconciliation_daily(now=later(days=1))
    assert first is not None
    assert first.discrepancies_found == 6
    assert provider_reconciliation_daily(now=later(days=1, hours=1)) is None
    assert ReconciliationRun.objects.count() == 1


def test_the_command_and_the_admin_csv_export(planted: dict[str, Any], admin_user: User) -> None:
    today = timezone.now().date().isoformat()
    out = io.StringIO()
    call_command("reconcile", "--provider", "--from", today, "--to", today, stdout=out)
    assert "6 discrepancies" in out.getvalue()

    client = Client()
    client.force_login(admin_user)
    changelist = reverse("admin:reconciliation_discrepancy_changelist")
    assert client.get(changelist).status_code == 200
    ids = [str(pk) for pk in Discrepancy.objects.values_list("id", flat=True)]
    response = client.post(changelist, {"action": "export_csv", "_selected_action": ids})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 6
    # The late-change classes of issue 16 have their own tests (webhooks/tests/test_reversals_e2e.py).
    late = {"refunded", "charged_back", "paid_after_expiry", "success_after_refund"}
    assert {row["kind"] for row in rows} == {k.value for k in DiscrepancyKind} - late
    run_page = reverse(
        "admin:reconciliation_reconciliationrun_change", args=[ReconciliationRun.objects.get().id]
    )
    assert client.get(run_page).status_code == 200


def test_without_the_eft_lookup_the_run_says_so_and_still_compares_by_id(
    user: User, fund: Fund, revio: SandboxProcess, eft: EftDriver
) -> None:
    fund(user, 20_000)
    withdrawal = services.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=2_000,
        currency="ZAR",
        bank_account=services.BankAccount(**BANK),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    eft.succeed(withdrawal.provider_object_id or "")  # Revio paid it; we never heard
    revio.control.fail_next("eft.payments.list", status=404, count=10)  # like real Revio: no lookup

    today = timezone.now().date()
    run = provider_reconciliation_run(date_from=today, date_to=today, triggered_by="test")

    assert run.status == "completed", run.error
    assert "The EFT API offers no lookup by reference" in run.notes
    found = {(d.kind, d.transaction_id) for d in run.discrepancies.all()}
    assert found == {(DiscrepancyKind.STATUS_MISMATCH, withdrawal.id)}


def test_a_withdrawal_sent_by_the_retired_gateway_route_is_noted_not_compared(
    user: User, fund: Fund, revio: SandboxProcess
) -> None:
    """No API can read a gateway payout back: reading it from the EFT API would answer 404 and look like
    a payout Revio never made."""
    fund(user, 20_000)
    withdrawal = services.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=2_000,
        currency="ZAR",
        bank_account=services.BankAccount(**BANK),
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    Transaction.objects.filter(id=withdrawal.id).update(payout_route="gateway", provider_object_id="gw-1")

    today = timezone.now().date()
    run = provider_reconciliation_run(date_from=today, date_to=today, triggered_by="test")

    assert run.status == "completed", run.error
    assert "1 withdrawal(s) sent by the retired gateway payout route were not compared" in run.notes
    assert not run.discrepancies.filter(transaction_id=withdrawal.id).exists()
