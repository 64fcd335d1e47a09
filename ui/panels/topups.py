"""The issued-links tracker: every top-up link, its status, age, who issued it, when paid."""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import QComboBox, QPushButton, QWidget

from services.context import AppContext
from services.credits import TopUpRow
from services.errors import AppError
from services.permissions import Permission
from ui.dialogs import denied_tooltip
from ui.formatting import format_amount, format_datetime
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner

ANY = "Any status"
_GREEN = QColor("#1b7a34")
_RED = QColor("#b3261e")
_GREY = QColor("#7a7a7a")
_STATUS_COLOUR = {
    "credited": _GREEN, "failed": _RED, "refunded": _RED, "disputed": _RED, "expired": _GREY,
}  # fmt: skip


def _age(row: TopUpRow) -> str:
    minutes = max(0, int(time.time()) - row.issued_at) // 60
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} days"


COLUMNS: list[Column[TopUpRow]] = [
    Column("Issued", lambda r: format_datetime(r.issued_at), sort_key=lambda r: r.issued_at),
    Column("Customer", lambda r: r.customer_name or r.customer_id),
    Column("Credits", lambda r: f"{r.credits:,}", sort_key=lambda r: r.credits, numeric=True),
    Column(
        "Amount", lambda r: format_amount(r.amount, r.currency), lambda r: r.amount, numeric=True
    ),
    Column(
        "Status",
        lambda r: r.status + (" ⚑" if r.flagged else ""),
        foreground=lambda r: _STATUS_COLOUR.get(r.status),
        tooltip=lambda r: r.flagged or r.status,
    ),
    Column("Age", _age, sort_key=lambda r: -r.issued_at),
    Column("Issued by", lambda r: r.issued_by),
    Column("Paid", lambda r: format_datetime(r.paid_at), sort_key=lambda r: r.paid_at or 0),
    Column("Top-up", lambda r: r.topup_id),
]


def _search_text(row: TopUpRow) -> str:
    return f"{row.customer_name} {row.customer_id} {row.status} {row.topup_id} {row.issued_by}"


class TopUpsPanel(ListPanel[TopUpRow]):
    title = "Top-ups"
    noun = ("link", "links")
    search_placeholder = "Search customer, status, top-up id (Ctrl+F)"
    empty_title = "No top-up links yet"
    empty_hint = (
        "Issue one from a customer (Customers ▸ Top-up link, Ctrl+T). The customer pays on "
        "Stripe's page; the credits are added when Stripe confirms the payment."
    )

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        self._ctx = ctx
        self._status: str | None = None
        super().__init__(tasks, self._load_rows, COLUMNS, _search_text, parent)
        self.status_combo = QComboBox()
        self.status_combo.addItems(
            [ANY, "open", "credited", "expired", "failed", "refunded", "disputed", "paid"]
        )
        self.status_combo.currentTextChanged.connect(self._on_status_combo_changed)
        self.copy_button = QPushButton("Copy link")
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.expire_button = QPushButton("Expire link")
        self.expire_button.clicked.connect(self.expire_selected)
        self._can_expire = ctx.authority.can(Permission.ISSUE_TOPUP_LINK)
        if not self._can_expire:
            self.expire_button.setToolTip(
                denied_tooltip(ctx.actor.role, Permission.ISSUE_TOPUP_LINK)
            )
        for widget in (self.status_combo, self.copy_button, self.expire_button):
            self.toolbar.addWidget(widget)
        self.row_selected.connect(self._on_self_row_selected)
        self.selection_kept.connect(lambda row, _changed: self._on_self_row_selected(row))
        self._on_self_row_selected(None)

    def column_widths(self) -> Sequence[int]:
        return (130, 170, 70, 90, 90, 60, 90, 130, 180)

    def row_key(self, row: TopUpRow) -> object:
        return row.topup_id

    def expire_selected(self) -> None:
        row = self.current_row()
        if row is None or row.status != "open" or not self._can_expire:
            return
        self.expire_button.setEnabled(False)
        key = None  # the request journal picks it (re-used after an unknown outcome)
        self._tasks.run(
            self,
            lambda: self._ctx.credits.expire_topup(row.topup_id, key),
            lambda _row: self.refresh(),
            self._on_expire_failed,
        )

    def _load_rows(self) -> list[TopUpRow]:
        return self._ctx.credits.topups(status=self._status)

    def _on_expire_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.load_failed.emit(f"Could not expire the link: {exc}")
        self.refresh()

    def _on_status_combo_changed(self, text: str) -> None:
        self._status = None if text == ANY else text
        self.refresh()

    def _on_copy_clicked(self) -> None:
        row = self.current_row()
        if row is not None and row.url:
            QGuiApplication.clipboard().setText(row.url)

    def _on_self_row_selected(self, row: TopUpRow | None) -> None:
        is_open = row is not None and row.status == "open"
        self.expire_button.setEnabled(self._can_expire and is_open)
        self.copy_button.setEnabled(is_open and bool(row and row.url))
