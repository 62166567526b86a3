"""Event names Revio's platform sends in ``event_type`` (revio-api.md section 2.5) and the retry schedule."""

from __future__ import annotations

PURCHASE_EVENTS = (
    "purchase.created",
    "purchase.viewed",
    "purchase.paid",
    "purchase.payment_failure",
    "purchase.cancelled",
    "purchase.settled",
    "purchase.pending_execute",
    "purchase.pending_charge",
    "purchase.pending_refund",
    "purchase.hold",
    "purchase.captured",
    "purchase.pending_capture",
    "purchase.capture_failure",
    "purchase.released",
    "purchase.pending_release",
    "purchase.release_failure",
    "purchase.preauthorized",
    "purchase.recurring_token_deleted",
    "purchase.pending_recurring_token_delete",
    "purchase.subscription_charge_failure",
    "purchase.refund_failure",
)
PAYMENT_EVENTS = ("payment.refunded", "payment.charged_back", "payment.chargeback_reversed")
# In the platform's Event enum (a card payout product), so a webhook may subscribe to them; the sandbox
# never emits them: there is no gateway /payouts/ (docs/sandbox-guesses.md, "Payouts").
PAYOUT_EVENTS = ("payout.created", "payout.pending", "payout.success", "payout.failed")
OTHER_EVENTS = ("billing_template_client.subscription_billing_cancelled",)

ALL_EVENTS: frozenset[str] = frozenset(PURCHASE_EVENTS + PAYMENT_EVENTS + PAYOUT_EVENTS + OTHER_EVENTS)

# Revio: one attempt plus up to 8 retries at exponentially growing gaps, the last about 36 h after the
# event. Gaps of 0.140625 h x 2^n (0.14, 0.28, 0.56, 1.1, 2.25, 4.5, 9, 18 h) sum to 35.86 h. INFERRED.
RETRY_GAPS_SECONDS: tuple[float, ...] = tuple(506.25 * 2**n for n in range(8))
MAX_RETRIES = len(RETRY_GAPS_SECONDS)
