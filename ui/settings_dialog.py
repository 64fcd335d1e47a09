"""Settings: the Stripe keys (into the OS keyring), the database and the Stripe API address."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.errors import AppError
from services.secrets import SecretName, SecretSource, SecretStatus, validate_secret
from services.settings import Settings, validate_api_base, validate_database_url
from ui.tasks import TaskRunner


@dataclass(frozen=True)
class _Snapshot:
    key: SecretStatus
    webhook: SecretStatus
    settings: Settings
    backend: str
    keyring_problem: str | None


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
    """Reads current values off the GUI thread (keyring calls can block), validates, then saves."""

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(620)
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
        form.addRow("Secrets are kept in:", self.keyring_label)

        note = QLabel(
            "Keys are stored in this computer's keyring, never in files or the database. "
            "Changes take effect the next time Billing Admin starts."
        )
        note.setObjectName("hintText")
        note.setWordWrap(True)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(False)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        tasks.run(self, self._read_current, self._on_read_ok, self._on_error)

    # ---- worker side (no widgets here)
    def _read_current(self) -> _Snapshot:
        secrets = self._ctx.secrets
        return _Snapshot(
            key=secrets.status(SecretName.STRIPE_SECRET_KEY),
            webhook=secrets.status(SecretName.STRIPE_WEBHOOK_SECRET),
            settings=self._ctx.settings.load(),
            backend=secrets.backend_description(),
            keyring_problem=secrets.keyring_problem,
        )

    # ---- GUI side
    def _on_read_ok(self, snap: _Snapshot) -> None:
        self.key_status.setText(_describe(snap.key))
        self.webhook_status.setText(_describe(snap.webhook))
        self.db_edit.setText(snap.settings.database_url or "")
        self.api_edit.setText(snap.settings.api_base or "")
        self.keyring_label.setText(snap.keyring_problem or snap.backend)
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(True)
        self.adjustSize()

    def _on_error(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.error_label.setText(str(exc))
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(True)

    def _on_buttons_accepted(self) -> None:
        key = self.key_edit.text().strip()
        webhook = self.webhook_edit.text().strip()
        db_url = self.db_edit.text().strip()
        api = self.api_edit.text().strip()
        # Validate everything first: a bad field changes nothing at all.
        try:
            if key:
                key = validate_secret(SecretName.STRIPE_SECRET_KEY, key)
            if webhook:
                webhook = validate_secret(SecretName.STRIPE_WEBHOOK_SECRET, webhook)
            settings = Settings(
                database_url=validate_database_url(db_url) if db_url else None,
                api_base=validate_api_base(api) if api else None,
            )
        except AppError as exc:
            self.error_label.setText(str(exc))
            return
        self.error_label.setText("Saving…")
        self.buttons.setEnabled(False)

        def save() -> None:
            if key:
                self._ctx.secrets.set(SecretName.STRIPE_SECRET_KEY, key)
            if webhook:
                self._ctx.secrets.set(SecretName.STRIPE_WEBHOOK_SECRET, webhook)
            self._ctx.settings.save(settings)

        self._tasks.run(self, save, lambda _: self.accept(), self._on_save_error)

    def _on_save_error(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        self._on_error(exc)
