"""The request in progress: its id (shared by logging, responses and Celery tasks) and how long it queued."""

import contextvars
import threading
import time

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# When the request being served was handed to the web server's thread pool (time.monotonic()), set by
# wallet.core.http.gunicorn_worker; None under any other server. Per thread: one request per thread.
_server_queue = threading.local()


def server_queue_entered(at: float | None) -> None:
    _server_queue.entered_at = at


def server_queue_wait() -> float | None:
    """Seconds the current request has been with this process since it waited for a free thread (its
    queueing time plus what ran since), or None if the server does not say."""
    entered: float | None = getattr(_server_queue, "entered_at", None)
    return None if entered is None else time.monotonic() - entered
