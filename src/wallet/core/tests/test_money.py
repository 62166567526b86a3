"""The display formatter for amounts in minor units."""

import pytest

from wallet.core.money import format_money, minor_unit_exponent


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (123_456, "ZAR", "R 1,234.56"),
        (0, "ZAR", "R 0.00"),
        (5, "ZAR", "R 0.05"),
        (100, "ZAR", "R 1.00"),
        (123_456_789_012, "ZAR", "R 1,234,567,890.12"),
        (-500, "ZAR", "-R 5.00"),
        (1_999, "zar", "R 19.99"),
        (1_000, "USD", "$ 10.00"),
        (1_234, "JPY", "JPY 1,234"),
        (1_234_567, "KWD", "KWD 1,234.567"),
        (2_50, "CHF", "CHF 2.50"),
    ],
)
def test_formats_minor_units_with_the_currency(amount: int, currency: str, expected: str) -> None:
    assert format_money(amount, currency) == expected


def test_large_amounts_stay_exact() -> None:
    # 2**53 + 1 is where a float would start losing cents.
    assert format_money(2**53 + 1, "ZAR") == "R 90,071,992,547,409.93"


@pytest.mark.parametrize("amount", [12.34, "1234", True])
def test_refuses_anything_but_an_int(amount: object) -> None:
    with pytest.raises(TypeError):
        format_money(amount, "ZAR")  # type: ignore[arg-type]


def test_exponents() -> None:
    assert minor_unit_exponent("ZAR") == 2
    assert minor_unit_exponent("JPY") == 0
    assert minor_unit_exponent("KWD") == 3
