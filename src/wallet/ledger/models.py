"""The double-entry ledger: accounts, journals of entries that sum to zero, and cached balances.

Sign convention: an account's balance is the sum of its entries. A user's available and reserved accounts
are positive when we hold money for them; the platform's Revio clearing account is the other side of every
deposit and payout, so it carries the negative of what sits with Revio on users' behalf. A user's
receivable account is what they owe us (debt: a clawback or chargeback larger than their balance), so it
is negative when they owe; the balance row shows it as a positive `debt`.
Entries and journals are append-only; the database refuses UPDATE and DELETE on them (migration 0002).

Two times: `created_at` is when a row was RECORDED; `effective_at` is when the movement took EFFECT (a
deposit Revio says was paid at 10:00 but whose webhook arrived at 10:40 is effective at 10:00). Never later
than it was recorded. As-of balances and statements place entries by `effective_at`
(docs/adr/0011-statement-dates.md).
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccountKind(models.TextChoices):
    USER_AVAILABLE = "user_available", "User available"
    USER_RESERVED = "user_reserved", "User reserved for withdrawals in flight"
    USER_RECEIVABLE = "user_receivable", "User receivable: what the user owes (debt)"
    REVIO_CLEARING = "revio_clearing", "Platform: Revio clearing"
    CORRECTIONS = "corrections", "Platform: operator corrections"


USER_KINDS = (AccountKind.USER_AVAILABLE, AccountKind.USER_RESERVED, AccountKind.USER_RECEIVABLE)


class JournalKind(models.TextChoices):
    DEPOSIT_CREDIT = "deposit_credit", "Deposit credited"
    WITHDRAWAL_RESERVE = "withdrawal_reserve", "Withdrawal reserved"
    WITHDRAWAL_RELEASE = "withdrawal_release", "Withdrawal failed: reservation returned"
    WITHDRAWAL_SETTLE = "withdrawal_settle", "Withdrawal paid out"
    WITHDRAWAL_RETURN = "withdrawal_return", "Withdrawal returned by the bank: re-credited"
    CORRECTION = "correction", "Operator correction"
    WITHDRAWAL_CLAWBACK = "withdrawal_clawback", "Withdrawal paid after it was refunded: taken back"
    DEPOSIT_REFUND = "deposit_refund", "Deposit refunded to the card"
    DEPOSIT_REFUND_REVERSED = "deposit_refund_reversed", "Deposit refund refused by Revio: restored"
    DEPOSIT_CHARGEBACK = "deposit_chargeback", "Deposit charged back by the card holder"


class LedgerAccount(models.Model):
    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=AccountKind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "ledger_accounts"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "user", "currency"],
                name="ledger_account_unique_per_user",
                condition=models.Q(user__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["kind", "currency"],
                name="ledger_account_unique_platform",
                condition=models.Q(user__isnull=True),
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=[k.value for k in USER_KINDS], user__isnull=False)
                | (~models.Q(kind__in=[k.value for k in USER_KINDS]) & models.Q(user__isnull=True)),
                name="ledger_account_user_kinds_have_a_user",
            ),
        ]

    def __str__(self) -> str:
        owner = f"user {self.user_id}" if self.user_id else "platform"
        return f"{self.kind} {self.currency} ({owner})"


class Journal(models.Model):
    """One movement of money: entries that sum to zero, posted once per (transaction, kind)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32, choices=JournalKind.choices)
    # The deposit or withdrawal that caused it; unique with kind, so a journal can never be posted twice.
    transaction_id = models.UUIDField(null=True, blank=True)
    memo = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # No default: two separate now() defaults would put it microseconds after created_at. journal_post,
    # the one writer, sets both.
    effective_at = models.DateTimeField(editable=False)

    class Meta:
        db_table = "ledger_journals"
        constraints = [
            models.UniqueConstraint(
                fields=["transaction_id", "kind"],
                name="ledger_journal_once_per_transaction_and_kind",
                condition=models.Q(transaction_id__isnull=False),
            ),
            models.CheckConstraint(
                condition=models.Q(effective_at__lte=models.F("created_at")),
                name="ledger_journal_effective_not_after_recorded",
            ),
        ]
        indexes = [models.Index(fields=["transaction_id"], name="ledger_journal_txn_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class Entry(models.Model):
    id = models.BigAutoField(primary_key=True)
    journal = models.ForeignKey(Journal, on_delete=models.PROTECT, related_name="entries")
    account = models.ForeignKey(LedgerAccount, on_delete=models.PROTECT, related_name="entries")
    amount = models.BigIntegerField(help_text="Minor units; the entries of a journal sum to zero.")
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # The journal's, copied so that as-of sums read one index of this table (ledger_problems checks it).
    effective_at = models.DateTimeField(editable=False)

    class Meta:
        db_table = "ledger_entries"
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="ledger_entry_not_zero"),
            models.CheckConstraint(
                condition=models.Q(effective_at__lte=models.F("created_at")),
                name="ledger_entry_effective_not_after_recorded",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-id"], name="ledger_entry_account_idx"),
            # As-of sums and statements: an index-only range scan per account (amount is a key column, not an
            # INCLUDE one, which SQLite lacks).
            models.Index(fields=["account", "effective_at", "amount"], name="ledger_entry_effective_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} on account {self.account_id}"


class Balance(models.Model):
    """The cached figures of one user's wallet in one currency, and the row that money movements lock."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    currency = models.CharField(max_length=3)
    available = models.BigIntegerField(default=0)
    reserved = models.BigIntegerField(default=0)
    # What the user owes, positive: minus the receivable account's sum. Credits settle it first.
    debt = models.BigIntegerField(default=0)
    available_account = models.OneToOneField(LedgerAccount, on_delete=models.PROTECT, related_name="+")
    reserved_account = models.OneToOneField(LedgerAccount, on_delete=models.PROTECT, related_name="+")
    # Made the first time the user owes something (inside that money transaction, the row locked).
    receivable_account = models.OneToOneField(
        LedgerAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "balances"
        constraints = [
            models.UniqueConstraint(fields=["user", "currency"], name="balance_one_per_user_and_currency"),
            models.CheckConstraint(
                condition=models.Q(available__gte=0), name="balance_available_not_negative"
            ),
            models.CheckConstraint(condition=models.Q(reserved__gte=0), name="balance_reserved_not_negative"),
            models.CheckConstraint(condition=models.Q(debt__gte=0), name="balance_debt_not_negative"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.user_id} {self.currency}: {self.available} available, {self.reserved} reserved, "
            f"{self.debt} owed"
        )
