"""Create or edit a product and its price; credit packs carry how many credits they sell."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from services.browse import ProductRow
from services.catalog import ProductDraft
from services.context import AppContext
from services.errors import AppError
from services.money import major_units_text
from services.validation import amount_in_minor_units, currency, positive_int
from ui.dialogs import SubmitDialog, add_live_banner
from ui.tasks import TaskRunner


class ProductDialog(SubmitDialog):
    saved = SubmitDialog.succeeded

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        existing: ProductRow | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(tasks, parent)
        self._ctx = ctx
        self._existing = existing
        # None: the request journal picks the key (an unconfirmed identical request's, or a
        # new one); after an unknown outcome a retry from this dialog sends that same key.
        self.idempotency_key: str | None = None
        self.setWindowTitle(f"Edit {existing.name}" if existing else "New product")
        self.setMinimumWidth(480)
        self.name = QLineEdit()
        self.description = QLineEdit()
        self.amount = QLineEdit()
        self.amount.setPlaceholderText("e.g. 45.00")
        self.currency = QLineEdit("usd")
        self.currency.setMaxLength(3)
        self.credits = QLineEdit()
        self.credits.setPlaceholderText("empty: not a credit pack; else a positive whole number")
        form = QFormLayout()
        form.addRow("Name*:", self.name)
        form.addRow("Description:", self.description)
        form.addRow("Price*:", self.amount)
        form.addRow("Currency*:", self.currency)
        form.addRow("Credits:", self.credits)
        hint = QLabel(
            "A credit pack adds its credits to a customer's balance only after Stripe confirms "
            "the payment. Changing the price creates a new Stripe price and archives the old one."
        )
        hint.setObjectName("hintText")
        hint.setWordWrap(True)
        self.error = QLabel()
        self.error.setObjectName("errorText")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addLayout(form)
        layout.addWidget(hint)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        if existing is not None:
            self.name.setText(existing.name)
            price = existing.default_price
            if price is not None:
                self.currency.setText(price.currency)
                self.amount.setText(major_units_text(price.unit_amount or 0, price.currency))
            self.credits.setText(str(existing.credits) if existing.credits else "")

    def draft(self) -> ProductDraft:
        code = currency(self.currency.text())
        credits_text = self.credits.text().strip()
        draft = ProductDraft(
            name=self.name.text(),
            amount=amount_in_minor_units(self.amount.text(), code),
            currency=code,
            description=self.description.text(),
            credits=positive_int(credits_text, "Credits") if credits_text else None,
        )
        return self._ctx.catalog.validate(draft)

    def _on_buttons_accepted(self) -> None:
        try:
            draft = self.draft()
        except AppError as exc:
            self.show_error(str(exc))
            return
        key, existing = self.idempotency_key, self._existing
        if existing is None:
            self.submit(lambda: self._ctx.catalog.create(draft, key))
        else:
            self.submit(lambda: self._ctx.catalog.update(existing.stripe_id, draft, key))
