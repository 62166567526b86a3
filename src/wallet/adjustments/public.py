"""Adjustments: four-eyes balance corrections by admins. Other apps import from here only."""

from wallet.adjustments.errors import (
    FourEyesError,
    NotAnAdminError,
    ProposalExpiredError,
    ProposalNotPendingError,
)
from wallet.adjustments.services import (
    ProposalInput,
    adjustment_approve,
    adjustment_propose,
    adjustment_reject,
    adjustments_expire,
)

__all__ = [
    "FourEyesError",
    "NotAnAdminError",
    "ProposalExpiredError",
    "ProposalInput",
    "ProposalNotPendingError",
    "adjustment_approve",
    "adjustment_propose",
    "adjustment_reject",
    "adjustments_expire",
]
