"""Migration 0005: withdrawals recorded with the retired gateway payout route (docs/deploy.md)."""

import importlib
from collections.abc import Callable

import pytest
from django.apps import apps
from django.utils import timezone

from wallet.accounts.models import User
from wallet.ledger.models import Journal
from wallet.transactions.models import Transaction

pytestmark = pytest.mark.django_db

migration = importlib.import_module("wallet.transactions.migrations.0005_retire_gateway_payouts")


def test_open_ones_are_flagged_queued_ones_move_to_eft_and_history_is_kept(
    make_user: Callable[..., User],
) -> None:
    user = make_user()
    now = timezone.now()

    def withdrawal(status: str, *, sent: bool, review: str = "") -> Transaction:
        return Transaction.objects.create(
            user=user,
            type="withdrawal",
            status=status,
            amount=1_000,
            currency="ZAR",
            payout_route="gateway",
            payout_requested_at=now if sent else None,
            needs_review=bool(review),
            review_reason=review,
        )

    processing = withdrawal("processing", sent=True)
    unknown = withdrawal("pending", sent=True)
    queued = withdrawal("pending", sent=False)
    flagged = withdrawal("processing", sent=True, review="amount disagrees")
    finished = {s: withdrawal(s, sent=True) for s in ("completed", "failed", "returned")}
    on_eft = Transaction.objects.create(
        user=user, type="withdrawal", status="processing", amount=1_000, currency="ZAR", payout_route="eft"
    )
    journals = Journal.objects.count()

    migration.retire_gateway_payouts(apps, None)
    migration.retire_gateway_payouts(apps, None)  # a second run changes nothing

    for txn in (processing, unknown):
        txn.refresh_from_db()
        assert (txn.needs_review, txn.payout_route) == (True, "gateway")
        assert "retired gateway payout route" in txn.review_reason
        assert txn.events.filter(detail__contains="retired gateway").count() == 1
    flagged.refresh_from_db()
    assert flagged.review_reason == "amount disagrees"  # its own reason kept; the trail says the rest
    assert flagged.events.filter(detail__contains="retired gateway").exists()
    queued.refresh_from_db()
    assert (queued.payout_route, queued.needs_review) == ("", False)  # never sent: the sweep sends it by EFT
    for txn in [*finished.values(), on_eft]:
        before = txn.payout_route
        txn.refresh_from_db()
        assert (txn.payout_route, txn.needs_review, txn.events.count()) == (before, False, 0)
    assert Journal.objects.count() == journals  # no money moves
