"""Credit balances: the sum of each customer's ledger (purchases only after a verified payment)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from services.browse import CreditBalanceRow
from services.context import AppContext
from ui.formatting import format_datetime
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner

_RED = QColor("#b3261e")

COLUMNS: list[Column[CreditBalanceRow]] = [
    Column("Customer", lambda r: r.customer_name or r.customer_id),
    Column("Email", lambda r: r.email),
    Column(
        "Credits",
        lambda r: f"{r.balance:,}",
        sort_key=lambda r: r.balance,
        numeric=True,
        foreground=lambda r: _RED if r.balance < 0 else None,
        tooltip=lambda r: (
            "Negative after a refund clawed back credits already used."
            if r.balance < 0
            else "The sum of this customer's ledger entries."
        ),
    ),
    Column("Entries", lambda r: str(r.entries), sort_key=lambda r: r.entries, numeric=True),
    Column("Last change", lambda r: format_datetime(r.last_entry_at), lambda r: r.last_entry_at),
    Column("Stripe id", lambda r: r.customer_id),
]


def _search_text(row: CreditBalanceRow) -> str:
    return f"{row.customer_name} {row.email} {row.customer_id}"


class CreditsPanel(ListPanel[CreditBalanceRow]):
    title = "Credits"
    noun = ("customer with credits", "customers with credits")
    search_placeholder = "Search customer name, email or Stripe id (Ctrl+F)"
    empty_title = "No credits yet"
    empty_hint = (
        "Credits are added only when Stripe confirms a top-up payment, or when an admin "
        "grants them with a reason. Balances appear here as soon as that happens."
    )

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, ctx.browse.credit_balances, COLUMNS, _search_text, parent)

    def column_widths(self) -> Sequence[int]:
        return (220, 260, 100, 70, 140, 200)
