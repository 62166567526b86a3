"""The gateway's purchase calls other apps make (wallet.revio.client), for `revio_client.get_client()`."""

from wallet.revio.client import (
    PurchaseTakeBack,
    RefundAnswer,
    RevioClient,
    get_client,
    purchase_refund,
    purchase_take_back,
)

__all__ = [
    "PurchaseTakeBack",
    "RefundAnswer",
    "RevioClient",
    "get_client",
    "purchase_refund",
    "purchase_take_back",
]
