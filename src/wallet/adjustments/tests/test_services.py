"""Four-eyes corrections on real PostgreSQL: who may decide, what gets posted, expiry, and races."""

import threading
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from wallet.accounts.models import User
from wallet.adjustments import services
from wallet.adjustments.errors import (
    FourEyesError,
    NotAnAdminError,
    ProposalExpiredError,
    ProposalNotPendingError,
)
from wallet.adjustments.models import AdjustmentProposal, ProposalStatus, ReasonCode
from wallet.audit.models import AuditAction, AuditEvent
from wallet.audit.selectors import audit_chain_problems
from wallet.core.errors import ValidationFailedError
from wallet.ledger.errors import InsufficientFundsError
from wallet.ledger.models import AccountKind, Entry, Journal, JournalKind
from wallet.ledger.selectors import balance_get, ledger_problems


def propose(admin: User, user: User, amount: int, **extra: object) -> AdjustmentProposal:
    data = services.ProposalInput(
        user_id=user.id,
        amount=amount,
        currency="ZAR",
        reason_code=ReasonCode.MISSED_CREDIT,
        reason="Deposit paid at Revio, never credited",
        **extra,  # type: ignore[arg-type]
    )
    return services.adjustment_propose(proposed_by=admin, data=data, now=timezone.now(), ip="10.9.8.7")


def available(user: User) -> int:
    return balance_get(user_id=user.id, currency="ZAR").available


@pytest.mark.django_db
class TestAdjustmentApprove:
    def test_an_admin_cannot_approve_their_own_proposal(self, admin_user: User, user: User) -> None:
        proposal = propose(admin_user, user, 2_500)
        with pytest.raises(FourEyesError):
            services.adjustment_approve(proposal_id=proposal.id, approver=admin_user, now=timezone.now())
        with pytest.raises(FourEyesError):
            services.adjustment_reject(
                proposal_id=proposal.id, rejecter=admin_user, note="", now=timezone.now()
            )
        proposal.refresh_from_db()
        assert proposal.status == ProposalStatus.PENDING
        assert Journal.objects.filter(kind=JournalKind.CORRECTION).count() == 0
        assert available(user) == 0

    def test_the_database_also_refuses_a_decider_equal_to_the_proposer(
        self, admin_user: User, user: User
    ) -> None:
        proposal = propose(admin_user, user, 2_500)
        with pytest.raises(IntegrityError), transaction.atomic():
            AdjustmentProposal.objects.filter(pk=proposal.pk).update(
                decided_by=admin_user, decided_at=timezone.now(), status=ProposalStatus.REJECTED
            )

    def test_approval_by_another_admin_posts_one_balanced_journal(
        self, admin_user: User, second_admin: User, user: User
    ) -> None:
        proposal = propose(admin_user, user, 2_500, discrepancy_id=17)
        approved = services.adjustment_approve(
            proposal_id=proposal.id, approver=second_admin, now=timezone.now(), ip="10.0.0.2"
        )
        assert (approved.status, approved.decided_by_id) == (ProposalStatus.APPROVED, second_admin.id)
        journal = Journal.objects.get(kind=JournalKind.CORRECTION)
        assert (journal.id, journal.transaction_id) == (approved.journal_id, proposal.id)
        amounts = {
            e.account.kind: e.amount for e in Entry.objects.filter(journal=journal).select_related("account")
        }
        assert amounts == {AccountKind.USER_AVAILABLE: 2_500, AccountKind.CORRECTIONS: -2_500}
        assert available(user) == 2_500
        assert ledger_problems() == []
        out = StringIO()
        call_command("ledger_verify", stdout=out)
        assert "ok" in out.getvalue()

        proposed, decided = AuditEvent.objects.filter(subject_id=str(proposal.id)).order_by("id")
        assert (proposed.action, proposed.actor_id, proposed.ip) == (
            AuditAction.ADJUSTMENT_PROPOSED,
            admin_user.id,
            "10.9.8.7",
        )
        assert proposed.details["discrepancy_id"] == 17
        assert (decided.action, decided.actor_id) == (AuditAction.ADJUSTMENT_APPROVED, second_admin.id)
        assert decided.details["available_after"] == 2_500
        assert audit_chain_problems() == []

    def test_approving_twice_posts_once(self, admin_user: User, second_admin: User, user: User) -> None:
        proposal = propose(admin_user, user, 1_000)
        services.adjustment_approve(proposal_id=proposal.id, approver=second_admin, now=timezone.now())
        with pytest.raises(ProposalNotPendingError):
            services.adjustment_approve(proposal_id=proposal.id, approver=second_admin, now=timezone.now())
        assert Journal.objects.filter(kind=JournalKind.CORRECTION).count() == 1
        assert available(user) == 1_000

    def test_an_expired_proposal_cannot_be_approved(
        self, admin_user: User, second_admin: User, user: User
    ) -> None:
        proposal = propose(admin_user, user, 1_000)
        later = proposal.expires_at + timedelta(seconds=1)
        with pytest.raises(ProposalExpiredError):
            services.adjustment_approve(proposal_id=proposal.id, approver=second_admin, now=later)
        assert Journal.objects.filter(kind=JournalKind.CORRECTION).count() == 0
        assert services.adjustments_expire(now=later) == 1
        proposal.refresh_from_db()
        assert proposal.status == ProposalStatus.EXPIRED
        assert AuditEvent.objects.filter(action=AuditAction.ADJUSTMENT_EXPIRED).count() == 1
        with pytest.raises(ProposalNotPendingError):
            services.adjustment_approve(proposal_id=proposal.id, approver=second_admin, now=timezone.now())

    def test_expiry_follows_the_setting(self, admin_user: User, user: User, settings: object) -> None:
        settings.ADJUSTMENT_PROPOSAL_TTL_HOURS = 2  # type: ignore[attr-defined]
        proposal = propose(admin_user, user, 1_000)
        assert proposal.expires_at - proposal.proposed_at == timedelta(hours=2)

    def test_a_debit_below_zero_is_refused_and_within_funds_is_posted(
        self, admin_user: User, second_admin: User, user: User, credit: Callable[[User, int], None]
    ) -> None:
        credit(user, 3_000)
        too_much = propose(admin_user, user, -3_001)
        with pytest.raises(InsufficientFundsError):
            services.adjustment_approve(proposal_id=too_much.id, approver=second_admin, now=timezone.now())
        too_much.refresh_from_db()
        assert too_much.status == ProposalStatus.PENDING
        assert available(user) == 3_000
        fine = propose(admin_user, user, -3_000)
        services.adjustment_approve(proposal_id=fine.id, approver=second_admin, now=timezone.now())
        assert available(user) == 0
        assert ledger_problems() == []

    def test_rejection_posts_nothing(self, admin_user: User, second_admin: User, user: User) -> None:
        proposal = propose(admin_user, user, 1_000)
        rejected = services.adjustment_reject(
            proposal_id=proposal.id, rejecter=second_admin, note="duplicate", now=timezone.now()
        )
        assert (rejected.status, rejected.decision_note) == (ProposalStatus.REJECTED, "duplicate")
        assert Journal.objects.filter(kind=JournalKind.CORRECTION).count() == 0
        assert AuditEvent.objects.filter(
            action=AuditAction.ADJUSTMENT_REJECTED, actor_id=second_admin.id
        ).exists()
        with pytest.raises(ProposalNotPendingError):
            services.adjustment_approve(proposal_id=proposal.id, approver=second_admin, now=timezone.now())

    def test_nobody_decides_a_correction_to_their_own_balance(
        self, admin_user: User, second_admin: User, make_user: Callable[..., User]
    ) -> None:
        third_admin = make_user(role=User.Role.ADMIN, admin_duty=User.Duty.FINANCE)
        proposal = propose(admin_user, second_admin, 1_000)
        with pytest.raises(FourEyesError):
            services.adjustment_approve(proposal_id=proposal.id, approver=second_admin, now=timezone.now())
        services.adjustment_approve(proposal_id=proposal.id, approver=third_admin, now=timezone.now())
        assert available(second_admin) == 1_000
        with pytest.raises(FourEyesError):
            propose(admin_user, admin_user, 1_000)


@pytest.mark.django_db
class TestAdjustmentPropose:
    def test_only_active_admins_propose_or_decide(self, admin_user: User, user: User) -> None:
        with pytest.raises(NotAnAdminError):
            propose(user, admin_user, 1_000)
        proposal = propose(admin_user, user, 1_000)
        with pytest.raises(NotAnAdminError):
            services.adjustment_approve(proposal_id=proposal.id, approver=user, now=timezone.now())

    def test_invalid_fields_are_refused_and_nothing_is_written(self, admin_user: User, user: User) -> None:
        data = services.ProposalInput(
            user_id=user.id, amount=0, currency="USD", reason_code="whim", reason="  "
        )
        with pytest.raises(ValidationFailedError) as caught:
            services.adjustment_propose(proposed_by=admin_user, data=data, now=timezone.now())
        assert set(caught.value.details["fields"]) == {"amount", "currency", "reason_code", "reason"}
        assert AdjustmentProposal.objects.count() == 0
        assert AuditEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_post_once(make_user: Callable[..., User]) -> None:
    finance = {"role": User.Role.ADMIN, "admin_duty": User.Duty.FINANCE}
    proposer, user = make_user(**finance), make_user()
    approvers = [make_user(**finance) for _ in range(4)]
    proposal = propose(proposer, user, 4_200)
    barrier = threading.Barrier(len(approvers))
    outcomes: list[str] = []

    def approve(approver: User) -> None:
        try:
            barrier.wait()
            services.adjustment_approve(proposal_id=proposal.id, approver=approver, now=timezone.now())
            outcomes.append("approved")
        except ProposalNotPendingError:
            outcomes.append("not_pending")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(a,)) for a in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["approved", "not_pending", "not_pending", "not_pending"]
    assert Journal.objects.filter(kind=JournalKind.CORRECTION, transaction_id=proposal.id).count() == 1
    assert available(user) == 4_200
    assert AuditEvent.objects.filter(action=AuditAction.ADJUSTMENT_APPROVED).count() == 1
    assert ledger_problems() == []
    assert audit_chain_problems() == []
