"""Turning an outbox row into an email: the context each template gets, and the templates rendered.

Templates live in templates/notifications/: <name>.subject.txt (one line), <name>.txt (plain text) and
<name>.html, all extending the base layouts. Amounts are formatted from minor units here, bank accounts are
only ever the masked form the transaction keeps, and links point at the frontend (FRONTEND_URL).
"""

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from wallet.core.money import format_money
from wallet.notifications.events import EVENTS


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


class NothingToRenderError(Exception):
    """The facts an email needs are gone (a deleted transaction); it can never be sent."""


def frontend_url(path: str) -> str:
    return settings.FRONTEND_URL.rstrip("/") + path


def email_render(*, event: str, context: dict[str, Any]) -> RenderedEmail:
    spec = EVENTS[event]
    base = {
        "frontend_url": frontend_url(""),
        "preferences_url": frontend_url("/settings/notifications"),
        "essential": spec.essential,
    }
    full = {**base, **context}
    subject = render_to_string(f"notifications/{spec.template}.subject.txt", full)
    return RenderedEmail(
        # Headers are one line; a template's trailing newline or wrapping must not split the subject.
        subject=" ".join(subject.split()),
        text=render_to_string(f"notifications/{spec.template}.txt", full).strip() + "\n",
        html=render_to_string(f"notifications/{spec.template}.html", full),
    )


def transaction_snapshot(
    *, amount: int, currency: str, bank_account_masked: str, failure_reason: str
) -> dict[str, Any]:
    """What a deposit or withdrawal email will show, kept with the outbox row when it is recorded."""
    return {
        "amount": amount,
        "currency": currency,
        "bank_account_masked": bank_account_masked,
        "failure_reason": failure_reason,
    }


def transaction_context(*, transaction_id: uuid.UUID, stored: dict[str, Any]) -> dict[str, Any]:
    """A deposit or withdrawal email's context from the snapshot recorded with its row."""
    if "amount" not in stored or "currency" not in stored:
        raise NothingToRenderError(f"no snapshot of transaction {transaction_id} was recorded")
    return {
        "transaction_id": str(transaction_id),
        "reference": str(transaction_id).split("-")[0].upper(),
        "amount": format_money(int(stored["amount"]), str(stored["currency"])),
        "bank_account_masked": stored.get("bank_account_masked", ""),
        "failure_reason": stored.get("failure_reason", ""),
        "transaction_url": frontend_url(f"/transactions/{transaction_id}"),
    }


def password_reset_context(*, stored: dict[str, Any]) -> dict[str, Any]:
    if not stored.get("reset_url"):
        raise NothingToRenderError("the reset link was already cleared")
    minutes = max(settings.PASSWORD_RESET_TIMEOUT // 60, 1)
    return {"reset_url": stored["reset_url"], "valid_minutes": minutes}
