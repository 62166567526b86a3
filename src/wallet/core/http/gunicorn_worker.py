"""gunicorn's gthread worker, telling the app how long each request waited for a free thread.

With a fixed pool of threads, a request past capacity waits in the worker's own queue, where Django cannot
see it: by the time a thread takes it, the client may have given up. LoadSheddingMiddleware answers a
request that already waited longer than API_QUEUE_TIMEOUT_SECONDS with a fast 503, which costs a fraction
of the work, so the queue drains and the admitted requests stay within the client's patience.

Use it with `gunicorn --worker-class wallet.core.http.gunicorn_worker.QueueTimedThreadWorker`.
"""

import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker  # type: ignore[import-untyped]

from wallet.core.context import server_queue_entered


class QueueTimedThreadWorker(ThreadWorker):
    def enqueue_req(self, conn: Any) -> None:
        # A connection is queued for a thread when it is accepted or, kept alive, when its next request
        # arrives: both come through here.
        conn.wallet_queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        server_queue_entered(getattr(conn, "wallet_queued_at", None))
        try:
            return super().handle_request(req, conn)
        finally:
            server_queue_entered(None)
