"""Reads: the balance, the entries behind it, the history with filters, and ownership (404 for others)."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from conftest import login
from revio_sandbox.testing import SandboxProcess
from wallet.accounts.models import User
from wallet.transactions.models import Transaction
from wallet.transactions.tests.conftest import BANK

pytestmark = pytest.mark.django_db

Fund = Callable[[User, int], Transaction]


def test_balance_of_a_new_user_is_zero(user_api: APIClient) -> None:
    assert user_api.get("/api/v1/balance").json() == {
        "currency": "ZAR",
        "available": 0,
        "reserved": 0,
        "debt": 0,
        "hold": 0,
    }


def test_balance_and_the_entries_that_explain_it(user_api: APIClient, user: User, fund: Fund) -> None:
    deposit = fund(user, 10_000)
    withdrawal = user_api.post(
        "/api/v1/withdrawals", {"amount": 4_000, "bank_account": BANK}, format="json"
    ).json()
    assert user_api.get("/api/v1/balance").json() == {
        "currency": "ZAR",
        "available": 6_000,
        "reserved": 4_000,
        "debt": 0,
        "hold": 0,
    }

    entries = user_api.get("/api/v1/balance/entries").json()
    assert set(entries) == {"results", "next", "previous"}
    rows = [(e["kind"], e["account"], e["amount"], e["transaction_id"]) for e in entries["results"]]
    assert sorted(rows) == sorted(
        [
            ("withdrawal_reserve", "reserved", 4_000, withdrawal["id"]),
            ("withdrawal_reserve", "available", -4_000, withdrawal["id"]),
            ("deposit_credit", "available", 10_000, str(deposit.id)),
        ]
    )
    # Only the user's own accounts: the platform's side of each journal is not shown.
    assert sum(e["amount"] for e in entries["results"] if e["account"] == "available") == 6_000


def test_history_is_newest_first_filterable_and_paginated(
    user_api: APIClient, user: User, fund: Fund
) -> None:
    fund(user, 10_000)
    fund(user, 20_000)
    user_api.post("/api/v1/withdrawals", {"amount": 1_000, "bank_account": BANK}, format="json")
    everything = user_api.get("/api/v1/transactions").json()["results"]
    assert [t["type"] for t in everything] == ["withdrawal", "deposit", "deposit"]
    assert [t["amount"] for t in everything] == [1_000, 20_000, 10_000]

    deposits = user_api.get("/api/v1/transactions?type=deposit").json()["results"]
    assert {t["type"] for t in deposits} == {"deposit"}
    processing = user_api.get("/api/v1/transactions?status=processing").json()["results"]
    assert [t["type"] for t in processing] == ["withdrawal"]

    page = user_api.get("/api/v1/transactions?page_size=2").json()
    assert len(page["results"]) == 2
    rest = user_api.get(page["next"]).json()
    assert len(rest["results"]) == 1
    assert rest["next"] is None

    created = everything[1]["created_at"]
    after = user_api.get("/api/v1/transactions", {"created_after": created}).json()["results"]
    assert [t["amount"] for t in after] == [1_000, 20_000]


@pytest.mark.parametrize(
    ("query", "field"),
    [("type=refund", "type"), ("status=lost", "status"), ("created_after=yesterday", "created_after")],
)
def test_bad_filters_are_400(user_api: APIClient, query: str, field: str) -> None:
    response = user_api.get(f"/api/v1/transactions?{query}")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]["fields"]


def test_detail_by_kind(user_api: APIClient, user: User, fund: Fund, revio: SandboxProcess) -> None:
    deposit = fund(user, 10_000)
    assert user_api.get(f"/api/v1/transactions/{deposit.id}").json()["status"] == "completed"
    assert user_api.get(f"/api/v1/deposits/{deposit.id}").json()["id"] == str(deposit.id)
    assert user_api.get(f"/api/v1/withdrawals/{deposit.id}").status_code == 404


def test_another_users_transactions_are_404_and_invisible(
    user_api: APIClient, user: User, fund: Fund, make_user: Callable[..., User]
) -> None:
    other = make_user()
    theirs = fund(other, 10_000)
    for path in (f"/api/v1/transactions/{theirs.id}", f"/api/v1/deposits/{theirs.id}"):
        response = user_api.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert user_api.get("/api/v1/transactions").json()["results"] == []
    assert user_api.get("/api/v1/balance/entries").json()["results"] == []
    assert user_api.get("/api/v1/balance").json()["available"] == 0

    other_api = APIClient()
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(other_api, other.email)['access']}")
    assert other_api.get(f"/api/v1/transactions/{theirs.id}").status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/balance", "/api/v1/transactions", "/api/v1/balance/entries"])
def test_reads_need_authentication(api: APIClient, path: str) -> None:
    assert api.get(path).status_code == 401


def test_mass_assignment_of_status_or_user_is_ignored(
    user_api: APIClient, user: User, fund: Fund, make_user: Callable[..., User]
) -> None:
    other = make_user()
    fund(user, 10_000)
    response = user_api.post(
        "/api/v1/withdrawals",
        {"amount": 1_000, "bank_account": BANK, "status": "completed", "user": str(other.id), "id": "x"},
        format="json",
    )
    assert response.status_code == 201
    withdrawal = Transaction.objects.get(id=response.json()["id"])
    assert (withdrawal.status, withdrawal.user_id) == ("processing", user.id)
