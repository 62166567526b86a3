"""A real HTTP receiver standing in for the client's backend, and the documented verification code."""

import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[4] / "docs" / "events.md"


def documented_verify() -> Callable[..., bool]:
    """The `verify` function exactly as docs/events.md shows it (its first Python block)."""
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert code is not None, "docs/events.md lost its verification example"
    namespace: dict[str, Any] = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify"]  # type: ignore[no-any-return]


@dataclass
class Received:
    event_id: str
    body: bytes
    headers: dict[str, str]
    answered: str  # what the receiver did: "200", "500", "timeout", "reset", ...
    started: float
    finished: float = 0.0


@dataclass
class Receiver:
    """Answers each request by the next scripted behaviour (then 200): an int status, ("sleep", s) then 200,
    "reset" (RST after reading the body), "redirect"; tracks concurrency per event id."""

    url: str
    script: list[Any] = field(default_factory=list)
    per_event: dict[str, list[Any]] = field(default_factory=dict)  # event id -> its own script
    requests: list[Received] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self, event_id: str) -> Any:
        with self.lock:
            queue = self.per_event.get(event_id)
            if queue:
                return queue.pop(0)
            return self.script.pop(0) if self.script else 200

    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.answered.startswith("2")]

    def accepted_ids(self) -> set[str]:
        return {r.event_id for r in self.accepted()}


@pytest.fixture
def make_receiver() -> Iterator[Callable[[], Receiver]]:
    """Start as many receivers as a test needs (one per endpoint keeps their records apart)."""
    servers: list[ThreadingHTTPServer] = []

    def make() -> Receiver:
        receiver, server = _start_receiver()
        servers.append(server)
        return receiver

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver(make_receiver: Callable[[], Receiver]) -> Receiver:
    return make_receiver()


def _start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    state: Receiver

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            event_id = self.headers.get("Wallet-Event-Id", "")
            record = Received(event_id, body, dict(self.headers.items()), "", time.monotonic())
            with state.lock:
                state.requests.append(record)
                state.in_flight[event_id] = state.in_flight.get(event_id, 0) + 1
                state.max_in_flight[event_id] = max(
                    state.max_in_flight.get(event_id, 0), state.in_flight[event_id]
                )
            behaviour = state.next_behaviour(event_id)
            try:
                if behaviour == "reset":
                    record.answered = "reset"
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if behaviour == "redirect":
                    record.answered = "302"
                    self._answer(302, b"", location=state.url + "elsewhere")
                    return
                status = 200
                if isinstance(behaviour, tuple) and behaviour[0] == "sleep":
                    record.answered = "timeout" if behaviour[1] >= 0.5 else "200"
                    time.sleep(behaviour[1])
                else:
                    status = int(behaviour)
                    record.answered = str(status)
                self._answer(status, json.dumps({"received": event_id}).encode())
            except OSError:
                pass  # the wallet gave up waiting and closed the connection
            finally:
                record.finished = time.monotonic()
                with state.lock:
                    state.in_flight[event_id] -= 1

        def _answer(self, status: int, payload: bytes, location: str | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if location:
                self.send_header("Location", location)
            self.end_headers()
            self.wfile.write(payload)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # resets and abandoned connections are the point of these tests

    server = Server(("127.0.0.1", 0), Handler)
    state = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return state, server


@pytest.fixture(autouse=True)
def _fast_retries(settings: Any) -> None:
    """Retries due at once and a short timeout, so a test walks the whole schedule in seconds."""
    settings.EVENTS_RETRY_BASE_SECONDS = 0
    settings.EVENTS_DELIVERY_TIMEOUT_SECONDS = 0.5
    settings.EVENTS_SWEEP_GRACE_SECONDS = 0
    settings.EVENTS_MAX_ATTEMPTS = 6
    settings.EVENTS_ALLOW_LOCAL_URLS = True


def record_event(
    *,
    transaction_type: str = "deposit",
    status: str = "completed",
    amount: int = 1_000,
    user_id: Any = None,
    send_now: bool = True,
) -> Any:
    """Record one event in its own committed transaction, as the transactions hook does; its Event row.

    send_now=False loses the on-commit delivery task (as a broker restart would), leaving the delivery to
    the sweep or to the test.
    """
    import uuid
    from contextlib import nullcontext
    from unittest import mock

    from django.db import transaction

    from wallet.events import public as events
    from wallet.events import services
    from wallet.events.models import Event

    transaction_id = uuid.uuid4()
    lose_task = nullcontext() if send_now else mock.patch.object(services, "_enqueue_on_commit")
    with lose_task, transaction.atomic():
        events.event_record_for_transaction(
            transaction_id=transaction_id,
            user_id=user_id or uuid.uuid4(),
            transaction_type=transaction_type,
            status=status,
            amount=amount,
            currency="ZAR",
        )
    return Event.objects.get(transaction_id=transaction_id)


def drain(rounds: int = 60) -> None:
    """Run the sweep (deliveries run inline: Celery is eager in tests) until nothing is left to send."""
    from django.utils import timezone

    from wallet.events import services
    from wallet.events.models import Delivery, DeliveryStatus

    for _ in range(rounds):
        if not Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.DELIVERING]
        ).exists():
            return
        services.events_sweep(now=timezone.now())
        time.sleep(0.02)
    raise AssertionError("deliveries still pending after the sweeps")
