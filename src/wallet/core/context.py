"""The request id of the work in progress, shared by logging, responses and (later) Celery tasks."""

import contextvars

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
