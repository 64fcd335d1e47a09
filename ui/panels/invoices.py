"""Invoices from the local mirror: who owes what, and what was paid."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import QWidget

from services.browse import InvoiceRow
from services.context import AppContext
from ui.formatting import format_amount, format_date
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner

COLUMNS: list[Column[InvoiceRow]] = [
    Column("Number", lambda r: r.number or "(draft)"),
    Column("Customer", lambda r: r.customer_name or r.customer_id),
    Column("Status", lambda r: r.status.capitalize()),
    Column("Total", lambda r: format_amount(r.total, r.currency), lambda r: r.total, numeric=True),
    Column(
        "Amount due",
        lambda r: format_amount(r.amount_due, r.currency),
        lambda r: r.amount_due,
        numeric=True,
    ),
    Column(
        "Paid",
        lambda r: format_amount(r.amount_paid, r.currency),
        lambda r: r.amount_paid,
        numeric=True,
    ),
    Column("Created", lambda r: format_date(r.created), sort_key=lambda r: r.created),
    Column("Due", lambda r: format_date(r.due_date), sort_key=lambda r: r.due_date or 0),
    Column("Stripe id", lambda r: r.stripe_id),
]


def _search_text(row: InvoiceRow) -> str:
    return f"{row.number} {row.customer_name} {row.customer_id} {row.status} {row.stripe_id}"


class InvoicesPanel(ListPanel[InvoiceRow]):
    title = "Invoices"
    noun = ("invoice", "invoices")
    search_placeholder = "Search number, customer, status or Stripe id (Ctrl+F)"
    empty_title = "No invoices yet"
    empty_hint = (
        "Invoices from Stripe are listed here with their status and amounts once they are "
        "mirrored into this database."
    )

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, ctx.browse.invoices, COLUMNS, _search_text, parent)

    def column_widths(self) -> Sequence[int]:
        return (120, 200, 80, 100, 100, 100, 100, 100, 200)
