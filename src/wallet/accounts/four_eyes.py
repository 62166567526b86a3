"""Four eyes for admins: granting the admin role, and the rule every four-eyes decision applies.

Granting the admin role (or a wider duty) takes two admins: one proposes an AdminGrant, a second approves it
(docs/adr/0009-admin-grant-four-eyes.md). Without that, one admin could make a puppet admin and have it
approve their own balance correction: four eyes collapsed to one.

`four_eyes_check` is the rule for every decision that needs a second admin (corrections today; refunds and
withdrawal resolutions later): the decider is an active admin with the duty, is neither the proposer nor the
user concerned, and neither nominated the other. "Nominated" follows AdminGrant rows: whoever proposed a
user's admin grant, transitively up the proposers, and whoever approved it. So an admin's puppets cannot
approve that admin's proposals, and the admin cannot approve their puppets'.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from wallet.accounts.errors import AdminGrantNotPendingError, FourEyesError, NotAnAdminError
from wallet.accounts.models import AdminGrant, User
from wallet.audit import public as audit
from wallet.core.errors import NotFoundError, ValidationFailedError

logger = logging.getLogger(__name__)

_MAX_LINEAGE = 64  # grant chains are a handful deep; the bound only guards against a loop in bad data


def admin_duty_check(*, actor: User, duty: str) -> None:
    """:raises NotAnAdminError: the actor is not an active admin, or lacks the finance duty it needs."""
    if not (actor.is_active and actor.is_admin):
        raise NotAnAdminError()
    if duty == User.Duty.FINANCE and actor.admin_duty != User.Duty.FINANCE:
        raise NotAnAdminError("This needs an admin with the finance duty.")


def admin_nominators(*, user_id: uuid.UUID) -> set[uuid.UUID]:
    """The admins who put this user in the admin role: the proposer of their current grant and that
    proposer's own nominators (transitively), plus the admin who approved the grant."""
    found: set[uuid.UUID] = set()
    chain: set[uuid.UUID] = {user_id}
    current = user_id
    for depth in range(_MAX_LINEAGE):
        grant = (
            AdminGrant.objects.filter(user_id=current, status=AdminGrant.Status.APPROVED)
            .order_by("-decided_at")
            .values("proposed_by_id", "decided_by_id")
            .first()
        )
        if grant is None:
            break
        if depth == 0 and grant["decided_by_id"] is not None:
            found.add(grant["decided_by_id"])
        proposer = grant["proposed_by_id"]
        if proposer is None or proposer in chain:  # granted on the command line, or a loop in the data
            break
        found.add(proposer)
        chain.add(proposer)
        current = proposer
    return found


def four_eyes_check(
    *,
    decider: User,
    proposer_id: uuid.UUID | None,
    subject_user_id: uuid.UUID | None = None,
    duty: str = User.Duty.FINANCE,
) -> None:
    """Check that `decider` may decide what `proposer_id` proposed (about `subject_user_id`'s account).

    Call it inside the decision's transaction, after locking the proposal.

    :raises NotAnAdminError: the decider is not an active admin with `duty`.
    :raises FourEyesError: the decider proposed it, is the user concerned, or nominated or was nominated by
        the proposer; or the proposer is no longer an active admin.
    """
    admin_duty_check(actor=decider, duty=duty)
    if proposer_id is not None and decider.id == proposer_id:
        raise FourEyesError("You proposed this: a different admin must decide it.")
    if subject_user_id is not None and decider.id == subject_user_id:
        raise FourEyesError("This concerns your own account: a different admin must decide it.")
    if proposer_id is None:
        return
    proposer = User.objects.filter(pk=proposer_id).only("role", "is_active").first()
    if proposer is None or not (proposer.is_active and proposer.is_admin):
        # A proposal outlives no proposer: a demoted or deactivated admin's proposals are not approvable.
        raise FourEyesError("The proposer is no longer an active admin: it must be proposed again.")
    if proposer_id in admin_nominators(user_id=decider.id) or decider.id in admin_nominators(
        user_id=proposer_id
    ):
        raise FourEyesError(
            "One of you made the other an admin: an admin independent of the proposer must decide this."
        )


def admin_grant_ttl() -> timedelta:
    return timedelta(hours=settings.ADMIN_GRANT_TTL_HOURS)


@dataclass(frozen=True)
class AdminGrantOutcome:
    user: User
    grant: AdminGrant | None  # None: the user already had this role and duty

    @property
    def pending(self) -> bool:
        return self.grant is not None and self.grant.status == AdminGrant.Status.PENDING


def admin_grant_request(
    *, user_id: uuid.UUID | str, actor: User, duty: str, now: datetime, ip: str | None = None
) -> AdminGrantOutcome:
    """Ask for `user_id` to be an admin with `duty`: the first admin's request proposes, a second admin's
    identical request approves (and the role is set). Each step is audited.

    :raises User.DoesNotExist: no such user.
    :raises NotAnAdminError: the actor is not an admin with `duty` (granting finance needs finance).
    :raises FourEyesError: the actor is the user, or the pending grant's proposer nominated them (or the
        other way round).
    :raises ValidationFailedError: a pending grant proposes a different duty, or the user is inactive.
    """
    admin_duty_check(actor=actor, duty=duty)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if user.id == actor.id:
            raise FourEyesError("Nobody may grant themselves a role or duty.")
        if user.is_admin and user.admin_duty == duty:
            return AdminGrantOutcome(user=user, grant=None)
        if not user.is_active:
            raise ValidationFailedError.for_fields({"role": ["Activate the user before granting a role."]})
        pending = (
            AdminGrant.objects.select_for_update().filter(user=user, status=AdminGrant.Status.PENDING).first()
        )
        if pending is not None and pending.expires_at <= now:
            _expire(pending, now=now)
            pending = None
        if pending is None:
            grant = AdminGrant.objects.create(
                user=user, duty=duty, proposed_by=actor, proposed_at=now, expires_at=now + admin_grant_ttl()
            )
            audit.audit_record(
                action=audit.AuditAction.ADMIN_GRANT_PROPOSED,
                actor=actor,
                subject=user,
                ip=ip,
                now=now,
                details=_details(grant, from_role=user.role),
            )
            return AdminGrantOutcome(user=user, grant=grant)
        if pending.proposed_by_id == actor.id:
            return AdminGrantOutcome(user=user, grant=pending)  # still waiting for a second admin
        if pending.duty != duty:
            raise ValidationFailedError.for_fields(
                {
                    "admin_duty": [
                        f"The pending grant proposes the {pending.duty} duty; approve that or reject it."
                    ]
                }
            )
        four_eyes_check(decider=actor, proposer_id=pending.proposed_by_id, subject_user_id=user.id, duty=duty)
        return AdminGrantOutcome(
            user=_apply(pending, user=user, approver=actor, now=now, ip=ip), grant=pending
        )


def admin_grant_reject(
    *, grant_id: uuid.UUID, actor: User, now: datetime, ip: str | None = None
) -> AdminGrant:
    """Reject (or, by its proposer, withdraw) a pending grant. Refusing a privilege needs one admin only.

    :raises NotFoundError: no such grant. :raises AdminGrantNotPendingError: it was already decided.
    """
    admin_duty_check(actor=actor, duty=User.Duty.OPERATIONS)
    with transaction.atomic():
        grant = AdminGrant.objects.select_for_update().filter(pk=grant_id).first()
        if grant is None:
            raise NotFoundError()
        if grant.status != AdminGrant.Status.PENDING:
            raise AdminGrantNotPendingError(details={"status": grant.status})
        grant.status = AdminGrant.Status.REJECTED
        grant.decided_by = actor if actor.id != grant.proposed_by_id else None
        grant.decided_at = now
        grant.save(update_fields=["status", "decided_by", "decided_at"])
        audit.audit_record(
            action=audit.AuditAction.ADMIN_GRANT_REJECTED,
            actor=actor,
            subject=grant.user,
            ip=ip,
            now=now,
            details=_details(grant),
        )
    return grant


def admin_grant_by_operator(*, email: str, duty: str, operator: str, now: datetime) -> AdminGrantOutcome:
    """Grant the admin role from the command line (bootstrap, or break-glass): an operator with shell access
    is trusted with the database anyway. Audited with the operator's name as the actor.

    :raises User.DoesNotExist: no such user.
    """
    with transaction.atomic():
        user = User.objects.select_for_update().get(email=email)
        if user.is_admin and user.admin_duty == duty:
            return AdminGrantOutcome(user=user, grant=None)
        AdminGrant.objects.filter(user=user, status=AdminGrant.Status.PENDING).update(
            status=AdminGrant.Status.EXPIRED, decided_at=now
        )
        grant = AdminGrant.objects.create(
            user=user,
            duty=duty,
            proposed_by=None,
            proposed_at=now,
            expires_at=now,
            status=AdminGrant.Status.PENDING,
        )
        return AdminGrantOutcome(
            user=_apply(grant, user=user, approver=None, now=now, ip=None, operator=operator), grant=grant
        )


def _apply(
    grant: AdminGrant, *, user: User, approver: User | None, now: datetime, ip: str | None, operator: str = ""
) -> User:
    before = (user.role, user.admin_duty)
    grant.status = AdminGrant.Status.APPROVED
    grant.decided_by = approver
    grant.decided_at = now
    grant.save(update_fields=["status", "decided_by", "decided_at"])
    user.role = User.Role.ADMIN
    user.admin_duty = grant.duty
    user.save(update_fields=["role", "admin_duty"])
    audit.audit_record(
        action=audit.AuditAction.ADMIN_GRANT_APPROVED,
        actor=approver if approver is not None else operator,
        subject=user,
        ip=ip,
        now=now,
        details=_details(
            grant, from_role=before[0], from_duty=before[1], **({"channel": "cli"} if operator else {})
        ),
    )
    logger.info("admin grant %s approved: user %s is an admin (%s)", grant.id, user.pk, grant.duty)
    return user


def _expire(grant: AdminGrant, *, now: datetime) -> None:
    grant.status = AdminGrant.Status.EXPIRED
    grant.decided_at = now
    grant.save(update_fields=["status", "decided_at"])


def _details(grant: AdminGrant, **extra: object) -> dict[str, object]:
    return {
        "grant_id": str(grant.id),
        "email": grant.user.email,
        "duty": grant.duty,
        "proposed_by": str(grant.proposed_by_id) if grant.proposed_by_id else None,
        **extra,
    }
