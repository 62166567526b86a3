"""Why a webhook delivery is refused (each a 4xx in the API's error shape) or its processing deferred."""

from wallet.core.errors import ApplicationError


class WebhookRejectedError(ApplicationError):
    http_status = 400
    code = "webhook_rejected"
    default_message = "The webhook was refused."


class SignatureMissingError(WebhookRejectedError):
    code = "signature_missing"
    http_status = 401
    default_message = "The X-Signature header is missing."


class SignatureInvalidError(WebhookRejectedError):
    code = "signature_invalid"
    http_status = 401
    default_message = "The X-Signature does not verify against Revio's keys for this body."


class MalformedEventError(WebhookRejectedError):
    code = "malformed_event"
    default_message = "The body is not a Revio event (JSON object with id, type, event_type and updated_on)."


class EventTooOldError(WebhookRejectedError):
    code = "event_too_old"
    default_message = "The event is older than Revio's retry horizon; it is refused as a replay."


class RetryLaterError(Exception):
    """Processing cannot finish now (Revio unreachable, or an object not committed yet); try again later."""
