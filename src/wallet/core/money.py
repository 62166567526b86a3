"""Money for people to read: integer minor units and a currency in, "R 1,234.56" out.

Amounts are stored and computed as integers in minor units; this is the one place they become text (emails,
the admin). Pure functions, no Decimal arithmetic leaks back into the domain.
"""

from decimal import Decimal

# ISO 4217 minor-unit exponents for currencies that differ from the usual two decimals.
_EXPONENTS: dict[str, int] = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "OMR": 3, "TND": 3}
# Symbols for the currencies the wallet is likely to show; any other code is written before the amount.
_SYMBOLS: dict[str, str] = {"ZAR": "R", "USD": "$", "EUR": "€", "GBP": "£"}


def minor_unit_exponent(currency: str) -> int:
    """How many decimal places the currency's minor unit has (2 for ZAR: 100 cents to the rand)."""
    return _EXPONENTS.get(currency.upper(), 2)


def format_money(amount_minor: int, currency: str) -> str:
    """Format an amount in minor units for display: format_money(123456, "ZAR") == "R 1,234.56".

    Thousands are grouped with commas and the decimal point is a full stop, whatever the currency, so
    emails read the same for every user. Negative amounts get a leading minus: "-R 5.00".
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise TypeError("amount_minor must be an int (minor units), not " + type(amount_minor).__name__)
    code = currency.upper()
    exponent = minor_unit_exponent(code)
    # Decimal.scaleb keeps it exact: no float ever sees the amount.
    major = Decimal(abs(amount_minor)).scaleb(-exponent)
    number = f"{major:,.{exponent}f}"
    sign = "-" if amount_minor < 0 else ""
    return f"{sign}{_SYMBOLS.get(code, code)} {number}"
