"""Create/edit a customer, and show a Customer Portal link to copy or open."""

from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.customers import Address, CustomerDetail, CustomerDraft, PortalLink
from services.errors import AppError
from services.validation import parse_metadata_lines
from ui.dialogs import SubmitDialog, add_live_banner
from ui.tasks import TaskRunner


class CustomerDialog(SubmitDialog):
    """New customer, or edit one. Pressing Save again after a timeout repeats the same request
    (the same idempotency key) and cannot create a second customer; so does a new dialog with the
    same details, through the request journal."""

    #: Emitted with the saved CustomerDetail.
    saved = SubmitDialog.succeeded

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        existing: CustomerDetail | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(tasks, parent)
        self._ctx = ctx
        self._existing = existing
        # None: the request journal picks the key (an unconfirmed identical request's, or a
        # new one); after an unknown outcome a retry from this dialog sends that same key.
        self.idempotency_key: str | None = None
        self.setWindowTitle(
            f"Edit {existing.name or existing.email}" if existing else "New customer"
        )
        self.setMinimumWidth(520)

        self.email = QLineEdit()
        self.email.setPlaceholderText("required, e.g. ap@customer.com")
        self.name = QLineEdit()
        self.phone = QLineEdit()
        self.line1 = QLineEdit()
        self.line2 = QLineEdit()
        self.city = QLineEdit()
        self.postal_code = QLineEdit()
        self.state = QLineEdit()
        self.country = QLineEdit()
        self.country.setPlaceholderText("US")
        self.country.setMaxLength(2)
        self.metadata = QPlainTextEdit()
        self.metadata.setPlaceholderText("key=value, one per line (sent to Stripe)")
        self.metadata.setFixedHeight(70)
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText(
            "Internal notes — stay in Billing Admin, never sent to Stripe"
        )
        self.notes.setFixedHeight(70)
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("comma separated, local only (e.g. vip, reseller)")

        form = QFormLayout()
        form.addRow("Email*:", self.email)
        form.addRow("Name:", self.name)
        form.addRow("Phone:", self.phone)
        form.addRow("Address:", self.line1)
        form.addRow("", self.line2)
        city_row = QHBoxLayout()
        city_row.addWidget(self.postal_code, 1)
        city_row.addWidget(self.city, 2)
        city_row.addWidget(self.state, 1)
        city_row.addWidget(self.country, 0)
        self.postal_code.setPlaceholderText("Postal code")
        self.city.setPlaceholderText("City")
        self.state.setPlaceholderText("State")
        form.addRow("", city_row)
        form.addRow("Metadata:", self.metadata)
        form.addRow("Notes:", self.notes)
        form.addRow("Tags:", self.tags)

        self.error = QLabel()
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        if existing is not None:
            self._fill(existing)

    def _fill(self, c: CustomerDetail) -> None:
        self.email.setText(c.email)
        self.name.setText(c.name)
        self.phone.setText(c.phone)
        a = c.address
        for edit, value in (
            (self.line1, a.line1), (self.line2, a.line2), (self.city, a.city),
            (self.postal_code, a.postal_code), (self.state, a.state), (self.country, a.country),
        ):  # fmt: skip
            edit.setText(value)
        self.metadata.setPlainText("\n".join(f"{k}={v}" for k, v in sorted(c.metadata.items())))
        self.notes.setPlainText(c.notes)
        self.tags.setText(", ".join(c.tags))

    def draft(self) -> CustomerDraft:
        """What the form says, validated (raises `ValidationError`)."""
        draft = CustomerDraft(
            email=self.email.text(),
            name=self.name.text(),
            phone=self.phone.text(),
            address=Address(
                self.line1.text(),
                self.line2.text(),
                self.city.text(),
                self.state.text(),
                self.postal_code.text(),
                self.country.text(),
            ),
            metadata=parse_metadata_lines(self.metadata.toPlainText()),
            notes=self.notes.toPlainText(),
            tags=tuple(t for t in self.tags.text().split(",") if t.strip()),
        )
        return self._ctx.customers.validate(draft)

    def _on_buttons_accepted(self) -> None:
        try:
            draft = self.draft()
        except AppError as exc:
            self.show_error(str(exc))
            return
        key, existing = self.idempotency_key, self._existing
        if existing is None:
            self.submit(lambda: self._ctx.customers.create(draft, key))
        else:
            self.submit(lambda: self._ctx.customers.update(existing.stripe_id, draft, key))


class PortalLinkDialog(QDialog):
    """Creates a Customer Portal session and shows its link with Copy and Open in browser."""

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        customer_id: str,
        customer_label: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Customer Portal link — {customer_label}")
        self.setMinimumWidth(620)
        self.link: PortalLink | None = None
        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.url.setPlaceholderText("Creating the link…")
        self.copy_button = QPushButton("Copy")
        self.copy_button.setShortcut("Ctrl+C")
        self.open_button = QPushButton("Open in browser")
        for button in (self.copy_button, self.open_button):
            button.setEnabled(False)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.open_button.clicked.connect(self._on_open_clicked)
        self.status = QLabel(
            "The link lets the customer update payment methods and see invoices. It expires "
            "after a short while: create a new one when needed."
        )
        self.status.setWordWrap(True)
        self.status.setObjectName("hintText")
        row = QHBoxLayout()
        row.addWidget(self.url, 1)
        row.addWidget(self.copy_button)
        row.addWidget(self.open_button)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addWidget(QLabel(f"Customer: {customer_label} ({customer_id})"))
        layout.addLayout(row)
        layout.addWidget(self.status)
        layout.addWidget(close)
        key = None  # the request journal picks it
        tasks.run(
            self, lambda: ctx.customers.portal_link(customer_id, key), self._on_link, self._on_err
        )

    def _on_link(self, link: PortalLink) -> None:
        self.link = link
        self.url.setText(link.url)
        self.url.selectAll()
        self.copy_button.setEnabled(True)
        self.open_button.setEnabled(True)
        self.copy_button.setFocus()

    def _on_err(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.url.setPlaceholderText("No link")
        self.status.setObjectName("errorText")
        self.status.setText(f"Could not create the link: {exc}")

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.url.text())
        self.status.setText("Copied to the clipboard.")

    def _on_open_clicked(self) -> None:
        QDesktopServices.openUrl(QUrl(self.url.text()))
