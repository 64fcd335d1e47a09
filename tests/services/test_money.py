"""Money in minor units, formatted per ISO 4217 decimals: 0 (jpy), 2 (usd), 3 (bhd)."""

from __future__ import annotations

import pytest

import minor_units
from services import money, validation
from services.errors import ValidationError
from stripe_sandbox import pages


@pytest.mark.parametrize(
    ("amount", "currency", "shown", "edit"),
    [
        (123_456, "usd", "$1,234.56", "1234.56"),
        (-210, "eur", "-€2.10", "-2.10"),
        (1_500, "jpy", "¥1,500", "1500"),
        (1_500, "xpf", "1,500 XPF", "1500"),
        (1_234_560, "bhd", "1,234.560 BHD", "1234.560"),
        (5, "kwd", "0.005 KWD", "0.005"),
        (-1_050, "jod", "-1.050 JOD", "-1.050"),
        (1_000, "OMR", "1.000 OMR", "1.000"),
        (20, "tnd", "0.020 TND", "0.020"),
        (99, "chf", "0.99 CHF", "0.99"),
    ],
)
def test_amounts_show_their_currencys_decimals(
    amount: int, currency: str, shown: str, edit: str
) -> None:
    assert money.format_amount(amount, currency) == shown
    assert money.major_units_text(amount, currency) == edit
    if amount > 0:  # what a person types comes back as the same minor units
        assert validation.amount_in_minor_units(edit, currency.lower()) == amount


def test_three_decimal_amounts_refuse_a_fourth_decimal() -> None:
    with pytest.raises(ValidationError, match=r"like 12\.500"):
        validation.amount_in_minor_units("1.2345", "kwd")
    with pytest.raises(ValidationError, match="like 1500"):
        validation.amount_in_minor_units("15.5", "jpy")


def test_the_app_and_the_sandbox_share_one_table() -> None:
    assert money.ZERO_DECIMAL is minor_units.ZERO_DECIMAL
    assert pages.money(1_500, "jpy") == "1,500 JPY"
    assert pages.money(1_234, "bhd") == "1.234 BHD"
    assert pages.money(1_234, "usd") == "12.34 USD"
    assert [minor_units.decimals(c) for c in ("JPY", "usd", "Kwd", None)] == [0, 2, 3, 2]
