"""Auto top-up settings for a customer, and the customers whose automatic top-up failed."""

from __future__ import annotations

from PySide6.QtCore import Signal, SignalInstance
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.auto_topup import MAX_FAILURE_LIMIT, MAX_THRESHOLD, AttentionRow, AutoTopUpConfig
from services.context import AppContext
from services.errors import AppError
from services.money import format_amount
from services.permissions import Permission
from ui.dialogs import SubmitDialog, add_live_banner, denied_tooltip
from ui.formatting import format_datetime
from ui.tasks import TaskRunner

Pack = tuple[str, str, int, int, str]


def describe(config: AutoTopUpConfig, packs: list[Pack]) -> str:
    """One line for the ledger pane: what auto top-up does for this customer now."""
    if config.attention:
        return f"⚠ Needs attention — {config.attention}"
    if not config.enabled:
        return "Auto top-up off." + (
            f" Low-balance threshold {config.threshold:,} credits." if config.threshold else ""
        )
    pack = next((p for p in packs if p[0] == config.pack_product_id), None)
    what = f"{pack[1]} ({pack[2]:,} credits)" if pack else str(config.pack_product_id)
    flight = " A charge is in flight." if config.in_flight else ""
    return f"Auto top-up on: below {config.threshold:,} credits, buy {what}.{flight}"


class AutoTopUpDialog(SubmitDialog):
    """Threshold, pack, on/off and failure limit (support and admins; audited).

    Turning it on needs a card the customer saved (a top-up link with “Save the card”); the
    newest saved card becomes the default when there is none."""

    saved = SubmitDialog.succeeded
    failure_prefix = "Not saved"

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        customer_id: str,
        customer_label: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(tasks, parent)
        self._ctx = ctx
        self._customer_id = customer_id
        self.setWindowTitle(f"Auto top-up — {customer_label}")
        self.setMinimumWidth(560)
        self.enabled = QCheckBox("Charge the saved card automatically when credits run low")
        self.threshold = QSpinBox()
        self.threshold.setRange(0, MAX_THRESHOLD)
        self.threshold.setSingleStep(100)
        self.threshold.setGroupSeparatorShown(True)
        self.threshold.setSuffix(" credits")
        self.pack = QComboBox()
        self.failure_limit = QSpinBox()
        self.failure_limit.setRange(1, MAX_FAILURE_LIMIT)
        self.failure_limit.setSuffix(" failures in a row")
        self.state = QLabel("Loading…")
        self.state.setWordWrap(True)
        self.error = QLabel(
            "The card is charged off-session (the customer is not there to confirm). Credits "
            "are added only when Stripe confirms the payment; a declined card adds nothing."
        )
        self.error.setWordWrap(True)
        self.error.setObjectName("hintText")
        form = QFormLayout()
        form.addRow("", self.enabled)
        form.addRow("When below:", self.threshold)
        form.addRow("Buy:", self.pack)
        form.addRow("Turn off after:", self.failure_limit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        self.buttons.setEnabled(False)
        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addWidget(QLabel(f"Customer: {customer_label} ({customer_id})"))
        layout.addLayout(form)
        layout.addWidget(self.state)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        if not ctx.authority.can(Permission.MANAGE_AUTO_TOPUP):
            self.error.setText(denied_tooltip(ctx.actor.role, Permission.MANAGE_AUTO_TOPUP))
        tasks.run(
            self,
            lambda: (ctx.auto_topup.config(customer_id), ctx.credits.credit_packs()),
            self._on_loaded,
            self._on_load_failed,
        )

    def _on_loaded(self, loaded: tuple[AutoTopUpConfig, list[Pack]]) -> None:
        config, packs = loaded
        for product_id, name, credits, amount, currency in packs:
            label = f"{name} — {credits:,} credits for {format_amount(amount, currency)}"
            self.pack.addItem(label, product_id)
        if not packs:
            self.pack.addItem("No credit packs in the catalog", None)
        index = self.pack.findData(config.pack_product_id)
        if index >= 0:
            self.pack.setCurrentIndex(index)
        self.enabled.setChecked(config.enabled)
        self.threshold.setValue(config.threshold)
        self.failure_limit.setValue(config.failure_limit)
        self.state.setText(
            describe(config, packs)
            + (f" Failures so far: {config.failures}." if config.failures else "")
        )
        self.buttons.setEnabled(self._ctx.authority.can(Permission.MANAGE_AUTO_TOPUP))

    def _on_load_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.state.setText(str(exc))

    def _on_buttons_accepted(self) -> None:
        enabled, pack = self.enabled.isChecked(), self.pack.currentData()
        if enabled and not pack:
            self.show_error("Choose the credit pack auto top-up buys.")
            return
        threshold, limit = self.threshold.value(), self.failure_limit.value()
        customer, key = self._customer_id, self.idempotency_key
        self.submit(
            lambda: self._ctx.auto_topup.configure(
                customer, enabled=enabled, threshold=threshold, pack_product_id=pack,
                failure_limit=limit, idempotency_key=key,
            )
        )  # fmt: skip


class AttentionDialog(QDialog):
    """Customers whose automatic top-up failed, with the decline: support sends them a
    normal top-up link (or fixes the settings)."""

    send_link = Signal(str, str)  # customer id, label
    edit_auto_topup = Signal(str, str)

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self._rows: list[AttentionRow] = []
        self.setWindowTitle("Needs attention — automatic top-ups that failed")
        self.resize(900, 360)
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Customer", "When", "Failures", "Auto top-up", "Why"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)
        self.status = QLabel("Loading…")
        self.status.setObjectName("hintText")
        self.status.setWordWrap(True)
        self.link_button = QPushButton("Top-up link…")
        self.link_button.setToolTip("Send the customer a normal Checkout link to pay themselves")
        self.auto_button = QPushButton("Auto top-up…")
        for button in (self.link_button, self.auto_button):
            button.setEnabled(False)
        self.link_button.clicked.connect(lambda: self._emit_for_selected(self.send_link))
        self.auto_button.clicked.connect(lambda: self._emit_for_selected(self.edit_auto_topup))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.link_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.auto_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self.reload()

    def reload(self) -> None:
        self._tasks.run(self, self._ctx.auto_topup.attention, self._on_loaded, self._on_failed)

    def _on_loaded(self, rows: list[AttentionRow]) -> None:
        self._rows = rows
        self.table.setRowCount(len(rows))
        for i, r in enumerate(rows):
            values = (
                r.customer_name or r.customer_id,
                format_datetime(r.at),
                f"{r.failures} of {r.failure_limit}",
                "on" if r.enabled else "off (too many failures)" if r.failures else "off",
                r.reason,
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value if col else f"{value} ({r.customer_id})")
                self.table.setItem(i, col, item)
        for col in range(4):  # the reason takes the rest; all of it is in its tooltip
            self.table.resizeColumnToContents(col)
        who = "1 customer needs" if len(rows) == 1 else f"{len(rows)} customers need"
        self.status.setText(
            f"{who} attention. Send a top-up link, or turn auto top-up on again once the "
            "card is fixed."
            if rows
            else "No customer needs attention: every automatic top-up went through."
        )

    def _on_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.status.setText(str(exc))

    def _on_table_selection_changed(self) -> None:
        selected = self.table.currentRow() >= 0 and bool(self.table.selectedItems())
        self.link_button.setEnabled(
            selected and self._ctx.authority.can(Permission.ISSUE_TOPUP_LINK)
        )
        self.auto_button.setEnabled(selected)

    def _emit_for_selected(self, signal: SignalInstance) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self._rows):
            r = self._rows[row]
            signal.emit(r.customer_id, r.customer_name or r.customer_id)

    def selected_customer(self) -> str | None:
        row = self.table.currentRow()
        return self._rows[row].customer_id if 0 <= row < len(self._rows) else None
