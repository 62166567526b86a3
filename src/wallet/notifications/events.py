"""The catalogue of emails: which events send one, with which templates, and which are essential.

Essential emails go whatever the user's preferences say: money leaving the wallet for good (a withdrawal
paid out), money coming back (a failed or returned withdrawal) and security (password reset). The rest
are status updates the user already saw in the app or at checkout, and can be turned off.
"""

from dataclasses import dataclass

PASSWORD_RESET = "security.password_reset"
# Security notices without a link or a transaction: their context is stored on the row and holds no secret.
EMAIL_CHANGED = "security.email_changed"  # sent to the OLD address (context "to")
REGISTRATION_ATTEMPT = "security.registration_attempt"  # someone registered with an email that has an account
SECURITY_NOTICES = frozenset({EMAIL_CHANGED, REGISTRATION_ATTEMPT})


@dataclass(frozen=True)
class EventSpec:
    template: str  # notifications/<template>.subject.txt, .txt and .html
    essential: bool


EVENTS: dict[str, EventSpec] = {
    "deposit.completed": EventSpec("deposit_completed", essential=False),
    "deposit.failed": EventSpec("deposit_failed", essential=False),
    "withdrawal.processing": EventSpec("withdrawal_processing", essential=False),
    "withdrawal.completed": EventSpec("withdrawal_completed", essential=True),
    "withdrawal.failed": EventSpec("withdrawal_failed", essential=True),
    "withdrawal.returned": EventSpec("withdrawal_returned", essential=True),
    "withdrawal.clawed_back": EventSpec("withdrawal_clawed_back", essential=True),  # paid after a refund
    # Issue 16 (transactions.reversals): keyed by the deposit, so one email per deposit and kind.
    "deposit.refunded": EventSpec("deposit_refunded", essential=True),
    "deposit.charged_back": EventSpec("deposit_charged_back", essential=True),
    "debt.created": EventSpec("debt_created", essential=True),
    PASSWORD_RESET: EventSpec("password_reset", essential=True),
    EMAIL_CHANGED: EventSpec("email_changed", essential=True),
    REGISTRATION_ATTEMPT: EventSpec("registration_attempt", essential=True),
}

# Transaction statuses that send nothing: "pending" is the user's own action a moment ago, and a deposit
# "cancelled" or "expired" is a checkout the user abandoned (no money moved).
TRANSACTION_EVENTS = frozenset(
    name for name in EVENTS if name != PASSWORD_RESET and name not in SECURITY_NOTICES
)
