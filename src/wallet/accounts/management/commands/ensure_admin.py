"""Make sure a first administrator exists, without ever using a fixed default password.

Run on every release, it only ever creates the first admin: when no admin exists, the account named by
DJANGO_ADMIN_EMAIL (admin@localhost if unset) is created with DJANGO_ADMIN_PASSWORD, or with a random
one-time password that is printed. Once any admin exists it changes nothing: it neither resets a password
nor grants a role (further admins are granted by two admins, or with `manage.py admin_grant`). An existing
non-admin account with that email is never promoted: whoever registered it chose its password.

`--new-password` sets and prints a fresh random password for that admin (`make admin-password`): an explicit
operator action, audited, that ends the admin's sessions. Every change is in the audit log.
"""

import getpass
import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from wallet.accounts.four_eyes import admin_grant_by_operator
from wallet.accounts.models import User, normalize_email
from wallet.accounts.services import _revoke_refresh_tokens
from wallet.audit import public as audit

_DEFAULT_EMAIL = "admin@localhost"


def _operator() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


class Command(BaseCommand):
    help = "Create the first administrator (from env vars or with a printed one-time password)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--new-password", action="store_true", help="Set and print a new random password."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        email = normalize_email(os.environ.get("DJANGO_ADMIN_EMAIL", "") or _DEFAULT_EMAIL)
        password_from_env = os.environ.get("DJANGO_ADMIN_PASSWORD", "")
        user = User.objects.filter(email=email).first()

        if options["new_password"]:
            if user is None or not user.is_admin:
                raise CommandError(
                    f"{email} is not an admin; --new-password only resets an admin's password."
                )
            password = secrets.token_urlsafe(12)
            with transaction.atomic():
                user.set_password(password)
                user.save(update_fields=["password"])
                _revoke_refresh_tokens(user)
                audit.audit_record(
                    action=audit.AuditAction.PASSWORD_CHANGED,
                    actor=_operator(),
                    subject=user,
                    details={"channel": "cli", "command": "ensure_admin --new-password"},
                )
            self.stdout.write(f"Admin login: {email} / one-time password: {password}")
            self.stdout.write("  (shown once; `make admin-password` prints a new one)")
            return

        if User.objects.filter(role=User.Role.ADMIN).exists():
            self.stdout.write(
                "An admin account exists; nothing changed (`make admin-password` prints a new password)."
            )
            return
        if user is not None:
            raise CommandError(
                f"{email} is an existing account that is not an admin: it is not promoted automatically. "
                "Set DJANGO_ADMIN_EMAIL to a new address, or grant it with `manage.py admin_grant`."
            )

        password = password_from_env or secrets.token_urlsafe(12)
        with transaction.atomic():
            user = User.objects.create_user(email=email, password=password)
            admin_grant_by_operator(
                email=email, duty=User.Duty.FINANCE, operator=_operator(), now=timezone.now()
            )
        if password_from_env:
            self.stdout.write(f"Admin login: {email} with the password in DJANGO_ADMIN_PASSWORD")
        else:
            self.stdout.write(f"Admin login: {email} / one-time password: {password}")
            self.stdout.write("  (shown once; `make admin-password` prints a new one)")
