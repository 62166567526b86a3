"""Operators resolving an unknown-outcome withdrawal, four-eyes, against the sandbox: "paid" settles the
reservation (verified at Revio), "not paid" releases it; neither touches available by a correction; a
payout that appears after "not paid" is clawed back."""

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from wallet.accounts.errors import FourEyesError, NotAnAdminError
from wallet.accounts.models import User
from wallet.audit.models import AuditEvent
from wallet.ledger.models import Journal, JournalKind
from wallet.ledger.selectors import balance_get
from wallet.transactions import resolutions, services
from wallet.transactions.errors import ResolutionNotApplicableError, ResolutionNotPendingError
from wallet.transactions.models import Transaction, WithdrawalResolution
from wallet.transactions.tests.conftest import BANK, EftDriver, apply_payout

Fund = Callable[[User, int], Transaction]


def figures(user: User) -> tuple[int, int, int]:
    balance = balance_get(user_id=user.id, currency="ZAR")
    return balance.available, balance.reserved, balance.debt


def kinds(txn: Transaction) -> list[str]:
    return sorted(Journal.objects.filter(transaction_id=txn.id).values_list("kind", flat=True))


def unknown_withdrawal(user: User, eft: EftDriver, *, created: bool) -> Transaction:
    """A withdrawal whose create answered 503: made at Revio (`created`) or not."""
    if created:
        eft.sandbox.control.error_after_next(eft.create_endpoint, status=503)
    else:
        eft.fail_next_create(status=503)
    withdrawal = services.withdrawal_create(
        user_id=user.id,
        email=user.email,
        amount=4_000,
        currency="ZAR",
        bank_account=services.BankAccount(**BANK),
    )
    assert withdrawal.status == "pending"
    return withdrawal


@pytest.fixture
def finance(make_user: Callable[..., User]) -> tuple[User, User]:
    def admin(email: str) -> User:
        return make_user(email=email, role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)

    return admin("fin1@example.com"), admin("fin2@example.com")


def propose(withdrawal: Transaction, by: User, outcome: str, payout_id: str = "") -> WithdrawalResolution:
    return resolutions.withdrawal_resolution_propose(
        withdrawal_id=withdrawal.id,
        proposed_by=by,
        outcome=outcome,
        payout_id=payout_id,
        note="confirmed with Revio support, ticket 123",
        now=timezone.now(),
    )


def approve(resolution: WithdrawalResolution, by: User) -> WithdrawalResolution:
    return resolutions.withdrawal_resolution_approve(
        resolution_id=resolution.id, approver=by, now=timezone.now()
    )


@pytest.mark.django_db
class TestResolution:
    def test_paid_settles_the_reservation_after_a_second_admin_approves(
        self, user: User, fund: Fund, eft: EftDriver, finance: tuple[User, User]
    ) -> None:
        proposer, approver = finance
        fund(user, 9_000)
        withdrawal = unknown_withdrawal(user, eft, created=True)
        [payout] = eft.find(str(withdrawal.id))
        eft.succeed(payout.id)

        resolution = propose(withdrawal, proposer, "paid", payout.id)
        assert "verified at Revio: COMPLETED" in resolution.verification
        assert figures(user) == (5_000, 4_000, 0)  # a proposal moves nothing
        with pytest.raises(FourEyesError):
            approve(resolution, proposer)
        approve(resolution, approver)
        with pytest.raises(ResolutionNotPendingError):
            approve(resolution, approver)

        withdrawal.refresh_from_db()
        assert withdrawal.status == "completed"
        assert withdrawal.provider_object_id == payout.id
        assert figures(user) == (5_000, 0, 0)
        assert kinds(withdrawal) == [JournalKind.WITHDRAWAL_RESERVE, JournalKind.WITHDRAWAL_SETTLE]
        assert not Journal.objects.filter(kind=JournalKind.CORRECTION).exists()
        actions = list(
            AuditEvent.objects.filter(subject_id=str(resolution.id))
            .order_by("id")
            .values_list("action", flat=True)
        )
        assert actions == ["withdrawal_resolution_proposed", "withdrawal_resolution_approved"]
        # Revio's own callback arriving afterwards changes nothing.
        assert apply_payout(withdrawal) == services.Applied.UNCHANGED
        assert figures(user) == (5_000, 0, 0)

    def test_paid_is_refused_when_revios_record_contradicts_it(
        self,
        user: User,
        make_user: Callable[..., User],
        fund: Fund,
        eft: EftDriver,
        finance: tuple[User, User],
    ) -> None:
        proposer, _ = finance
        fund(user, 9_000)
        withdrawal = unknown_withdrawal(user, eft, created=False)
        other = eft.create_by_hand(reference="someone-else", amount=4_000, account_number="62001234567")
        with pytest.raises(ResolutionNotApplicableError, match="contractReference"):
            propose(withdrawal, proposer, "paid", other)
        with pytest.raises(ResolutionNotApplicableError, match="does not know"):
            propose(withdrawal, proposer, "paid", "00000000-0000-0000-0000-000000000000")
        assert not WithdrawalResolution.objects.exists()

    def test_not_paid_releases_the_reservation_and_a_late_payout_is_clawed_back(
        self, user: User, fund: Fund, eft: EftDriver, finance: tuple[User, User]
    ) -> None:
        proposer, approver = finance
        fund(user, 9_000)
        withdrawal = unknown_withdrawal(user, eft, created=True)  # the operators are wrong: it was made
        approve(propose(withdrawal, proposer, "not_paid"), approver)
        withdrawal.refresh_from_db()
        assert withdrawal.status == "failed"
        assert figures(user) == (9_000, 0, 0)
        assert kinds(withdrawal) == [JournalKind.WITHDRAWAL_RELEASE, JournalKind.WITHDRAWAL_RESERVE]

        [payout] = eft.find(str(withdrawal.id))
        eft.succeed(payout.id)
        result = services.withdrawal_apply_provider_state(
            withdrawal_id=withdrawal.id,
            payout=eft.get(payout.id),  # COMPLETED
            source="webhook",
        )
        assert result == services.Applied.CHANGED
        withdrawal.refresh_from_db()
        assert withdrawal.status == "completed"
        assert figures(user) == (5_000, 0, 0)
        assert JournalKind.WITHDRAWAL_CLAWBACK in kinds(withdrawal)

    def test_who_may_propose_and_what_can_be_resolved(
        self,
        user: User,
        fund: Fund,
        eft: EftDriver,
        finance: tuple[User, User],
        make_user: Callable[..., User],
    ) -> None:
        proposer, _ = finance
        operations = make_user(
            email="ops9@example.com", role=User.Role.ADMIN, admin_duty=User.Duty.OPERATIONS
        )
        fund(user, 9_000)
        withdrawal = unknown_withdrawal(user, eft, created=False)
        with pytest.raises(NotAnAdminError):
            propose(withdrawal, operations, "not_paid")
        with pytest.raises(NotAnAdminError):
            propose(withdrawal, user, "not_paid")
        propose(withdrawal, proposer, "not_paid")
        with pytest.raises(ResolutionNotApplicableError, match="already waiting"):
            propose(withdrawal, proposer, "not_paid")
        settled = services.withdrawal_create(
            user_id=user.id,
            email=user.email,
            amount=1_000,
            currency="ZAR",
            bank_account=services.BankAccount(**BANK),
        )
        settled.refresh_from_db()  # the payouts worker has sent its payout
        assert settled.status == "processing"  # Revio answered: nothing to resolve
        with pytest.raises(ResolutionNotApplicableError):
            propose(settled, proposer, "not_paid")


@pytest.mark.django_db(transaction=True)
def test_approving_concurrently_applies_once(
    make_user: Callable[..., User], fund: Fund, eft: EftDriver, finance: tuple[User, User]
) -> None:
    proposer, approver = finance
    user = make_user()
    fund(user, 9_000)
    withdrawal = unknown_withdrawal(user, eft, created=False)
    resolution = propose(withdrawal, proposer, "not_paid")
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        try:
            barrier.wait()
            approve(resolution, approver)
            outcomes.append("approved")
        except ResolutionNotPendingError:
            outcomes.append("not pending")
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["approved", "not pending", "not pending"]
    assert figures(user) == (9_000, 0, 0)
    assert (
        Journal.objects.filter(transaction_id=withdrawal.id, kind=JournalKind.WITHDRAWAL_RELEASE).count() == 1
    )


@pytest.mark.django_db
def test_the_console_proposes_and_a_second_admin_approves(
    user: User, fund: Fund, eft: EftDriver, finance: tuple[User, User]
) -> None:
    """Through the Django admin: the add form proposes; the proposer's own approval is refused with a
    message; another finance admin's approval releases the reservation."""
    proposer, approver = finance
    fund(user, 9_000)
    withdrawal = unknown_withdrawal(user, eft, created=False)
    url = "/admin/transactions/withdrawalresolution/"
    first, second = Client(), Client()
    first.force_login(proposer)
    second.force_login(approver)

    bad = first.post(url + "add/", {"withdrawal": str(withdrawal.id), "outcome": "paid", "note": "x"})
    assert bad.status_code == 200  # the form again, with the error
    assert "Give Revio" in bad.content.decode()
    assert not WithdrawalResolution.objects.exists()

    added = first.post(
        url + "add/", {"withdrawal": str(withdrawal.id), "outcome": "not_paid", "note": "Revio: none"}
    )
    assert added.status_code == 302, added.content.decode()[:500]
    resolution = WithdrawalResolution.objects.get()
    assert resolution.proposed_by_id == proposer.id

    own = first.post(
        url, {"action": "approve_selected", "_selected_action": [str(resolution.id)]}, follow=True
    )
    assert "a different admin must decide it" in own.content.decode()
    assert figures(user) == (5_000, 4_000, 0)

    second.post(url, {"action": "approve_selected", "_selected_action": [str(resolution.id)]}, follow=True)
    resolution.refresh_from_db()
    withdrawal.refresh_from_db()
    assert (resolution.status, resolution.decided_by_id) == ("approved", approver.id)
    assert withdrawal.status == "failed"
    assert figures(user) == (9_000, 0, 0)


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_console_audits_the_operator_s_address(
    user: User, fund: Fund, eft: EftDriver, finance: tuple[User, User], settings: Any
) -> None:
    """The console's decisions are audited under the address the API's rule gives (TRUSTED_PROXY_COUNT),
    not the proxy's: the console once recorded REMOTE_ADDR, i.e. the load balancer, for every operator."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proposer, approver = finance
    fund(user, 9_000)
    withdrawal = unknown_withdrawal(user, eft, created=False)
    url = "/admin/transactions/withdrawalresolution/"
    first = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7")
    second = Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.8")
    first.force_login(proposer)
    second.force_login(approver)
    added = first.post(
        url + "add/", {"withdrawal": str(withdrawal.id), "outcome": "not_paid", "note": "Revio: none"}
    )
    assert added.status_code == 302
    resolution = WithdrawalResolution.objects.get()
    second.post(url, {"action": "approve_selected", "_selected_action": [str(resolution.id)]}, follow=True)
    proposed = AuditEvent.objects.get(action="withdrawal_resolution_proposed")
    approved = AuditEvent.objects.get(action="withdrawal_resolution_approved")
    assert (proposed.ip, approved.ip) == ("198.51.100.7", "198.51.100.8")
