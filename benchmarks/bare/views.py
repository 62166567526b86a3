"""pgbench's built-in TPC-B transaction, run through DRF: the framework's cost on the same database work."""

# ruff: noqa: S311

import random
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest, JsonResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class TpcbApi(APIView):
    def post(self, request: Request) -> Response:
        scale = settings.PGBENCH_SCALE
        aid = random.randint(1, 100_000 * scale)
        bid = random.randint(1, scale)
        tid = random.randint(1, 10 * scale)
        delta = random.randint(-5000, 5000)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE pgbench_accounts SET abalance = abalance + %s WHERE aid = %s", [delta, aid]
            )
            cursor.execute("SELECT abalance FROM pgbench_accounts WHERE aid = %s", [aid])
            row: Any = cursor.fetchone()
            cursor.execute("UPDATE pgbench_tellers SET tbalance = tbalance + %s WHERE tid = %s", [delta, tid])
            cursor.execute(
                "UPDATE pgbench_branches SET bbalance = bbalance + %s WHERE bid = %s", [delta, bid]
            )
            cursor.execute(
                "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                "VALUES (%s, %s, %s, %s, CURRENT_TIMESTAMP)",
                [tid, bid, aid, delta],
            )
        return Response({"aid": aid, "abalance": row[0]}, status=201)


def ping(request: HttpRequest) -> JsonResponse:
    """A plain Django view, no DRF and no database: the floor of one request through gunicorn and Django."""
    return JsonResponse({"ok": True})
