"""How a customer's credit balance reads on screen: available, its split, pending, next expiry."""

from __future__ import annotations

from services.lots import Balances
from ui.formatting import format_datetime


def credit_text(available: int, balances: Balances | None) -> str:
    """'1,200 available (paid 1,000 · promotional 200) · 500 pending · 200 expire …'."""
    if balances is None:
        return f"{available:,}"
    parts = [
        f"{available:,} available (paid {balances.paid:,} · promotional {balances.promotional:,})"
    ]
    if balances.overdraft or balances.overdraft_limit:
        parts.append(f"overdraft {balances.overdraft:,} of {balances.overdraft_limit:,}")
    if balances.pending:
        parts.append(f"{balances.pending:,} pending (unpaid links, not spendable)")
    if balances.next_expiry_at is not None:
        parts.append(
            f"{balances.next_expiry_credits:,} expire {format_datetime(balances.next_expiry_at)}"
        )
    return " · ".join(parts)
