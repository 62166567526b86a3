"""Revio: what other apps may use of the integration. Other apps import from here only.

Revio's answers cross as the immutable contract objects (`Purchase`, `Payout`, ...) and the errors sorted by
what the caller may do next; the clients, their HTTP seam and the EFT API's shapes stay inside. Callers
that read better with a prefix import the same names grouped: `public.payouts` (the route names),
`public.breaker` (its state per API), `public.client` (docs/adr/0018-boundaries.md).
"""

from wallet.revio.breaker import RevioCircuitOpenError
from wallet.revio.client import (
    PurchaseTakeBack,
    RefundAnswer,
    RevioClient,
    get_client,
    purchase_refund,
    purchase_take_back,
)
from wallet.revio.contracts import (
    BankAccount,
    CompanyBalance,
    Payout,
    PayoutOutcome,
    Purchase,
    PurchaseOutcome,
)
from wallet.revio.errors import (
    RevioApiError,
    RevioError,
    RevioNotCreatedError,
    RevioOutcomeUnknownError,
    RevioRejectedError,
    RevioUnavailableError,
)
from wallet.revio.observed import CallFigures, call_figures
from wallet.revio.payouts import EftPayouts, get_payouts

__all__ = [
    "BankAccount",
    "CallFigures",
    "CompanyBalance",
    "EftPayouts",
    "Payout",
    "PayoutOutcome",
    "Purchase",
    "PurchaseOutcome",
    "PurchaseTakeBack",
    "RefundAnswer",
    "RevioApiError",
    "RevioCircuitOpenError",
    "RevioClient",
    "RevioError",
    "RevioNotCreatedError",
    "RevioOutcomeUnknownError",
    "RevioRejectedError",
    "RevioUnavailableError",
    "call_figures",
    "get_client",
    "get_payouts",
    "purchase_refund",
    "purchase_take_back",
]
