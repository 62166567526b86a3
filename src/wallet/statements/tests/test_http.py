"""The statement and as-of balance endpoints: formats, boundaries, bad input, admins and the audit log."""

import csv
import io
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from wallet.accounts.models import User
from wallet.audit.models import AuditEvent
from wallet.ledger.tests.test_effective_at import bulk_history
from wallet.statements.csv_export import csv_safe, statement_csv
from wallet.statements.tests.test_reconciliation import History

pytestmark = pytest.mark.django_db


def _iso(instant: Any) -> str:
    return instant.isoformat().replace("+00:00", "Z")


@pytest.fixture
def history(user: User) -> History:
    history = History(user)
    history.step("deposit", 10_000, 3 * 24 * 3600)  # effective three days ago
    history.step("reserve", 4_000, 0)
    history.step("correction", 500, 0)  # available 6,000 >= 500: a -500 correction with memo "+fix"
    return history


def _period(days_back: int = 4) -> dict[str, str]:
    now = timezone.now()
    return {"from": _iso(now - timedelta(days=days_back)), "to": _iso(now + timedelta(seconds=1))}


class TestBalanceAsOf:
    def test_without_as_of_it_is_the_balance_now(self, user_api: APIClient, history: History) -> None:
        assert user_api.get("/api/v1/balance").json() == {
            "currency": "ZAR",
            "available": 5_500,
            "reserved": 4_000,
            "debt": 0,
            "hold": 0,
        }

    def test_as_of_a_past_instant_sums_the_entries_effective_before_it(
        self, user_api: APIClient, history: History
    ) -> None:
        now = timezone.now()
        two_days_ago = user_api.get("/api/v1/balance", {"as_of": _iso(now - timedelta(days=2))})
        assert two_days_ago.status_code == 200
        assert two_days_ago.json() == {
            "currency": "ZAR",
            "available": 10_000,
            "reserved": 0,
            "debt": 0,
            "hold": 0,
        }
        before = user_api.get("/api/v1/balance", {"as_of": _iso(now - timedelta(days=5))})
        assert before.json() == {"currency": "ZAR", "available": 0, "reserved": 0, "debt": 0, "hold": 0}
        # Within the allowed clock skew, a little in the future is "now".
        soon = user_api.get("/api/v1/balance", {"as_of": _iso(now + timedelta(minutes=1))})
        assert soon.json() == {"currency": "ZAR", "available": 5_500, "reserved": 4_000, "debt": 0, "hold": 0}

    def test_an_offset_other_than_utc_names_the_same_instant(
        self, user_api: APIClient, history: History
    ) -> None:
        instant = timezone.now() - timedelta(days=2)
        plus_two = instant.astimezone(timezone.get_fixed_timezone(120)).isoformat()
        assert (
            user_api.get("/api/v1/balance", {"as_of": plus_two}).json()
            == user_api.get("/api/v1/balance", {"as_of": _iso(instant)}).json()
        )

    @pytest.mark.parametrize(
        ("as_of", "problem"),
        [
            ("yesterday", "ISO 8601"),
            ("2026-13-01T00:00:00Z", "ISO 8601"),
            ("2026-11-01T00:00:00", "offset"),  # naive
            ("2026-11-01", "offset"),  # a date is a naive midnight
            ("2026-11-01T00:00:00 02:00", "ISO 8601"),  # an unencoded + arrives as a space
            ("0001-01-01T00:00:00+01:00", "ISO 8601"),  # before the first representable instant
            ("9999-12-31T23:59:59Z", "future"),
        ],
    )
    def test_a_bad_as_of_is_a_400_in_the_error_format(
        self, user_api: APIClient, history: History, as_of: str, problem: str
    ) -> None:
        response = user_api.get("/api/v1/balance", {"as_of": as_of})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "validation_error"
        assert problem in error["details"]["fields"]["as_of"][0]

    def test_a_future_as_of_beyond_the_skew_is_refused(self, user_api: APIClient) -> None:
        response = user_api.get("/api/v1/balance", {"as_of": _iso(timezone.now() + timedelta(minutes=10))})
        assert response.status_code == 400
        assert response.json()["error"]["details"]["fields"]["as_of"] == ["Must not be in the future."]


class TestStatement:
    def test_json_has_balances_and_every_entry_with_its_running_balance(
        self, user_api: APIClient, user: User, history: History
    ) -> None:
        response = user_api.get("/api/v1/statements", _period())
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["user_id"] == str(user.id)
        assert body["opening_balance"] == {"available": 0, "reserved": 0, "debt": 0}
        assert body["closing_balance"] == {"available": 5_500, "reserved": 4_000, "debt": 0}
        rows = [(e["type"], e["account"], e["amount"], e["running_balance"]) for e in body["entries"]]
        assert rows == [
            ("deposit_credit", "available", 10_000, {"available": 10_000, "reserved": 0, "debt": 0}),
            ("withdrawal_reserve", "available", -4_000, {"available": 6_000, "reserved": 0, "debt": 0}),
            ("withdrawal_reserve", "reserved", 4_000, {"available": 6_000, "reserved": 4_000, "debt": 0}),
            ("correction", "available", -500, {"available": 5_500, "reserved": 4_000, "debt": 0}),
        ]
        deposit = body["entries"][0]
        assert deposit["recorded_at"] > deposit["effective_at"]  # recorded now, effective days ago
        assert body["entries"][3]["description"] == "Operator correction: +fix"
        assert all(e["transaction_id"] for e in body["entries"])

    def test_the_period_is_half_open(self, user_api: APIClient, history: History) -> None:
        deposit_at = user_api.get("/api/v1/statements", _period()).json()["entries"][0]["effective_at"]
        ending_there = user_api.get(
            "/api/v1/statements", {"from": _iso(timezone.now() - timedelta(days=9)), "to": deposit_at}
        ).json()
        starting_there = user_api.get(
            "/api/v1/statements", {"from": deposit_at, "to": _period()["to"]}
        ).json()
        assert ending_there["entries"] == []  # `to` is excluded
        assert starting_there["entries"][0]["type"] == "deposit_credit"  # `from` is included
        assert ending_there["closing_balance"] == starting_there["opening_balance"]

    def test_csv_by_format_or_accept_with_guarded_text_cells_and_minor_units(
        self, user_api: APIClient, history: History
    ) -> None:
        by_param = user_api.get("/api/v1/statements", {**_period(), "format": "csv"})
        by_accept = user_api.get("/api/v1/statements", _period(), HTTP_ACCEPT="text/csv")
        for response in (by_param, by_accept):
            assert response.status_code == 200
            assert response["Content-Type"].startswith("text/csv")
            assert response["Content-Disposition"].startswith('attachment; filename="statement-')
        rows = list(csv.DictReader(io.StringIO(by_param.content.decode())))
        assert [r["row"] for r in rows] == ["opening_balance"] + ["entry"] * 4 + ["closing_balance"]
        assert rows[0]["running_available"] == "0"
        assert (rows[-1]["running_available"], rows[-1]["running_reserved"]) == ("5500", "4000")
        correction = rows[4]
        assert correction["description"] == "Operator correction: +fix"  # the memo is not at the start
        assert correction["amount"] == "-500"  # a number, not a text cell: not prefixed
        assert correction["currency"] == "ZAR"

    def test_text_cells_that_would_run_as_formulas_are_neutralised(
        self, user_api: APIClient, history: History
    ) -> None:
        body = user_api.get("/api/v1/statements", _period()).json()
        body["entries"][0]["description"] = '=HYPERLINK("http://evil.example","click")'
        body["entries"][1]["type"] = "@SUM(A1)"
        body["entries"][2]["description"] = "\tcmd"
        rows = list(csv.reader(io.StringIO(statement_csv(body))))
        assert rows[2][6] == '\'=HYPERLINK("http://evil.example","click")'
        assert rows[3][5] == "'@SUM(A1)"
        assert rows[4][6] == "'\tcmd"
        for prefix in ("=", "+", "-", "@", "\t", "\r"):
            assert csv_safe(f"{prefix}1+1") == f"'{prefix}1+1"
        assert csv_safe("-500") == "'-500"  # text that looks like a number is still text
        assert csv_safe(-500) == -500  # amounts are integers: never prefixed
        assert csv_safe("Deposit credited") == "Deposit credited"

    def test_another_users_entries_are_not_in_it(
        self, user_api: APIClient, make_user: Any, history: History
    ) -> None:
        other = History(make_user())
        other.step("deposit", 99_999, 0)
        amounts = [e["amount"] for e in user_api.get("/api/v1/statements", _period()).json()["entries"]]
        assert 99_999 not in amounts

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"to": "2026-11-01T00:00:00Z"}, "from"),
            ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
            ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
            ({"from": "2024-11-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),  # over 366 days
            ({"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00Z"}, "from"),  # naive
            ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T00:00:00Z", "format": "pdf"}, "format"),
        ],
    )
    def test_bad_periods_are_400s_in_json_even_when_csv_was_asked_for(
        self, user_api: APIClient, params: dict[str, str], field: str
    ) -> None:
        for extra in ({}, {"HTTP_ACCEPT": "text/csv"}):
            response = user_api.get("/api/v1/statements", params, **extra)
            assert response.status_code == 400
            assert response["Content-Type"] == "application/json"
            error = response.json()["error"]
            assert error["code"] == "validation_error"
            assert field in error["details"]["fields"]

    def test_an_accept_it_cannot_meet_gets_json(self, user_api: APIClient, history: History) -> None:
        response = user_api.get("/api/v1/statements", _period(), HTTP_ACCEPT="application/pdf")
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"


class TestAdminStatement:
    def test_an_admin_produces_any_users_statement_and_it_is_audited(
        self, admin_api: APIClient, admin_user: User, user: User, history: History
    ) -> None:
        before = AuditEvent.objects.count()
        response = admin_api.get(f"/api/v1/admin/users/{user.id}/statement", {**_period(), "format": "csv"})
        assert response.status_code == 200
        assert response.content.decode().count("\r\n") == 7  # header, opening, 4 entries, closing
        events = list(AuditEvent.objects.order_by("id")[before:])
        assert len(events) == 1
        event = events[0]
        assert event.action == "statement_produced"
        assert (event.actor_id, event.actor_email) == (admin_user.id, admin_user.email)
        assert (event.subject_type, event.subject_id) == ("accounts.user", str(user.id))
        assert event.details["format"] == "csv"
        assert event.details["entries"] == 4

    def test_json_matches_the_users_own(
        self, admin_api: APIClient, user_api: APIClient, user: User, history: History
    ) -> None:
        period = _period()
        own = user_api.get("/api/v1/statements", period).json()
        produced = admin_api.get(f"/api/v1/admin/users/{user.id}/statement", period).json()
        own.pop("generated_at"), produced.pop("generated_at")
        assert own == produced

    def test_users_cannot_and_unknown_users_are_404_without_an_audit_event(
        self, admin_api: APIClient, user_api: APIClient, user: User
    ) -> None:
        before = AuditEvent.objects.count()
        assert user_api.get(f"/api/v1/admin/users/{user.id}/statement", _period()).status_code == 403
        missing = admin_api.get(f"/api/v1/admin/users/{uuid.uuid4()}/statement", _period())
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        bad = admin_api.get(f"/api/v1/admin/users/{user.id}/statement", {"from": "x"})
        assert bad.status_code == 400
        assert AuditEvent.objects.count() == before


def test_measure_a_years_statement_of_5000_entries_over_http(
    user_api: APIClient, user: User, make_user: Any, report_figure: Any
) -> None:
    bulk_history(user, entries=5_000, others=[make_user() for _ in range(5)], per_other=1_000)
    now = timezone.now()
    period = {"from": _iso(now - timedelta(days=366)), "to": _iso(now)}
    timings = {}
    for name, extra in (("JSON", {}), ("CSV", {"format": "csv"})):
        started = time.perf_counter()
        response = user_api.get("/api/v1/statements", {**period, **extra})
        timings[name] = (time.perf_counter() - started) * 1000, len(response.content)
        assert response.status_code == 200
    assert len(user_api.get("/api/v1/statements", period).json()["entries"]) == 5_000
    report_figure(
        "statement of a year with 5,000 entries over HTTP: "
        + ", ".join(f"{name} {ms:.0f} ms ({size // 1024} KiB)" for name, (ms, size) in timings.items())
    )
    assert all(ms < 10_000 for ms, _ in timings.values())


def test_the_schema_documents_the_parameters_formats_and_errors(api: APIClient) -> None:
    schema = api.get("/api/v1/schema/?format=json").json()
    balance = schema["paths"]["/api/v1/balance"]["get"]
    assert [p["name"] for p in balance["parameters"]] == ["as_of"]
    assert balance["parameters"][0]["schema"]["format"] == "date-time"
    assert "validation_error" in balance["responses"]["400"]["description"]
    for path in ("/api/v1/statements", "/api/v1/admin/users/{user_id}/statement"):
        operation = schema["paths"][path]["get"]
        names = {p["name"]: p for p in operation["parameters"]}
        assert {"from", "to", "format"} <= set(names)
        assert names["from"]["required"]
        assert names["to"]["required"]
        assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
        assert "validation_error" in operation["responses"]["400"]["description"]
    admin = schema["paths"]["/api/v1/admin/users/{user_id}/statement"]["get"]["responses"]
    assert {"403", "404"} <= set(admin)
