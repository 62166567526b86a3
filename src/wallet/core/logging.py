"""Logging helpers: every record carries the request id of the work that produced it."""

import logging

from wallet.core.context import request_id_var


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True
