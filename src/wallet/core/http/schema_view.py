"""The OpenAPI schema view. Apart from schema.py: drf-spectacular's views import DRF's DEFAULT_SCHEMA_CLASS
(schema.WalletAutoSchema) at load, so the two cannot share a module."""

import threading
from typing import Any, ClassVar

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView
from rest_framework.request import Request


class CachedSchemaApi(SpectacularAPIView):
    """GET /api/v1/schema/, generated once per process and API version, rendered once per format.

    The schema is public and changes only with the code, but generating it walks every view (~36 ms of a
    web thread) and rendering it as YAML costs about as much again: redone per request, it was the cheapest
    way to keep a web process busy. `?lang=` is not honoured: the API speaks one language, and a cache
    keyed on a caller's string would be unbounded (the keys here are the few versions and renderers).
    """

    _schemas: ClassVar[dict[str | None, Any]] = {}
    _rendered: ClassVar[dict[tuple[str | None, str], tuple[str | bytes, str]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @extend_schema(**SCHEMA_KWARGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        return self._get_schema_response(request)

    def _get_schema_response(self, request: Request) -> HttpResponse:
        version = self.api_version or request.version or self._get_version_parameter(request)
        renderer = request.accepted_renderer  # chosen by DRF's content negotiation before get()
        key = (version, f"{renderer.media_type};{renderer.format}")
        with self._lock:
            if key not in self._rendered:
                if version not in self._schemas:
                    generator = self.generator_class(
                        urlconf=self.urlconf, api_version=version, patterns=self.patterns
                    )
                    self._schemas[version] = generator.get_schema(request=request, public=self.serve_public)
                body = renderer.render(
                    self._schemas[version], renderer.media_type, self.get_renderer_context()
                )
                charset = f"; charset={renderer.charset}" if renderer.charset else ""
                self._rendered[key] = (body, f"{renderer.media_type}{charset}")
            body, content_type = self._rendered[key]
        response = HttpResponse(body, content_type=content_type)
        response["Content-Disposition"] = f'inline; filename="{self._get_filename(request, version)}"'
        return response
