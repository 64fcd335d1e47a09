"""A new draft invoice, and the charge confirmation that shows who, how much and which card.

Each dialog holds one idempotency key for its whole life: pressing Create or Charge again after
a timeout repeats the same request, so Stripe cannot create or charge twice.
"""

from __future__ import annotations

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from services.browse import ProductRow
from services.context import AppContext
from services.errors import AppError, ValidationError
from services.invoices import (
    ChargeOutcome,
    ChargePreview,
    ChargeResult,
    DraftLine,
    InvoiceDraft,
    charge_result_of,
)
from services.money import format_amount
from services.validation import amount_in_minor_units, currency
from ui.customer_picker import CustomerPicker
from ui.dialogs import SubmitDialog, add_live_banner, confirm_money_move, key_after_failure
from ui.tasks import TaskRunner


class NewInvoiceDialog(SubmitDialog):
    """A draft for one customer: a catalog price or a custom line. Nothing is charged here."""

    #: Emitted with the created InvoiceDetail.
    created = SubmitDialog.succeeded
    failure_prefix = "Not created"

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        customer_id: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(tasks, parent)
        self._ctx = ctx
        # None: the request journal picks the key (an unconfirmed identical request's, or a
        # new one); after an unknown outcome a retry from this dialog sends that same key.
        self.idempotency_key: str | None = None
        self.setWindowTitle("New draft invoice")
        self.setMinimumWidth(560)

        self.customer = CustomerPicker(ctx, tasks, customer_id)
        self.price_choice = QRadioButton("Catalog price")
        self.custom_choice = QRadioButton("Custom line")
        group = QButtonGroup(self)
        group.addButton(self.price_choice)
        group.addButton(self.custom_choice)
        self.price_combo = QComboBox()
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 9999)
        self.description = QLineEdit()
        self.description.setPlaceholderText("e.g. Consulting, March")
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("e.g. 120.00")
        self.currency = QLineEdit("usd")
        self.currency.setMaxLength(3)
        self.currency.setFixedWidth(60)
        self.memo = QLineEdit()
        self.memo.setPlaceholderText("optional note the customer sees on the invoice")
        self.send_invoice = QCheckBox("Customer pays by link (Stripe emails the invoice)")
        self.days = QSpinBox()
        self.days.setRange(1, 365)
        self.days.setValue(30)
        self.days.setSuffix(" days to pay")
        self.days.setEnabled(False)
        self.send_invoice.toggled.connect(self.days.setEnabled)
        self.price_choice.toggled.connect(self._on_choice_toggled)

        price_row = QHBoxLayout()
        price_row.addWidget(self.price_combo, 1)
        price_row.addWidget(QLabel("Quantity:"))
        price_row.addWidget(self.quantity)
        custom_row = QHBoxLayout()
        custom_row.addWidget(self.description, 2)
        custom_row.addWidget(self.amount, 1)
        custom_row.addWidget(self.currency)
        collect_row = QHBoxLayout()
        collect_row.addWidget(self.send_invoice, 1)
        collect_row.addWidget(self.days)
        form = QFormLayout()
        form.addRow("Customer*:", self.customer)
        form.addRow(self.price_choice, price_row)
        form.addRow(self.custom_choice, custom_row)
        form.addRow("Memo:", self.memo)
        form.addRow("Collection:", collect_row)

        self.error = QLabel(
            "The invoice is created as a draft: nothing is sent or charged until you finalize "
            "and charge (or send) it."
        )
        self.error.setObjectName("hintText")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText("Create draft")
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.custom_choice.setChecked(True)
        self._on_choice_toggled(False)
        tasks.run(self, ctx.browse.products, self._on_products_loaded, self._on_submit_failed)

    def _on_products_loaded(self, products: list[ProductRow]) -> None:
        for product in products:
            price = product.default_price
            # Invoice items take one-time prices only (Stripe refuses a recurring one).
            if (
                product.active
                and price is not None
                and price.active
                and price.unit_amount
                and not price.recurring
            ):
                self.price_combo.addItem(
                    f"{product.name} — {format_amount(price.unit_amount, price.currency)}",
                    price.stripe_id,
                )
        if self.price_combo.count():
            self.price_choice.setChecked(True)
        else:
            self.price_choice.setEnabled(False)
            self.price_combo.addItem("No active prices in the catalog")

    def _on_choice_toggled(self, price: bool) -> None:
        self.price_combo.setEnabled(price)
        self.quantity.setEnabled(price)
        for edit in (self.description, self.amount, self.currency):
            edit.setEnabled(not price)

    def draft(self) -> InvoiceDraft:
        """What the form says (raises `ValidationError`)."""
        if self.price_choice.isChecked():
            line = DraftLine(
                price_id=str(self.price_combo.currentData() or ""), quantity=self.quantity.value()
            )
        else:
            code = currency(self.currency.text())
            line = DraftLine(
                description=self.description.text(),
                amount=amount_in_minor_units(self.amount.text(), code),
                currency=code,
            )
        customer = self.customer.customer()
        if customer is None:
            raise ValidationError("Pick the customer: type part of a name or email above.")
        draft = InvoiceDraft(
            customer_id=customer.stripe_id,
            lines=(line,),
            memo=self.memo.text(),
            send_invoice=self.send_invoice.isChecked(),
            days_until_due=self.days.value(),
        )
        return draft

    def _on_buttons_accepted(self) -> None:
        try:
            draft = self.draft()
        except AppError as exc:
            self.show_error(str(exc))
            return
        key = self.idempotency_key
        self.submit(
            lambda: self._ctx.invoices.create_draft(draft, key), "Creating the draft in Stripe…"
        )


_OUTCOME_TITLES = {
    ChargeOutcome.PAID: "Paid",
    ChargeOutcome.ALREADY_PAID: "Already paid — nothing charged",
    ChargeOutcome.DECLINED: "Declined — not charged",
    ChargeOutcome.REQUIRES_AUTHENTICATION: "Customer must confirm — not charged",
    ChargeOutcome.NO_PAYMENT_METHOD: "No saved card — not charged",
    ChargeOutcome.UNREACHABLE: "Stripe did not answer",
    ChargeOutcome.IN_PROGRESS: "Already being charged",
}


class ChargeDialog(QDialog):
    """Confirm a charge: customer, amount, currency and card are shown before anything moves.

    The Charge button is disabled while the charge runs; the outcome is written in words. After
    "Stripe did not answer" the button becomes "Try again" with the same idempotency key.
    """

    #: Emitted with the invoice id when the charge request starts.
    charge_started = Signal(str)
    #: Emitted with the ChargeResult when the charge ended (whatever the outcome).
    charge_finished = Signal(object)

    def __init__(
        self, ctx: AppContext, tasks: TaskRunner, invoice_id: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self.invoice_id = invoice_id
        # None: the request journal picks the key (an unconfirmed identical request's, or a
        # new one); after an unknown outcome a retry from this dialog sends that same key.
        self.idempotency_key: str | None = None
        self.preview: ChargePreview | None = None
        self.last_result: ChargeResult | None = None
        self.in_flight = False
        self._link = ""
        self.setWindowTitle("Charge invoice")
        self.setMinimumWidth(560)

        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        for key in ("Invoice", "Customer", "Amount", "Currency", "Card"):
            label = QLabel("…")
            label.setWordWrap(True)
            self.fields[key] = label
            form.addRow(f"{key}:", label)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setVisible(False)
        self.outcome_title = QLabel()
        self.outcome_title.setObjectName("detailTitle")
        self.outcome = QLabel("Reading the invoice and the customer's card from Stripe…")
        self.outcome.setObjectName("hintText")
        self.outcome.setWordWrap(True)
        self.copy_link = QPushButton("Copy invoice link")
        self.open_link = QPushButton("Open invoice page")
        for button in (self.copy_link, self.open_link):
            button.setVisible(False)
        self.copy_link.clicked.connect(self._on_copy_link_clicked)
        self.open_link.clicked.connect(self._on_open_link_clicked)
        link_row = QHBoxLayout()
        link_row.addWidget(self.copy_link)
        link_row.addWidget(self.open_link)
        link_row.addStretch(1)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.charge_button = self.buttons.addButton(
            "Charge", QDialogButtonBox.ButtonRole.ActionRole
        )
        self.charge_button.setEnabled(False)
        self.charge_button.clicked.connect(self._on_charge_clicked)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.outcome_title)
        layout.addWidget(self.outcome)
        layout.addLayout(link_row)
        layout.addWidget(self.buttons)
        tasks.run(
            self, lambda: ctx.invoices.charge_preview(invoice_id), self._on_preview, self._on_failed
        )

    def _on_preview(self, p: ChargePreview) -> None:
        self.preview = p
        self.fields["Invoice"].setText(f"{p.number or '(draft)'} ({p.invoice_id}) — {p.status}")
        self.fields["Customer"].setText(f"{p.customer_name or '(no name)'} ({p.customer_id})")
        self.fields["Amount"].setText(format_amount(p.amount, p.currency))
        self.fields["Currency"].setText(p.currency.upper())
        self.fields["Card"].setText(
            p.payment_method.label() if p.payment_method else "No saved card on this customer"
        )
        if p.status == "paid":
            self.outcome.setText("This invoice is already paid: there is nothing to charge.")
            return
        if p.status not in ("open", "uncollectible"):
            self.outcome.setText(f"Only open invoices can be charged; this one is {p.status}.")
            return
        if p.payment_method is None:
            self.outcome.setText(
                "The customer has no saved card, so it cannot be charged from here. Send them "
                "the invoice link to pay instead."
            )
            self._offer_link(p.hosted_invoice_url)
            return
        self.charge_button.setText(
            f"Charge {format_amount(p.amount, p.currency)} to {p.payment_method.label()}"
        )
        self.charge_button.setEnabled(True)
        self.outcome.setText(
            "Check the customer, amount and card. The card is charged once you press the button."
        )

    def _on_charge_clicked(self) -> None:
        p = self.preview
        if p is None or self.in_flight:
            return
        card = p.payment_method.label() if p.payment_method else "the saved card"
        description = (
            f"Charge {format_amount(p.amount, p.currency)} to {p.customer_name or p.customer_id}'s "
            f"{card} for invoice {p.number or p.invoice_id}."
        )
        if not confirm_money_move(self._ctx.mode, description, self):
            return
        self.in_flight = True
        self.charge_button.setEnabled(False)
        self.progress.setVisible(True)
        self.outcome_title.setText("Charging…")
        self.outcome.setText("Waiting for Stripe. Closing this window does not stop the charge.")
        self.charge_started.emit(self.invoice_id)
        key, invoice_id = self.idempotency_key, self.invoice_id
        self._tasks.run(
            self,
            lambda: self._ctx.invoices.charge(invoice_id, key),
            self._on_charged,
            self._on_charge_failed,
        )

    def _on_charged(self, result: ChargeResult) -> None:
        self._show_result(result)

    def _on_charge_failed(self, exc: BaseException) -> None:
        self.idempotency_key = key_after_failure(exc, self.idempotency_key)
        result = charge_result_of(exc)
        if result is None:
            if not isinstance(exc, AppError):
                self._end_flight()
                raise exc
            result = ChargeResult(self.invoice_id, ChargeOutcome.DECLINED, str(exc))
        self._show_result(result)

    def _show_result(self, result: ChargeResult) -> None:
        self._end_flight()
        self.last_result = result
        self.outcome_title.setText(_OUTCOME_TITLES[result.outcome])
        self.outcome.setObjectName(
            "hintText"
            if result.outcome in (ChargeOutcome.PAID, ChargeOutcome.ALREADY_PAID)
            else "errorText"
        )
        self.outcome.style().polish(self.outcome)
        self.outcome.setText(result.message)
        if result.outcome is ChargeOutcome.UNREACHABLE:
            self.charge_button.setText("Try again (same request, cannot charge twice)")
            self.charge_button.setEnabled(True)
        elif result.outcome in (
            ChargeOutcome.DECLINED,
            ChargeOutcome.REQUIRES_AUTHENTICATION,
            ChargeOutcome.NO_PAYMENT_METHOD,
        ):
            self._offer_link(result.hosted_invoice_url)
        self.charge_finished.emit(result)

    def _end_flight(self) -> None:
        self.in_flight = False
        self.progress.setVisible(False)

    def _offer_link(self, url: str) -> None:
        self._link = url
        for button in (self.copy_link, self.open_link):
            button.setVisible(bool(url))

    def _on_copy_link_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self._link)
        self.copy_link.setText("Link copied")

    def _on_open_link_clicked(self) -> None:
        QDesktopServices.openUrl(QUrl(self._link))

    def _on_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.outcome.setObjectName("errorText")
        self.outcome.style().polish(self.outcome)
        self.outcome.setText(f"Cannot charge: {exc}")
