"""Request and response shapes for deposits, withdrawals, balances and history."""

from typing import Any

from django.conf import settings
from rest_framework import serializers

from wallet.core.http.fields import MinorUnitsField
from wallet.transactions.models import Transaction, TransactionStatus, TransactionType

ACCOUNT_TYPES = ("current", "savings", "transmission")


def _currency_field() -> serializers.CharField:
    return serializers.CharField(
        required=False,
        min_length=3,
        max_length=3,
        help_text="ISO 4217 code; only the wallet's currency (ZAR) is accepted.",
    )


class DepositCreateInputSerializer(serializers.Serializer[Any]):
    amount = MinorUnitsField(min_value=1, help_text="Minor units (cents); within the configured range.")
    currency = _currency_field()

    def validate_currency(self, value: str) -> str:
        if value.upper() != settings.WALLET_CURRENCY:
            raise serializers.ValidationError(f"Only {settings.WALLET_CURRENCY} is supported.")
        return value.upper()


class BankAccountInputSerializer(serializers.Serializer[Any]):
    account_holder = serializers.CharField(min_length=2, max_length=100)
    account_number = serializers.RegexField(
        r"^\d{6,16}$", error_messages={"invalid": "Must be 6 to 16 digits."}
    )
    bank_code = serializers.RegexField(
        r"^\d{6}$", error_messages={"invalid": "Must be the 6-digit branch code."}
    )
    account_type = serializers.ChoiceField(choices=ACCOUNT_TYPES)

    def to_internal_value(self, data: Any) -> Any:
        # Numbers would arrive as JSON numbers and lose leading zeros; bank numbers are strings of digits.
        if isinstance(data, dict):
            for field in ("account_number", "bank_code"):
                if field in data and not isinstance(data[field], str):
                    raise serializers.ValidationError({field: ["Must be a string of digits."]})
        return super().to_internal_value(data)


class WithdrawalCreateInputSerializer(DepositCreateInputSerializer):
    bank_account = BankAccountInputSerializer()
    step_up_password = serializers.CharField(
        required=False,
        write_only=True,
        trim_whitespace=False,
        max_length=256,
        help_text=(
            "Your current password. Required for a withdrawal to a bank account you have not withdrawn to "
            "before (no completed withdrawal to the same account number and bank code): without it the "
            "answer is 403 step_up_required, with a wrong one 403 step_up_failed (counted like a failed "
            "login). Never stored."
        ),
    )


class BankAccountOutputSerializer(serializers.Serializer[Any]):
    account_holder = serializers.CharField(source="bank_account_holder")
    account_number_masked = serializers.CharField(
        source="bank_account_masked", help_text="Only the last four digits."
    )
    bank_code = serializers.CharField()
    account_type = serializers.CharField(source="bank_account_type")


class TransactionOutputSerializer(serializers.Serializer[Transaction]):
    id = serializers.UUIDField()
    type = serializers.ChoiceField(choices=TransactionType.choices)
    status = serializers.ChoiceField(choices=TransactionStatus.choices)
    amount = serializers.IntegerField(help_text="Minor units (cents).")
    currency = serializers.CharField()
    checkout_url = serializers.SerializerMethodField(help_text="Deposits: where to send the customer to pay.")
    bank_account = serializers.SerializerMethodField()
    failure_reason = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)

    def get_checkout_url(self, txn: Transaction) -> str | None:
        return txn.checkout_url or None if txn.type == TransactionType.DEPOSIT else None

    def get_bank_account(self, txn: Transaction) -> dict[str, Any] | None:
        if txn.type != TransactionType.WITHDRAWAL:
            return None
        return dict(BankAccountOutputSerializer(txn).data)


class BalanceOutputSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField()
    available = serializers.IntegerField(help_text="Minor units you can withdraw now.")
    reserved = serializers.IntegerField(help_text="Minor units held for withdrawals in flight.")
    debt = serializers.IntegerField(
        help_text=(
            "Minor units you owe (a chargeback or a payout clawed back beyond your balance). Deposits settle "
            "it first; no withdrawal is possible while it is above 0."
        )
    )
    hold = serializers.IntegerField(
        default=0,
        help_text=(
            "Minor units of `available` from recent deposits that cannot be withdrawn yet (the deposit "
            "hold); withdrawable = available - hold. Always 0 with `as_of`."
        ),
    )


class EntryOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    account = serializers.SerializerMethodField(help_text="available, reserved or debt")
    amount = serializers.IntegerField(help_text="Signed minor units: positive adds to the account.")
    currency = serializers.CharField()
    kind = serializers.CharField(source="journal.kind")
    transaction_id = serializers.UUIDField(source="journal.transaction_id", allow_null=True)
    memo = serializers.CharField(source="journal.memo")
    created_at = serializers.DateTimeField()

    def get_account(self, entry: Any) -> str:
        # The receivable account's entries move what the user owes (negative: they owe more).
        return {"user_available": "available", "user_receivable": "debt"}.get(entry.account.kind, "reserved")


class TransactionFilterSerializer(serializers.Serializer[Any]):
    type = serializers.ChoiceField(choices=TransactionType.choices, required=False)
    status = serializers.ChoiceField(choices=TransactionStatus.choices, required=False)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
