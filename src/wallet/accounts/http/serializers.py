"""Request and response shapes of the accounts API."""

from typing import Any

from rest_framework import serializers

from wallet.accounts.models import User


def _password_field() -> serializers.CharField:
    # Passwords are taken exactly as typed: no trimming, and a bound that keeps hashing cheap to refuse.
    return serializers.CharField(write_only=True, trim_whitespace=False, max_length=256)


class UserOutputSerializer(serializers.Serializer[User]):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    role = serializers.ChoiceField(choices=User.Role.choices)


class AdminUserOutputSerializer(UserOutputSerializer):
    admin_duty = serializers.ChoiceField(
        choices=User.Duty.choices, help_text="What an admin may do; meaningful only when role is admin."
    )
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    last_login = serializers.DateTimeField(allow_null=True)


class CredentialsInputSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254)
    password = _password_field()


class TokenPairOutputSerializer(serializers.Serializer[Any]):
    access = serializers.CharField(help_text="Bearer token for the Authorization header; lives 15 minutes.")
    refresh = serializers.CharField(help_text="Exchange at /auth/token/refresh; single use, lives 7 days.")


class RefreshInputSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField(max_length=4096)


class PasswordChangeInputSerializer(serializers.Serializer[Any]):
    current_password = _password_field()
    new_password = _password_field()


class AdminUserUpdateInputSerializer(serializers.Serializer[Any]):
    role = serializers.ChoiceField(
        choices=User.Role.choices,
        required=False,
        help_text=(
            '"admin" takes two admins: the first request proposes the grant (202), the same request from a '
            "second, independent admin approves it (200). Any one admin may take the role away."
        ),
    )
    admin_duty = serializers.ChoiceField(
        choices=User.Duty.choices,
        required=False,
        help_text='With role "admin" (or for an admin): the duty to grant; "operations" if not given.',
    )
    is_active = serializers.BooleanField(required=False)


class RegistrationAcceptedOutputSerializer(serializers.Serializer[Any]):
    message = serializers.CharField(
        help_text="The same sentence whether the account was created or the email already had one."
    )


class PasswordResetInputSerializer(serializers.Serializer[Any]):
    email = serializers.EmailField(max_length=254)


class PasswordResetAcceptedOutputSerializer(serializers.Serializer[Any]):
    message = serializers.CharField(help_text="The same sentence whether or not the account exists.")


class PasswordResetConfirmInputSerializer(serializers.Serializer[Any]):
    token = serializers.CharField(
        max_length=512, help_text='From the emailed link: "<uidb64>.<token>", single use, time-limited.'
    )
    new_password = _password_field()


class NotificationPreferencesSerializer(serializers.Serializer[Any]):
    transaction_emails = serializers.BooleanField(
        help_text=(
            "Optional emails: deposit completed or failed, withdrawal on its way. Emails about money "
            "leaving or coming back (withdrawal paid, failed, returned) and security emails always go."
        )
    )


class NotificationPreferencesUpdateInputSerializer(serializers.Serializer[Any]):
    transaction_emails = serializers.BooleanField(required=False)
