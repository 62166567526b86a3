"""The OpenAPI schema view. Apart from schema.py: drf-spectacular's views import DRF's DEFAULT_SCHEMA_CLASS
(schema.WalletAutoSchema) at load, so the two cannot share a module."""

import threading
from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SCHEMA_KWARGS, SpectacularAPIView
from rest_framework.request import Request
from rest_framework.response import Response


class CachedSchemaApi(SpectacularAPIView):
    """GET /api/v1/schema/, generated once per process and per API version.

    The schema is public and changes only with the code, but generating it walks every view (~36 ms of a
    web thread): regenerated per request, it was the cheapest way to keep a web process busy. `?lang=` is
    not honoured: the API speaks one language, and a cache keyed on a caller's string would be unbounded.
    """

    _schemas: ClassVar[dict[str | None, Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @extend_schema(**SCHEMA_KWARGS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._get_schema_response(request)

    def _get_schema_response(self, request: Request) -> Response:
        version = self.api_version or request.version or self._get_version_parameter(request)
        with self._lock:
            if version not in self._schemas:
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=version, patterns=self.patterns
                )
                self._schemas[version] = generator.get_schema(request=request, public=self.serve_public)
            schema = self._schemas[version]
        return Response(
            data=schema,
            headers={"Content-Disposition": f'inline; filename="{self._get_filename(request, version)}"'},
        )
