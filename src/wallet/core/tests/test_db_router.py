"""The replica router's rules: writes, migrations, auth and anything inside a transaction use the primary."""

import pytest
from django.db import transaction
from django.test import RequestFactory

from wallet.accounts.models import User
from wallet.core.db_router import ReplicaReadsMiddleware, ReplicaRouter, replica_reads
from wallet.ledger.models import Balance
from wallet.transactions.models import Transaction


class TestReplicaRouter:
    def test_without_a_replica_every_read_uses_the_primary(self) -> None:
        router = ReplicaRouter(replica=None)
        with replica_reads():
            assert router.db_for_read(Transaction) == "default"

    def test_reads_go_to_the_replica_only_inside_a_replica_safe_request(self) -> None:
        router = ReplicaRouter(replica="replica")
        assert router.db_for_read(Transaction) == "default"
        with replica_reads():
            assert router.db_for_read(Transaction) == "replica"
            assert router.db_for_read(Balance) == "replica"
        assert router.db_for_read(Transaction) == "default"

    def test_writes_and_migrations_always_use_the_primary(self) -> None:
        router = ReplicaRouter(replica="replica")
        with replica_reads():
            assert router.db_for_write(Transaction) == "default"
        assert router.allow_migrate("default", "transactions") is True
        assert router.allow_migrate("replica", "transactions") is False

    def test_users_and_tokens_are_never_read_from_the_replica(self) -> None:
        router = ReplicaRouter(replica="replica")
        with replica_reads():
            assert router.db_for_read(User) == "default"

    @pytest.mark.django_db
    def test_reads_inside_a_transaction_stay_on_the_primary(self) -> None:
        # A money decision runs in a transaction with the row locked: its reads must see the primary.
        router = ReplicaRouter(replica="replica")
        with replica_reads(), transaction.atomic():
            assert router.db_for_read(Balance) == "default"


class TestReplicaReadsMiddleware:
    def _seen(self, settings: object, method: str, path: str) -> bool:
        from wallet.core import db_router

        seen: list[bool] = []

        def view(request: object) -> object:
            seen.append(db_router._replica_reads.get())
            return object()

        middleware = ReplicaReadsMiddleware(view)  # type: ignore[arg-type]
        middleware.enabled = True
        request = getattr(RequestFactory(), method.lower())(path)
        middleware(request)
        return seen[0]

    def test_marks_only_gets_of_the_listed_read_only_paths(self, settings: object) -> None:
        assert self._seen(settings, "GET", "/api/v1/transactions") is True
        assert self._seen(settings, "GET", "/api/v1/balance/entries") is True
        assert self._seen(settings, "GET", "/api/v1/balance") is False
        assert self._seen(settings, "POST", "/api/v1/withdrawals") is False
        assert self._seen(settings, "POST", "/api/v1/transactions") is False
