"""Customers: everyone in the local mirror of Stripe, searchable by any shown field."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QWidget

from services.browse import CustomerRow
from services.context import AppContext
from ui.formatting import format_amount, format_date
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner

COLUMNS: list[Column[CustomerRow]] = [
    Column("Name", lambda r: r.name or "(no name)", sort_key=lambda r: r.name.lower()),
    Column("Email", lambda r: r.email, sort_key=lambda r: r.email.lower()),
    Column("Phone", lambda r: r.phone),
    Column(
        "Stripe balance",
        lambda r: (
            format_amount(r.balance, r.currency) if r.currency else format_amount(r.balance, "usd")
        ),
        sort_key=lambda r: r.balance,
        numeric=True,
        tooltip=lambda r: "Negative: credit the customer has with Stripe toward future invoices.",
    ),
    Column("Created", lambda r: format_date(r.created), sort_key=lambda r: r.created),
    Column("Stripe id", lambda r: r.stripe_id),
]


def _search_text(row: CustomerRow) -> str:
    return f"{row.name} {row.email} {row.phone} {row.stripe_id}"


class CustomersPanel(ListPanel[CustomerRow]):
    title = "Customers"
    noun = ("customer", "customers")
    search_placeholder = "Search name, email, phone or Stripe id (Ctrl+F)"
    empty_title = "No customers yet"
    empty_hint = "Customers appear here after a sync from Stripe (File ▸ Sync from Stripe, Ctrl+R)."

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, ctx.browse.customers, COLUMNS, _search_text, parent)

    def column_widths(self) -> Sequence[int]:
        return (220, 260, 140, 120, 100, 200)
