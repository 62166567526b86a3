"""Reconciliation, recovery, the invariant monitor and the Revio circuit breaker (wallet.reconciliation).

Durations are seconds. docs/operations.md explains what each job does with them.
"""

from config.env import env

# -- the circuit breaker around the Revio client (wallet/revio/breaker.py) --------------------------------
REVIO_BREAKER_ENABLED = env.bool("REVIO_BREAKER_ENABLED", default=True)
# Consecutive retryable failures (unreachable, 429/503, 5xx, timeouts) that open the breaker.
REVIO_BREAKER_FAILURE_THRESHOLD = env.int("REVIO_BREAKER_FAILURE_THRESHOLD", default=5)
# A failure count with no new failure for this long is forgotten (failures must be close together).
REVIO_BREAKER_FAILURE_WINDOW_SECONDS = env.int("REVIO_BREAKER_FAILURE_WINDOW_SECONDS", default=120)
# How long an open breaker refuses every call before letting one trial call through (half-open).
REVIO_BREAKER_COOLDOWN_SECONDS = env.float("REVIO_BREAKER_COOLDOWN_SECONDS", default=30.0)
# Withdrawals whose payout was never requested (queued while the breaker was open, or a crash between
# the reservation and the request) are sent by the payouts sweep once they are this old.
PAYOUT_QUEUE_GRACE_SECONDS = env.int("PAYOUT_QUEUE_GRACE_SECONDS", default=30)

# -- stuck-transaction recovery ---------------------------------------------------------------------------
RECONCILIATION_RECOVERY_INTERVAL_SECONDS = env.int("RECONCILIATION_RECOVERY_INTERVAL_SECONDS", default=900)
# A deposit pending this long is looked up at Revio.
RECONCILIATION_DEPOSIT_PENDING_SECONDS = env.int("RECONCILIATION_DEPOSIT_PENDING_SECONDS", default=1800)
# A pending deposit that never got a purchase id (creation outcome unknown) is expired after this; the
# customer never received a checkout URL, and a late payment would still credit it (expired → completed).
RECONCILIATION_DEPOSIT_EXPIRY_SECONDS = env.int("RECONCILIATION_DEPOSIT_EXPIRY_SECONDS", default=6 * 3600)
# A withdrawal pending this long after its payout request (outcome unknown) is looked up.
RECONCILIATION_WITHDRAWAL_PENDING_SECONDS = env.int("RECONCILIATION_WITHDRAWAL_PENDING_SECONDS", default=600)
# A withdrawal processing this long is looked up (payouts can take 3-5 days; this only re-reads).
RECONCILIATION_WITHDRAWAL_PROCESSING_SECONDS = env.int(
    "RECONCILIATION_WITHDRAWAL_PROCESSING_SECONDS", default=24 * 3600
)
# Whether an empty payout lookup by reference proves that no payout exists. Real Revio has no such
# lookup (the client's is a sandbox extension); set it only for a lookup that is strongly consistent.
RECONCILIATION_PAYOUT_LOOKUP_AUTHORITATIVE = env.bool(
    "RECONCILIATION_PAYOUT_LOOKUP_AUTHORITATIVE", default=False
)
# With an authoritative empty lookup, a withdrawal whose payout request is older than this is failed and
# its reservation returned: longer than any request could still be in flight at Revio.
RECONCILIATION_UNSENT_SAFE_SECONDS = env.int("RECONCILIATION_UNSENT_SAFE_SECONDS", default=900)
# A withdrawal of unknown outcome with no evidence this long after its request becomes an operator task.
RECONCILIATION_OPERATOR_AFTER_SECONDS = env.int("RECONCILIATION_OPERATOR_AFTER_SECONDS", default=24 * 3600)
# A transaction still stuck this long after recovery first saw it raises an alert (error log + metric).
RECONCILIATION_STUCK_ALERT_SECONDS = env.int("RECONCILIATION_STUCK_ALERT_SECONDS", default=24 * 3600)
# Per-transaction back-off between checks: the first values in turn, then the last one forever.
RECONCILIATION_BACKOFF_SECONDS: list[int] = [
    int(value) for value in env.list("RECONCILIATION_BACKOFF_SECONDS", default=["300", "3600", "86400"])
]
# How many stuck transactions one recovery run claims.
RECONCILIATION_BATCH_SIZE = env.int("RECONCILIATION_BATCH_SIZE", default=200)

# -- provider reconciliation and the invariant monitor ----------------------------------------------------
RECONCILIATION_INVARIANTS_INTERVAL_SECONDS = env.int(
    "RECONCILIATION_INVARIANTS_INTERVAL_SECONDS", default=600
)
