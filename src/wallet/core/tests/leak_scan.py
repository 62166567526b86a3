"""The suite-wide scan for secrets in logs (wired up in the root conftest.py).

Secrets are planted for the whole session (the settings' keys, the test password, the shared test bank
account, the sandbox's API key and EFT client secret, every JWT the login helper is issued). A handler on
the root logger keeps every record of the session (message, exception text, stack and `extra` fields) and
the Revio sandbox's log file is added when its process stops; so are the Sentry events the product reports
(through its before_send, into a transport of the suite's own). At the end of the session every record is
searched for a planted secret, for any complete JWT and for an unmasked account number next to its field
name; a hit fails the run and is printed with the secret masked.

Processes the suite starts itself (gunicorn, Celery workers, PostgreSQL in the crash-point, concurrency and
scaling tests) write their logs under pytest's temporary folder: every `*.log` file there is added at the end
of the session. Limit: output a subprocess sends elsewhere (a pipe the test reads, /dev/null, the benchmarks'
own folders) is not scanned, and in the Revio sandbox's logs its own API key and the accounts it was sent to
pay do not count (it plays Revio).
"""

import logging
import re
import threading
from dataclasses import dataclass

# The attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",  # added by wallet.core.logging.RequestIdFilter
}
# A complete JWT (header.payload.signature): no log line needs one, whoever's it is.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
# An account number in full next to its field name (masked ones look like ******4567).
_ACCOUNT_NUMBER = re.compile(
    r"(?i)(account_?number|bank_?account|accountNumber)\W{1,6}\d{6,}",
)
_MIN_SECRET_LENGTH = 8


@dataclass(frozen=True)
class Leak:
    source: str
    secret_name: str
    excerpt: str

    def describe(self) -> str:
        return f"{self.source}: {self.secret_name} in {self.excerpt!r}"


class LeakScanner(logging.Handler):
    """Keeps every log record of the session and finds planted secrets in them at the end."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self._lock_records = threading.Lock()
        self.records: list[tuple[str, str]] = []
        self.exempt: dict[str, frozenset[str]] = {}
        self.secrets: dict[str, str] = {}

    def plant(self, name: str, value: object) -> None:
        """Name a value that must never be logged (short ones would match by chance and are ignored)."""
        text = str(value or "")
        if len(text) >= _MIN_SECRET_LENGTH:
            self.secrets.setdefault(text, name)

    def emit(self, record: logging.LogRecord) -> None:
        text = self._render(record)
        with self._lock_records:
            self.records.append((record.name, text))

    def add_text(self, source: str, text: str, *, exempt: frozenset[str] = frozenset()) -> None:
        """Log output from outside this process (a subprocess's log file), one record per line.

        `exempt` names the secrets and patterns that are that process's own to know (e.g. the API key the
        Revio sandbox issued, or account numbers it was sent to pay).
        """
        self.exempt[source] = exempt
        with self._lock_records:
            self.records.extend((source, line) for line in text.splitlines() if line.strip())

    @staticmethod
    def _render(record: logging.LogRecord) -> str:
        try:
            parts = [record.getMessage()]
        except (TypeError, ValueError):  # a bad format string is still scanned as written
            parts = [str(record.msg), repr(record.args)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        parts.extend(
            f"{key}={value!r}" for key, value in record.__dict__.items() if key not in _STANDARD_ATTRIBUTES
        )
        return "\n".join(parts)

    def leaks(self) -> list[Leak]:
        found = []
        with self._lock_records:
            records = list(self.records)
        for source, text in records:
            hit = self._first_hit(text, exempt=self.exempt.get(source, frozenset()))
            if hit is not None:
                name, start, end = hit
                masked = text[:start] + f"<{name}>" + text[end:]
                excerpt_start = max(0, start - 80)
                found.append(Leak(source, name, masked[excerpt_start : excerpt_start + 200]))
        return found

    def _first_hit(self, text: str, *, exempt: frozenset[str]) -> tuple[str, int, int] | None:
        for secret, name in self.secrets.items():
            if name in exempt:
                continue
            start = text.find(secret)
            if start >= 0:
                return name, start, start + len(secret)
        for name, pattern in (("a JWT", _JWT), ("a full account number", _ACCOUNT_NUMBER)):
            if name in exempt:
                continue
            match = pattern.search(text)
            if match:
                return name, match.start(), match.end()
        return None
