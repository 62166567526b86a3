"""Audit reads, and the walk over the chain that audit_verify runs."""

from dataclasses import dataclass

from wallet.audit.chain import GENESIS_HASH, event_hash
from wallet.audit.models import AuditChainHead, AuditEvent


@dataclass(frozen=True)
class ChainProblem:
    event_id: int | None
    message: str


def audit_chain_problems(*, batch_size: int = 2000) -> list[ChainProblem]:
    """Walk the chain from the first row; the first problem found is first in the list.

    Checks, per row: ids are contiguous from 1 (a gap is a deleted row), `prev_hash` equals the previous
    row's hash, and `hash` equals the hash recomputed from the row's fields. Then that the chain head names
    the last row, so rows deleted at the end are caught too.
    """
    problems: list[ChainProblem] = []
    expected_id, prev_hash = 1, GENESIS_HASH
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=batch_size):
        if event.id != expected_id:
            problems.append(
                ChainProblem(event.id, f"row {event.id}: expected row {expected_id} next; rows are missing")
            )
        if event.prev_hash != prev_hash:
            problems.append(
                ChainProblem(event.id, f"row {event.id}: prev_hash does not match the previous row's hash")
            )
        recomputed = event_hash(event)
        if recomputed != event.hash:
            problems.append(
                ChainProblem(event.id, f"row {event.id}: its fields do not match its hash (edited)")
            )
        expected_id, prev_hash = event.id + 1, event.hash
    head = AuditChainHead.objects.filter(id=1).first()
    last_id = expected_id - 1
    if head is None:
        if last_id:
            problems.append(ChainProblem(None, "the chain head is missing"))
    elif head.last_id != last_id or head.last_hash != prev_hash:
        problems.append(
            ChainProblem(
                head.last_id,
                f"the chain head names row {head.last_id} but the last row is {last_id}: "
                "rows at the end were deleted or replaced",
            )
        )
    return problems


def audit_event_count() -> int:
    return AuditEvent.objects.count()
