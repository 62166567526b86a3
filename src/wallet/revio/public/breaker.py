"""The circuit breaker's state per Revio API (wallet.revio.breaker), read-only."""

from wallet.revio.breaker import (
    APIS,
    EFT,
    GATEWAY,
    BreakerState,
    RevioCircuitOpenError,
    breaker_state,
    is_open,
)

__all__ = ["APIS", "EFT", "GATEWAY", "BreakerState", "RevioCircuitOpenError", "breaker_state", "is_open"]
