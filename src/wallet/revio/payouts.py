"""The payout seam: how a withdrawal's money leaves, behind one interface with one adapter per route.

The wallet, the webhook pipeline and reconciliation call `get_payout_route()` and see the same `Payout`
(id, status, outcome, amount, currency, reference) whichever route is configured (REVIO_PAYOUT_ROUTE):

- "gateway": the gateway's `/payouts/` (revio-api.md §3 A; request and states inferred), signed
  `payout.*` webhooks.
- "eft": Revio's documented EFT payments API (§3 B; OAuth2, `/v2/payment/eft`, unsigned callbacks).

Every adapter keeps the same promises as RevioClient.payout_create: RevioRejectedError and
RevioUnavailableError mean nothing was created; RevioOutcomeUnknownError means it may have been, so the
caller must neither send it again nor refund it blindly; RevioCircuitOpenError means it was never sent.
"""

from typing import Protocol

from django.conf import settings

from wallet.revio.client import RevioClient, get_client
from wallet.revio.contracts import BankAccount, Payout


class PayoutRoute(Protocol):
    name: str

    def create(
        self, *, reference: str, amount: int, currency: str, bank_account: BankAccount, email: str
    ) -> Payout: ...

    def get(self, payout_id: str) -> Payout: ...

    def find_by_reference(self, reference: str) -> list[Payout]:
        """Payouts carrying our reference; RevioRejectedError when the route cannot look them up."""
        ...


class GatewayPayouts:
    """Payouts through the gateway's `/payouts/` (the wallet core's route)."""

    name = "gateway"

    def __init__(self, client: RevioClient) -> None:
        self.client = client

    def create(
        self, *, reference: str, amount: int, currency: str, bank_account: BankAccount, email: str
    ) -> Payout:
        return self.client.payout_create(
            reference=reference, amount=amount, currency=currency, bank_account=bank_account, email=email
        )

    def get(self, payout_id: str) -> Payout:
        return self.client.payout_get(payout_id)

    def find_by_reference(self, reference: str) -> list[Payout]:
        return self.client.payouts_find_by_reference(reference)


PAYOUT_ROUTES = ("gateway",)


def get_payout_route() -> PayoutRoute:
    """The configured payout route (settings.REVIO_PAYOUT_ROUTE)."""
    route = settings.REVIO_PAYOUT_ROUTE
    if route == "gateway":
        return GatewayPayouts(get_client())
    raise ValueError(f"REVIO_PAYOUT_ROUTE must be one of {PAYOUT_ROUTES}, not {route!r}")
