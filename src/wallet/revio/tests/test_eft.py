"""The EFT payout adapter against the sandbox over real HTTP: tokens, the state table, error promises."""

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection

from revio_sandbox.eft import STATES
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.ledger.selectors import balance_get
from wallet.revio.contracts import BankAccount, PayoutOutcome
from wallet.revio.eft import get_eft_client
from wallet.revio.errors import RevioOutcomeUnknownError, RevioRejectedError, RevioUnavailableError
from wallet.revio.payouts import get_payouts
from wallet.transactions import services
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK, EftDriver

Fund = Callable[[User, int], Transaction]

# The one table (wallet.revio.contracts, docs/payouts.md), restated here so a change to it is seen.
EXPECTED = {
    "NEW": PayoutOutcome.ACCEPTED,
    "QUEUED": PayoutOutcome.PENDING,
    "SUBMITTED": PayoutOutcome.PENDING,
    "ACCEPTED": PayoutOutcome.PENDING,
    "CUTOFF": PayoutOutcome.PENDING,
    "COMPLETED": PayoutOutcome.SUCCEEDED,
    "VALIDATION_FAILURE": PayoutOutcome.FAILED,
    "TRANSACTION_FAILURE": PayoutOutcome.FAILED,
    "UNPAID": PayoutOutcome.FAILED,
    "UNPAID_WITH_RECOURSE": PayoutOutcome.FAILED,
    "DISPUTED": PayoutOutcome.UNKNOWN,
    "INTERNAL_FAILURE": PayoutOutcome.UNKNOWN,
}


@pytest.fixture
def eft(revio: SandboxProcess) -> Iterator[EftDriver]:
    driver = EftDriver(sandbox=revio)
    get_eft_client().forget_token()
    yield driver
    revio.control.eft_set_token_lifetime(86_400)


def token_requests(revio: SandboxProcess) -> int:
    return int(revio.control.eft_state()["token_requests"])


def create(reference: str, amount: int = 5_000, **bank: str) -> Any:
    return get_payouts().create(
        reference=reference, amount=amount, currency="ZAR", bank_account=BankAccount(**{**BANK, **bank})
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_payouts_without_a_token_fetch_it_once(
    eft: EftDriver, revio: SandboxProcess, report_figure: Callable[[str], None]
) -> None:
    before = token_requests(revio)
    barrier = threading.Barrier(12)
    errors: list[BaseException] = []

    def pay(n: int) -> None:
        try:
            barrier.wait()
            create(f"concurrent-{n}")
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fetched = token_requests(revio) - before
    report_figure(f"EFT token fetches for 12 concurrent payouts with an empty cache: {fetched}")
    assert errors == []
    assert fetched == 1


def test_a_cached_token_is_reused_until_near_its_expiry(eft: EftDriver, revio: SandboxProcess) -> None:
    before = token_requests(revio)
    for n in range(3):
        create(f"reuse-{n}")
    assert token_requests(revio) - before == 1


@pytest.mark.django_db
def test_an_expired_token_is_refreshed_without_failing_a_payout(
    eft: EftDriver, revio: SandboxProcess, user: User, fund: Fund, settings: Any
) -> None:
    fund(user, 10_000)
    revio.control.eft_set_token_lifetime(1)
    client = get_eft_client()
    token = client.access_token()
    # The cache still holds it (a clock skewed against Revio's, or a lifetime shorter than announced).
    cache.set(client._token_key, token, timeout=None)
    time.sleep(1.2)
    before = token_requests(revio)
    withdrawal = services.withdrawal_create(
        user_id=user.id, email=user.email, amount=4_000, currency="ZAR", bank_account=BankAccount(**BANK)
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    assert withdrawal.status == "processing"  # the 401 cost one token fetch, not the payout
    assert token_requests(revio) - before == 1
    assert len(eft.find(str(withdrawal.id))) == 1  # sent once: the create after the 401 was the only one
    assert cache.get(client._token_key) != token


@pytest.mark.django_db
def test_a_revoked_token_is_replaced_once(eft: EftDriver, revio: SandboxProcess) -> None:
    create("before-revocation")
    revio.control.eft_revoke_tokens()
    before = token_requests(revio)
    payout = create("after-revocation")
    assert payout.outcome == PayoutOutcome.ACCEPTED
    assert token_requests(revio) - before == 1
    assert len(eft.find("after-revocation")) == 1


def test_short_lived_tokens_are_refetched_before_they_lapse(
    eft: EftDriver, revio: SandboxProcess, settings: Any
) -> None:
    revio.control.eft_set_token_lifetime(2)
    settings.REVIO_EFT_TOKEN_MARGIN_SECONDS = 1
    client = get_eft_client()
    first = client.access_token()
    time.sleep(1.1)  # cached for lifetime - margin = 1 s: gone from the cache, still valid at Revio
    second = client.access_token()
    assert first != second


@pytest.mark.django_db
def test_refused_credentials_fail_the_withdrawal_and_return_the_reservation(
    eft: EftDriver, revio: SandboxProcess, user: User, fund: Fund, settings: Any
) -> None:
    fund(user, 10_000)
    settings.REVIO_EFT_CLIENT_SECRET = "wrong"
    withdrawal = services.withdrawal_create(
        user_id=user.id, email=user.email, amount=4_000, currency="ZAR", bank_account=BankAccount(**BANK)
    )
    withdrawal.refresh_from_db()  # the payouts worker has sent its payout
    assert withdrawal.status == "failed"
    balance = balance_get(user_id=user.id, currency="ZAR")
    assert (balance.available, balance.reserved) == (10_000, 0)


def test_error_promises_match_the_gateway_clients(eft: EftDriver, revio: SandboxProcess) -> None:
    with pytest.raises(RevioRejectedError):
        create("too-much", amount=500_000_001)  # over the EFT API's R5m limit: 400, nothing created
    assert eft.find("too-much") == []
    revio.control.fail_next("eft.payments.create", status=429)
    with pytest.raises(RevioUnavailableError):
        create("rate-limited")
    assert eft.find("rate-limited") == []
    # A 503 to a create proves nothing: it may have come after the payment was made (ADR 0015).
    revio.control.error_after_next("eft.payments.create", status=503)
    with pytest.raises(RevioOutcomeUnknownError):
        create("overloaded")
    assert len(eft.find("overloaded")) == 1
    revio.control.fail_next("eft.payments.create", status=500)
    with pytest.raises(RevioOutcomeUnknownError):
        create("unknown")
    get_eft_client().forget_token()
    revio.control.fail_next("eft.token", status=503, count=3)
    with pytest.raises(RevioUnavailableError):
        create("no-token")
    assert eft.find("no-token") == []
    with pytest.raises(RevioRejectedError):
        create("bad-type", account_type="crypto")  # refused before sending


def test_the_request_carries_our_reference_profile_debtor_and_service_type(
    eft: EftDriver, settings: Any
) -> None:
    settings.REVIO_EFT_SERVICE_TYPE = "SAMEDAY"
    payout = create("ref-1", amount=7_700, account_type="savings")
    sent = eft.payment(payout.id)
    assert (sent["contractReference"], sent["amountCents"], sent["serviceType"]) == (
        "ref-1",
        7_700,
        "SAMEDAY",
    )
    assert (sent["profileCode"], sent["abbreviatedName"]) == ("TEST1", "TESTMERCH1")
    assert sent["debtor"]["accountNumber"] == settings.REVIO_EFT_DEBTOR_ACCOUNT_NUMBER
    assert sent["creditor"] == {
        "accountNumber": BANK["account_number"],
        "accountType": "SAVINGS",
        "branchCode": BANK["bank_code"],
        "name": BANK["account_holder"],
    }
    assert (payout.amount, payout.currency, payout.reference) == (7_700, "ZAR", "ref-1")


def test_every_eft_state_maps_through_the_one_table(eft: EftDriver, revio: SandboxProcess) -> None:
    assert set(EXPECTED) == set(STATES)
    route = get_payouts()
    payout = create("states", account_number="62000000004")
    seen = {}
    for state in STATES:
        revio.control.eft_payment_set_status(payout.id, state)
        seen[state] = route.get(payout.id).outcome
    assert seen == EXPECTED
