"""Admins' subscription dialogs: create, change price or quantity, cancel.

Each asks Stripe (or the catalog) what the change does in money first and shows it in a
confirmation ("The customer is charged $12.40 now for the upgrade"); only "Yes" sends it. One
idempotency key per dialog: after an unknown outcome, pressing the button again repeats the very
same request (see `ui.dialogs.SubmitDialog`).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.errors import AppError, ValidationError
from services.subscriptions import (
    MoneyPreview,
    PriceChoice,
    SubscriptionDraft,
    SubscriptionRow,
)
from ui.customer_picker import CustomerPicker
from ui.dialogs import SubmitDialog, add_live_banner, ask_first, confirm_money_move
from ui.formatting import format_amount, format_date
from ui.tasks import TaskRunner

PRORATION_LABELS = (
    ("create", "On the next invoice (prorated)"),
    ("always", "Invoice the difference now (prorated)"),
    ("none", "No proration: new price from the next renewal"),
)


class _SubscriptionDialog(SubmitDialog):
    """Preview → confirm (`ask_first`) → submit, with the form kept on an error."""

    failure_prefix = "Not changed"
    action_title = ""
    action_verb = ""

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None) -> None:
        super().__init__(tasks, parent)
        self._ctx = ctx
        self.idempotency_key: str | None = None
        self.confirm_box: QMessageBox | None = None
        self.error = QLabel("")
        self.error.setObjectName("hintText")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)

    def _finish_layout(self, form: QFormLayout, hint: str) -> None:
        layout = QVBoxLayout(self)
        add_live_banner(layout, self._ctx.mode)
        layout.addLayout(form)
        self.error.setText(hint)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def preview(self) -> MoneyPreview:  # runs on a worker
        raise NotImplementedError

    def act(self, preview: MoneyPreview) -> Callable[[], object]:
        raise NotImplementedError

    def check(self) -> None:
        """Validate the form on the GUI thread (raises `ValidationError`)."""

    def _on_buttons_accepted(self) -> None:
        try:
            self.check()
        except AppError as exc:
            self.show_error(str(exc))
            return
        self.show_error("")
        self.error.setText("Asking Stripe what this costs…")
        self.buttons.setEnabled(False)
        self._tasks.run(self, self.preview, self._on_preview_ok, self._on_submit_failed)

    def _on_preview_ok(self, preview: MoneyPreview) -> None:
        self.buttons.setEnabled(True)
        self.error.setText(preview.text)
        self.confirm_box = ask_first(
            self, self.action_title, f"{preview.text}\n\n{self.action_verb}?", self.action_verb,
            lambda: self._confirmed(preview),
        )  # fmt: skip

    def _confirmed(self, preview: MoneyPreview) -> None:
        if not confirm_money_move(self._ctx.mode, preview.text, self):
            return
        self.submit(self.act(preview), "Sending to Stripe…")


class NewSubscriptionDialog(_SubscriptionDialog):
    """Subscribe a customer to a recurring catalog price."""

    failure_prefix = "Not created"
    action_title = "New subscription"
    action_verb = "Create subscription"

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        customer_id: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(ctx, tasks, parent)
        self.setWindowTitle("New subscription")
        self.setMinimumWidth(580)
        self.customer = CustomerPicker(ctx, tasks, customer_id)
        self.customer.chosen_prefix = "Subscription for"
        self.price_combo = QComboBox()
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 10_000)
        self.trial = QSpinBox()
        self.trial.setRange(0, 730)
        self.trial.setSpecialValueText("No trial")
        self.trial.setSuffix(" days free")
        self.collection = QComboBox()
        self.collection.addItem("Charge the saved card automatically", "charge_automatically")
        self.collection.addItem("Email an invoice to pay by link", "send_invoice")
        self.days = QSpinBox()
        self.days.setRange(1, 365)
        self.days.setValue(30)
        self.days.setSuffix(" days to pay")
        self.days.setEnabled(False)
        self.collection.currentIndexChanged.connect(
            lambda _i: self.days.setEnabled(self.collection.currentData() == "send_invoice")
        )
        collect = QHBoxLayout()
        collect.addWidget(self.collection, 1)
        collect.addWidget(self.days)
        price_row = QHBoxLayout()
        price_row.addWidget(self.price_combo, 1)
        price_row.addWidget(QLabel("Quantity:"))
        price_row.addWidget(self.quantity)
        form = QFormLayout()
        form.addRow("Customer*:", self.customer)
        form.addRow("Price*:", price_row)
        form.addRow("Trial:", self.trial)
        form.addRow("Collection:", collect)
        self.ok_button.setText("Create…")
        self._finish_layout(form, "You will see what the customer pays before anything is sent.")
        self.ok_button.setEnabled(False)
        tasks.run(self, ctx.subscriptions.price_choices, self._on_prices_loaded,
                  self._on_submit_failed)  # fmt: skip

    def _on_prices_loaded(self, choices: list[PriceChoice]) -> None:
        for choice in choices:
            self.price_combo.addItem(choice.label, choice.price_id)
        if not choices:
            self.price_combo.addItem("No recurring prices in the catalog (sync products)")
        self.ok_button.setEnabled(bool(choices))

    def draft(self) -> SubscriptionDraft:
        customer = self.customer.customer()
        if customer is None:
            raise ValidationError("Pick the customer: type part of a name or email above.")
        return SubscriptionDraft(
            customer_id=customer.stripe_id,
            price_id=str(self.price_combo.currentData() or ""),
            quantity=self.quantity.value(),
            trial_days=self.trial.value(),
            collection_method=str(self.collection.currentData()),
            days_until_due=self.days.value(),
        )

    def check(self) -> None:
        self._draft = self.draft()

    def preview(self) -> MoneyPreview:
        return self._ctx.subscriptions.preview_create(self._draft)

    def act(self, preview: MoneyPreview) -> Callable[[], object]:
        draft, key = self._draft, self.idempotency_key
        return lambda: self._ctx.subscriptions.create(draft, key)


class ChangeSubscriptionDialog(_SubscriptionDialog):
    """A new price or quantity for a one-item subscription, with Stripe's proration preview."""

    action_title = "Change subscription"
    action_verb = "Change it"

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        row: SubscriptionRow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(ctx, tasks, parent)
        self.row = row
        self._sent_date: int | None = None
        self.setWindowTitle(f"Change {row.stripe_id}")
        self.setMinimumWidth(520)
        self.price_choice = QRadioButton("New price")
        self.quantity_choice = QRadioButton("New quantity")
        group = QButtonGroup(self)
        group.addButton(self.price_choice)
        group.addButton(self.quantity_choice)
        self.price_combo = QComboBox()
        self.quantity = QSpinBox()
        self.quantity.setRange(1, 10_000)
        self.quantity.setValue(max(1, row.quantity))
        self.proration = QComboBox()
        for value, label in PRORATION_LABELS:
            self.proration.addItem(label, value)
        self.price_choice.toggled.connect(self._on_price_choice_toggled)
        form = QFormLayout()
        who = row.customer_name or row.customer_id
        current = f"{row.plan} — {format_amount(row.amount, row.currency)} / {row.interval}"
        form.addRow("Subscription:", QLabel(f"{current}\n{who}, renews "
                                            f"{format_date(row.current_period_end)}"))  # fmt: skip
        form.addRow(self.price_choice, self.price_combo)
        form.addRow(self.quantity_choice, self.quantity)
        form.addRow("Proration:", self.proration)
        self.ok_button.setText("Preview and change…")
        self._finish_layout(form, "Stripe previews the proration before anything changes.")
        self.quantity_choice.setChecked(True)
        self._on_price_choice_toggled(False)
        tasks.run(self, ctx.subscriptions.price_choices, self._on_prices_loaded,
                  self._on_submit_failed)  # fmt: skip

    def _on_prices_loaded(self, choices: list[PriceChoice]) -> None:
        current = set(self.row.price_ids.split())
        for choice in choices:
            if choice.currency == self.row.currency and choice.price_id not in current:
                self.price_combo.addItem(choice.label, choice.price_id)
        if not self.price_combo.count():
            self.price_combo.addItem("No other recurring price in this currency")
            self.price_choice.setEnabled(False)

    def _on_price_choice_toggled(self, price: bool) -> None:
        self.price_combo.setEnabled(price)
        self.quantity.setEnabled(not price)

    def _change(self) -> tuple[str | None, int | None]:
        if self.price_choice.isChecked():
            return str(self.price_combo.currentData() or ""), None
        return None, self.quantity.value()

    def check(self) -> None:
        price, quantity = self._change()
        if price == "":
            raise ValidationError("Pick the new price.")
        if quantity is not None and quantity == self.row.quantity:
            raise ValidationError(f"The quantity is {quantity} already.")
        self._wanted = (price, quantity, str(self.proration.currentData()))

    def preview(self) -> MoneyPreview:
        price, quantity, proration = self._wanted
        return self._ctx.subscriptions.preview_change(
            self.row.stripe_id, price_id=price, quantity=quantity, proration=proration
        )

    def act(self, preview: MoneyPreview) -> Callable[[], object]:
        price, quantity, proration = self._wanted
        key, sub_id = self.idempotency_key, self.row.stripe_id
        if key is None or self._sent_date is None:
            self._sent_date = preview.proration_date
        # A retry after an unknown outcome re-uses the key, so it must send the same date.
        when = self._sent_date
        return lambda: self._ctx.subscriptions.update(
            sub_id, price_id=price, quantity=quantity, proration=proration,
            proration_date=when, idempotency_key=key,
        )  # fmt: skip


class CancelSubscriptionDialog(_SubscriptionDialog):
    """Cancel at the end of the period (the default, undoable) or now."""

    action_title = "Cancel subscription"
    action_verb = "Cancel subscription"

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        row: SubscriptionRow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(ctx, tasks, parent)
        self.row = row
        self.setWindowTitle(f"Cancel {row.stripe_id}")
        self.at_period_end = QRadioButton(
            f"At the end of the period ({format_date(row.current_period_end)}); can be undone"
        )
        self.now = QRadioButton("Now: it ends at once, with no refund")
        group = QButtonGroup(self)
        group.addButton(self.at_period_end)
        group.addButton(self.now)
        self.at_period_end.setChecked(True)
        if row.cancel_at_period_end:
            self.at_period_end.setEnabled(False)
            self.now.setChecked(True)
        form = QFormLayout()
        who = row.customer_name or row.customer_id
        form.addRow("Subscription:", QLabel(f"{row.plan} for {who}"))
        form.addRow("When:", self.at_period_end)
        form.addRow("", self.now)
        self.ok_button.setText("Cancel subscription…")
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setText("Keep it")
        self._finish_layout(form, "")

    def check(self) -> None:
        self._at_end = self.at_period_end.isChecked()

    def preview(self) -> MoneyPreview:
        return self._ctx.subscriptions.preview_cancel(self.row.stripe_id,
                                                      at_period_end=self._at_end)  # fmt: skip

    def act(self, preview: MoneyPreview) -> Callable[[], object]:
        at_end, key, sub_id = self._at_end, self.idempotency_key, self.row.stripe_id
        return lambda: self._ctx.subscriptions.cancel(
            sub_id, at_period_end=at_end, idempotency_key=key
        )


class AdvanceClockDialog(SubmitDialog):
    """Test mode and the sandbox: move the subscription's test clock ahead, so renewals, failed
    payments, retries and cancellations happen now (their events arrive as usual)."""

    failure_prefix = "Not advanced"

    def __init__(
        self,
        ctx: AppContext,
        tasks: TaskRunner,
        row: SubscriptionRow,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(tasks, parent)
        self._ctx = ctx
        self.row = row
        self.setWindowTitle("Advance the test clock")
        self.days = QSpinBox()
        self.days.setRange(1, 3 * 366)
        self.days.setValue(30)
        self.days.setSuffix(" days")
        form = QFormLayout()
        form.addRow(
            "Subscription:", QLabel(f"{row.plan} for {row.customer_name or row.customer_id}")
        )
        form.addRow("Move time ahead by:", self.days)
        self.error = QLabel(
            "Every customer on this test clock moves ahead together; whatever falls due in "
            "between (renewals, retries, trial ends, cancellations) happens in Stripe now. "
            "Test mode only: no real money."
        )
        self.error.setObjectName("hintText")
        self.error.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Advance")
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _on_buttons_accepted(self) -> None:
        days, sub_id = self.days.value(), self.row.stripe_id
        self.submit(
            lambda: self._ctx.subscriptions.advance_clock(sub_id, days),
            f"Advancing the clock {days} days…",
        )
