"""How a withdrawal's money leaves (wallet.revio.payouts): the payout API and the route names."""

from wallet.revio.payouts import RETIRED_ROUTE, ROUTE, EftPayouts, get_payouts

__all__ = ["RETIRED_ROUTE", "ROUTE", "EftPayouts", "get_payouts"]
