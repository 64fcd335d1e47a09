"""Money is an integer in the currency's minor unit plus an ISO code; formatting is for display."""

from __future__ import annotations

from minor_units import THREE_DECIMAL, ZERO_DECIMAL, decimals

__all__ = ["THREE_DECIMAL", "ZERO_DECIMAL", "decimals", "format_amount", "major_units_text"]

_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_amount(amount: int | None, currency: str | None) -> str:
    """`1234, "usd"` → `"$12.34"`; unknown currencies show their code: `"12.34 CHF"`."""
    if amount is None:
        return "—"
    code = (currency or "").lower()
    places = decimals(code)
    if places == 0:
        text = f"{abs(amount):,}"
    else:
        unit = 10**places
        text = f"{abs(amount) // unit:,}.{abs(amount) % unit:0{places}d}"
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {code.upper()}".rstrip()


def major_units_text(amount: int, currency: str) -> str:
    """`1250, "usd"` → `"12.50"` (for an edit box; no symbol, no separators)."""
    places = decimals(currency)
    if places == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    unit = 10**places
    return f"{sign}{abs(amount) // unit}.{abs(amount) % unit:0{places}d}"
