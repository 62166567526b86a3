"""Webhook objects (the gateway's ``/webhooks/``): each has its own RSA key pair and signs the
deliveries of the events it subscribes to (``Deliveries.emit`` picks the subscribers)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from revio_sandbox import keys
from revio_sandbox.errors import not_found
from revio_sandbox.events import ALL_EVENTS
from revio_sandbox.store import dump_json, load_json
from revio_sandbox.validation import clean_webhook

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox

PAGE_SIZE = 20


class WebhooksApi:
    """The brand's webhook objects and their private keys."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.store = sandbox.store

    def _load(self, webhook_id: str) -> tuple[dict[str, Any], str]:
        row = self.store.fetchone("SELECT data, private_key FROM webhooks WHERE id = ?", (webhook_id,))
        if row is None:
            raise not_found()
        return dict(load_json(row["data"])), str(row["private_key"])

    def set_key(self, webhook_id: str, private_key: str) -> None:
        data, _ = self._load(webhook_id)
        data["public_key"] = keys.public_key_pem(private_key)
        self.store.execute(
            "UPDATE webhooks SET data = ?, private_key = ? WHERE id = ?",
            (dump_json(data), private_key, webhook_id),
        )

    def create(self, payload: Any) -> dict[str, Any]:
        clean = clean_webhook(payload, partial=False, known_events=ALL_EVENTS)
        now = int(time.time())
        private_key = keys.generate_private_key_pem()
        webhook = {
            "id": str(uuid.uuid4()),
            "type": "webhook",
            "title": clean["title"],
            "all_events": clean.get("all_events", False),
            "events": clean.get("events", []),
            "callback": clean["callback"],
            "public_key": keys.public_key_pem(private_key),
            "created_on": now,
            "updated_on": now,
        }
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO webhooks (id, private_key, data) VALUES (?, ?, ?)",
                (webhook["id"], private_key, dump_json(webhook)),
            )
        return webhook

    def get(self, webhook_id: str) -> dict[str, Any]:
        return self._load(webhook_id)[0]

    def page(self, page: int, page_url: Callable[[int], str]) -> dict[str, Any]:
        page = max(page, 1)
        total = self.store.fetchone("SELECT COUNT(*) AS n FROM webhooks")
        count = int(total["n"]) if total else 0
        rows = self.store.fetchall(
            "SELECT data FROM webhooks ORDER BY seq LIMIT ? OFFSET ?", (PAGE_SIZE, (page - 1) * PAGE_SIZE)
        )
        return {
            "results": [load_json(r["data"]) for r in rows],
            "next": page_url(page + 1) if page * PAGE_SIZE < count else None,
            "previous": page_url(page - 1) if page > 1 else None,
        }

    def update(self, webhook_id: str, payload: Any, *, partial: bool) -> dict[str, Any]:
        with self.store.transaction():
            webhook, _ = self._load(webhook_id)
            clean = clean_webhook(payload, partial=partial, known_events=ALL_EVENTS)
            if not partial:
                webhook.update(all_events=False, events=[])
            webhook.update(clean)
            webhook["updated_on"] = int(time.time())
            self.store.execute("UPDATE webhooks SET data = ? WHERE id = ?", (dump_json(webhook), webhook_id))
            return webhook

    def delete(self, webhook_id: str) -> None:
        with self.store.transaction():
            self._load(webhook_id)
            self.store.execute("DELETE FROM webhooks WHERE id = ?", (webhook_id,))

    def rotate_key(self, webhook_id: str) -> dict[str, Any]:
        """Control API: give a webhook a new key pair; the old key signs nothing from now on."""
        with self.store.transaction():
            self.set_key(webhook_id, keys.generate_private_key_pem())
            return self._load(webhook_id)[0]

    def ensure(self, *, callback: str, title: str = "Wallet backend (sandbox)") -> dict[str, Any]:
        """Return the all-events webhook pointing at ``callback``, creating it if needed (``init``)."""
        for row in self.store.fetchall("SELECT data FROM webhooks ORDER BY seq"):
            webhook = load_json(row["data"])
            if webhook["callback"] == callback and webhook["all_events"]:
                return dict(webhook)
        return self.create({"title": title, "callback": callback, "all_events": True})

    def subscribers(self, event_type: str) -> list[tuple[str, str]]:
        """``(webhook id, callback url)`` of every webhook subscribed to ``event_type``, oldest first."""
        found = []
        for row in self.store.fetchall("SELECT id, data FROM webhooks ORDER BY seq"):
            webhook = load_json(row["data"])
            if webhook["all_events"] or event_type in webhook["events"]:
                found.append((str(row["id"]), str(webhook["callback"])))
        return found

    def private_key(self, webhook_id: str) -> str | None:
        """The webhook's private key; None once the webhook is deleted."""
        found = self.store.fetchone("SELECT private_key FROM webhooks WHERE id = ?", (webhook_id,))
        return None if found is None else str(found["private_key"])

    def reset(self, *, keep: bool, regenerate_keys: bool) -> None:
        """Delete every webhook unless ``keep``; give the kept ones new keys with ``regenerate_keys``."""
        if not keep:
            self.store.execute("DELETE FROM webhooks")
        if regenerate_keys:
            for row in self.store.fetchall("SELECT id FROM webhooks"):
                self.set_key(row["id"], keys.generate_private_key_pem())
