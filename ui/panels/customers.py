"""Customers: everyone in the local mirror of Stripe, searchable as you type, with details."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from services.browse import CustomerRow
from services.context import AppContext
from services.customers import CustomerDetail
from services.errors import AppError
from services.permissions import Permission
from ui.customer_dialogs import CustomerDialog, PortalLinkDialog
from ui.dialogs import denied_tooltip
from ui.formatting import format_amount, format_date, format_datetime
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner
from ui.topup_dialogs import GrantDialog, TopUpDialog

COLUMNS: list[Column[CustomerRow]] = [
    Column("Name", lambda r: r.name or "(no name)", sort_key=lambda r: r.name.lower()),
    Column("Email", lambda r: r.email, sort_key=lambda r: r.email.lower()),
    Column("Phone", lambda r: r.phone),
    Column(
        "Balance",
        lambda r: format_amount(r.balance, r.currency or "usd"),
        sort_key=lambda r: r.balance,
        numeric=True,
        tooltip=lambda r: "Stripe customer balance. Negative: credit toward future invoices.",
    ),
    Column("Created", lambda r: format_date(r.created), sort_key=lambda r: r.created),
    Column("Stripe id", lambda r: r.stripe_id),
]


DETAIL_FIELDS = (
    "Email", "Phone", "Address", "Created", "Currency", "Stripe balance", "Credits",
    "Metadata", "Tags", "Notes", "Invoices", "Top-ups", "Synced",
)  # fmt: skip


def _search_text(row: CustomerRow) -> str:
    return f"{row.name} {row.email} {row.phone} {row.stripe_id} {row.metadata_text}"


class CustomerDetailPane(QFrame):
    """The selected customer, loaded on selection only (never for every row)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("detailPane")
        self.setMinimumWidth(280)
        self.title = QLabel("Select a customer")
        self.title.setObjectName("detailTitle")
        self.title.setWordWrap(True)
        self.stripe_id = QLabel()
        self.stripe_id.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.copy_id = QPushButton("Copy id")
        self.copy_id.setEnabled(False)
        self.copy_id.clicked.connect(self._on_copy_id_clicked)
        id_row = QHBoxLayout()
        id_row.addWidget(self.stripe_id, 1)
        id_row.addWidget(self.copy_id)
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        for key in DETAIL_FIELDS:
            label = QLabel("—")
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = label
            form.addRow(f"{key}:", label)
        self.grant_button = QPushButton("Grant credits…")
        self.grant_button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(id_row)
        layout.addLayout(form)
        layout.addWidget(self.grant_button)
        layout.addStretch(1)
        self.detail: CustomerDetail | None = None

    def show_detail(self, d: CustomerDetail | None) -> None:
        self.detail = d
        self.copy_id.setEnabled(d is not None)
        if d is None:
            self.title.setText("Select a customer")
            self.stripe_id.setText("")
            for label in self.fields.values():
                label.setText("—")
            return
        self.title.setText(d.name or d.email or d.stripe_id)
        self.stripe_id.setText(d.stripe_id)
        open_invoices = [i for i in d.invoices if i.status == "open"]
        values = {
            "Email": d.email or "—",
            "Phone": d.phone or "—",
            "Address": d.address.one_line() or "—",
            "Created": format_date(d.created),
            "Currency": d.currency.upper() or "not set yet",
            "Stripe balance": format_amount(d.balance, d.currency or "usd"),
            "Credits": f"{d.credit_balance:,}",
            "Metadata": ", ".join(f"{k}={v}" for k, v in sorted(d.metadata.items())) or "—",
            "Tags": ", ".join(d.tags) or "—",
            "Notes": d.notes or "—",
            "Invoices": f"{len(d.invoices)} ({len(open_invoices)} open)" if d.invoices else "none",
            "Top-ups": f"{d.topups} ({d.open_topups} open)" if d.topups else "none",
            "Synced": format_datetime(d.synced_at),
        }
        if d.deleted:
            values["Synced"] += " — deleted in Stripe"
        for key, value in values.items():
            self.fields[key].setText(value)

    def _on_copy_id_clicked(self) -> None:
        if self.detail is not None:
            QGuiApplication.clipboard().setText(self.detail.stripe_id)


class CustomersPanel(ListPanel[CustomerRow]):
    title = "Customers"
    noun = ("customer", "customers")
    search_placeholder = "Search name, email, id, metadata… (Ctrl+F)"
    empty_title = "No customers yet"
    empty_hint = (
        "Customers appear here after a sync from Stripe (File ▸ Sync from Stripe, Ctrl+R), "
        "or create one with New customer (Ctrl+N)."
    )

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(tasks, ctx.browse.customers, COLUMNS, _search_text, parent)
        self._ctx = ctx
        self.new_button = QPushButton("New customer")
        self.new_button.setShortcut(QKeySequence("Ctrl+N"))
        self.edit_button = QPushButton("Edit")
        self.edit_button.setShortcut(QKeySequence("Ctrl+E"))
        self.portal_button = QPushButton("Customer Portal link")
        self.portal_button.setShortcut(QKeySequence("Ctrl+L"))
        self.topup_button = QPushButton("Top-up link")
        self.topup_button.setShortcut(QKeySequence("Ctrl+T"))
        self.topup_button.clicked.connect(self.topup_link_for_selected)
        self.new_button.clicked.connect(self.new_customer)
        self.edit_button.clicked.connect(self.edit_selected)
        self.portal_button.clicked.connect(self.portal_link_for_selected)
        buttons = (
            (self.new_button, "Ctrl+N"),
            (self.edit_button, "Ctrl+E"),
            (self.portal_button, "Ctrl+L"),
            (self.topup_button, "Ctrl+T"),
        )
        for button, shortcut in buttons:
            button.setToolTip(f"{button.text()} ({shortcut})")
            self.toolbar.addWidget(button)
        self._can_edit = ctx.authority.can(Permission.EDIT_CUSTOMER)
        self._can_portal = ctx.authority.can(Permission.ISSUE_PORTAL_LINK)
        self._can_topup = ctx.authority.can(Permission.ISSUE_TOPUP_LINK)
        if not self._can_topup:
            self.topup_button.setToolTip(
                denied_tooltip(ctx.actor.role, Permission.ISSUE_TOPUP_LINK)
            )
        if not self._can_edit:
            reason = denied_tooltip(ctx.actor.role, Permission.EDIT_CUSTOMER)
            self.new_button.setEnabled(False)
            self.new_button.setToolTip(reason)
            self.edit_button.setToolTip(reason)
        if not self._can_portal:
            self.portal_button.setToolTip(
                denied_tooltip(ctx.actor.role, Permission.ISSUE_PORTAL_LINK)
            )

        self.detail = CustomerDetailPane()
        self._can_grant = ctx.authority.can(Permission.GRANT_CREDITS)
        self.detail.grant_button.clicked.connect(self.grant_to_selected)
        if not self._can_grant:
            self.detail.grant_button.setToolTip(
                denied_tooltip(ctx.actor.role, Permission.GRANT_CREDITS)
            )
        splitter = QSplitter()
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.removeWidget(self.stack)
        splitter.addWidget(self.stack)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([860, 300])
        layout.addWidget(splitter, 1)
        self.row_selected.connect(self._on_self_row_selected)
        # Credits, invoices and top-ups may change without the row: reload the detail in place.
        self.selection_kept.connect(lambda row, _changed: self._load_detail(row.stripe_id))
        self.row_activated.connect(lambda _row: self.edit_selected())
        self._update_buttons(None)

    def column_widths(self) -> Sequence[int]:
        return (170, 235, 125, 105, 90, 170)

    def row_key(self, row: CustomerRow) -> object:
        return row.stripe_id

    # ---- actions
    def new_customer(self) -> None:
        if not self._can_edit:
            return
        dialog = CustomerDialog(self._ctx, self._tasks, None, self)
        dialog.saved.connect(self._on_dialog_saved)
        dialog.open()

    def edit_selected(self) -> None:
        detail = self.detail.detail
        if not self._can_edit or detail is None or detail.deleted:
            return
        dialog = CustomerDialog(self._ctx, self._tasks, detail, self)
        dialog.saved.connect(self._on_dialog_saved)
        dialog.open()

    def portal_link_for_selected(self) -> None:
        detail = self.detail.detail
        if not self._can_portal or detail is None:
            return
        label = detail.name or detail.email
        PortalLinkDialog(self._ctx, self._tasks, detail.stripe_id, label, self).open()

    def topup_link_for_selected(self) -> None:
        detail = self.detail.detail
        if not self._can_topup or detail is None or detail.deleted:
            return
        dialog = TopUpDialog(
            self._ctx, self._tasks, detail.stripe_id, detail.name or detail.email, self
        )
        dialog.issued.connect(lambda _link: self.changed_elsewhere.emit())  # the tracker, live
        dialog.open()

    def grant_to_selected(self) -> None:
        detail = self.detail.detail
        if not self._can_grant or detail is None or detail.deleted:
            return
        dialog = GrantDialog(
            self._ctx, self._tasks, detail.stripe_id, detail.name or detail.email, self
        )
        dialog.granted.connect(lambda _entry: self.changed_elsewhere.emit())
        dialog.open()

    # ---- slots
    def _on_self_row_selected(self, row: CustomerRow | None) -> None:
        self._update_buttons(None)
        if row is None:
            self.detail.show_detail(None)
            return
        self._load_detail(row.stripe_id)

    def _load_detail(self, customer_id: str) -> None:
        self._tasks.run(
            self, lambda: self._ctx.customers.detail(customer_id), self._on_detail_loaded,
            self._on_detail_failed,
        )  # fmt: skip

    def _on_detail_loaded(self, detail: CustomerDetail) -> None:
        current = self.current_row()
        if current is None or current.stripe_id != detail.stripe_id:
            return  # the selection moved on while this loaded
        self.detail.show_detail(detail)
        self._update_buttons(detail)

    def _on_detail_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.detail.show_detail(None)
        self.detail.title.setText(str(exc))

    def _on_dialog_saved(self, detail: CustomerDetail) -> None:
        self.refresh_then_select(lambda r: r.stripe_id == detail.stripe_id)

    def _update_buttons(self, detail: CustomerDetail | None) -> None:
        has = detail is not None and not detail.deleted
        self.edit_button.setEnabled(self._can_edit and has)
        self.portal_button.setEnabled(self._can_portal and has)
        self.topup_button.setEnabled(self._can_topup and has)
        self.detail.grant_button.setEnabled(self._can_grant and has)
