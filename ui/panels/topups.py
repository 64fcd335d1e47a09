"""The issued-links tracker: every top-up link, its status, age, who issued it, when paid."""

from __future__ import annotations

import time
from collections.abc import Sequence, Set

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.changes import Changes
from services.context import AppContext
from services.credits import TopUpRow
from services.errors import AppError
from services.permissions import Permission
from services.topup_attempts import TopUpAttempts
from services.topup_status import STATUS_VALUES
from ui.dialogs import ask_first, denied_tooltip
from ui.formatting import format_amount, format_datetime
from ui.panels.base import ListPanel, field_form
from ui.table_model import Column
from ui.tasks import TaskRunner

ANY = "Any status"
_GREEN = QColor("#1b7a34")
_RED = QColor("#b3261e")
_GREY = QColor("#7a7a7a")
_AMBER = QColor("#8a6100")
_STATUS_COLOUR = {
    "credited": _GREEN, "failed": _RED, "refunded": _RED, "disputed": _RED, "expired": _GREY,
    "pending": _AMBER,
}  # fmt: skip
#: What each status means, in the words a finance clerk would use.
STATUS_MEANING = {
    "open": "Waiting for the customer to pay; the link works.",
    "pending": "Paid by bank debit, still settling: no credits until the bank confirms.",
    "credited": "Paid; the credits were added.",
    "expired": "Not paid; the link no longer works.",
    "failed": "The bank debit failed: nothing was paid, no credits.",
    "refunded": "Paid, then refunded; the credits were taken back.",
    "disputed": "Paid, then lost to a dispute; the credits were taken back.",
}


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
        tooltip=lambda r: r.flagged or STATUS_MEANING.get(r.status, r.status),
    ),
    Column("Age", _age, sort_key=lambda r: -r.issued_at),
    Column("Issued by", lambda r: r.issued_by),
    Column("Paid", lambda r: format_datetime(r.paid_at), sort_key=lambda r: r.paid_at or 0),
    Column("Top-up", lambda r: r.topup_id),
]


def _search_text(row: TopUpRow) -> str:
    return f"{row.customer_name} {row.customer_id} {row.status} {row.topup_id} {row.issued_by}"


class TopUpDetailPane(QFrame):
    """The selected link: what it is for, what its status means, and every payment attempt."""

    FIELDS = ("Customer", "Credits", "Amount", "Status", "Issued", "Paid", "Link", "Flag")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.setMinimumWidth(300)
        self.title = QLabel("Select a top-up link")
        self.title.setObjectName("detailTitle")
        self.title.setWordWrap(True)
        form, self.fields = field_form(self.FIELDS)
        caption = QLabel("Payment attempts")
        caption.setStyleSheet("font-weight: 600; margin-top: 8px;")
        self.attempts = QLabel("—")
        self.attempts.setWordWrap(True)
        self.attempts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(form)
        layout.addWidget(caption)
        layout.addWidget(self.attempts)
        layout.addStretch(1)
        self.row: TopUpRow | None = None

    def show_row(self, row: TopUpRow | None) -> None:
        self.row = row
        if row is None:
            self.title.setText("Select a top-up link")
            for label in (*self.fields.values(), self.attempts):
                label.setText("—")
            return
        self.title.setText(f"Top-up {row.topup_id}")
        values = {
            "Customer": f"{row.customer_name or '(no name)'} ({row.customer_id})",
            "Credits": f"{row.credits:,}",
            "Amount": format_amount(row.amount, row.currency),
            "Status": f"{row.status} — {STATUS_MEANING.get(row.status, '')}".rstrip(" —"),
            "Issued": f"{format_datetime(row.issued_at)} by {row.issued_by}",
            "Paid": format_datetime(row.paid_at),
            "Link": row.url or "—",
            "Flag": f"⚑ {row.flagged}" if row.flagged else "—",
        }
        for key, value in values.items():
            self.fields[key].setText(value)

    def show_attempts_loading(self) -> None:
        self.attempts.setText("Loading from Stripe…")

    def show_attempts(self, found: TopUpAttempts) -> None:
        lines = []
        for a in found.attempts:
            outcome = {"succeeded": "paid", "failed": "DECLINED", "pending": "settling"}.get(
                a.status, a.status
            )
            line = f"{format_datetime(a.at)} — {outcome}: {format_amount(a.amount, a.currency)}"
            if a.method:
                line += f" by {a.method}"
            if a.reason:
                line += f" — {a.reason}"
            lines.append(line)
        if found.last_error and not any(a.reason for a in found.attempts):
            lines.append(f"Last error: {found.last_error}")
        self.attempts.setText("\n".join(lines) or "No attempt to pay yet.")


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
        self.status_combo.addItems([ANY, *STATUS_VALUES])
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
        self.detail = TopUpDetailPane()
        self.put_beside(self.detail, (800, 330))
        self.row_selected.connect(self._on_self_row_selected)
        self.selection_kept.connect(self._on_self_selection_kept)
        self._on_self_row_selected(None)

    def column_widths(self) -> Sequence[int]:
        return (130, 170, 70, 90, 90, 60, 90, 130, 180)

    def row_key(self, row: TopUpRow) -> object:
        return row.topup_id

    def rows_changed(self, changes: Changes) -> Set[object] | None:
        # A short list (links issued by staff): reloaded whole, only when a top-up changed.
        return None if changes.everything or changes.topups else frozenset()

    def expire_selected(self) -> None:
        row = self.current_row()
        if row is None or row.status != "open" or not self._can_expire:
            return
        self.confirm_box = ask_first(
            self, "Expire link",
            f"Expire the top-up link {row.topup_id} for {row.customer_name or row.customer_id} "
            f"({row.credits:,} credits, {format_amount(row.amount, row.currency)})?\n\n"
            "The customer can no longer pay with it. This cannot be undone: a new link would "
            "have to be issued.",
            "Expire link", lambda: self._expire(row),
        )  # fmt: skip

    def _expire(self, row: TopUpRow) -> None:
        self.expire_button.setEnabled(False)
        key = None  # the request journal picks it (re-used after an unknown outcome)
        self._tasks.run(
            self,
            lambda: self._ctx.credits.expire_topup(row.topup_id, key),
            None,  # the task runner announces the changed row to every panel
            self._on_expire_failed,
        )

    def clear_filters(self) -> None:
        self.status_combo.setCurrentText(ANY)
        super().clear_filters()

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
        self.detail.show_row(row)
        if row is not None:
            self._load_attempts(row)

    def _on_self_selection_kept(self, row: TopUpRow, changed: bool) -> None:
        is_open = row.status == "open"
        self.expire_button.setEnabled(self._can_expire and is_open)
        self.copy_button.setEnabled(is_open and bool(row.url))
        if changed:
            self.detail.show_row(row)
            self._load_attempts(row)

    def _load_attempts(self, row: TopUpRow) -> None:
        """Read from Stripe on demand: the mirror keeps outcomes, not each declined try."""
        self.detail.show_attempts_loading()
        session = row.checkout_session_id

        def shown(found: TopUpAttempts) -> None:
            if self.detail.row is not None and self.detail.row.topup_id == row.topup_id:
                self.detail.show_attempts(found)

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, AppError):
                raise exc
            if self.detail.row is not None and self.detail.row.topup_id == row.topup_id:
                self.detail.attempts.setText(f"Not known right now: {exc}")

        self._tasks.run(self, lambda: self._ctx.topup_attempts.attempts(session), shown, failed)
