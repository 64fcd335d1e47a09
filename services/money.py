"""Money is an integer in the currency's minor unit plus an ISO code; formatting is for display."""

from __future__ import annotations

# Stripe's zero-decimal currencies: the amount is already in whole units.
ZERO_DECIMAL = frozenset(
    {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv"}
    | {"xaf", "xof", "xpf"}
)
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}


def format_amount(amount: int | None, currency: str | None) -> str:
    """`1234, "usd"` → `"$12.34"`; unknown currencies show their code: `"12.34 CHF"`."""
    if amount is None:
        return "—"
    code = (currency or "").lower()
    if code in ZERO_DECIMAL:
        text = f"{abs(amount):,}"
    else:
        text = f"{abs(amount) // 100:,}.{abs(amount) % 100:02d}"
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(code)
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{text} {code.upper()}".rstrip()


def major_units_text(amount: int, currency: str) -> str:
    """`1250, "usd"` → `"12.50"` (for an edit box; no symbol, no separators)."""
    if currency.lower() in ZERO_DECIMAL:
        return str(amount)
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d}"
