"""Statement writes: the only write is the audit record of an admin producing someone's statement."""

from datetime import datetime
from typing import Any
from uuid import UUID

from wallet.audit import public as audit
from wallet.statements.selectors import Statement, statement_get


def statement_produce_for_admin(
    *,
    actor: Any,
    user_id: UUID,
    currency: str,
    start: datetime,
    end: datetime,
    output_format: str,
    ip: str | None,
    now: datetime,
) -> Statement:
    """Build a user's statement for an admin, and record in the audit log that the admin produced it.

    The audit event is written before the statement is returned: a statement that could not be recorded
    is not handed out (the error propagates).
    """
    statement = statement_get(user_id=user_id, currency=currency, start=start, end=end, now=now)
    audit.audit_record(
        action=audit.AuditAction.STATEMENT_PRODUCED,
        actor=actor,
        subject_type="accounts.user",
        subject_id=str(user_id),
        ip=ip,
        details={
            "from": start.isoformat(),
            "to": end.isoformat(),
            "currency": currency,
            "format": output_format,
            "entries": len(statement.lines),
        },
        now=now,
    )
    return statement
