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
from services.lots import Balances
from services.permissions import Permission
from ui.auto_topup_dialogs import AttentionDialog, AutoTopUpDialog, describe
from ui.credit_balances import credit_text
from ui.dialogs import denied_tooltip
from ui.formatting import format_datetime
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner
from ui.topup_dialogs import GrantDialog, TopUpDialog

_RED = QColor("#b3261e")

COLUMNS: list[Column[CreditBalanceRow]] = [
    Column("Customer", lambda r: r.customer_name or r.customer_id),
    Column("Email", lambda r: r.email),
    Column(
        "Available",
        lambda r: f"{r.balance:,}",
        sort_key=lambda r: r.balance,
        numeric=True,
        foreground=lambda r: _RED if r.balance < 0 else None,
        tooltip=lambda r: (
            "Negative: spent on overdraft, or a refund clawed back credits already used."
            if r.balance < 0
            else "Paid + promotional credits that may be spent now (expired lots excluded)."
        ),
    ),
    Column("Paid", lambda r: f"{r.paid:,}", sort_key=lambda r: r.paid, numeric=True),
    Column(
        "Promotional",
        lambda r: f"{r.promotional:,}",
        sort_key=lambda r: r.promotional,
        numeric=True,
        tooltip=lambda r: "Granted credits: spent before paid ones.",
    ),
    Column(
        "Pending",
        lambda r: f"{r.pending:,}" if r.pending else "",
        sort_key=lambda r: r.pending,
        numeric=True,
        tooltip=lambda r: "Credits in top-up links not paid yet: never spendable.",
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
    "spend": "Spend",
    "expiry": "Expiry",
}


def _search_text(row: CreditBalanceRow) -> str:
    return f"{row.customer_name} {row.email} {row.customer_id}"


class LedgerPane(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Select a customer to see their ledger")
        self.title.setObjectName("detailTitle")
        self.auto_topup = QLabel("")
        self.auto_topup.setWordWrap(True)
        self.auto_topup.setObjectName("hintText")
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["When", "Credits", "Kind", "Source", "By / why"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.auto_topup)
        layout.addWidget(self.table, 1)

    def show_ledger(
        self, label: str, rows: list[LedgerRow], balances: Balances | None = None
    ) -> None:
        available = balances.available if balances else sum(r.amount for r in rows)
        self.title.setText(f"{label}: {credit_text(available, balances)}")
        self.title.setWordWrap(True)
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
        self.auto_topup_button = QPushButton("Auto top-up…")
        self.auto_topup_button.setToolTip(
            "Low-balance threshold and automatic top-up with the customer's saved card"
        )
        self.auto_topup_button.setEnabled(False)
        self.auto_topup_button.clicked.connect(self.auto_topup_for_selected)
        self.toolbar.addWidget(self.auto_topup_button)
        self.attention_button = QPushButton("Needs attention…")
        self.attention_button.setToolTip("Customers whose automatic top-up failed, and why")
        self.attention_button.clicked.connect(self.show_attention)
        self.toolbar.addWidget(self.attention_button)
        self.attention_dialog: AttentionDialog | None = None
        self.ledger = LedgerPane()
        self.put_beside(self.ledger, (620, 520), stretch=False)
        note = QLabel(
            "Purchased credits come only from payments Stripe confirmed. Free credits are "
            "grants, made by admins with a reason."
        )
        note.setObjectName("hintText")
        row = QHBoxLayout()
        row.addWidget(note, 1)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertLayout(1, row)
        self.row_selected.connect(self._on_self_row_selected)
        # The ledger of the kept customer is reloaded in place (a new entry may have arrived).
        self.selection_kept.connect(lambda row, _changed: self._on_self_row_selected(row))

    def column_widths(self) -> Sequence[int]:
        return (170, 200, 80, 80, 90, 70, 60, 130, 170)

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

    def auto_topup_for_selected(self) -> None:
        row = self.current_row()
        if row is not None:
            self.open_auto_topup(row.customer_id, row.customer_name or row.customer_id)

    def open_auto_topup(self, customer_id: str, label: str) -> None:
        dialog = AutoTopUpDialog(self._ctx, self._tasks, customer_id, label, self)
        dialog.saved.connect(lambda _config: self.changed_elsewhere.emit())
        dialog.open()

    def show_attention(self) -> None:
        dialog = AttentionDialog(self._ctx, self._tasks, self)
        dialog.edit_auto_topup.connect(self.open_auto_topup)
        dialog.send_link.connect(self._on_attention_send_link)
        dialog.open()
        self.attention_dialog = dialog

    def _on_attention_send_link(self, customer_id: str, label: str) -> None:
        TopUpDialog(self._ctx, self._tasks, customer_id, label, self).open()

    def _on_self_row_selected(self, row: CreditBalanceRow | None) -> None:
        self.grant_button.setEnabled(self._can_grant and row is not None)
        self.auto_topup_button.setEnabled(row is not None)
        if row is None:
            return
        label = row.customer_name or row.customer_id
        customer_id = row.customer_id
        credits = self._ctx.credits
        self._tasks.run(
            self,
            lambda: (credits.ledger(customer_id), credits.balances(customer_id)),
            lambda found: self.ledger.show_ledger(label, *found),
            self._on_ledger_failed,
        )
        self._tasks.run(
            self,
            lambda: describe(
                self._ctx.auto_topup.config(customer_id), self._ctx.credits.credit_packs()
            ),
            self.ledger.auto_topup.setText,
            self._on_ledger_failed,
        )

    def _on_ledger_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.ledger.title.setText(str(exc))
