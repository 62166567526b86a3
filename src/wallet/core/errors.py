"""The one application error type; every anticipated failure is a subclass with its own code and status.

The API renders these as {"error": {"code", "message", "details"}} (core/http/exception_handler.py).
"""

from typing import Any, ClassVar


class ApplicationError(Exception):
    """An anticipated failure that the API answers with a 4xx (or a deliberate 5xx) and a stable code."""

    code: ClassVar[str] = "application_error"
    http_status: ClassVar[int] = 400
    default_message: ClassVar[str] = "The request could not be completed."
    # True when the request created something before failing, so a retry must get this same answer.
    created_resource: ClassVar[bool] = False

    def __init__(self, message: str | None = None, *, details: dict[str, Any] | None = None) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        super().__init__(self.message)


class ValidationFailedError(ApplicationError):
    """Input that a service refuses; field problems go under details["fields"]."""

    code = "validation_error"
    http_status = 400
    default_message = "The request has invalid fields."

    @classmethod
    def for_fields(cls, fields: dict[str, list[str]], message: str | None = None) -> "ValidationFailedError":
        return cls(message, details={"fields": fields})


class NotFoundError(ApplicationError):
    code = "not_found"
    http_status = 404
    default_message = "Not found."


class ServiceUnavailableError(ApplicationError):
    code = "service_unavailable"
    http_status = 503
    default_message = "A service this request depends on is unavailable; try again shortly."
