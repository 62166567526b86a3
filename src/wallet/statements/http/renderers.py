"""Statement formats: JSON, or CSV chosen by `?format=csv` or `Accept: text/csv`."""

from collections.abc import Iterable
from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from wallet.core.errors import ValidationFailedError
from wallet.statements.csv_export import statement_csv


class StatementCsvRenderer(BaseRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return statement_csv(data).encode(self.charset)


class StatementNegotiation(DefaultContentNegotiation):
    """`?format=` wins; else the Accept header; else JSON. Never a 404 or 406 for the format."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderers = list(renderers)
        wanted = request.query_params.get("format")
        if wanted:
            for renderer in renderers:
                if renderer.format == wanted:
                    return renderer, renderer.media_type
            raise ValidationFailedError.for_fields({"format": ['Must be "json" or "csv".']})
        try:
            chosen: tuple[BaseRenderer, str] = super().select_renderer(request, renderers)
        except NotAcceptable:  # an Accept we cannot meet: answer in JSON rather than not at all
            chosen = (renderers[0], renderers[0].media_type)
        return chosen


RENDERERS = (JSONRenderer, StatementCsvRenderer)  # JSON first: the default, and errors' format
