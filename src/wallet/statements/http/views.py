"""Statements: a user's own, and any user's for an admin (audited)."""

from typing import Any

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from wallet.accounts import public as accounts
from wallet.core.errors import NotFoundError, ValidationFailedError
from wallet.core.http.throttling import client_ip
from wallet.statements import selectors, services
from wallet.statements.http import serializers as s
from wallet.statements.http.params import StatementQuerySerializer
from wallet.statements.http.renderers import RENDERERS, StatementCsvRenderer, StatementNegotiation

_DESCRIPTION = (
    "Opening and closing balance and every ledger entry of the half-open period [`from`, `to`), with "
    "its running balance. Entries are placed by when they took effect (`effective_at`), so one recorded "
    "late (a delayed webhook) lands in the period it belongs to; `recorded_at` shows when it was recorded. "
    "A statement for a period can therefore change if a late entry arrives after it was produced (ADR "
    "0011). JSON, or CSV with `?format=csv` or `Accept: text/csv` (amounts in minor units; text cells are "
    "guarded against spreadsheet formulas). Errors are always JSON."
)
_RESPONSES = {
    (200, "application/json"): s.StatementOutputSerializer,
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="The statement as CSV."),
}


def _user_id(request: Request) -> Any:
    assert request.user.is_authenticated  # noqa: S101 - IsAuthenticated guarantees it
    return request.user.id


class _StatementApi(APIView):
    renderer_classes = RENDERERS
    content_negotiation_class = StatementNegotiation
    documented_errors = (ValidationFailedError,)

    def _period(self, request: Request) -> dict[str, Any]:
        serializer = StatementQuerySerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _format(self, request: Request) -> str:
        return "csv" if isinstance(request.accepted_renderer, StatementCsvRenderer) else "json"

    def _answer(self, request: Request, statement: selectors.Statement) -> Response:
        response = Response(s.StatementOutputSerializer(statement).data)
        if self._format(request) == "csv":
            name = f"statement-{statement.start:%Y%m%dT%H%M%SZ}-{statement.end:%Y%m%dT%H%M%SZ}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Errors are JSON whatever format was asked for: a CSV client still gets the one error shape.
        if response.status_code >= 400 and isinstance(
            getattr(request, "accepted_renderer", None), StatementCsvRenderer
        ):
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


class StatementApi(_StatementApi):
    @extend_schema(
        tags=["statements"],
        parameters=[StatementQuerySerializer],
        responses=_RESPONSES,
        description=_DESCRIPTION,
    )
    def get(self, request: Request) -> Response:
        period = self._period(request)
        statement = selectors.statement_get(
            user_id=_user_id(request),
            currency=settings.WALLET_CURRENCY,
            start=period["from"],
            end=period["to"],
            now=timezone.now(),
        )
        return self._answer(request, statement)


class AdminUserStatementApi(_StatementApi):
    permission_classes = (accounts.IsAdminRole,)

    @extend_schema(
        tags=["admin"],
        parameters=[
            StatementQuerySerializer,
            OpenApiParameter("user_id", type=OpenApiTypes.UUID, location=OpenApiParameter.PATH),
        ],
        responses=_RESPONSES,
        description=_DESCRIPTION + " Admins only; each statement produced is recorded in the audit log.",
    )
    def get(self, request: Request, user_id: Any) -> Response:
        period = self._period(request)
        if accounts.user_get(user_id=user_id) is None:
            raise NotFoundError()
        statement = services.statement_produce_for_admin(
            actor=request.user,
            user_id=user_id,
            currency=settings.WALLET_CURRENCY,
            start=period["from"],
            end=period["to"],
            output_format=self._format(request),
            ip=client_ip(request),
            now=timezone.now(),
        )
        return self._answer(request, statement)
