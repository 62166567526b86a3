"""Grant the admin role from the command line: the bootstrap of a second admin, or break-glass.

In the product the admin role takes two admins (docs/adr/0009-admin-grant-four-eyes.md); with a single
admin there is nobody to approve. An operator with shell access is already trusted with the database, so
this grants directly, and the audit log names the operator (`cli:<os user>`).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from wallet.accounts.four_eyes import admin_grant_by_operator
from wallet.accounts.management.commands.ensure_admin import _operator
from wallet.accounts.models import User, normalize_email


class Command(BaseCommand):
    help = "Make an existing user an admin with a duty (audited; for bootstrap and break-glass)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--duty", choices=User.Duty.values, default=User.Duty.OPERATIONS)

    def handle(self, *args: Any, **options: Any) -> None:
        email = normalize_email(options["email"])
        try:
            outcome = admin_grant_by_operator(
                email=email, duty=options["duty"], operator=_operator(), now=timezone.now()
            )
        except User.DoesNotExist as exc:
            raise CommandError(f"No account has the email {email}.") from exc
        if outcome.grant is None:
            self.stdout.write(f"{email} is already an admin ({outcome.user.admin_duty}); nothing changed.")
        else:
            self.stdout.write(f"{email} is now an admin ({outcome.user.admin_duty}).")
