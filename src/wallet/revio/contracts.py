"""Our view of Revio's objects. Revio's statuses map onto these outcomes here, in one table each.

Purchase status (Revio)                      -> PurchaseOutcome
  created, sent, viewed, overdue,
  pending_execute, pending_charge, hold,
  pending_capture, preauthorized             -> PENDING   (not paid yet)
  error                                      -> ATTEMPT_FAILED (a card attempt failed; the customer may retry)
  paid, cleared, settled                     -> PAID
  cancelled, released                        -> CANCELLED
  expired                                    -> EXPIRED
  blocked                                    -> FAILED    (fraud/security check: terminal)
  pending_refund, refunded, chargeback       -> REVERSED  (was paid, money going back: operator review)

EFT payment state (EFT payments API, revio-api.md §3 B; docs/payouts.md) -> PayoutOutcome
  NEW                                        -> ACCEPTED  (created, not yet queued for the bank)
  QUEUED, SUBMITTED, ACCEPTED                -> PENDING   (EFT's ACCEPTED = the bank took the instruction;
                                                           the money has not arrived yet)
  CUTOFF                                     -> PENDING   (missed a run's cut-off; INFERRED to wait for the
                                                           next run, not to end)
  COMPLETED                                  -> SUCCEEDED
  VALIDATION_FAILURE, TRANSACTION_FAILURE    -> FAILED    (never paid: the reservation is released)
  UNPAID, UNPAID_WITH_RECOURSE               -> FAILED    (after COMPLETED the money came back: the wallet
                                                           turns FAILED-after-COMPLETED into RETURNED)
  DISPUTED, INTERNAL_FAILURE                 -> UNKNOWN   (whether money left or came back is not known:
                                                           no automatic money movement; the withdrawal is
                                                           flagged for an operator)
  anything else                              -> UNKNOWN   (same)
"""

import enum
from dataclasses import dataclass


class PurchaseOutcome(enum.StrEnum):
    PENDING = "pending"
    ATTEMPT_FAILED = "attempt_failed"
    PAID = "paid"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"
    REVERSED = "reversed"
    UNKNOWN = "unknown"


class PayoutOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNKNOWN = "unknown"


PURCHASE_OUTCOMES: dict[str, PurchaseOutcome] = {
    **dict.fromkeys(
        [
            "created",
            "sent",
            "viewed",
            "overdue",
            "pending_execute",
            "pending_charge",
            "hold",
            "pending_capture",
            "preauthorized",
            "pending_release",
        ],
        PurchaseOutcome.PENDING,
    ),
    "error": PurchaseOutcome.ATTEMPT_FAILED,
    **dict.fromkeys(["paid", "cleared", "settled"], PurchaseOutcome.PAID),
    **dict.fromkeys(["cancelled", "released"], PurchaseOutcome.CANCELLED),
    "expired": PurchaseOutcome.EXPIRED,
    "blocked": PurchaseOutcome.FAILED,
    **dict.fromkeys(["pending_refund", "refunded", "chargeback"], PurchaseOutcome.REVERSED),
}

EFT_PAYOUT_OUTCOMES: dict[str, PayoutOutcome] = {
    "NEW": PayoutOutcome.ACCEPTED,
    **dict.fromkeys(["QUEUED", "SUBMITTED", "ACCEPTED", "CUTOFF"], PayoutOutcome.PENDING),
    "COMPLETED": PayoutOutcome.SUCCEEDED,
    **dict.fromkeys(
        ["VALIDATION_FAILURE", "TRANSACTION_FAILURE", "UNPAID", "UNPAID_WITH_RECOURSE"], PayoutOutcome.FAILED
    ),
    # DISPUTED and INTERNAL_FAILURE are deliberately absent (UNKNOWN): see the table above.
}


@dataclass(frozen=True)
class Purchase:
    id: str
    status: str
    outcome: PurchaseOutcome
    amount: int
    currency: str
    reference: str
    checkout_url: str
    updated_on: int
    is_test: bool


@dataclass(frozen=True)
class Payout:
    id: str
    status: str
    outcome: PayoutOutcome
    amount: int
    currency: str
    reference: str
    updated_on: int
    is_test: bool


@dataclass(frozen=True)
class BankAccount:
    """Where a payout goes. Never logged; the wallet stores it encrypted."""

    account_holder: str
    account_number: str
    bank_code: str
    account_type: str


@dataclass(frozen=True)
class CompanyBalance:
    """Revio's company balance in one currency (`GET /account/json/balance/`), in minor units.

    `gross` is what Revio holds for us before its fees (paid purchases, less refunds, chargebacks and
    completed EFT payouts); `balance` is after fees (`fee_sell`); `pending_outgoing` is on its way out.
    """

    currency: str
    balance: int
    gross: int
    fees: int
    reserved: int
    pending_outgoing: int
    available: int
