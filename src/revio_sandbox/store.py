"""SQLite persistence for the sandbox: every piece of state lives in one WAL-mode database file.

Objects (purchases, payments, EFT payments, webhooks) are stored as their JSON documents plus the few
columns the background loop queries on. Deliveries and their attempts are rows, so pending retries
survive a restart.
The server uses one connection from the event-loop thread only; ``revio-sandbox init`` opens its own.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DB_FILENAME = "sandbox.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS purchases (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    status TEXT NOT NULL,
    due INTEGER,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS purchases_open_due ON purchases (status, due);
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    purchase_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'done',
    due_at REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_purchase ON payments (purchase_id);
CREATE INDEX IF NOT EXISTS payments_due ON payments (status, due_at);
CREATE TABLE IF NOT EXISTS webhooks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    private_key TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    object_id TEXT NOT NULL,
    object_type TEXT NOT NULL,
    event_type TEXT NOT NULL,
    target TEXT NOT NULL,
    webhook_id TEXT,
    url TEXT NOT NULL,
    body BLOB NOT NULL,
    signed_body BLOB,
    fixed_signature TEXT,
    bad_signature INTEGER NOT NULL DEFAULT 0,
    faults TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    attempt_count INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    replay_of INTEGER
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS deliveries_chain ON deliveries (object_id, target, id);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id INTEGER NOT NULL,
    attempted_at REAL NOT NULL,
    url TEXT NOT NULL,
    status_code INTEGER,
    error TEXT,
    duration_ms REAL NOT NULL,
    signature TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_delivery ON delivery_attempts (delivery_id);
CREATE TABLE IF NOT EXISTS eft_payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    contract_reference TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT NOT NULL,
    created_ts REAL NOT NULL,
    next_step TEXT,
    next_step_at REAL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eft_payments_reference ON eft_payments (contract_reference);
CREATE INDEX IF NOT EXISTS eft_payments_next_step ON eft_payments (next_step_at);
CREATE TABLE IF NOT EXISTS eft_tokens (
    token TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS eft_callbacks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""

# Columns added after their table first shipped: a data folder from before gets them when it is opened.
ADDED_COLUMNS = {
    # What a delivery attempt sent and what the receiver answered (the dashboard shows them).
    "delivery_attempts": (
        ("request_headers", "TEXT"),
        ("response_headers", "TEXT"),
        ("response_body", "TEXT"),
    ),
    # A refund's or chargeback's own status history (pending while the acquirer works, then success).
    "payments": (("history", "TEXT NOT NULL DEFAULT '[]'"),),
}

# Tables emptied by a reset; meta (keys, api key, brand) is handled separately.
STATE_TABLES = (
    "purchases",
    "payments",
    "deliveries",
    "delivery_attempts",
    "faults",
    "eft_payments",
    "eft_tokens",
)


class Store:
    """A thin wrapper over one SQLite connection with JSON helpers and explicit transactions."""

    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / DB_FILENAME
        # isolation_level=None: no implicit transactions; writes are grouped with transaction().
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            present = {row["name"] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns:
                if name not in present:
                    # Fixed names from ADDED_COLUMNS above, never input.
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
        self._depth = 0

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group writes atomically; nested calls join the outer transaction."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def fetchone(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, params).fetchall())

    # -- meta -------------------------------------------------------------------------------------

    def meta_get(self, key: str) -> str | None:
        row = self.fetchone("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def meta_set(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def load_json(text: str | bytes) -> Any:
    return json.loads(text)


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
