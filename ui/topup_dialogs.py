"""Issuing a paid top-up link, and granting free credits (admins, with a reason)."""

from __future__ import annotations

from PySide6.QtCore import QDate, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.credits import TopUpLink
from services.errors import AppError, ValidationError
from services.lots import parse_expiry_date
from services.money import format_amount
from ui.dialogs import SubmitDialog, add_live_banner, confirm_money_move, key_after_failure
from ui.tasks import TaskRunner


class TopUpDialog(QDialog):
    """Pick a pack or a number of credits, create the Checkout link, copy or send it.

    Nothing is credited here: credits arrive only when Stripe reports the payment.
    """

    issued = Signal(object)

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        customer_id: str,
        customer_label: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self._customer_id = customer_id
        # None: the request journal picks the key (an unconfirmed identical request's, or a
        # new one); after an unknown outcome a retry from this dialog sends that same key.
        self.idempotency_key: str | None = None
        self.link: TopUpLink | None = None
        self.setWindowTitle(f"Top-up link — {customer_label}")
        self.setMinimumWidth(640)

        self.pack_choice = QRadioButton("Credit pack")
        self.custom_choice = QRadioButton("Custom number of credits")
        group = QButtonGroup(self)
        group.addButton(self.pack_choice)
        group.addButton(self.custom_choice)
        self.pack_combo = QComboBox()
        self.credits_spin = QSpinBox()
        self.price_label = QLabel()
        self.price_label.setObjectName("hintText")
        # Wider than the team's limits on purpose: a spin box clamps what was typed (50 became
        # 100) behind the user's back. Out-of-range input is refused, naming the limits.
        self._limits = ctx.credits.custom_limits()
        self.credits_spin.setRange(1, 999_999_999)
        self.credits_spin.setValue(self._limits[0])
        self.credits_spin.setSingleStep(100)
        self.credits_spin.setToolTip(
            f"Between {self._limits[0]:,} and {self._limits[1]:,} credits (the team's limits)"
        )
        self.credits_spin.setGroupSeparatorShown(True)
        self.credits_spin.valueChanged.connect(self._on_credits_spin_changed)
        self.pack_choice.toggled.connect(self._on_choice_toggled)
        self.save_card = QCheckBox("Save the card for automatic top-ups")
        self.save_card.setToolTip(
            "Stripe keeps the card the customer pays with, so it can be charged later for "
            "auto top-up (off-session). The customer sees that the card is saved."
        )

        self.email = QPlainTextEdit()
        self.email.setReadOnly(True)
        self.email.setFixedHeight(150)
        self.url = QLineEdit()
        self.url.setReadOnly(True)
        self.url.setPlaceholderText("The Checkout link appears here")
        self.copy_button = QPushButton("Copy link")
        self.open_button = QPushButton("Open in browser")
        self.copy_email_button = QPushButton("Copy email text")
        for button in (self.copy_button, self.open_button, self.copy_email_button):
            button.setEnabled(False)
        self.copy_button.clicked.connect(lambda: self._copy(self.url.text(), "Link copied."))
        self.open_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl(self.url.text())))
        self.copy_email_button.clicked.connect(
            lambda: self._copy(self.email.toPlainText(), "Email text copied.")
        )
        self.status = QLabel(
            "The customer pays on Stripe's page. Credits are added only when Stripe confirms "
            "the payment — never before."
        )
        self.status.setWordWrap(True)
        self.status.setObjectName("hintText")

        form = QFormLayout()
        form.addRow(self.pack_choice, self.pack_combo)
        custom = QHBoxLayout()
        custom.addWidget(self.credits_spin)
        custom.addWidget(self.price_label, 1)
        form.addRow(self.custom_choice, custom)
        form.addRow("", self.save_card)
        link_row = QHBoxLayout()
        link_row.addWidget(self.url, 1)
        link_row.addWidget(self.copy_button)
        link_row.addWidget(self.open_button)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.create_button = self.buttons.addButton(
            "Create link", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.create_button.clicked.connect(self._on_create_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addWidget(QLabel(f"Customer: {customer_label} ({customer_id})"))
        layout.addLayout(form)
        layout.addLayout(link_row)
        layout.addWidget(self.email)
        layout.addWidget(self.copy_email_button)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.custom_choice.setChecked(True)
        self._on_credits_spin_changed(self.credits_spin.value())
        tasks.run(self, ctx.credits.credit_packs, self._on_packs_loaded, self._on_error)

    def _on_packs_loaded(self, packs: list[tuple[str, str, int, int, str]]) -> None:
        for product_id, name, credits, amount, currency in packs:
            self.pack_combo.addItem(
                f"{name} — {credits:,} credits for {format_amount(amount, currency)}", product_id
            )
        if packs:
            self.pack_choice.setChecked(True)
        else:
            self.pack_choice.setEnabled(False)
            self.pack_combo.addItem("No credit packs in the catalog")
            self.pack_combo.setEnabled(False)

    def _on_choice_toggled(self, pack: bool) -> None:
        self.pack_combo.setEnabled(pack and self.pack_combo.count() > 0)
        self.credits_spin.setEnabled(not pack)

    def _on_credits_spin_changed(self, credits: int) -> None:
        try:
            amount, currency = self._ctx.credits.quote_custom(credits)
        except AppError as exc:
            self.price_label.setText(str(exc))
            self.price_label.setProperty("error", True)
            return
        self.price_label.setText(f"= {format_amount(amount, currency)}")
        self.price_label.setProperty("error", False)

    def _on_create_clicked(self) -> None:
        pack = self.pack_combo.currentData() if self.pack_choice.isChecked() else None
        credits = None if pack else self.credits_spin.value()
        low, high = self._limits
        if credits is not None and not low <= credits <= high:
            self.status.setText(
                f"Not created: a custom top-up is {low:,} to {high:,} credits, not {credits:,}. "
                "Change the number, or pick a credit pack."
            )
            return
        what = f"a top-up link for {credits:,} credits" if credits else "a credit pack link"
        if not confirm_money_move(self._ctx.mode, f"Create {what}.", self):
            return
        self.create_button.setEnabled(False)
        self.status.setText("Creating the Checkout link…")
        key, customer, save = self.idempotency_key, self._customer_id, self.save_card.isChecked()
        self._tasks.run(
            self,
            lambda: self._ctx.credits.issue_topup(
                customer, key, pack_product_id=pack, credits=credits, save_card=save
            ),
            self._on_issued,
            self._on_error,
        )

    def _on_issued(self, link: TopUpLink) -> None:
        self.link = link
        self.url.setText(link.topup.url)
        self.email.setPlainText(link.email_text)
        for button in (self.copy_button, self.open_button, self.copy_email_button):
            button.setEnabled(True)
        self.pack_choice.setEnabled(False)
        self.custom_choice.setEnabled(False)
        self.pack_combo.setEnabled(False)
        self.credits_spin.setEnabled(False)
        self.save_card.setEnabled(False)
        self.status.setText(
            f"Top-up {link.topup.topup_id}: {link.topup.credits:,} credits for "
            f"{format_amount(link.topup.amount, link.topup.currency)}. Send the link; the credits "
            "appear when the payment is confirmed."
        )
        self.issued.emit(link)

    def _on_error(self, exc: BaseException) -> None:
        self.idempotency_key = key_after_failure(exc, self.idempotency_key)
        if not isinstance(exc, AppError):
            raise exc
        self.create_button.setEnabled(self.link is None)
        self.status.setText(f"No link was created: {exc}")

    def _copy(self, text: str, message: str) -> None:
        QGuiApplication.clipboard().setText(text)
        self.status.setText(message)


class GrantDialog(SubmitDialog):
    """Free credits, for admins: a number and a reason, both required; audited."""

    granted = SubmitDialog.succeeded
    failure_prefix = "Not granted"

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
        self.setWindowTitle(f"Grant credits — {customer_label}")
        self.setMinimumWidth(480)
        self.credits = QSpinBox()
        self.credits.setRange(1, 10_000_000)
        self.credits.setGroupSeparatorShown(True)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("required, e.g. goodwill after outage INC-2211")
        self.error = QLabel(
            "Granted credits are free: they are recorded as a grant with your name and reason, "
            "never as a purchase."
        )
        self.error.setWordWrap(True)
        self.error.setObjectName("hintText")
        # Optional expiry: what is left of the grant expires at the end of that day (UTC).
        self.expires = QCheckBox("Expires after")
        self.expiry_date = QDateEdit(QDate.currentDate().addYears(1))
        self.expiry_date.setCalendarPopup(True)
        self.expiry_date.setDisplayFormat("yyyy-MM-dd")
        self.expiry_date.setMinimumDate(QDate.currentDate().addDays(1))
        self.expiry_date.setEnabled(False)
        self.expiry_date.setToolTip(
            "What is left of these credits expires at the end of this day (UTC); the listener "
            "writes an expiry entry then."
        )
        self.expires.toggled.connect(self.expiry_date.setEnabled)
        expiry_row = QHBoxLayout()
        expiry_row.addWidget(self.expires)
        expiry_row.addWidget(self.expiry_date, 1)
        form = QFormLayout()
        form.addRow("Credits:", self.credits)
        form.addRow("Reason*:", self.reason)
        form.addRow("Expiry:", expiry_row)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Grant")
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addWidget(QLabel(f"Customer: {customer_label} ({customer_id})"))
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _on_buttons_accepted(self) -> None:
        credits, reason = self.credits.value(), self.reason.text()
        if not reason.strip():
            self.show_error("A reason is required for free credits.")
            return
        expires_at = None
        until = ""
        if self.expires.isChecked():
            day = self.expiry_date.date().toString("yyyy-MM-dd")
            try:
                expires_at = parse_expiry_date(day)
            except ValidationError as exc:
                self.show_error(str(exc))
                return
            until = f" They expire after {day} (UTC)."
        if not confirm_money_move(self._ctx.mode, f"Grant {credits:,} free credits.{until}", self):
            return
        self.submit(
            lambda: self._ctx.credits.grant(
                self._customer_id, credits, reason, expires_at=expires_at
            )
        )
