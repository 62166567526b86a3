"""Payouts: how a withdrawal's money leaves. Revio's EFT payments API is the only way to pay a bank account.

The gateway has no `/payouts/` for bank accounts (../shared/revio-platform/README.md, fact 1; ADR 0007 as
amended), so there is one route: `POST /v2/payment/eft` with OAuth2 client credentials (wallet.revio.eft),
with unsigned callbacks that only trigger a re-read. The wallet, the webhook pipeline and reconciliation
see `Payout` (id, status, outcome, amount, currency, reference), never the EFT API's own shapes.

`EftPayouts.create` keeps RevioClient's create promises: RevioRejectedError (a refusal in the platform's
error shape) and RevioUnavailableError (never sent, or a 429) mean nothing was created;
RevioOutcomeUnknownError (any 5xx, a timeout, a proxy's page) means it may have been, so the caller must
neither send it again nor refund it blindly; RevioCircuitOpenError means it was never sent
(docs/adr/0015-provider-answer-classification.md).
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from django.conf import settings

from wallet.revio.contracts import BankAccount, Payout
from wallet.revio.eft import EFT_CURRENCY, EftClient, eft_payout, get_eft_client
from wallet.revio.errors import RevioRejectedError
from wallet.revio.transport import parse_created

# What transactions.payout_route records for a payout sent here. Withdrawals sent before the gateway
# route was retired carry "gateway" (transactions migration 0005 flags the open ones for an operator).
ROUTE = "eft"
RETIRED_ROUTE = "gateway"

_SAST = ZoneInfo("Africa/Johannesburg")


class EftPayouts:
    """Payouts through `POST /v2/payment/eft`. Our withdrawal id is the contractReference; the debtor (our
    account), the profile and the service type come from settings (REVIO_EFT_*), the creditor from the
    withdrawal's bank details."""

    ACCOUNT_TYPES = ("CURRENT", "SAVINGS", "TRANSMISSION")

    def __init__(self, client: EftClient) -> None:
        self.client = client

    def create(self, *, reference: str, amount: int, currency: str, bank_account: BankAccount) -> Payout:
        """Ask Revio to pay `amount` out by EFT.

        :raises RevioRejectedError: refused, or not expressible as an EFT payment; nothing was created.
        :raises RevioUnavailableError: never sent, or rate-limited (429); nothing was created: send later.
        :raises RevioOutcomeUnknownError: it may have been created (5xx, timeout, a proxy's page): do not
            send it again and do not refund it.
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
        return parse_created(eft_payout, self.client.payment_create(body))

    def get(self, payout_id: str) -> Payout:
        return eft_payout(self.client.payment_get(payout_id))

    def find_by_reference(self, reference: str) -> list[Payout]:
        """Payments carrying our reference; RevioRejectedError (404/405) when the lookup does not exist."""
        return [eft_payout(item) for item in self.client.payments_find(reference)]


def get_payouts() -> EftPayouts:
    """The payout API for the configured EFT credentials."""
    return EftPayouts(get_eft_client())
