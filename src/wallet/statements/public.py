"""Statements: a user's ledger over a period, with opening, closing and running balances, in JSON or CSV.

Other apps import from here only.
"""

from wallet.statements.http.params import BalanceQuerySerializer, InstantField
from wallet.statements.selectors import Statement, statement_get

__all__ = ["BalanceQuerySerializer", "InstantField", "Statement", "statement_get"]
