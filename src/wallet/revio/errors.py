"""What can go wrong when calling Revio, sorted by what the caller may safely do next."""

from dataclasses import dataclass


@dataclass(frozen=True)
class RevioApiError:
    """One error of Revio's error body: the field it is about (`__all__` for the request as a whole;
    nested fields as `parent.child`), its code and its message. Messages can echo what was sent, so they
    are kept here and never put into log lines or exception text; codes and fields are."""

    field: str
    code: str
    message: str


class RevioError(Exception):
    """Base class; `status` is the HTTP status when there was a response, `errors` what its body said."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: tuple[RevioApiError, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors
        self.code = code if code is not None else (errors[0].code or None if errors else None)


class RevioNotCreatedError(RevioError):
    """Revio definitely did not act on the request: a 4xx answer, or the request never reached it.

    Subclasses say whether trying again later could succeed.
    """


class RevioRejectedError(RevioNotCreatedError):
    """Revio refused the request (4xx other than 429): sending it again unchanged will fail again."""


class RevioUnavailableError(RevioNotCreatedError):
    """Revio could not be reached, or said it was overloaded before doing anything: retry later.

    For the EFT payment create only a request that never left and a 429 are this; a 503 to it is
    RevioOutcomeUnknownError (docs/adr/0015-provider-answer-classification.md)."""


class RevioOutcomeUnknownError(RevioError):
    """The request may or may not have been acted on (timeout after sending, connection reset, a 5xx, a
    page that is not the platform's own error object).

    Never send a create again blindly: look the object up by its reference, or let reconciliation decide.
    """


def errors_summary(errors: tuple[RevioApiError, ...]) -> str:
    """`field: code` pairs for logs and exception text (never the messages)."""
    return ", ".join(f"{e.field}: {e.code or '?'}" for e in errors[:10]) + (
        " ..." if len(errors) > 10 else ""
    )
