"""Why an admin's request about event endpoints is refused (each a 4xx in the API's error shape)."""

from wallet.core.errors import ApplicationError


class EndpointUrlRefusedError(ApplicationError):
    code = "endpoint_url_refused"
    http_status = 400
    default_message = "The endpoint URL is refused: it must be https and resolve only to public addresses."


class EventNotFoundError(ApplicationError):
    code = "event_not_found"
    http_status = 404
    default_message = "No such event."


class DeliveryRefusedError(Exception):
    """The endpoint's address was refused at delivery time (it now resolves somewhere it must not)."""
