"""What can go wrong when calling Revio, sorted by what the caller may safely do next."""


class RevioError(Exception):
    """Base class; `status` is the HTTP status when there was a response."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RevioNotCreatedError(RevioError):
    """Revio definitely did not act on the request: a 4xx answer, or the request never reached it.

    Subclasses say whether trying again later could succeed.
    """


class RevioRejectedError(RevioNotCreatedError):
    """Revio refused the request (4xx other than 429): sending it again unchanged will fail again."""


class RevioUnavailableError(RevioNotCreatedError):
    """Revio could not be reached, or said it was overloaded (429, 503) before doing anything: retry later."""


class RevioOutcomeUnknownError(RevioError):
    """The request may or may not have been acted on (timeout after sending, connection reset, 500/502/504).

    Never send a create again blindly: look the object up by its reference, or let reconciliation decide.
    """
