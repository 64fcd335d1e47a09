"""The New draft invoice dialog as an admin fills it: a custom line or a catalog price, paid by
card or by link, and bad input refused in the dialog with nothing sent to Stripe."""

from __future__ import annotations

import stripe
from pytestqt.qtbot import QtBot

from services.invoices import InvoiceDetail
from services.sync import SyncTarget
from stripe_sandbox import SandboxServer
from ui.invoice_dialogs import NewInvoiceDialog
from ui.main_window import MainWindow
from ui.tasks import TaskRunner


def _dialog(qtbot: QtBot, window: MainWindow, tasks: TaskRunner, customer: str) -> NewInvoiceDialog:
    dialog = NewInvoiceDialog(window.ctx, tasks, customer)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.customer.customer() is not None, timeout=10_000)
    qtbot.waitUntil(lambda: dialog.price_combo.count() > 0, timeout=10_000)
    return dialog


def _customer(window: MainWindow, client: stripe.StripeClient) -> str:
    made = client.v1.customers.create({"name": "Nia Draft", "email": "nia@example.com"})
    window.ctx.sync.pull(SyncTarget.CUSTOMERS)
    return made.id


def test_a_custom_line_paid_by_link(
    qtbot: QtBot, synced_window: MainWindow, tasks: TaskRunner,
    stripe_client: stripe.StripeClient,
) -> None:  # fmt: skip
    customer = _customer(synced_window, stripe_client)
    dialog = _dialog(qtbot, synced_window, tasks, customer)
    assert dialog.price_choice.isChecked()  # the catalog has prices: offered first
    dialog.custom_choice.setChecked(True)
    assert dialog.amount.isEnabled()
    assert not dialog.price_combo.isEnabled()
    dialog.description.setText("Consulting, March")
    dialog.amount.setText("1,200.50")
    dialog.currency.setText("eur")
    dialog.memo.setText("Thank you")
    assert not dialog.days.isEnabled()
    dialog.send_invoice.setChecked(True)
    assert dialog.days.isEnabled()
    dialog.days.setValue(14)
    with qtbot.waitSignal(dialog.created, timeout=20_000) as created:
        dialog.save_button.click()
    detail = created.args[0]
    assert isinstance(detail, InvoiceDetail)
    invoice = stripe_client.v1.invoices.retrieve(detail.stripe_id)
    assert (invoice.status, invoice.customer, invoice.currency) == ("draft", customer, "eur")
    assert (invoice.total, invoice.collection_method) == (120_050, "send_invoice")
    assert invoice.description == "Thank you"
    assert not dialog.isVisible()


def test_a_catalog_price_times_a_quantity(
    qtbot: QtBot, synced_window: MainWindow, tasks: TaskRunner, sandbox: SandboxServer,
    stripe_client: stripe.StripeClient,
) -> None:  # fmt: skip
    customer = _customer(synced_window, stripe_client)
    dialog = _dialog(qtbot, synced_window, tasks, customer)
    price_id = str(dialog.price_combo.currentData())
    unit = stripe_client.v1.prices.retrieve(price_id).unit_amount
    assert unit
    dialog.quantity.setValue(3)
    with qtbot.waitSignal(dialog.created, timeout=20_000) as created:
        dialog.save_button.click()
    invoice = stripe_client.v1.invoices.retrieve(created.args[0].stripe_id)
    assert (invoice.total, invoice.collection_method) == (3 * unit, "charge_automatically")


def test_bad_input_is_refused_in_the_dialog(
    qtbot: QtBot, synced_window: MainWindow, tasks: TaskRunner,
    stripe_client: stripe.StripeClient,
) -> None:  # fmt: skip
    customer = _customer(synced_window, stripe_client)
    before = len(stripe_client.v1.invoices.list({"limit": 100}).data)
    dialog = _dialog(qtbot, synced_window, tasks, customer)
    dialog.custom_choice.setChecked(True)
    dialog.description.setText("Work")
    for amount, currency, words in (
        ("12.345", "usd", "Amount must be a number like 12.50"),
        ("1500.5", "jpy", "Amount must be a number like 1500"),
        ("0", "usd", "more than zero"),
        ("10.00", "zz", "currency"),
    ):
        dialog.amount.setText(amount)
        dialog.currency.setText(currency)
        with qtbot.assertNotEmitted(dialog.created, wait=0):
            dialog.save_button.click()
        assert words.lower() in dialog.error.text().lower()
        assert dialog.isVisible()
    dialog.customer.search.setText("nobody matches this")
    dialog.amount.setText("10.00")
    dialog.currency.setText("usd")
    dialog.save_button.click()
    assert "Pick the customer" in dialog.error.text()
    assert len(stripe_client.v1.invoices.list({"limit": 100}).data) == before
