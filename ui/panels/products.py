"""Products and their prices, with credit packs marked by how many credits they sell."""

from __future__ import annotations

from collections.abc import Sequence, Set

from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPushButton, QWidget

from services.browse import ProductRow
from services.changes import Changes
from services.context import AppContext
from services.errors import AppError
from services.permissions import Permission
from ui.dialogs import denied_tooltip
from ui.formatting import format_amount, format_date
from ui.panels.base import ListPanel
from ui.product_dialog import ProductDialog
from ui.table_model import Column
from ui.tasks import TaskRunner

_GREY = QColor("#7a7a7a")


def _price_text(row: ProductRow) -> str:
    price = row.default_price
    if price is None:
        return "no price"
    return format_amount(price.unit_amount, price.currency)


def _prices_tooltip(row: ProductRow) -> str:
    if not row.prices:
        return "This product has no prices yet."
    return "\n".join(
        f"{format_amount(p.unit_amount, p.currency)}  {p.stripe_id}"
        + (f"  ({p.lookup_key})" if p.lookup_key else "")
        + ("" if p.active else "  — archived")
        for p in row.prices
    )


COLUMNS: list[Column[ProductRow]] = [
    Column(
        "Product",
        lambda r: r.name,
        sort_key=lambda r: r.name.lower(),
        foreground=lambda r: None if r.active else _GREY,
    ),
    Column("Status", lambda r: "Active" if r.active else "Archived"),
    Column(
        "Credits",
        lambda r: f"{r.credits:,}" if r.credits else "—",
        sort_key=lambda r: r.credits or 0,
        numeric=True,
        tooltip=lambda r: (
            "A credit pack: paying for it adds this many credits."
            if r.credits
            else "Not a credit pack."
        ),
    ),
    Column(
        "Price",
        _price_text,
        sort_key=lambda r: r.default_price.unit_amount or 0 if r.default_price else -1,
        numeric=True,
        tooltip=_prices_tooltip,
    ),
    Column("Prices", lambda r: str(len(r.prices)), sort_key=lambda r: len(r.prices), numeric=True),
    Column("Created", lambda r: format_date(r.created), sort_key=lambda r: r.created),
    Column("Stripe id", lambda r: r.stripe_id),
]


def _search_text(row: ProductRow) -> str:
    keys = " ".join(p.lookup_key for p in row.prices)
    return f"{row.name} {row.stripe_id} {keys} {'credits' if row.credits else ''}"


class ProductsPanel(ListPanel[ProductRow]):
    title = "Products"
    noun = ("product", "products")
    search_placeholder = "Search product name, Stripe id or lookup key (Ctrl+F)"
    empty_title = "No products yet"
    empty_hint = (
        "Products and their prices appear here after a sync from Stripe (Ctrl+R). "
        "Credit packs are products with metadata credits = N."
    )

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, ctx.browse.products, COLUMNS, _search_text, parent)
        self._ctx = ctx
        self.new_button = QPushButton("New product")
        self.edit_button = QPushButton("Edit")
        self.archive_button = QPushButton("Archive")
        self.new_button.clicked.connect(self.new_product)
        self.edit_button.clicked.connect(self.edit_selected)
        self.archive_button.clicked.connect(self.toggle_archive_selected)
        for button in (self.new_button, self.edit_button, self.archive_button):
            self.toolbar.addWidget(button)
        self._can_manage = ctx.authority.can(Permission.MANAGE_CATALOG)
        if not self._can_manage:
            reason = denied_tooltip(ctx.actor.role, Permission.MANAGE_CATALOG)
            for button in (self.new_button, self.edit_button, self.archive_button):
                button.setEnabled(False)
                button.setToolTip(reason)
        self.row_selected.connect(self._on_self_row_selected)
        self.selection_kept.connect(lambda row, _changed: self._on_self_row_selected(row))
        self.row_activated.connect(lambda _row: self.edit_selected())
        self._on_self_row_selected(None)

    def new_product(self) -> None:
        if self._can_manage:
            dialog = ProductDialog(self._ctx, self._tasks, None, self)
            dialog.saved.connect(lambda _row: self.refresh())
            dialog.open()

    def edit_selected(self) -> None:
        row = self.current_row()
        if self._can_manage and row is not None:
            dialog = ProductDialog(self._ctx, self._tasks, row, self)
            dialog.saved.connect(lambda _row: self.refresh())
            dialog.open()

    def toggle_archive_selected(self) -> None:
        row = self.current_row()
        if not self._can_manage or row is None:
            return
        key = None  # the request journal picks it (re-used after an unknown outcome)
        self.archive_button.setEnabled(False)
        self._tasks.run(
            self,
            lambda: self._ctx.catalog.set_active(row.stripe_id, not row.active, key),
            lambda _row: self.refresh(),
            self._on_action_failed,
        )

    def _on_action_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.load_failed.emit(str(exc))
        self.refresh()

    def _on_self_row_selected(self, row: ProductRow | None) -> None:
        has = self._can_manage and row is not None
        self.edit_button.setEnabled(has)
        self.archive_button.setEnabled(has)
        self.archive_button.setText("Restore" if row is not None and not row.active else "Archive")

    def column_widths(self) -> Sequence[int]:
        return (240, 80, 80, 100, 60, 100, 200)

    def row_key(self, row: ProductRow) -> object:
        return row.stripe_id

    def rows_changed(self, changes: Changes) -> Set[object] | None:
        # The catalog is short: reloaded whole when a product or price changed.
        return None if changes.everything or changes.catalog or changes.products else frozenset()
