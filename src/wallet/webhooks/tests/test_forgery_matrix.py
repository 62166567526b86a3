"""The webhook forgery matrix (issue #8, reliability note R5): generated forgeries of real signed events.

The targets are real: two deposits whose purchases Revio says are paid (pending on our side). Signed
events are the gateway's, and the gateway moves money only through purchases (payouts go through the EFT
API, whose callbacks are unsigned triggers: test_eft_callbacks.py). The honest events for them are signed
with the key pinned as Revio's, so an accepted forgery WOULD move money. Every mutant is derived from those
honest deliveries by a seeded generator (the same mutants every run; a failure names its seed, kind and
index) and must be refused with 401 in the API's error shape: nothing logged, nothing credited. Finally the
honest events themselves must still be accepted and applied exactly once, so the test also fails if
verification is broken the other way (refusing everything).

test_intake.py holds one hand-written case per forgery idea; this file is the generated matrix, plus
oversized bodies and a flood from many threads over real HTTP.
"""

import base64
import hashlib
import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.db import connection
from rest_framework.test import APIClient

from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.core.testing import proof_size
from wallet.ledger.selectors import balance_get, ledger_problems
from wallet.transactions import services as wallet
from wallet.transactions.models import Transaction
from wallet.webhooks.models import WebhookLog, WebhookRejection
from wallet.webhooks.tests.conftest import Signer, jsonb, wait_for

pytestmark = pytest.mark.proof

URL = "/api/v1/webhooks/revio"
SEED = 8_2026  # fixed: the same mutants every run, so any failure replays exactly
DEPOSIT_AMOUNT = 7_000
FUNDED = 20_000
REFILL_AMOUNT = 6_000

# --------------------------------------------------------------------------------------------------------
# The honest events and the objects they would move money for
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Honest:
    body: bytes
    signature: str  # base64, as Revio sends it

    @property
    def signature_bytes(self) -> bytes:
        return base64.b64decode(self.signature)


@dataclass
class Targets:
    user: User
    deposit: Transaction
    refill: Transaction
    paid: Honest  # purchase.paid for the deposit
    refill_paid: Honest  # purchase.paid for the second deposit
    viewed: Honest  # an honest but harmless event (purchase.viewed), a source of replayed signatures

    def figures(self) -> tuple[int, int]:
        balance = balance_get(user_id=self.user.id, currency="ZAR")
        return balance.available, balance.reserved

    def statuses(self) -> tuple[str, str]:
        self.deposit.refresh_from_db()
        self.refill.refresh_from_db()
        return self.deposit.status, self.refill.status


def revio_event(sandbox: SandboxProcess, path: str, event_type: str) -> dict[str, Any]:
    """Revio's own object as its API serves it, plus event_type, as Revio delivers it."""
    with sandbox.api_client() as client:
        response = client.get(path)
        response.raise_for_status()
        event = dict(response.json())
    event["event_type"] = event_type
    event["updated_on"] = int(time.time())  # inside the retry horizon whenever the test runs
    return event


def make_targets(
    user: User, fund: Callable[[User, int], Transaction], revio: SandboxProcess, signer: Signer
) -> Targets:
    fund(user, FUNDED)
    deposit, refill = (
        wallet.deposit_create(user_id=user.id, email=user.email, amount=amount, currency="ZAR")
        for amount in (DEPOSIT_AMOUNT, REFILL_AMOUNT)
    )
    for target in (deposit, refill):
        assert target.provider_object_id
        revio.control.purchase_pay(target.provider_object_id)

    def honest(event: dict[str, Any]) -> Honest:
        body = jsonb(event)
        return Honest(body=body, signature=signer.sign(body))

    paid = revio_event(revio, f"purchases/{deposit.provider_object_id}/", "purchase.paid")
    viewed = {
        **paid,
        "event_type": "purchase.viewed",
        "status": "viewed",
        "updated_on": paid["updated_on"] - 5,
    }
    refill_paid = revio_event(revio, f"purchases/{refill.provider_object_id}/", "purchase.paid")
    assert paid["status"] == refill_paid["status"] == "paid"
    return Targets(
        user=user,
        deposit=deposit,
        refill=refill,
        paid=honest(paid),
        refill_paid=honest(refill_paid),
        viewed=honest(viewed),
    )


# --------------------------------------------------------------------------------------------------------
# The mutant generator
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutant:
    kind: str
    index: int
    body: bytes
    signatures: tuple[str, ...]  # X-Signature header lines as sent: none, one, or several

    @property
    def header(self) -> str | None:
        """The header value the application sees: a server joins repeated header lines with commas."""
        return ",".join(self.signatures) if self.signatures else None


def _flip_bits(data: bytes, rng: random.Random, flips: int) -> bytes:
    mutated = bytearray(data)
    for _ in range(flips):
        position = rng.randrange(len(mutated))
        mutated[position] ^= 1 << rng.randrange(8)
    return bytes(mutated)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _escaped(value: Any, rng: random.Random) -> bytes:
    """The same JSON data as jsonb() gives, with some ASCII characters of strings written as \\uXXXX."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
        return b"{" + b", ".join(_escaped(k, rng) + b": " + _escaped(v, rng) for k, v in items) + b"}"
    if isinstance(value, list):
        return b"[" + b", ".join(_escaped(v, rng) for v in value) + b"]"
    if isinstance(value, str):
        out = []
        for char in json.dumps(value)[1:-1]:
            out.append(f"\\u{ord(char):04x}" if char.isalnum() and rng.random() < 0.3 else char)
        return ('"' + "".join(out) + '"').encode()
    return json.dumps(value).encode()


class Forger:
    """Derives forged deliveries from honest ones; each kind is one way an attacker (or a broken proxy or
    client library) could produce a delivery that is not Revio's signature over these exact bytes."""

    def __init__(self, *, signer: Signer, honest: list[Honest], replay_sources: list[Honest], seed: int):
        self.signer = signer
        self.honest = honest
        self.replay_sources = replay_sources
        self.rng = random.Random(seed)
        # Other RSA keys (an attacker's own key pair), including a longer one.
        self.foreign_keys = [
            rsa.generate_private_key(public_exponent=65537, key_size=size) for size in (2048, 2048, 3072)
        ]
        self.kinds: dict[str, Callable[[Honest], tuple[bytes, tuple[str, ...]]]] = {
            "body bit flips": self.body_bit_flips,
            "body truncated": self.body_truncated,
            "body with a field injected": self.body_field_injected,
            "body whitespace": self.body_whitespace,
            "body unicode-escaped": self.body_unicode_escaped,
            "body re-serialised": self.body_reserialised,
            "signature over re-serialised JSON": self.signed_reserialised,
            "signature bit flips": self.signature_bit_flips,
            "signature truncated": self.signature_truncated,
            "garbled base64": self.garbled_base64,
            "missing or empty header": self.missing_header,
            "duplicated header": self.duplicated_header,
            "wrong key": self.wrong_key,
            "RSA-PSS instead of PKCS#1 v1.5": self.pss,
            "other digest (SHA-1/224/384/512)": self.other_digest,
            "replayed signature of another body": self.replayed_signature,
            "degenerate signature": self.degenerate_signature,
        }
        # Pairs that are genuinely valid (a body and our key's PKCS#1 v1.5 SHA-256 signature of it): PKCS#1
        # v1.5 is deterministic, so these are the only verifying pairs a mutant could land on by chance.
        self.valid = {(h.body, h.signature_bytes) for h in [*honest, *replay_sources]}
        # Every (body, X-Signature lines) this forger has produced, across calls: the count is of distinct
        # deliveries. Kinds that ran out of new forms.
        self.seen: set[tuple[bytes, tuple[str, ...]]] = set()
        self.exhausted: set[str] = set()

    # A kind that gives only repeats this many times in a row has shown all it can (a missing header has
    # six forms): it leaves the rotation and the other kinds make up the count.
    EXHAUSTED_AFTER = 300

    def mutants(self, count: int, *, wire: Callable[[Mutant], Mutant] | None = None) -> Iterator[Mutant]:
        """`count` distinct mutants: no two with the same body and X-Signature lines (as `wire` delivers
        them, when given), none an honest delivery. Repeats are drawn and dropped, not sent again."""
        active = list(self.kinds)
        repeats: Counter[str] = Counter()
        produced = 0
        while produced < count:
            assert active, f"every kind exhausted after {produced} distinct mutants (asked for {count})"
            kind = active[produced % len(active)]
            source = self.rng.choice(self.honest)
            body, signatures = self.kinds[kind](source)
            mutant = Mutant(kind=kind, index=produced, body=body, signatures=signatures)
            delivered = wire(mutant) if wire else mutant
            if self.is_valid(delivered):
                continue  # the mutation happened to give back an honest delivery: not a forgery
            identity = (delivered.body, delivered.signatures)
            if identity in self.seen:
                repeats[kind] += 1
                if repeats[kind] >= self.EXHAUSTED_AFTER:
                    active.remove(kind)
                    self.exhausted.add(kind)
                continue
            repeats[kind] = 0
            self.seen.add(identity)
            produced += 1
            yield delivered

    def is_valid(self, mutant: Mutant) -> bool:
        header = mutant.header
        if header is None:
            return False
        try:
            signature = base64.b64decode(header.strip(), validate=True)
        except ValueError:
            return False
        return (mutant.body, signature) in self.valid

    def sign(
        self, body: bytes, *, key: rsa.RSAPrivateKey | None = None, pad: Any = None, digest: Any = None
    ) -> str:
        key = key or self.signer.private_key
        return _b64(key.sign(body, pad or padding.PKCS1v15(), digest or hashes.SHA256()))

    # -- the body changes, the signature is the honest one --------------------------------------------

    def body_bit_flips(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        return _flip_bits(h.body, self.rng, self.rng.randint(1, 4)), (h.signature,)

    def body_truncated(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        return h.body[: self.rng.randrange(len(h.body))], (h.signature,)

    def body_field_injected(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        event = json.loads(h.body)
        field, value = self.rng.choice(
            [
                ("status", "paid"),
                ("amount", 99_999_999),
                ("reference", str(self.rng.getrandbits(64))),
                ("event_type", "purchase.paid"),
                ("updated_on", event["updated_on"] + self.rng.randint(1, 3600)),
            ]
        )
        event[field] = value
        body = jsonb(event)
        return (body if body != h.body else body + b" "), (h.signature,)

    def body_whitespace(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        choice = self.rng.randrange(5)
        if choice == 0:
            return h.body + b"\n", (h.signature,)
        if choice == 1:
            return b" " + h.body, (h.signature,)
        if choice == 2:
            return h.body + b"\r\n", (h.signature,)
        separators = [i for i, byte in enumerate(h.body) if byte in b",:"]
        at = self.rng.choice(separators) + 1
        return h.body[:at] + self.rng.choice([b" ", b"\t", b"\n"]) + h.body[at:], (h.signature,)

    def body_unicode_escaped(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        data = json.loads(h.body)
        body = _escaped(data, self.rng)
        assert json.loads(body) == data  # the same event to a JSON parser, other bytes on the wire
        return (body if body != h.body else body + b"\n"), (h.signature,)

    def body_reserialised(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        return self._reserialised(h), (h.signature,)

    def _reserialised(self, h: Honest) -> bytes:
        data = json.loads(h.body)
        options = self.rng.choice(
            [
                {"separators": (",", ":")},
                {"separators": (", ", ": "), "sort_keys": True},
                {"indent": 2},
                {},  # json.dumps' defaults: insertion order, ", " and ": "
                {"ensure_ascii": False, "separators": (",", ": ")},
            ]
        )
        if self.rng.random() < 0.5:
            data = dict(reversed(list(data.items())))
        body = json.dumps(data, **options).encode()
        return body if body != h.body else body + b"\n"

    # -- the body is honest, the signature is not its signature ----------------------------------------

    def signed_reserialised(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        """A sender that signed json.dumps(parsed event) instead of the bytes it sent."""
        return h.body, (self.sign(self._reserialised(h)),)

    def signature_bit_flips(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        return h.body, (_b64(_flip_bits(h.signature_bytes, self.rng, self.rng.randint(1, 3))),)

    def signature_truncated(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        if self.rng.random() < 0.5:
            return h.body, (_b64(h.signature_bytes[: self.rng.randrange(len(h.signature_bytes))]),)
        return h.body, (h.signature[: self.rng.randrange(len(h.signature))],)  # base64 text cut anywhere

    def garbled_base64(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        text = h.signature
        choice = self.rng.randrange(6)
        if choice == 0:  # a character outside the alphabet
            at = self.rng.randrange(len(text))
            garbled = text[:at] + self.rng.choice("!*.~$%é\\\"'") + text[at + 1 :]
        elif choice == 1:  # padding removed or doubled
            garbled = text.rstrip("=") if text.endswith("=") else text + "=="
        elif choice == 2:  # padding in the middle
            at = self.rng.randrange(1, len(text) - 4)
            garbled = text[:at] + "=" + text[at:]
        elif choice == 3:  # the URL-safe alphabet
            garbled = base64.urlsafe_b64encode(h.signature_bytes).decode()
            if garbled == text:
                garbled = garbled.rstrip("=")
        elif choice == 4:  # whitespace inside
            at = self.rng.randrange(1, len(text) - 1)
            garbled = text[:at] + self.rng.choice([" ", "\t"]) + text[at:]
        else:  # encoded as hex instead of base64
            garbled = h.signature_bytes.hex()
        return h.body, (garbled,)

    def missing_header(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        return h.body, self.rng.choice([(), ("",), (" ",)])

    def duplicated_header(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        """Two X-Signature lines: the honest one with a forged one, either order, or the honest one twice."""
        forged = self.sign(h.body, key=self.rng.choice(self.foreign_keys))
        return h.body, self.rng.choice(
            [(h.signature, forged), (forged, h.signature), (h.signature, h.signature)]
        )

    def wrong_key(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        return h.body, (self.sign(h.body, key=self.rng.choice(self.foreign_keys)),)

    def pss(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        salt = self.rng.choice([0, 20, 32, padding.PSS.MAX_LENGTH])
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
        return h.body, (self.sign(h.body, pad=pad),)

    def other_digest(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        digest = self.rng.choice([hashes.SHA1(), hashes.SHA224(), hashes.SHA384(), hashes.SHA512()])  # noqa: S303
        return h.body, (self.sign(h.body, digest=digest),)

    def replayed_signature(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        other = self.rng.choice([s for s in [*self.honest, *self.replay_sources] if s.body != h.body])
        return h.body, (other.signature,)

    def degenerate_signature(self, h: Honest) -> tuple[bytes, tuple[str, ...]]:
        size = len(h.signature_bytes)
        raw = self.rng.choice(
            [
                bytes(size),  # zero
                b"\xff" * size,  # larger than the modulus
                bytes(size - 1) + b"\x01",  # one
                self.rng.randbytes(size),
                hashlib.sha256(h.body).digest(),  # the bare digest
                b"",
            ]
        )
        return h.body, (_b64(raw),)


def as_received(mutant: Mutant) -> Mutant:
    """The delivery as the application sees it through the test client: one X-Signature value."""
    return replace(mutant, signatures=(mutant.header,) if mutant.header is not None else ())


# --------------------------------------------------------------------------------------------------------
# Checks shared by the tests
# --------------------------------------------------------------------------------------------------------


def assert_refused_in_error_shape(status: int, payload: Any, mutant: Mutant) -> None:
    where = f"seed {SEED}, mutant #{mutant.index} ({mutant.kind}), header {mutant.header!r:.80}"
    assert status == 401, f"{where}: answered {status} {payload!r:.300}"
    assert set(payload) == {"error"}, where
    assert set(payload["error"]) == {"code", "message", "details"}, where
    expected = {"signature_missing"} if not mutant.header else {"signature_invalid"}
    assert payload["error"]["code"] in expected, where


def assert_nothing_moved(targets: Targets) -> None:
    assert not WebhookLog.objects.exists()
    assert targets.statuses() == ("pending", "pending")
    assert targets.figures() == (FUNDED, 0)
    assert ledger_problems() == []


def deliver(api: APIClient, body: bytes, header: str | None) -> Any:
    extra = {"HTTP_X_SIGNATURE": header} if header is not None else {}
    return api.post(URL, data=body, content_type="application/json", **extra)


@pytest.fixture
def targets(
    make_user: Callable[..., User],
    fund: Callable[[User, int], Transaction],
    revio: SandboxProcess,
    signer: Signer,
) -> Targets:
    return make_targets(make_user(), fund, revio, signer)


# --------------------------------------------------------------------------------------------------------
# The matrix, through the endpoint in-process (bulk speed)
# --------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_generated_forgery_is_accepted_and_the_honest_events_still_are(
    api: APIClient,
    signer: Signer,
    targets: Targets,
    settings: Any,
    report_figure: Callable[[str], None],
    django_capture_on_commit_callbacks: Any,
) -> None:
    # The per-source rate limit would answer 429 after 6,000/min; here the signature check is under test,
    # so every mutant must reach it. The flood test below keeps the limit and counts its 429s.
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "webhook_source": "10000000/min"}
    count = proof_size(1_000, 10_000)
    forger = Forger(
        signer=signer,
        honest=[targets.paid, targets.refill_paid],
        replay_sources=[targets.viewed],
        seed=SEED,
    )
    kinds: Counter[str] = Counter()
    distinct: set[tuple[bytes, str | None]] = set()
    accepted = 0
    with django_capture_on_commit_callbacks(execute=True):  # an accepted mutant would be processed at once
        for mutant in forger.mutants(count, wire=as_received):
            response = deliver(api, mutant.body, mutant.header)
            kinds[mutant.kind] += 1
            distinct.add((mutant.body, mutant.header))
            accepted += response.status_code == 200
            assert_refused_in_error_shape(response.status_code, response.json(), mutant)
    unchanged = targets.figures() == (FUNDED, 0)
    report_figure(
        f"webhook forgery: {len(distinct):,} distinct mutants (by body and X-Signature as received; "
        f"{len(kinds)} kinds, {len(forger.exhausted)} ran out of new forms, seed {SEED}), "
        f"accepted {accepted}, balances {'unchanged' if unchanged else 'CHANGED'}"
    )
    # Distinct as the application receives them: repeated header lines joined, as a server joins them.
    assert len(distinct) == count
    assert set(kinds) == set(forger.kinds)
    # Every kind that did not run out of new forms gave at least its share.
    assert min(n for kind, n in kinds.items() if kind not in forger.exhausted) >= count // len(forger.kinds)
    assert_nothing_moved(targets)
    assert WebhookRejection.objects.count() == count  # each refusal recorded, with its reason
    assert set(WebhookRejection.objects.values_list("reason", flat=True)) == {
        "signature_invalid",
        "signature_missing",
    }

    # The honest events, untouched, are accepted and move the money exactly once.
    for honest in (targets.paid, targets.refill_paid, targets.paid, targets.refill_paid):
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(api, honest.body, honest.signature)
        assert response.status_code == 200, response.content
    assert sorted(WebhookLog.objects.values_list("status", "duplicates")) == [
        ("processed", 1),
        ("processed", 1),
    ]
    assert targets.statuses() == ("completed", "completed")
    assert targets.figures() == (FUNDED + DEPOSIT_AMOUNT + REFILL_AMOUNT, 0)
    assert ledger_problems() == []


# --------------------------------------------------------------------------------------------------------
# Over real HTTP: a slice of the matrix, oversized bodies, and a flood from many threads
# --------------------------------------------------------------------------------------------------------


def on_the_wire(mutant: Mutant) -> Mutant:
    """HTTP trims whitespace around header values (and h11 refuses to send it): what a server receives."""
    return replace(mutant, signatures=tuple(value.strip() for value in mutant.signatures))


def post_over_http(
    client: httpx.Client, url: str, body: bytes, signatures: tuple[str, ...]
) -> httpx.Response:
    # Header bytes are ISO-8859-1 on the wire (and in WSGI), so a garbled value may hold any of them.
    headers = [
        (b"Content-Type", b"application/json"),
        *((b"X-Signature", s.encode("latin-1")) for s in signatures),
    ]
    return client.post(url, content=body, headers=headers)


@pytest.mark.django_db(transaction=True)
def test_forgeries_over_real_http_and_oversized_bodies_are_refused(
    live_server: Any, signer: Signer, targets: Targets, settings: Any, report_figure: Callable[[str], None]
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "webhook_source": "10000000/min"}  # as above
    url = f"{live_server.url}{URL}"
    forger = Forger(
        signer=signer,
        honest=[targets.paid, targets.refill_paid],
        replay_sources=[targets.viewed],
        seed=SEED + 1,
    )
    count = proof_size(100, 1_000)
    distinct: set[tuple[bytes, tuple[str, ...]]] = set()
    with httpx.Client(timeout=60) as client:
        # Repeated header lines really are sent as separate lines; distinct as they go on the wire.
        for mutant in forger.mutants(count, wire=on_the_wire):
            distinct.add((mutant.body, mutant.signatures))
            response = post_over_http(client, url, mutant.body, mutant.signatures)
            assert_refused_in_error_shape(response.status_code, response.json(), mutant)
    assert len(distinct) == count
    with httpx.Client(timeout=60) as client:
        # Oversized bodies, even correctly signed ones, are refused by size before anything reads them.
        limit = settings.API_MAX_BODY_BYTES
        sizes = [limit + 1, 1024 * 1024 + 1, 10 * 1024 * 1024]
        for size in sizes:
            body = targets.paid.body + b" " * (size - len(targets.paid.body))
            response = post_over_http(client, url, body, (signer.sign(body),))
            assert response.status_code == 400, response.text[:300]
            assert response.json() == {
                "error": {
                    "code": "body_too_large",
                    "message": f"The request body is larger than the {limit} bytes this API accepts.",
                    "details": {"limit_bytes": limit},
                }
            }
        assert client.get(f"{live_server.url}/healthz").status_code == 200
        assert client.get(f"{live_server.url}/readyz").status_code == 200
        assert_nothing_moved(targets)

        honest = post_over_http(client, url, targets.paid.body, (targets.paid.signature,))
        assert honest.status_code == 200, honest.text
    wait_for(lambda: targets.statuses()[0] == "completed", what="the honest deposit event to be applied")
    assert targets.figures() == (FUNDED + DEPOSIT_AMOUNT, 0)
    report_figure(
        f"webhook forgery over real HTTP: {len(distinct)} distinct mutants and {len(sizes)} oversized bodies "
        "(up to 10 MiB), "
        "accepted 0, service up"
    )


class _CountingInput(io.RawIOBase):
    """A request body stream that never ends and counts what is read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.read_bytes += len(buffer)
        buffer[:] = b" " * len(buffer)
        return len(buffer)


@pytest.mark.django_db
def test_an_oversized_body_is_refused_without_reading_it(api: APIClient, signer: Signer) -> None:
    """A 10 GiB Content-Length is answered from the header alone: 0 bytes of the body are read."""
    stream = _CountingInput()
    response = api.generic(
        "POST",
        URL,
        content_type="application/json",
        HTTP_X_SIGNATURE=signer.sign(b"{}"),
        CONTENT_LENGTH=str(10 * 1024**3),
        **{"wsgi.input": stream},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "body_too_large"
    assert stream.read_bytes == 0
    assert not WebhookRejection.objects.exists()  # refused before the webhook code ran at all


@pytest.mark.django_db(transaction=True)
def test_a_flood_of_forgeries_is_refused_limited_and_the_service_stays_up(
    live_server: Any, signer: Signer, targets: Targets, settings: Any, report_figure: Callable[[str], None]
) -> None:
    """Hundreds of forged deliveries from many threads: none accepted; past the per-source limit they are
    answered 429 before any signature work; probes answer and Revio (another source) still gets through."""
    limit = 100
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "webhook_source": f"{limit}/min"}
    url = f"{live_server.url}{URL}"
    forger = Forger(
        signer=signer,
        honest=[targets.paid, targets.refill_paid],
        replay_sources=[targets.viewed],
        seed=SEED + 2,
    )
    flood = list(forger.mutants(proof_size(400, 2_000), wire=on_the_wire))
    assert len({(mutant.body, mutant.signatures) for mutant in flood}) == len(flood)
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    lock = threading.Lock()

    def send(client: httpx.Client, mutant: Mutant) -> None:
        try:
            response = post_over_http(client, url, mutant.body, mutant.signatures)
        except httpx.HTTPError as exc:
            with lock:
                errors[type(exc).__name__] += 1
            return
        with lock:
            statuses[response.status_code] += 1
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limited"
            assert int(response.headers["Retry-After"]) > 0
        else:
            assert_refused_in_error_shape(response.status_code, response.json(), mutant)

    threads = 32
    limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
    with httpx.Client(timeout=60, limits=limits) as client, ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(send, client, mutant) for mutant in flood]:
            future.result()

    # Revio delivers from its own address: 127.0.0.2 here, a rate-limit bucket the flood did not touch.
    revio_side = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(timeout=60, transport=revio_side) as client:
        healthy = client.get(f"{live_server.url}/healthz").status_code == 200
        ready = client.get(f"{live_server.url}/readyz").status_code == 200
        assert_nothing_moved(targets)
        honest = post_over_http(client, url, targets.paid.body, (targets.paid.signature,))
    # Figure, not assertion: the limiter's counter is a read-then-write in the cache, so concurrent requests
    # overshoot the limit (about 2x at 32 threads, exact when sequential). Reported to the lead (issue #8).
    report_figure(
        f"webhook flood: {len(flood)} distinct forged requests from {threads} threads, "
        f"accepted {statuses[200]}, 429 {statuses[429]}, past the limiter {statuses[401]} "
        f"(limit {limit}/min per source), "
        f"transport errors {sum(errors.values())}, service {'up' if healthy and ready else 'DOWN'}"
    )
    assert errors == Counter()
    assert statuses[200] == 0
    assert statuses[401] + statuses[429] == len(flood)
    assert statuses[429] > 0
    assert healthy
    assert ready
    assert honest.status_code == 200, honest.text
    wait_for(lambda: targets.statuses()[0] == "completed", what="the honest deposit event to be applied")
    assert targets.figures() == (FUNDED + DEPOSIT_AMOUNT, 0)
    connection.close()
