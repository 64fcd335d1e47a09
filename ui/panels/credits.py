"""Credit balances, each customer's ledger, and admin grants.

Purchases appear only after Stripe confirms a top-up payment; grants carry who and why.
"""

from __future__ import annotations

from collections.abc import Sequence, Set

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.browse import CreditBalanceRow
from services.changes import Changes
from services.context import AppContext
from services.credits import LedgerRow
from services.errors import AppError
from services.permissions import Permission
from ui.dialogs import denied_tooltip
from ui.formatting import format_datetime
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner
from ui.topup_dialogs import GrantDialog

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

_KIND_LABEL = {
    "purchase": "Purchase (paid)",
    "grant": "Grant (free)",
    "clawback": "Clawback (refund)",
    "adjustment": "Adjustment",
}


def _search_text(row: CreditBalanceRow) -> str:
    return f"{row.customer_name} {row.email} {row.customer_id}"


class LedgerPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Select a customer to see their ledger")
        self.title.setObjectName("detailTitle")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["When", "Credits", "Kind", "Source", "By / why"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)

    def show_ledger(self, label: str, rows: list[LedgerRow]) -> None:
        total = sum(r.amount for r in rows)
        self.title.setText(f"{label}: {total:,} credits")
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            who = r.operator + (f" — {r.reason}" if r.reason else "")
            kind = _KIND_LABEL.get(r.kind, r.kind)
            values = (format_datetime(r.created_at), f"{r.amount:+,}", kind, r.source, who)
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                if col == 1 and r.amount < 0:
                    item.setForeground(_RED)
                item.setToolTip(value)
                self.table.setItem(i, col, item)
        self.table.resizeColumnsToContents()


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
        self._listed: frozenset[str] | None = None  # customers with a balance shown
        self.model.modelReset.connect(self._on_model_reset_forget_listed)
        self._ctx = ctx
        self.grant_button = QPushButton("Grant credits…")
        self.grant_button.clicked.connect(self.grant_to_selected)
        self._can_grant = ctx.authority.can(Permission.GRANT_CREDITS)
        self.grant_button.setEnabled(False)
        if not self._can_grant:
            self.grant_button.setToolTip(denied_tooltip(ctx.actor.role, Permission.GRANT_CREDITS))
        self.toolbar.addWidget(self.grant_button)
        self.ledger = LedgerPane()
        splitter = QSplitter()
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.removeWidget(self.stack)
        splitter.addWidget(self.stack)
        splitter.addWidget(self.ledger)
        splitter.setSizes([620, 520])
        layout.addWidget(splitter, 1)
        note = QLabel(
            "Purchased credits come only from payments Stripe confirmed. Free credits are "
            "grants, made by admins with a reason."
        )
        note.setObjectName("hintText")
        row = QHBoxLayout()
        row.addWidget(note, 1)
        layout.insertLayout(1, row)
        self.row_selected.connect(self._on_self_row_selected)
        # The ledger of the kept customer is reloaded in place (a new entry may have arrived).
        self.selection_kept.connect(lambda row, _changed: self._on_self_row_selected(row))

    def column_widths(self) -> Sequence[int]:
        return (170, 200, 80, 60, 130, 170)

    def row_key(self, row: CreditBalanceRow) -> object:
        return row.customer_id

    def rows_changed(self, changes: Changes) -> Set[object] | None:
        # Balances are sums over the ledger: reloaded whole, only when a ledger moved (or a
        # customer with a balance was renamed).
        if changes.everything or changes.credits:
            return None
        if changes.customers and not changes.customers.isdisjoint(self._listed_customers()):
            return None
        return frozenset()

    def _on_model_reset_forget_listed(self) -> None:
        self._listed = None

    def _listed_customers(self) -> frozenset[str]:
        # Built once per load (not per update: a burst checks it every frame).
        if self._listed is None:
            self._listed = frozenset(row.customer_id for row in self.model.all_rows())
        return self._listed

    def grant_to_selected(self) -> None:
        row = self.current_row()
        if row is None or not self._can_grant:
            return
        dialog = GrantDialog(self._ctx, self._tasks, row.customer_id, row.customer_name, self)
        dialog.open()

    def _on_self_row_selected(self, row: CreditBalanceRow | None) -> None:
        self.grant_button.setEnabled(self._can_grant and row is not None)
        if row is None:
            return
        label = row.customer_name or row.customer_id
        self._tasks.run(
            self,
            lambda: self._ctx.credits.ledger(row.customer_id),
            lambda rows: self.ledger.show_ledger(label, rows),
            self._on_ledger_failed,
        )

    def _on_ledger_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.ledger.title.setText(str(exc))
