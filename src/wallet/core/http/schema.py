"""OpenAPI generation that documents the error responses every endpoint can give.

A view lists the application errors it may raise in `documented_errors`; the schema adds those plus the
errors every endpoint of its kind can give (bad body, no token, not found, rate limited, server error),
each with the codes a client can switch on.
"""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions, serializers

from wallet.core.errors import ApplicationError


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField(help_text="Stable snake_case code a client can switch on.")
    message = serializers.CharField(help_text="A human sentence; may change, do not parse it.")
    details = serializers.DictField(
        help_text="Extra facts; field errors are under details.fields as {field: [messages]}."
    )


class ErrorSerializer(serializers.Serializer[Any]):
    error = ErrorDetailSerializer()


_STANDARD: dict[int, tuple[str, list[str]]] = {
    400: ("Bad input", ["validation_error", "malformed_json", "body_too_large", "unsupported_media_type"]),
    401: (
        "Missing, invalid or expired credentials",
        ["not_authenticated", "authentication_failed", "token_not_valid", "password_changed"],
    ),
    403: ("Authenticated but not allowed", ["permission_denied"]),
    404: ("No such object, or not yours", ["not_found"]),
    429: ("Rate limited; see the Retry-After header", ["rate_limited"]),
    500: ("A bug on our side; reported automatically", ["internal_error"]),
}


class WalletAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for status, (description, codes) in sorted(self._error_codes().items()):
            key = str(status)
            if key in responses:
                continue
            response = self._get_response_for_code(ErrorSerializer, key, direction=direction)
            response["description"] = f"{description}. Codes: {', '.join(sorted(set(codes)))}."
            responses[key] = response
        return responses

    def _error_codes(self) -> dict[int, tuple[str, list[str]]]:
        view = self.view
        wanted: dict[int, tuple[str, list[str]]] = {429: _STANDARD[429], 500: _STANDARD[500]}
        if self.method in {"POST", "PUT", "PATCH"} or self._is_list_view():
            wanted[400] = _STANDARD[400]
        permission_classes = getattr(view, "permission_classes", [])
        if any(cls is not permissions.AllowAny for cls in permission_classes):
            wanted[401] = _STANDARD[401]
        if any(getattr(cls, "admin_only", False) for cls in permission_classes):
            wanted[403] = _STANDARD[403]
        if "{" in self.path:
            wanted[404] = _STANDARD[404]
        error_class: type[ApplicationError]
        for error_class in getattr(view, "documented_errors", ()):
            description, codes = wanted.get(
                error_class.http_status, (error_class.default_message.rstrip("."), [])
            )
            wanted[error_class.http_status] = (description, [*codes, error_class.code])
        return wanted
