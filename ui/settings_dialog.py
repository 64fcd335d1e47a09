"""Settings: the Stripe keys (into the OS keyring), the database and the Stripe API address."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from services.configuration import ConfigChange, ConfigSnapshot
from services.context import AppContext
from services.errors import AppError
from services.money import major_units_text
from services.permissions import Permission
from services.secrets import SecretSource, SecretStatus
from ui.dialogs import add_live_banner, denied_tooltip
from ui.tasks import TaskRunner


def _describe(status: SecretStatus) -> str:
    if status.source is SecretSource.ENVIRONMENT:
        return (
            f"In use: {status.hint}, from the {status.name.value} environment variable "
            "(it overrides the keyring)."
        )
    if status.source is SecretSource.KEYRING:
        return f"In use: {status.hint}, from the OS keyring."
    return "Not set."


class SettingsDialog(QDialog):
    """Reads current values off the GUI thread (keyring calls can block), validates, then saves.

    Everyone may look; only operators with 'manage settings' (admins) may save.
    """

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(760)
        self._ctx = ctx
        self._tasks = tasks

        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("sk_test_… or rk_live_… (leave empty to keep)")
        self.key_status = QLabel("Reading…")
        self.webhook_edit = QLineEdit()
        self.webhook_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.webhook_edit.setPlaceholderText("whsec_… (leave empty to keep)")
        self.webhook_status = QLabel("Reading…")
        self.db_edit = QLineEdit()
        self.db_edit.setPlaceholderText("Empty: a SQLite file on this computer")
        self.api_edit = QLineEdit()
        self.api_edit.setPlaceholderText("Empty: Stripe (https://api.stripe.com)")
        self.cli_edit = QLineEdit()
        self.cli_edit.setPlaceholderText("Empty: `stripe` found on PATH (for stripe listen)")
        self.port_edit = QLineEdit()
        self.port_edit.setPlaceholderText("Empty: 4242 (on 127.0.0.1, for stripe listen)")
        self.success_edit = QLineEdit()
        self.success_edit.setPlaceholderText(
            "https://…/thanks?session={CHECKOUT_SESSION_ID} (required with a real Stripe key)"
        )
        self.cancel_edit = QLineEdit()
        self.cancel_edit.setPlaceholderText("https://… where a customer lands after cancelling")
        self.price_edit = QLineEdit("0.10")
        self.currency_edit = QLineEdit("usd")
        self.currency_edit.setMaxLength(3)
        self.min_edit = QLineEdit("100")
        self.max_edit = QLineEdit("100000")
        for edit, width in ((self.price_edit, 80), (self.currency_edit, 50),
                            (self.min_edit, 90), (self.max_edit, 90)):  # fmt: skip
            edit.setFixedWidth(width)
        self.expiry_spin = QSpinBox()
        self.expiry_spin.setRange(0, 120)
        self.expiry_spin.setSpecialValueText("never")
        self.expiry_spin.setSuffix(" months after purchase")
        self.expiry_spin.setToolTip(
            "The team's setting, for credits purchased from now on: what is left of them then "
            "expires (grants carry their own expiry)."
        )
        self.keyring_label = QLabel("Reading…")
        self.keyring_label.setWordWrap(True)
        self.error_label = QLabel()
        self.error_label.setObjectName("errorText")
        self.error_label.setWordWrap(True)
        for label in (self.key_status, self.webhook_status):
            label.setObjectName("hintText")
            label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Stripe secret key:", self.key_edit)
        form.addRow("", self.key_status)
        form.addRow("Webhook signing secret:", self.webhook_edit)
        form.addRow("", self.webhook_status)
        form.addRow("Database URL:", self.db_edit)
        form.addRow("Stripe API address:", self.api_edit)
        form.addRow("Stripe CLI:", self.cli_edit)
        form.addRow("Webhook port:", self.port_edit)
        form.addRow("Secrets are kept in:", self.keyring_label)
        form.addRow(QLabel("<b>Top-ups</b>"))
        form.addRow("After payment:", self.success_edit)
        form.addRow("After cancelling:", self.cancel_edit)
        prices = QHBoxLayout()
        parts = (
            ("", self.price_edit),
            ("", self.currency_edit),
            ("per credit; custom top-ups from", self.min_edit),
            ("to", self.max_edit),
        )
        for text, edit in parts:
            if text:
                prices.addWidget(QLabel(text))
            prices.addWidget(edit)
        prices.addStretch(1)
        form.addRow("Price:", prices)
        form.addRow("Purchased credits expire:", self.expiry_spin)

        note = QLabel(
            "Keys are stored in this computer's keyring, never in files or the database. "
            "Changes take effect the next time Billing Admin starts."
        )
        note.setObjectName("hintText")
        note.setWordWrap(True)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        self.save_button.setEnabled(False)
        self._may_change = ctx.config.may_change
        if not self._may_change:
            reason = denied_tooltip(ctx.actor.role, Permission.MANAGE_SETTINGS)
            self.save_button.setToolTip(reason)
            for edit in self._edits():
                edit.setReadOnly(True)
                edit.setToolTip(reason)
            self.expiry_spin.setReadOnly(True)
            self.error_label.setText("Only admins can change settings. " + reason)

        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        tasks.run(self, ctx.config.snapshot, self._on_snapshot_ok, self._on_error)

    def _edits(self) -> tuple[QLineEdit, ...]:
        return (
            self.key_edit, self.webhook_edit, self.db_edit, self.api_edit, self.cli_edit,
            self.port_edit, self.success_edit, self.cancel_edit, self.price_edit,
            self.currency_edit, self.min_edit, self.max_edit,
        )  # fmt: skip

    def _on_snapshot_ok(self, snap: ConfigSnapshot) -> None:
        self.key_status.setText(_describe(snap.key))
        self.webhook_status.setText(_describe(snap.webhook))
        self.db_edit.setText(snap.settings.database_url or "")
        self.api_edit.setText(snap.settings.api_base or "")
        s = snap.settings
        self.cli_edit.setText(s.stripe_cli or "")
        self.port_edit.setText(str(s.webhook_port) if s.webhook_port else "")
        self.success_edit.setText(s.topup_success_url or "")
        self.cancel_edit.setText(s.topup_cancel_url or "")
        p = snap.pricing  # the team's, from the database
        self.price_edit.setText(major_units_text(p.unit_amount, p.currency))
        self.currency_edit.setText(p.currency)
        self.min_edit.setText(str(p.minimum))
        self.max_edit.setText(str(p.maximum))
        self.expiry_spin.setValue(snap.purchase_expiry_months)
        self.keyring_label.setText(snap.keyring_problem or snap.keyring_backend)
        # A wrapped label in a form needs its height reserved, or it is clipped.
        self.keyring_label.setMinimumHeight(self.keyring_label.heightForWidth(520))
        self.save_button.setEnabled(self._may_change)
        self.adjustSize()

    def _on_error(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.error_label.setText(str(exc))
        self.buttons.setEnabled(True)
        self.save_button.setEnabled(self._may_change)

    def _on_buttons_accepted(self) -> None:
        change = ConfigChange(
            secret_key=self.key_edit.text(),
            webhook_secret=self.webhook_edit.text(),
            database_url=self.db_edit.text(),
            api_base=self.api_edit.text(),
            stripe_cli=self.cli_edit.text(),
            webhook_port=self.port_edit.text(),
            topup_success_url=self.success_edit.text(),
            topup_cancel_url=self.cancel_edit.text(),
            credit_price=self.price_edit.text(),
            credit_currency=self.currency_edit.text(),
            credit_min=self.min_edit.text(),
            credit_max=self.max_edit.text(),
            purchase_expiry_months=str(self.expiry_spin.value()),
        )
        # Validate everything first, on the GUI thread (no I/O): a bad field changes nothing.
        try:
            self._ctx.config.validate(change)
        except AppError as exc:
            self.error_label.setText(str(exc))
            return
        self.error_label.setText("Saving…")
        self.buttons.setEnabled(False)
        self._tasks.run(
            self, lambda: self._ctx.config.apply(change), lambda _: self.accept(), self._on_error
        )
