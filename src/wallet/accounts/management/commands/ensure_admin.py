"""Make sure an administrator can log in, without ever using a fixed default password.

With DJANGO_ADMIN_EMAIL and DJANGO_ADMIN_PASSWORD set, that account is created (or its password set).
Otherwise the first run creates admin@localhost with a random one-time password and prints it; later runs
say the admin exists. `--new-password` prints a fresh random password for the existing admin.
"""

import os
import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from wallet.accounts.models import User, normalize_email

_DEFAULT_EMAIL = "admin@localhost"


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

        if password_from_env:
            if user is None:
                User.objects.create_superuser(email=email, password=password_from_env)
            else:
                user.role = User.Role.ADMIN
                user.set_password(password_from_env)
                user.save(update_fields=["role", "password"])
            self.stdout.write(f"Admin login: {email} with the password in DJANGO_ADMIN_PASSWORD")
            return

        if (
            user is None
            and User.objects.filter(role=User.Role.ADMIN).exists()
            and not options["new_password"]
        ):
            self.stdout.write("An admin account exists (created earlier).")
            return

        if user is None or options["new_password"]:
            password = secrets.token_urlsafe(12)
            if user is None:
                User.objects.create_superuser(email=email, password=password)
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
            self.stdout.write(f"Admin login: {email} / one-time password: {password}")
            self.stdout.write("  (shown once; `make admin-password` prints a new one)")
            return

        self.stdout.write(
            f"Admin login: {email} (password shown when it was created; "
            "`make admin-password` prints a new one)"
        )
