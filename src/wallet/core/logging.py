"""Logging helpers: every record carries the request id of the work that produced it."""

import logging

from wallet.core.context import request_id_var
from wallet.observability.sentry import scrub_text


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            # django.request logs 4xx/5xx with the request as an extra field: its repr carries the query
            # string, which may hold a token or an account number. The line gets the scrubbed text instead.
            record.request = scrub_text(str(request))
        return True
