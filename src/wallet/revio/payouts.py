"""The payout seam: how a withdrawal's money leaves, behind one interface with one adapter per route.

The wallet, the webhook pipeline and reconciliation call `get_payout_route()` and see the same `Payout`
(id, status, outcome, amount, currency, reference) whichever route is configured (REVIO_PAYOUT_ROUTE):

- "gateway": the gateway's `/payouts/` (revio-api.md §3 A; request and states inferred), signed
  `payout.*` webhooks.
- "eft": Revio's documented EFT payments API (§3 B; OAuth2, `/v2/payment/eft`, unsigned callbacks).

Each withdrawal records the route that sent it (transactions.payout_route); readers pass it to
`get_payout_route(name)`, so switching the setting never reads an in-flight payout from the wrong API.

Every adapter keeps the same promises as RevioClient.payout_create: RevioRejectedError and
RevioUnavailableError mean nothing was created; RevioOutcomeUnknownError means it may have been, so the
caller must neither send it again nor refund it blindly; RevioCircuitOpenError means it was never sent.
"""

from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from django.conf import settings

from wallet.revio.client import RevioClient, _created, get_client
from wallet.revio.contracts import BankAccount, Payout
from wallet.revio.eft import EFT_CURRENCY, EftClient, eft_payout, get_eft_client
from wallet.revio.errors import RevioRejectedError


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


class EftPayouts:
    """Payouts through Revio's EFT payments API (`POST /v2/payment/eft`, OAuth2; wallet.revio.eft).

    Our withdrawal id is the contractReference. The debtor (our account), the profile and the service
    type come from settings (REVIO_EFT_*); the creditor from the withdrawal's bank details.
    """

    name = "eft"
    ACCOUNT_TYPES = ("CURRENT", "SAVINGS", "TRANSMISSION")

    def __init__(self, client: EftClient) -> None:
        self.client = client

    def create(
        self, *, reference: str, amount: int, currency: str, bank_account: BankAccount, email: str
    ) -> Payout:
        """Ask Revio to pay `amount` out by EFT. Same promises as RevioClient.payout_create.

        :raises RevioRejectedError: refused, or not expressible as an EFT payment; nothing was created.
        :raises RevioUnavailableError: unreachable or overloaded; nothing was created.
        :raises RevioOutcomeUnknownError: it may have been created: do not send it again.
        """
        account_type = bank_account.account_type.upper()
        if currency != EFT_CURRENCY or account_type not in self.ACCOUNT_TYPES:
            # Checked before sending: nothing reached Revio.
            raise RevioRejectedError(
                f"an EFT payment needs {EFT_CURRENCY} and an account type in {self.ACCOUNT_TYPES}",
                status=400,
                code="eft_unsupported",
            )
        body = {
            # The payment is due today in South Africa, where the EFT runs happen.
            "paymentDate": datetime.now(_SAST).date().isoformat(),
            "profileCode": settings.REVIO_EFT_PROFILE_CODE,
            "abbreviatedName": settings.REVIO_EFT_ABBREVIATED_NAME,
            "contractReference": reference,
            "amountCents": amount,
            "serviceType": settings.REVIO_EFT_SERVICE_TYPE,
            "debtor": {
                "accountNumber": settings.REVIO_EFT_DEBTOR_ACCOUNT_NUMBER,
                "branchCode": settings.REVIO_EFT_DEBTOR_BRANCH_CODE,
                "accountType": settings.REVIO_EFT_DEBTOR_ACCOUNT_TYPE,
                "bank": settings.REVIO_EFT_DEBTOR_BANK,
                "firstName": settings.REVIO_EFT_DEBTOR_FIRST_NAME,
                "lastName": settings.REVIO_EFT_DEBTOR_LAST_NAME,
                "identification": {
                    "phoneNumber": settings.REVIO_EFT_DEBTOR_PHONE,
                    "emailAddress": settings.REVIO_EFT_DEBTOR_EMAIL,
                },
            },
            "creditor": {
                "accountNumber": bank_account.account_number,
                "accountType": account_type,
                "branchCode": bank_account.bank_code,
                "name": bank_account.account_holder,
            },
        }
        return _created(eft_payout, self.client.payment_create(body))

    def get(self, payout_id: str) -> Payout:
        return eft_payout(self.client.payment_get(payout_id))

    def find_by_reference(self, reference: str) -> list[Payout]:
        return [eft_payout(item) for item in self.client.payments_find(reference)]


_SAST = ZoneInfo("Africa/Johannesburg")

PAYOUT_ROUTES = ("gateway", "eft")


def get_payout_route(name: str | None = None) -> PayoutRoute:
    """The payout route called `name` (the one a withdrawal was sent through), else the configured one
    (settings.REVIO_PAYOUT_ROUTE) for a payout not sent yet."""
    route = name or settings.REVIO_PAYOUT_ROUTE
    if route == "gateway":
        return GatewayPayouts(get_client())
    if route == "eft":
        return EftPayouts(get_eft_client())
    raise ValueError(f"REVIO_PAYOUT_ROUTE must be one of {PAYOUT_ROUTES}, not {route!r}")
