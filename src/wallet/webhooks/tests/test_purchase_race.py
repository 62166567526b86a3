"""Revio's purchase.created event processed before deposit_create has stored Revio's answer: the deposit
still ends with its purchase id and checkout URL, whichever of the two stored them first."""

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.revio.client import get_client
from wallet.revio.contracts import Purchase
from wallet.transactions import services
from wallet.transactions.services import deposits
from wallet.webhooks import services as webhooks
from wallet.webhooks.models import WebhookLog
from wallet.webhooks.tests.conftest import Signer, jsonb

pytestmark = pytest.mark.django_db


class _EventFirst:
    """The real client; after a purchase is created, Revio's purchase.created event is delivered and
    processed before the answer reaches deposit_create (the race, played in order)."""

    def __init__(self, deliver: Callable[[Purchase], None]) -> None:
        self.real = get_client()
        self.deliver = deliver

    def purchase_create(self, **kwargs: Any) -> Purchase:
        purchase = self.real.purchase_create(**kwargs)
        self.deliver(purchase)
        return purchase


def test_the_created_event_first_still_leaves_the_id_and_checkout_url(
    user: User, revio: SandboxProcess, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(webhooks, "_enqueue", queued.append)

    def deliver(purchase: Purchase) -> None:
        with revio.api_client() as client:
            event = {**client.get(f"purchases/{purchase.id}/").json(), "event_type": "purchase.created"}
        body = jsonb(event)
        received = webhooks.webhook_receive(
            body=body, signature=signer.sign(body), source_ip="127.0.0.1", headers={}, now=timezone.now()
        )
        assert webhooks.webhook_process(log_id=received.log_id) == "processed"

    monkeypatch.setattr(deposits, "get_client", lambda: _EventFirst(deliver))
    deposit = services.deposit_create(user_id=user.id, email=user.email, amount=3_000, currency="ZAR")

    log = WebhookLog.objects.get(event_type="purchase.created")
    assert log.status == "processed"
    assert deposit.provider_object_id == log.object_id
    assert deposit.checkout_url == f"{revio.base_url}/p/{log.object_id}/"
    assert (deposit.status, deposit.provider_status) == ("pending", "created")


def test_the_answer_first_then_the_event_changes_neither(user: User, revio: SandboxProcess) -> None:
    deposit = services.deposit_create(user_id=user.id, email=user.email, amount=3_000, currency="ZAR")
    purchase = get_client().purchase_get(deposit.provider_object_id or "")
    services.deposit_apply_provider_state(
        deposit_id=deposit.id,
        purchase=dataclasses.replace(purchase, checkout_url="https://elsewhere.invalid/p/x/"),
        source="webhook",
    )
    deposit.refresh_from_db()
    assert deposit.checkout_url == purchase.checkout_url
