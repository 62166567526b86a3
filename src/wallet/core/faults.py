"""Named crash points, for proving recovery with real processes (the proof suite's crash harness).

A crash point is a place where a process dying would leave work half done: after a reservation commits,
after a payout was accepted but before we recorded it, half-way through a webhook. With
WALLET_CRASH_POINTS unset (always, in production: the production settings refuse it) `crash_point()` is a
dictionary lookup and nothing else. In a test, WALLET_CRASH_POINTS="withdrawal.reserved" makes the first
process that reaches that point kill itself with SIGKILL: no `finally`, no rollback handler, no atexit,
exactly like the OOM killer or a pulled plug. A marker file (WALLET_CRASH_MARKER_DIR) makes each point fire
once across all processes, so the restarted process gets past it.
"""

import logging
import os
import signal
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

# The points the code base declares; a test naming another one is a mistake, not a silent no-op.
CRASH_POINTS = frozenset(
    {
        "withdrawal.reserved",  # the reservation committed; its payout not yet enqueued for the worker
        "withdrawal.payout_claimed",  # the request claimed (payout_requested_at committed), not yet sent
        "withdrawal.payout_accepted",  # Revio answered and created the payout; we have not recorded it
        "webhook.claimed",  # the event's processing lease committed; nothing applied
        "webhook.applied",  # the wallet applied the event; the log row not yet marked processed
        "ledger.journal_written",  # inside a money transaction, before it commits (so it rolls back)
        "refund.debited",  # an admin refund's debit and pending row committed; Revio not asked yet
        "refund.answered",  # Revio refunded the card and answered; we have not recorded its payment
        "resolution.approved",  # an operator resolution applied and committed; the approver not answered
    }
)


def crash_point(name: str) -> None:
    """Die here (SIGKILL) if WALLET_CRASH_POINTS names this point and it has not fired yet."""
    armed = settings.WALLET_CRASH_POINTS
    if not armed or name not in armed:
        return
    if name not in CRASH_POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    marker_dir = settings.WALLET_CRASH_MARKER_DIR
    if marker_dir:
        try:
            # O_EXCL: exactly one process, across all of them, fires each point.
            fd = os.open(Path(marker_dir) / f"{name}.fired", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
    logger.critical("crash point %s: killing process %s", name, os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)
