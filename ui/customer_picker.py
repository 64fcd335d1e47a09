"""Pick a customer by typing part of a name, email, phone, id or metadata — no raw ids needed.

The same instant search as the Customers panel: the local mirror's customers, filtered in
Python as you type (see `ui.table_model`).
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.browse import CustomerRow
from services.context import AppContext
from services.errors import AppError
from ui.table_model import Column, RowTableModel
from ui.tasks import TaskRunner


def customer_search_text(row: CustomerRow) -> str:
    """What customer search looks at: name, email, phone, Stripe id and metadata."""
    return f"{row.name} {row.email} {row.phone} {row.stripe_id} {row.metadata_text}"


COLUMNS: list[Column[CustomerRow]] = [
    Column("Name", lambda r: r.name or "(no name)", sort_key=lambda r: r.name.lower()),
    Column("Email", lambda r: r.email, sort_key=lambda r: r.email.lower()),
    Column("Stripe id", lambda r: r.stripe_id),
]


class CustomerPicker(QWidget):
    """A search box over a short list of customers; the selected one is `customer()`."""

    #: Emitted with the picked CustomerRow, or None when nothing is picked.
    picked = Signal(object)
    #: Emitted once the customers have loaded.
    loaded = Signal()

    def __init__(
        self, ctx: AppContext, tasks: TaskRunner, preselect: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._preselect = preselect
        self.model: RowTableModel[CustomerRow] = RowTableModel(COLUMNS, customer_search_text)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Type a name, email, phone or id…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_search_text_changed)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(0, 170)
        self.table.setColumnWidth(1, 210)
        self.table.setMinimumHeight(150)
        self.table.setMaximumHeight(190)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self.chosen = QLabel("Loading customers…")
        self.chosen.setObjectName("hintText")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.table)
        layout.addWidget(self.chosen)
        self._picked: CustomerRow | None = None
        #: How the pick is announced ("Invoice for: …"); other dialogs say their own.
        self.chosen_prefix = "Invoice for"
        tasks.run(self, ctx.browse.customers, self._on_customers_loaded, self._on_load_failed)

    def customer(self) -> CustomerRow | None:
        return self._picked

    def _on_customers_loaded(self, rows: list[CustomerRow]) -> None:
        self.model.set_rows(rows)
        for i, row in enumerate(self.model.visible_rows()):
            if row.stripe_id == self._preselect:
                self.table.selectRow(i)
                self.table.scrollTo(self.model.index(i, 0))
                break
        else:
            self._show_choice()
        self.loaded.emit()

    def _on_load_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.chosen.setText(f"Customers could not be loaded: {exc}")

    def _on_search_text_changed(self, text: str) -> None:
        self.model.set_filter(text)  # a reset: the view forgets its selection
        if self.model.rowCount() == 1:
            self.table.selectRow(0)  # one match: that is the one
        elif self._picked is not None:
            for i, row in enumerate(self.model.visible_rows()):
                if row.stripe_id == self._picked.stripe_id:
                    self.table.selectRow(i)
                    break
            else:
                self._set_picked(None)
        self._show_choice()

    def _on_current_row_changed(self, current: object, _previous: object) -> None:
        index = self.table.currentIndex()
        self._set_picked(self.model.row_at(index.row()) if index.isValid() else None)

    def _set_picked(self, row: CustomerRow | None) -> None:
        if row == self._picked:
            return
        self._picked = row
        self._show_choice()
        self.picked.emit(row)

    def _show_choice(self) -> None:
        row = self._picked
        shown, total = self.model.rowCount(), self.model.total_count
        if row is not None:
            who = row.name or "(no name)"
            self.chosen.setText(
                f"{self.chosen_prefix}: {who} · {row.email or 'no email'} · {row.stripe_id}"
            )
        elif total and not shown:
            self.chosen.setText(f"No customer matches “{self.search.text().strip()}”.")
        elif total:
            self.chosen.setText(f"Pick one of {shown:,} customers above.")
        else:
            self.chosen.setText("No customers in the local mirror yet: sync from Stripe first.")
