"""Retire the gateway payout route (docs/adr/0007-payout-routes.md, amended; docs/deploy.md).

The gateway has no `/payouts/` for bank accounts, so nothing can read a payout back from it. Withdrawals
recorded with payout_route="gateway":
- finished ones (completed, failed, returned) are history and stay exactly as they are;
- pending ones whose request was never sent (queued while Revio was down: the claim was undone, only the
  route stayed) lose the route, so the payouts sweep sends them by EFT, once;
- open ones whose request went out (pending with an unknown outcome, or processing) are flagged for an
  operator: whether money left is known only to Revio's dashboard, so no automatic step may pay them
  again or return the reservation. Recovery hands them to an operator rather than asking the EFT API.
"""

from typing import Any

from django.db import migrations
from django.utils import timezone

REASON = "sent by the retired gateway payout route: check Revio's dashboard and settle by hand"


def retire_gateway_payouts(apps: Any, schema_editor: Any) -> None:
    Transaction = apps.get_model("transactions", "Transaction")
    TransactionEvent = apps.get_model("transactions", "TransactionEvent")
    gateway = Transaction.objects.filter(type="withdrawal", payout_route="gateway")
    gateway.filter(status="pending", payout_requested_at__isnull=True, provider_object_id__isnull=True).update(
        payout_route=""
    )
    now = timezone.now()
    for txn in gateway.filter(status__in=["pending", "processing"]).iterator():
        if TransactionEvent.objects.filter(transaction=txn, detail__contains=REASON).exists():
            continue  # flagged by an earlier run
        if not txn.needs_review:  # one flagged already keeps its reason; the event below says this one
            txn.needs_review = True
            txn.review_reason = REASON
            txn.save(update_fields=["needs_review", "review_reason"])
        TransactionEvent.objects.create(
            transaction=txn,
            from_status=txn.status,
            to_status=txn.status,
            source="operator",
            detail=f"flagged for review: {REASON}"[:255],
            created_at=now,
        )


class Migration(migrations.Migration):
    dependencies = [("transactions", "0004_withdrawal_open_index")]

    operations = [migrations.RunPython(retire_gateway_payouts, migrations.RunPython.noop)]
