"""Read-replica routing (docs/scaling.md): a few read-only endpoints may read from DATABASE_REPLICA_URL.

Rules, in order:
- every write, every migration and every relation belongs to the primary (`default`);
- a read goes to the replica only while a request marked replica-safe is being served (GET/HEAD on a path
  in DATABASE_REPLICA_PATHS, set by ReplicaReadsMiddleware), and only outside any transaction on the
  primary: reads under a lock or inside a money movement's transaction run on that transaction's
  connection, the primary;
- users, token revocation and idempotency records are always read from the primary;
- everything else — Celery tasks, the admin, services, balance reads (which feed withdrawals and fill the
  balance cache) — reads from the primary.
Without a configured replica every read goes to the primary.
"""

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

REPLICA = "replica"
PRIMARY = "default"

# Authentication (users, token revocation) and idempotency records must never lag: primary only.
PRIMARY_ONLY_APPS = frozenset({"accounts", "token_blacklist", "core", "auth", "sessions"})

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Within this block, reads outside a transaction may go to the replica (if one is configured)."""
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


class ReplicaRouter:
    def __init__(self, replica: str | None = None) -> None:
        if replica is None and REPLICA in settings.DATABASES:
            replica = REPLICA
        self.replica = replica

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        if model._meta.app_label in PRIMARY_ONLY_APPS:
            return PRIMARY
        if self.replica and _replica_reads.get() and not connections[PRIMARY].in_atomic_block:
            return self.replica
        return PRIMARY

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == PRIMARY


class ReplicaReadsMiddleware:
    """Marks GET/HEAD requests to the read-only endpoints in DATABASE_REPLICA_PATHS as replica-safe."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        patterns: list[str] = settings.DATABASE_REPLICA_PATHS
        self.paths = [re.compile(pattern) for pattern in patterns]
        self.enabled = REPLICA in settings.DATABASES

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            self.enabled
            and request.method in ("GET", "HEAD")
            and any(p.match(request.path_info) for p in self.paths)
        ):
            with replica_reads():
                return self.get_response(request)
        return self.get_response(request)
