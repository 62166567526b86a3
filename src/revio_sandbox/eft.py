"""The EFT payments API (revio-api.md §3 B): OAuth2 tokens, ``/v2/payment/eft``, unsigned callbacks.

Documented (and followed): the client-credentials token endpoint (Basic auth, form
``grant_type=client_credentials`` -> ``{access_token, expires_in, token_type}``), the 401 body
``{"statusCode":401,"message":"Unauthorized"}``, the create request's fields, the account and service
types, the R5,000,000 limit, the state names, callback registration at ``/v2/clientcallbackurl/`` and a
``/v2/callback/test/`` simulator. Everything else here is INFERRED (docs/sandbox-guesses.md, "EFT
payments"): the payment object, the GET paths, the lookup by contractReference (a SANDBOX EXTENSION), the
error body of a 400, the callback body and the timing of the state progression.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from revio_sandbox import jsonb
from revio_sandbox.errors import ApiError
from revio_sandbox.faults import take_webhook_faults
from revio_sandbox.store import dump_json, load_json

if TYPE_CHECKING:
    from revio_sandbox.core import Sandbox

# The states of an EFT payment ([3P S14]: a Revio client's TypeScript enum).
STATES = (
    "NEW",
    "QUEUED",
    "SUBMITTED",
    "ACCEPTED",
    "COMPLETED",
    "VALIDATION_FAILURE",
    "TRANSACTION_FAILURE",
    "DISPUTED",
    "UNPAID",
    "UNPAID_WITH_RECOURSE",
    "INTERNAL_FAILURE",
    "CUTOFF",
)
# The happy path, in order (INFERRED: the enum's order; no document describes the progression).
PROGRESS = ("NEW", "QUEUED", "SUBMITTED", "ACCEPTED", "COMPLETED")
OPEN_STATES = ("NEW", "QUEUED", "SUBMITTED", "ACCEPTED", "CUTOFF")
SERVICE_TYPES = ("SAMEDAY", "ONEDAY", "TWODAY")
ACCOUNT_TYPES = ("CURRENT", "SAVINGS", "TRANSMISSION")
MAX_AMOUNT_CENTS = 500_000_000  # R5,000,000 per transaction (documented)
DEFAULT_TOKEN_LIFETIME = 86_400  # expires_in in the documented example
# The sandbox profile of Revio's documentation: profile TEST1, abbreviated name TESTMERCH1.
PROFILE_CODE = "TEST1"
ABBREVIATED_NAME = "TESTMERCH1"
CALLBACK_TYPES = ("EFT_PAYMENT", "EFT_COLLECTION", "DEBICHECK_COLLECTION", "DEBICHECK_MANDATE")

# Outcomes by the creditor account's last four digits (sandbox magic values).
OUTCOME_BY_SUFFIX = {"0001": "reject", "0002": "fail", "0003": "return", "0004": "pending_forever"}

_DIGITS = re.compile(r"^\d{6,16}$")
_BRANCH = re.compile(r"^\d{6}$")


def eft_error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> ApiError:
    """The EFT API's error body. Only the 401 form is documented; the rest follows it (INFERRED)."""
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if errors:
        body["errors"] = errors
    return ApiError(status, body)


def unauthorized() -> ApiError:
    return eft_error(401, "Unauthorized")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EftApi:
    """The EFT product of the sandbox, sharing its store, background loop and delivery machinery."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.store = sandbox.store

    # -- credentials and tokens -------------------------------------------------------------------

    def ensure_credentials(self, *, client_id: str | None = None, client_secret: str | None = None) -> None:
        if client_id:
            self.store.meta_set("eft_client_id", client_id)
        elif self.store.meta_get("eft_client_id") is None:
            self.store.meta_set("eft_client_id", "sandbox-eft-" + secrets.token_hex(8))
        if client_secret:
            self.store.meta_set("eft_client_secret", client_secret)
        elif self.store.meta_get("eft_client_secret") is None:
            self.store.meta_set("eft_client_secret", secrets.token_urlsafe(24))

    @property
    def client_id(self) -> str:
        return self.store.meta_get("eft_client_id") or ""

    @property
    def client_secret(self) -> str:
        return self.store.meta_get("eft_client_secret") or ""

    def token_issue(self, authorization: str | None, form: dict[str, str]) -> dict[str, Any]:
        """The client-credentials grant. Counted (``token_requests``) so tests can see one fetch at a time."""
        with self.store.transaction():
            count = int(self.store.meta_get("eft_token_requests") or 0) + 1
            self.store.meta_set("eft_token_requests", str(count))
        scheme, _, encoded = (authorization or "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded.strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            client_id, secret = "", ""
        if scheme.lower() != "basic" or not (
            hmac.compare_digest(client_id.encode(), self.client_id.encode())
            and hmac.compare_digest(secret.encode(), self.client_secret.encode())
        ):
            raise ApiError(401, {"error": "invalid_client"})  # OAuth2's answer (RFC 6749 §5.2)
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, {"error": "unsupported_grant_type"})
        lifetime = int(self.store.meta_get("eft_token_lifetime") or DEFAULT_TOKEN_LIFETIME)
        token = "sbx_eft_" + secrets.token_urlsafe(32)
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO eft_tokens (token, expires_at) VALUES (?, ?)", (token, time.time() + lifetime)
            )
        return {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}

    def authenticate(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        row = self.store.fetchone(
            "SELECT expires_at, revoked FROM eft_tokens WHERE token = ?", (token.strip(),)
        )
        if row is None or row["revoked"] or row["expires_at"] <= time.time():
            raise unauthorized()

    def set_token_lifetime(self, seconds: int) -> None:
        with self.store.transaction():
            self.store.meta_set("eft_token_lifetime", str(seconds))

    def revoke_tokens(self) -> int:
        with self.store.transaction():
            return self.store.execute("UPDATE eft_tokens SET revoked = 1 WHERE revoked = 0").rowcount

    def stats(self) -> dict[str, Any]:
        live = self.store.fetchone(
            "SELECT COUNT(*) AS n FROM eft_tokens WHERE revoked = 0 AND expires_at > ?", (time.time(),)
        )
        return {
            "token_requests": int(self.store.meta_get("eft_token_requests") or 0),
            "live_tokens": int(live["n"]) if live else 0,
            "token_lifetime": int(self.store.meta_get("eft_token_lifetime") or DEFAULT_TOKEN_LIFETIME),
        }

    def reset(self, *, keep_callbacks: bool) -> None:
        self.store.meta_set("eft_token_requests", "0")
        self.store.execute("DELETE FROM meta WHERE key = 'eft_token_lifetime'")
        if not keep_callbacks:
            self.store.execute("DELETE FROM eft_callbacks")

    # -- payments ---------------------------------------------------------------------------------

    def payment_create(self, payload: Any, *, forced_outcome: str | None = None) -> dict[str, Any]:
        data = _clean_payment(payload)
        outcome = forced_outcome or OUTCOME_BY_SUFFIX.get(data["creditor"]["accountNumber"][-4:], "success")
        if outcome == "reject":
            raise eft_error(
                400,
                "Validation failed",
                [
                    {
                        "field": "creditor.accountNumber",
                        "message": "The bank rejected the account (sandbox ...0001).",
                    }
                ],
            )
        now = time.time()
        payment_id = str(uuid.uuid4())
        payment = {
            "id": payment_id,
            **data,
            "status": "NEW",
            "statusHistory": [{"status": "NEW", "timestamp": iso(now)}],
            "reason": None,
            "createdAt": iso(now),
            "updatedAt": iso(now),
        }
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO eft_payments (id, contract_reference, status, outcome, created_ts, next_step, "
                "next_step_at, data) VALUES (?, ?, 'NEW', ?, ?, 'QUEUED', ?, ?)",
                (payment_id, data["contractReference"], outcome, now, now, dump_json(payment)),
            )
            self._emit(payment)
        return payment

    def _row(self, payment_id: str) -> Any:
        row = self.store.fetchone("SELECT * FROM eft_payments WHERE id = ?", (payment_id,))
        if row is None:
            raise eft_error(404, "Payment not found")
        return row

    def payment_get(self, payment_id: str) -> dict[str, Any]:
        return dict(load_json(self._row(payment_id)["data"]))

    def payments_by_reference(self, contract_reference: str | None) -> dict[str, Any]:
        """SANDBOX EXTENSION (no documented list endpoint): payments carrying a contractReference."""
        if not contract_reference:
            raise eft_error(400, "contractReference is required")
        rows = self.store.fetchall(
            "SELECT data FROM eft_payments WHERE contract_reference = ? ORDER BY seq", (contract_reference,)
        )
        return {"results": [load_json(r["data"]) for r in rows]}

    def payments_recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest EFT payments, newest first (dashboard)."""
        rows = self.store.fetchall("SELECT data FROM eft_payments ORDER BY seq DESC LIMIT ?", (limit,))
        return [dict(load_json(r["data"])) for r in rows]

    def _set_state(
        self, payment_id: str, status: str, now: float, *, reason: str | None = None
    ) -> dict[str, Any]:
        payment = self.payment_get(payment_id)
        payment["status"] = status
        payment["statusHistory"].append({"status": status, "timestamp": iso(now)})
        payment["updatedAt"] = iso(now)
        if reason is not None:
            payment["reason"] = reason
        self.store.execute(
            "UPDATE eft_payments SET status = ?, data = ? WHERE id = ?",
            (status, dump_json(payment), payment_id),
        )
        self._emit(payment)
        return payment

    def _schedule(self, payment_id: str, step: str | None, at: float | None) -> None:
        self.store.execute(
            "UPDATE eft_payments SET next_step = ?, next_step_at = ? WHERE id = ?", (step, at, payment_id)
        )

    def _next(self, outcome: str, status: str, created: float, now: float) -> tuple[str | None, float | None]:
        """The automatic progression (INFERRED timing): QUEUED at once, SUBMITTED at half the payout delay,
        then ACCEPTED and COMPLETED (or TRANSACTION_FAILURE) by the full delay; a return comes one delay
        after COMPLETED as UNPAID."""
        delay = self.sandbox.settings.payout_delay
        if status == "NEW":
            return "QUEUED", now
        if status == "QUEUED":
            return "SUBMITTED", created + delay / 2
        if status == "SUBMITTED":
            if outcome == "fail":
                return "TRANSACTION_FAILURE", created + delay
            if outcome in ("success", "return"):
                return "ACCEPTED", created + delay * 0.75
            return None, None
        if status == "ACCEPTED":
            return "COMPLETED", created + delay
        if status == "COMPLETED" and outcome == "return":
            return "UNPAID", now + delay
        return None, None

    def step(self, payment_id: str, status: str, now: float) -> None:
        """A due automatic step (called by the background loop, in a transaction)."""
        row = self._row(payment_id)
        reason = _REASONS.get(status)
        self._set_state(payment_id, status, now, reason=reason)
        self._schedule(payment_id, *self._next(row["outcome"], status, float(row["created_ts"]), now))

    def tick(self, now: float) -> None:
        """Run the automatic steps that are due, oldest first, each in its own transaction."""
        for row in self.store.fetchall(
            "SELECT id, next_step FROM eft_payments "
            "WHERE next_step IS NOT NULL AND next_step_at <= ? ORDER BY next_step_at",
            (now,),
        ):
            with self.store.transaction():
                self.step(row["id"], row["next_step"], now)

    def force(self, payment_id: str, action: str, status: str | None = None) -> dict[str, Any]:
        """Control API: ``succeed`` walks the rest of the happy path to COMPLETED, ``fail`` ends in
        TRANSACTION_FAILURE, ``return`` turns COMPLETED into UNPAID, ``status`` sets any state. Each
        change sends its callback; later automatic steps are cancelled."""
        with self.store.transaction():
            current = self._row(payment_id)["status"]
            now = time.time()
            if action == "succeed":
                if current not in PROGRESS[:-1] and current != "CUTOFF":
                    raise eft_error(409, f"Payment is {current}; it can no longer succeed")
                start = PROGRESS.index(current) + 1 if current in PROGRESS else PROGRESS.index("QUEUED")
                payment = {}
                for state in PROGRESS[start:]:
                    payment = self._set_state(payment_id, state, now)
            elif action == "fail":
                if current not in OPEN_STATES:
                    raise eft_error(409, f"Payment is {current}; it can no longer fail")
                payment = self._set_state(
                    payment_id, "TRANSACTION_FAILURE", now, reason=_REASONS["TRANSACTION_FAILURE"]
                )
            elif action == "return":
                if current != "COMPLETED":
                    raise eft_error(409, f"Payment is {current}; only a completed payment can be returned")
                payment = self._set_state(payment_id, "UNPAID", now, reason=_REASONS["UNPAID"])
            elif action == "status":
                if status not in STATES:
                    raise eft_error(400, f"status must be one of {', '.join(STATES)}")
                payment = self._set_state(payment_id, status, now, reason=_REASONS.get(status))
            else:
                raise eft_error(404, "Unknown action")
            self._schedule(payment_id, None, None)
            return payment

    # -- callbacks --------------------------------------------------------------------------------

    def callback_register(self, payload: Any) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise eft_error(400, "Expected a JSON object")
        errors = []
        url = payload.get("url")
        if not isinstance(url, str) or not re.match(r"^https?://[^\s]{1,490}$", url):
            errors.append({"field": "url", "message": "A valid http(s) URL is required."})
        if payload.get("callbackType") not in CALLBACK_TYPES:
            errors.append({"field": "callbackType", "message": f"One of {', '.join(CALLBACK_TYPES)}."})
        if payload.get("callbackVersion", "V2") not in ("V1", "V2"):
            errors.append({"field": "callbackVersion", "message": "V1 or V2."})
        if payload.get("clientId") not in (None, self.client_id):
            errors.append({"field": "clientId", "message": "Unknown client."})
        if errors:
            raise eft_error(400, "Validation failed", errors)
        registration = {
            "id": str(uuid.uuid4()),
            "clientId": self.client_id,
            "url": url,
            "callbackType": payload["callbackType"],
            "callbackVersion": payload.get("callbackVersion", "V2"),
            "createdAt": iso(time.time()),
        }
        with self.store.transaction():
            self.store.execute(
                "INSERT INTO eft_callbacks (id, data) VALUES (?, ?)",
                (registration["id"], dump_json(registration)),
            )
        return registration

    def callback_ensure(self, url: str) -> dict[str, Any]:
        """The EFT_PAYMENT registration for ``url``, made if missing (``revio-sandbox init``)."""
        for registration in self.callbacks():
            if registration["url"] == url and registration["callbackType"] == "EFT_PAYMENT":
                return registration
        return self.callback_register({"url": url, "callbackType": "EFT_PAYMENT", "callbackVersion": "V2"})

    def callbacks(self) -> list[dict[str, Any]]:
        return [
            load_json(r["data"]) for r in self.store.fetchall("SELECT data FROM eft_callbacks ORDER BY seq")
        ]

    def callbacks_delete(self, url_prefix: str | None = None) -> int:
        with self.store.transaction():
            if url_prefix is None:
                return self.store.execute("DELETE FROM eft_callbacks").rowcount
            deleted = 0
            for registration in self.callbacks():
                if registration["url"].startswith(url_prefix):
                    deleted += self.store.execute(
                        "DELETE FROM eft_callbacks WHERE id = ?", (registration["id"],)
                    ).rowcount
            return deleted

    def callback_test(self, payment_id: str, payload: Any) -> dict[str, Any]:
        """``/v2/callback/test/...`` (documented to "simulate status changes"; path and body INFERRED):
        moves the payment to ``status`` and sends its callback, like the control API."""
        status = payload.get("status") if isinstance(payload, dict) else None
        return self.force(payment_id, "status", status if isinstance(status, str) else None)

    def _emit(self, payment: dict[str, Any]) -> None:
        """Queue one UNSIGNED callback per EFT_PAYMENT registration (no signing scheme is documented).

        Body INFERRED: which payment, its reference and its new status, when, and the callback type.
        """
        targets = [
            (f"eft:{r['id']}", r["url"]) for r in self.callbacks() if r["callbackType"] == "EFT_PAYMENT"
        ]
        if not targets:
            return
        body = jsonb.dumps_bytes(
            {
                "id": payment["id"],
                "contractReference": payment["contractReference"],
                "status": payment["status"],
                "amountCents": payment["amountCents"],
                "updatedAt": payment["updatedAt"],
                "callbackType": "EFT_PAYMENT",
                "callbackVersion": "V2",
            }
        )
        event_type = f"EFT_PAYMENT.{payment['status']}"
        faults = take_webhook_faults(
            self.store,
            event_type=event_type,
            object_id=payment["id"],
            targets=[(key, None) for key, _ in targets],
        )
        self.sandbox.deliveries.enqueue(
            object_id=payment["id"],
            object_type="eft_payment",
            event_type=event_type,
            targets=[(key, None, url) for key, url in targets],
            body=body,
            faults=faults,
            reserialized=None,  # unsigned: bad_signature and reserialize mean nothing here
        )

    def registration_exists(self, target: str) -> bool:
        registration_id = target.removeprefix("eft:")
        return self.store.fetchone("SELECT 1 FROM eft_callbacks WHERE id = ?", (registration_id,)) is not None


_REASONS = {
    "VALIDATION_FAILURE": "The bank could not validate the creditor account (sandbox).",
    "TRANSACTION_FAILURE": "The beneficiary bank rejected the payment (sandbox).",
    "UNPAID": "The beneficiary bank returned the payment (sandbox).",
    "UNPAID_WITH_RECOURSE": "The beneficiary bank returned the payment with recourse (sandbox).",
    "DISPUTED": "The payment is disputed (sandbox).",
    "INTERNAL_FAILURE": "An internal error at the payment processor (sandbox).",
    "CUTOFF": "The payment missed the service type's cut-off and waits for the next run (sandbox).",
}


def _clean_payment(payload: Any) -> dict[str, Any]:
    """Check a create request; 400 with every field error at once (error shape INFERRED)."""
    if not isinstance(payload, dict):
        raise eft_error(400, "Expected a JSON object")
    errors: list[dict[str, str]] = []

    def need_str(obj: Any, key: str, prefix: str = "", *, pattern: re.Pattern[str] | None = None,
                 choices: tuple[str, ...] | None = None, max_len: int = 100) -> str:  # fmt: skip
        value = obj.get(key) if isinstance(obj, dict) else None
        name = prefix + key
        if not isinstance(value, str) or not value.strip() or len(value) > max_len:
            errors.append({"field": name, "message": "This field is required."})
            return ""
        if pattern is not None and not pattern.match(value):
            errors.append({"field": name, "message": "Invalid format."})
        if choices is not None and value not in choices:
            errors.append({"field": name, "message": f"Must be one of {', '.join(choices)}."})
        return value

    payment_date = need_str(payload, "paymentDate", max_len=40)
    if payment_date:
        try:
            datetime.fromisoformat(payment_date.replace("Z", "+00:00"))
        except ValueError:
            errors.append({"field": "paymentDate", "message": "Must be an ISO-8601 date."})
    profile = need_str(payload, "profileCode")
    if profile and profile != PROFILE_CODE:
        errors.append({"field": "profileCode", "message": "Unknown profile."})
    need_str(payload, "abbreviatedName", max_len=10)
    need_str(payload, "contractReference", max_len=64)
    need_str(payload, "serviceType", choices=SERVICE_TYPES)
    amount = payload.get("amountCents")
    if isinstance(amount, bool) or not isinstance(amount, int):
        errors.append({"field": "amountCents", "message": "An integer number of cents is required."})
    elif not 1 <= amount <= MAX_AMOUNT_CENTS:
        errors.append({"field": "amountCents", "message": f"Must be between 1 and {MAX_AMOUNT_CENTS}."})
    debtor = payload.get("debtor")
    need_str(debtor, "accountNumber", "debtor.", pattern=_DIGITS)
    need_str(debtor, "branchCode", "debtor.", pattern=_BRANCH)
    need_str(debtor, "accountType", "debtor.", choices=ACCOUNT_TYPES)
    creditor = payload.get("creditor")
    need_str(creditor, "accountNumber", "creditor.", pattern=_DIGITS)
    need_str(creditor, "branchCode", "creditor.", pattern=_BRANCH)
    need_str(creditor, "accountType", "creditor.", choices=ACCOUNT_TYPES)
    need_str(creditor, "name", "creditor.")
    if errors:
        raise eft_error(400, "Validation failed", errors)
    return {
        "paymentDate": payment_date,
        "profileCode": profile,
        "abbreviatedName": payload["abbreviatedName"],
        "contractReference": payload["contractReference"],
        "amountCents": amount,
        "serviceType": payload["serviceType"],
        "priority": payload.get("priority") if payload.get("priority") in ("NORMAL", "URGENT") else "NORMAL",
        "debtor": dict(debtor),  # type: ignore[arg-type]
        "creditor": dict(creditor),  # type: ignore[arg-type]
    }
