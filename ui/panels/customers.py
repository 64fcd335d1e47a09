"""Customers: everyone in the local mirror of Stripe, searchable as you type, with details."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence, Set

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.browse import CustomerColumns, CustomerRow
from services.changes import Changes
from services.context import AppContext
from services.customers import CustomerDetail
from services.errors import AppError
from services.invoices import InvoiceDetail
from services.permissions import Permission
from ui.credit_balances import credit_text
from ui.customer_dialogs import CustomerDialog, PortalLinkDialog
from ui.customer_model import CustomerTableModel, haystacks, load_with_haystacks
from ui.customer_picker import customer_search_text
from ui.dialogs import denied_tooltip
from ui.formatting import format_amount, format_date, format_datetime
from ui.invoice_dialogs import NewInvoiceDialog
from ui.panels.base import ListPanel, Prepared
from ui.panels.subscriptions import show_subscriptions
from ui.table_model import Column, RowTableModel
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
    "Metadata", "Tags", "Notes", "Synced",
)  # fmt: skip
_ID = Qt.ItemDataRole.UserRole


def _plural(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


class CustomerDetailPane(QFrame):
    """The selected customer, loaded on selection only (never for every row)."""

    #: Emitted when a listed invoice or top-up is opened: the panel's name and the id.
    open_requested = Signal(str, object)

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
        self.invoices_caption = QLabel("Invoices")
        self.topups_caption = QLabel("Top-ups")
        self.subscriptions_caption = QLabel("Subscriptions")
        self.invoices = QListWidget()
        self.topups = QListWidget()
        self.subscriptions = QListWidget()
        for caption, listing, panel in (
            (self.subscriptions_caption, self.subscriptions, "subscriptions"),
            (self.invoices_caption, self.invoices, "invoices"),
            (self.topups_caption, self.topups, "topups"),
        ):
            caption.setStyleSheet("font-weight: 600; margin-top: 6px;")
            listing.setMaximumHeight(112)
            listing.setToolTip("Double-click (or Enter) to open it")
            listing.itemActivated.connect(
                lambda item, name=panel: self.open_requested.emit(name, item.data(_ID))
            )
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addLayout(id_row)
        layout.addLayout(form)
        layout.addWidget(self.grant_button)
        layout.addWidget(self.subscriptions_caption)
        layout.addWidget(self.subscriptions)
        layout.addWidget(self.invoices_caption)
        layout.addWidget(self.invoices)
        layout.addWidget(self.topups_caption)
        layout.addWidget(self.topups)
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
            self.invoices.clear()
            self.topups.clear()
            self.subscriptions.clear()
            self.subscriptions_caption.setText("Subscriptions")
            self.invoices_caption.setText("Invoices")
            self.topups_caption.setText("Top-ups")
            return
        self.title.setText(d.name or d.email or d.stripe_id)
        self.stripe_id.setText(d.stripe_id)
        values = {
            "Email": d.email or "—",
            "Phone": d.phone or "—",
            "Address": d.address.one_line() or "—",
            "Created": format_date(d.created),
            "Currency": d.currency.upper() or "not set yet",
            "Stripe balance": format_amount(d.balance, d.currency or "usd"),
            "Credits": credit_text(d.credit_balance, d.credits),
            "Metadata": ", ".join(f"{k}={v}" for k, v in sorted(d.metadata.items())) or "—",
            "Tags": ", ".join(d.tags) or "—",
            "Notes": d.notes or "—",
            "Synced": format_datetime(d.synced_at),
        }
        if d.deleted:
            values["Synced"] += " — deleted in Stripe"
        for key, value in values.items():
            self.fields[key].setText(value)
        self._show_lists(d)

    def _show_lists(self, d: CustomerDetail) -> None:
        show_subscriptions(self.subscriptions_caption, self.subscriptions, d.subscriptions)
        open_invoices = sum(1 for i in d.invoices if i.status == "open")
        latest = " — latest 50" if len(d.invoices) >= 50 else ""
        self.invoices_caption.setText(
            f"Invoices: {_plural(len(d.invoices), 'invoice', 'invoices')}, "
            f"{open_invoices:,} open{latest}"
            if d.invoices
            else "Invoices: none"
        )
        self.invoices.clear()
        for inv in d.invoices:
            item = QListWidgetItem(
                f"{inv.number or '(draft)'} · {inv.status.capitalize()} · "
                f"{format_amount(inv.total, inv.currency)} · {format_date(inv.created)}"
            )
            item.setData(_ID, inv.stripe_id)
            item.setToolTip(f"{inv.stripe_id} — double-click to open it in Invoices")
            self.invoices.addItem(item)
        self.topups_caption.setText(
            f"Top-ups: {_plural(d.topups, 'link', 'links')}, {d.open_topups:,} open"
            if d.topups
            else "Top-ups: none"
        )
        self.topups.clear()
        for t in d.recent_topups:
            item = QListWidgetItem(
                f"{format_date(t.issued_at)} · {t.status} · {t.credits:,} credits · "
                f"{format_amount(t.amount, t.currency)}"
            )
            item.setData(_ID, t.topup_id)
            item.setToolTip(f"{t.topup_id} — double-click to open it in Top-ups")
            self.topups.addItem(item)
        # An empty box reads as "still loading": say "none" in the caption instead.
        self.invoices.setVisible(bool(d.invoices))
        self.topups.setVisible(bool(d.recent_topups))

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
        super().__init__(
            tasks,
            lambda: Prepared(*load_with_haystacks(ctx.browse.customer_batches())),
            COLUMNS,
            customer_search_text,
            parent,
        )
        self._ctx = ctx
        self._shown_before: CustomerRow | None = None
        self.model.layoutAboutToBeChanged.connect(self._on_model_layout_about_to_be_changed)
        self.model.layoutChanged.connect(self._on_model_layout_changed)
        self.rows_loaded.connect(self._on_self_rows_loaded)
        self.new_button = QPushButton("New customer")
        self.new_button.setShortcut(QKeySequence("Ctrl+N"))
        self.edit_button = QPushButton("Edit")
        self.edit_button.setShortcut(QKeySequence("Ctrl+E"))
        self.portal_button = QPushButton("Customer Portal link")
        self.portal_button.setShortcut(QKeySequence("Ctrl+L"))
        self.topup_button = QPushButton("Top-up link")
        self.topup_button.setShortcut(QKeySequence("Ctrl+T"))
        self.topup_button.clicked.connect(self.topup_link_for_selected)
        self.invoice_button = QPushButton("New invoice…")
        self.invoice_button.setShortcut(QKeySequence("Ctrl+I"))
        self.invoice_button.clicked.connect(self.new_invoice_for_selected)
        self.new_button.clicked.connect(self.new_customer)
        self.edit_button.clicked.connect(self.edit_selected)
        self.portal_button.clicked.connect(self.portal_link_for_selected)
        buttons = (
            (self.new_button, "Ctrl+N"),
            (self.edit_button, "Ctrl+E"),
            (self.portal_button, "Ctrl+L"),
            (self.topup_button, "Ctrl+T"),
            (self.invoice_button, "Ctrl+I"),
        )
        for button, shortcut in buttons:
            button.setToolTip(f"{button.text()} ({shortcut})")
            self.toolbar.addWidget(button)
        self._can_edit = ctx.authority.can(Permission.EDIT_CUSTOMER)
        self._can_portal = ctx.authority.can(Permission.ISSUE_PORTAL_LINK)
        self._can_topup = ctx.authority.can(Permission.ISSUE_TOPUP_LINK)
        self._can_invoice = ctx.authority.can(Permission.CREATE_INVOICE)
        if not self._can_invoice:
            self.invoice_button.setToolTip(
                denied_tooltip(ctx.actor.role, Permission.CREATE_INVOICE)
            )
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
        self.detail.open_requested.connect(self.open_requested)
        self._can_grant = ctx.authority.can(Permission.GRANT_CREDITS)
        self.detail.grant_button.clicked.connect(self.grant_to_selected)
        if not self._can_grant:
            self.detail.grant_button.setToolTip(
                denied_tooltip(ctx.actor.role, Permission.GRANT_CREDITS)
            )
        self.put_beside(self.detail, (860, 300))
        self.row_selected.connect(self._on_self_row_selected)
        # Credits, invoices and top-ups may change without the row: reload the detail in place.
        self.selection_kept.connect(lambda row, _changed: self._load_detail(row.stripe_id))
        self.row_activated.connect(lambda _row: self.edit_selected())
        self._update_buttons(None)

    def column_widths(self) -> Sequence[int]:
        return (170, 235, 125, 105, 90, 170)

    key_attr = "stripe_id"
    #: Painted first at start-up (a tall screen shows ~80 rows); the rest follow on a worker.
    first_screen_rows = 200

    def load_first_screen(self) -> CustomerColumns:
        return self._ctx.browse.customer_columns(limit=self.first_screen_rows)

    def row_key(self, row: CustomerRow) -> object:
        return row.stripe_id

    # ---- changes: only the customers named are re-read (perf-refresh; see ListPanel)
    def rows_changed(self, changes: Changes) -> Set[object] | None:
        return None if changes.everything else changes.customers

    def load_rows_by_key(self, keys: Set[object]) -> Mapping[object, CustomerRow | None]:
        found = {r.stripe_id: r for r in self._ctx.browse.customers_by_id([str(k) for k in keys])}
        # Gone, or deleted in Stripe: the list hides deleted customers.
        return {k: r if (r := found.get(str(k))) and not r.deleted else None for k in keys}

    def apply_changes(self, changes: Changes) -> None:
        super().apply_changes(changes)
        # The detail also shows credits, invoices and top-ups: re-read it when those moved
        # (a changed row of its own is re-read by the patch, through `selection_kept`).
        row = self.current_row()
        if row is None or self.off_screen() or row.stripe_id in changes.customers:
            return
        if row.stripe_id in changes.credits or changes.invoices or changes.topups:
            self._load_detail(row.stripe_id)

    def make_model(
        self, columns: Sequence[Column[CustomerRow]], search_text: Callable[[CustomerRow], str]
    ) -> RowTableModel[CustomerRow]:
        # Columns and search text are fixed in CustomerTableModel (the same as COLUMNS and
        # customer_search_text), stored compactly for 300,000 customers.
        return CustomerTableModel()

    def shown_position(self, key: object) -> int | None:
        assert isinstance(self.model, CustomerTableModel)
        return self.model.position_of(key) if isinstance(key, str) else None

    def _on_self_rows_loaded(self, _count: int) -> None:
        """Build the search index off the GUI thread, unless it came with the rows."""
        model = self.model
        assert isinstance(model, CustomerTableModel)
        if model.has_haystacks:
            return
        columns: CustomerColumns = model.columns

        def built(hay: list[str]) -> None:
            model.set_haystacks(columns, hay)  # ignored when other rows came meanwhile

        self._tasks.run(self, lambda: haystacks(columns), built)

    def _on_model_layout_about_to_be_changed(self) -> None:
        self._shown_before = self.current_row()

    def _on_model_layout_changed(self) -> None:
        # The selection follows its row through a search or sort; when the row is filtered
        # out the detail empties, as it does when a reload loses it.
        before, self._shown_before = self._shown_before, None
        if before is not None and self.current_row() is None:
            self.row_selected.emit(None)

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
        dialog.open()

    def new_invoice_for_selected(self) -> None:
        """A draft invoice for the selected customer; the new draft then opens in Invoices."""
        detail = self.detail.detail
        if not self._can_invoice or detail is None or detail.deleted:
            return
        dialog = NewInvoiceDialog(self._ctx, self._tasks, detail.stripe_id, self)
        dialog.created.connect(self._on_invoice_created)
        dialog.open()

    def _on_invoice_created(self, invoice: InvoiceDetail) -> None:
        self.open_requested.emit("invoices", invoice.stripe_id)

    def grant_to_selected(self) -> None:
        detail = self.detail.detail
        if not self._can_grant or detail is None or detail.deleted:
            return
        dialog = GrantDialog(
            self._ctx, self._tasks, detail.stripe_id, detail.name or detail.email, self
        )
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
        self.invoice_button.setEnabled(self._can_invoice and has)
        self.detail.grant_button.setEnabled(self._can_grant and has)
