"""The proof: at-least-once delivery to a real HTTP receiver that fails, times out, resets and answers out
of order; stable ids and bodies; signatures checked with the documented code; rotation; dead letters;
replay; and no delivery ever sent twice at the same time by two workers or two sweeps."""

import json
import random
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from wallet.events import catalogue, endpoints, services
from wallet.events.models import Delivery, DeliveryAttempt, DeliveryStatus, Event
from wallet.events.tests.conftest import Receiver, documented_verify, drain, record_event

pytestmark = pytest.mark.django_db(transaction=True)  # real commits: on_commit, threads, row locks

verify = documented_verify()


def _endpoint(receiver: Receiver, event_types: list[str] | None = None) -> tuple[Any, str]:
    created = endpoints.endpoint_create(url=receiver.url, event_types=event_types, now=timezone.now())
    return created.endpoint, created.secret


def _in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in `count` threads released together; each closes its own database connection."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def _overlapping(requests: Any) -> list[str]:
    by_event: dict[str, list[tuple[float, float]]] = {}
    for request in requests:
        by_event.setdefault(request.event_id, []).append((request.started, request.finished))
    return [
        event_id
        for event_id, spans in by_event.items()
        if any(
            later[0] < earlier[1] for earlier, later in zip(sorted(spans), sorted(spans)[1:], strict=False)
        )
    ]


class TestAtLeastOnce:
    def test_every_event_reaches_every_matching_endpoint_through_failures(
        self, make_receiver: Callable[[], Receiver], settings: Any, report_figure: Callable[[str], None]
    ) -> None:
        settings.EVENTS_MAX_ATTEMPTS = 12  # enough for the worst run of scripted failures below
        rng = random.Random(19)  # a reproducible mix of failures
        failures = [500, 503, "reset", ("sleep", 0.8), "redirect"]
        everything, withdrawals, deposits_done = make_receiver(), make_receiver(), make_receiver()
        # Each receiver fails its first requests in a reproducible mix, then answers 200.
        for receiver in (everything, withdrawals, deposits_done):
            receiver.script = [rng.choice(failures) for _ in range(10)]
        endpoints = {
            "all": (everything, *_endpoint(everything)),
            "withdrawal.*": (withdrawals, *_endpoint(withdrawals, ["withdrawal.*"])),
            "deposit.completed": (deposits_done, *_endpoint(deposits_done, ["deposit.completed"])),
        }
        kinds = [name.split(".") for name in catalogue.EVENT_TYPES]
        events = [record_event(transaction_type=kind, status=status) for kind, status in kinds * 3]

        # Two sweeps at once, repeatedly, until nothing is left: each delivery is claimed by one of them.
        for _ in range(40):
            if not Delivery.objects.exclude(status=DeliveryStatus.DELIVERED).exists():
                break
            _in_threads(2, lambda i: services.events_sweep(now=timezone.now()))
        drain()

        requests = 0
        for filters, (receiver, endpoint, secret) in endpoints.items():
            wanted = {
                str(e.id) for e in events if catalogue.matches([] if filters == "all" else [filters], e.type)
            }
            assert receiver.accepted_ids() == wanted, filters
            bodies = {e.id: e.body.encode() for e in events}
            for request in receiver.requests:
                # The same id and the same bytes on every attempt, and every signature verifies.
                assert request.body == bodies[uuid.UUID(request.event_id)]
                assert json.loads(request.body)["id"] == request.event_id
                assert verify(secret, request.body, request.headers["Wallet-Signature"])
            # Never two attempts at one delivery at the same time (an attempt the wallet gave up on after its
            # timeout may still be running at the receiver: that one is not the wallet's in flight any more).
            assert not _overlapping(r for r in receiver.requests if r.answered != "timeout"), filters
            # Every attempt was recorded, and every delivery ended delivered.
            assert DeliveryAttempt.objects.filter(delivery__endpoint=endpoint).count() == len(
                receiver.requests
            )
            assert set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {
                "delivered"
            }
            answered = {r.answered for r in receiver.requests}
            assert answered - {"200"}, f"{filters}: the receiver never failed, so this proved nothing"
            requests += len(receiver.requests)
        report_figure(
            f"outgoing events: {len(events)} events to 3 endpoints through 500/503/reset/timeout/redirect, "
            f"{requests} requests, every matching event delivered, 0 parallel attempts"
        )

    def test_a_timed_out_attempt_is_sent_again_with_the_same_id(self, receiver: Receiver) -> None:
        receiver.script = [("sleep", 0.8)]  # the receiver stores it, but answers after the wallet gave up
        _endpoint(receiver)
        event = record_event()
        drain()

        assert [r.answered for r in receiver.requests] == ["timeout", "200"]
        assert {r.event_id for r in receiver.requests} == {str(event.id)}
        assert receiver.requests[0].body == receiver.requests[1].body
        attempts = list(DeliveryAttempt.objects.order_by("id"))
        assert attempts[0].status_code is None
        assert "timed out" in attempts[0].error
        assert (attempts[1].status_code, attempts[1].succeeded) == (200, True)
        assert '"received"' in attempts[1].response_excerpt
        assert attempts[1].latency_ms < 500

    def test_out_of_order_answers_leave_each_event_delivered_once(
        self, receiver: Receiver, settings: Any
    ) -> None:
        _endpoint(receiver)
        with_grace = [record_event(amount=1_000 + i, send_now=False) for i in range(5)]
        # The earliest event is answered last.
        for i, event in enumerate(with_grace):
            receiver.per_event[str(event.id)] = [("sleep", 0.4 - 0.08 * i)]
        ids = list(Delivery.objects.order_by("id").values_list("id", flat=True))
        results = _in_threads(
            len(ids), lambda i: services.event_deliver(delivery_id=ids[i], now=timezone.now())
        )

        assert results == ["delivered"] * 5
        finished = [r.event_id for r in sorted(receiver.requests, key=lambda r: r.finished)]
        assert finished != [str(e.id) for e in with_grace]  # answered out of order
        assert sorted(finished) == sorted(str(e.id) for e in with_grace)  # each exactly once


class TestDeadLetterAndReplay:
    def test_dead_lettered_after_n_attempts_then_replay_redelivers_the_same_event(
        self, receiver: Receiver, settings: Any, admin_api: Any
    ) -> None:
        settings.EVENTS_MAX_ATTEMPTS = 4
        receiver.script = [500] * 4
        endpoint, secret = _endpoint(receiver)
        event = record_event(transaction_type="withdrawal", status="failed")
        drain()

        delivery = Delivery.objects.get()
        assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("dead_lettered", 4, 500)
        assert [r.answered for r in receiver.requests] == ["500"] * 4
        assert DeliveryAttempt.objects.filter(delivery=delivery, succeeded=False).count() == 4
        services.events_sweep(now=timezone.now() + timedelta(days=30))
        assert len(receiver.requests) == 4  # dead letters are not retried by the sweep

        response = admin_api.post(
            f"/api/v1/admin/event-endpoints/{endpoint.id}/replay", {"event_id": str(event.id)}, format="json"
        )
        assert response.status_code == 200, response.content
        assert response.json() == {"queued": 1}
        drain()

        assert len(receiver.requests) == 5
        replayed = receiver.requests[-1]
        assert replayed.event_id == str(event.id)
        assert replayed.body == receiver.requests[0].body
        assert verify(secret, replayed.body, replayed.headers["Wallet-Signature"])
        delivery.refresh_from_db()
        assert (delivery.status, delivery.replays) == ("delivered", 1)

    def test_replay_by_time_range_sends_only_that_range_and_only_matching_types(
        self, receiver: Receiver
    ) -> None:
        endpoint, _ = _endpoint(receiver, ["deposit.*"])
        old = record_event()
        start = timezone.now()
        inside = [
            record_event(),
            record_event(status="failed"),
            record_event(transaction_type="withdrawal", status="failed"),
        ]
        end = timezone.now()
        record_event()
        drain()
        before = len(receiver.requests)

        queued = services.event_replay(
            endpoint_id=endpoint.id, created_after=start, created_before=end, now=timezone.now()
        )
        drain()

        assert queued == 2  # the withdrawal event is not this endpoint's
        again = [r.event_id for r in receiver.requests[before:]]
        assert sorted(again) == sorted(str(e.id) for e in inside[:2])
        assert str(old.id) not in again


class TestRotation:
    def test_a_rotation_mid_stream_still_verifies(self, receiver: Receiver, settings: Any) -> None:
        endpoint, old_secret = _endpoint(receiver)
        record_event()
        receiver.script = [500]  # the next event fails before the rotation and is retried after it
        pending = record_event(status="failed")
        assert Delivery.objects.get(event=pending).status == "pending"

        rotated = endpoints.endpoint_rotate_secret(endpoint_id=endpoint.id, now=timezone.now())
        new_secret = rotated.secret
        record_event(transaction_type="withdrawal", status="processing")
        drain()

        first, failed = receiver.requests[:2]
        retried, after = sorted(receiver.requests[2:], key=lambda r: r.event_id != str(pending.id))
        assert verify(old_secret, first.body, first.headers["Wallet-Signature"])
        assert not verify(new_secret, first.body, first.headers["Wallet-Signature"])
        assert first.headers["Wallet-Signature"].count("v1=") == 1
        for request in (retried, after):  # both secrets sign during the grace period
            assert request.headers["Wallet-Signature"].count("v1=") == 2
            assert verify(old_secret, request.body, request.headers["Wallet-Signature"])
            assert verify(new_secret, request.body, request.headers["Wallet-Signature"])
        assert retried.event_id == failed.event_id == str(pending.id)

        # After the grace period only the new secret signs.
        late = timezone.now() + timedelta(seconds=settings.EVENTS_SECRET_ROTATION_GRACE_SECONDS + 1)
        event = record_event(status="completed", amount=7_000, send_now=False)
        assert (
            services.event_deliver(delivery_id=Delivery.objects.get(event=event).id, now=late) == "delivered"
        )
        last = receiver.requests[-1]
        assert last.headers["Wallet-Signature"].count("v1=") == 1
        assert verify(new_secret, last.body, last.headers["Wallet-Signature"])
        assert not verify(old_secret, last.body, last.headers["Wallet-Signature"])

    def test_the_documented_check_refuses_tampering_old_timestamps_and_wrong_secrets(
        self, receiver: Receiver
    ) -> None:
        _, secret = _endpoint(receiver)
        record_event()
        request = receiver.requests[0]
        header = request.headers["Wallet-Signature"]
        timestamp = int(header.split(",")[0].removeprefix("t="))

        assert verify(secret, request.body, header)
        assert not verify(secret, request.body.replace(b"1000", b"9000"), header)
        assert not verify("whsec_wrong", request.body, header)
        assert not verify(secret, request.body, header, now=timestamp + 301)
        assert not verify(secret, request.body, header.replace(f"t={timestamp}", f"t={timestamp + 1}"))
        assert not verify(secret, request.body, "v1=" + header.split("v1=")[1])  # no timestamp
        assert not verify(secret, request.body, "garbage")


class TestClaim:
    def test_concurrent_workers_send_one_delivery_once(self, receiver: Receiver, settings: Any) -> None:
        _endpoint(receiver)
        with_slow = record_event(send_now=False)
        delivery_id = Delivery.objects.get(event=with_slow).id
        receiver.per_event[str(with_slow.id)] = [("sleep", 0.3)]

        results = _in_threads(
            8, lambda i: services.event_deliver(delivery_id=delivery_id, now=timezone.now())
        )

        assert results.count("delivered") == 1
        assert results.count(None) == 7
        assert len(receiver.requests) == 1
        assert DeliveryAttempt.objects.filter(delivery_id=delivery_id, number=2).count() == 0

    def test_two_sweeps_at_once_never_send_a_delivery_twice(self, receiver: Receiver, settings: Any) -> None:
        _endpoint(receiver)
        events = [record_event(amount=1_000 + i, send_now=False) for i in range(10)]  # the sweeps do it all
        for event in events:
            receiver.per_event[str(event.id)] = [("sleep", 0.1)]
        assert len(receiver.requests) == 0

        _in_threads(2, lambda i: services.events_sweep(now=timezone.now()))

        assert sorted(r.event_id for r in receiver.requests) == sorted(str(e.id) for e in events)
        assert max(receiver.max_in_flight.values()) == 1
        assert DeliveryAttempt.objects.count() == 10

    def test_an_expired_lease_is_taken_over_and_the_dead_worker_cannot_overwrite(
        self, receiver: Receiver, settings: Any
    ) -> None:
        _endpoint(receiver)
        event = record_event(send_now=False)
        delivery = Delivery.objects.get(event=event)
        now = timezone.now()
        claimed = services._claim(delivery_id=delivery.id, now=now)  # a worker that then dies
        assert claimed is not None
        assert services._claim(delivery_id=delivery.id, now=now) is None  # held

        later = now + timedelta(seconds=settings.EVENTS_DELIVERY_LEASE_SECONDS + 1)
        assert services.events_sweep(now=later) == 1  # the sweep sees it as due again
        assert services.event_deliver(delivery_id=delivery.id, now=later) == "delivered"
        dead_delivery, dead_token = claimed
        services._settle(dead_delivery, dead_token, status="dead_lettered", now=later)

        delivery.refresh_from_db()
        assert delivery.status == "delivered"
        assert len(receiver.requests) == 1


class TestBackoff:
    def test_the_delay_doubles_is_capped_and_jittered(self, settings: Any) -> None:
        settings.EVENTS_RETRY_BASE_SECONDS, settings.EVENTS_RETRY_MAX_SECONDS = 30, 600
        for attempts, ceiling in ((1, 30), (2, 60), (3, 120), (5, 480), (6, 600), (20, 600)):
            delays = {services.retry_delay(attempts) for _ in range(50)}
            assert all(ceiling / 2 <= d <= ceiling for d in delays), attempts
            assert len(delays) > 1  # jittered

    def test_a_failed_attempt_waits_its_backoff(self, receiver: Receiver, settings: Any) -> None:
        settings.EVENTS_RETRY_BASE_SECONDS = 60
        receiver.script = [500]
        _endpoint(receiver)
        record_event()
        delivery = Delivery.objects.get()
        wait = (delivery.next_attempt_at - delivery.updated_at).total_seconds()

        assert delivery.status == "pending"
        assert 30 <= wait <= 60
        assert services.events_sweep(now=timezone.now()) == 0
        assert Event.objects.count() == 1
