"""How many decimals a currency's minor unit has, as Stripe counts amounts (ISO 4217).

The one table for the app (`services.money`) and the Stripe sandbox, which may not import each
other: this package imports nothing and is imported by both.
"""

from __future__ import annotations

#: Stripe's zero-decimal currencies: an amount is already in whole units (¥1,500 is 1500).
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
    | {"xaf", "xof", "xpf"}
)
#: ISO 4217's three-decimal currencies: 1.234 BHD is 1234 (Stripe wants the last digit 0).
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def decimals(currency: str | None) -> int:
    """Digits after the decimal point: 0 for jpy, 3 for bhd, 2 for everything else."""
    code = (currency or "").lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2
