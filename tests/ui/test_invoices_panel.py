"""The invoices panel as an admin uses it: filters and totals, the charge confirmation, the
in-flight state, and outcomes in plain words."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
import uuid

import pytest
import stripe
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from services.invoices import DraftLine, InvoiceDraft
from services.sync import SyncTarget
from stripe_sandbox import SandboxServer
from tests.helpers.qt import open_dialog
from ui.invoice_dialogs import ChargeDialog
from ui.main_window import MainWindow
from ui.panels.invoices import InvoicesPanel


def _post(sandbox: SandboxServer, path: str, **form: object) -> object:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(sandbox.url + path, data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def window(synced_window: MainWindow) -> MainWindow:
    synced_window.show_panel("invoices")
    return synced_window


def _panel(window: MainWindow) -> InvoicesPanel:
    panel = window.panels["invoices"]
    assert isinstance(panel, InvoicesPanel)
    return panel


def _open_invoice(
    window: MainWindow, sandbox: SandboxServer, client: stripe.StripeClient, card: str
) -> str:
    """An open $25.00 invoice for a new customer whose saved card is `card`."""
    ctx = window.ctx
    customer = client.v1.customers.create({"name": "Grace Ledger", "email": "ap@grace.example"})
    _post(sandbox, f"/_sandbox/customers/{customer.id}/attach_card", card=card)
    ctx.sync.pull(SyncTarget.CUSTOMERS)
    line = DraftLine(description="Consulting", amount=2500, currency="usd")
    draft = ctx.invoices.create_draft(InvoiceDraft(customer.id, (line,)), f"k-{uuid.uuid4()}")
    ctx.invoices.finalize(draft.stripe_id, f"k-{uuid.uuid4()}")
    return draft.stripe_id


def _select(qtbot: QtBot, panel: InvoicesPanel, invoice_id: str) -> None:
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        panel.refresh()
    assert panel.select_where(lambda r: r.stripe_id == invoice_id)
    qtbot.waitUntil(
        lambda: panel.detail.detail is not None and panel.detail.detail.stripe_id == invoice_id,
        timeout=10_000,
    )


def test_filters_and_totals_of_what_is_shown(qtbot: QtBot, window: MainWindow) -> None:
    panel = _panel(window)
    assert panel.model.total_count == 33
    assert "Shown: 33 invoices in USD" in panel.totals_label.text()
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        panel.status_combo.setCurrentIndex(panel.status_combo.findData("overdue"))
    assert panel.model.total_count == 2
    assert all(r.overdue for r in panel.model.visible_rows())
    assert "Shown: 2 invoices" in panel.totals_label.text()
    panel.since.setText("not a date")
    panel.since.editingFinished.emit()  # what Enter or Tab sends
    assert "must be a date" in panel.filter_error.text()
    # An admin's actions follow the status, and say why on hover when they cannot apply.
    panel.table.selectRow(0)
    qtbot.waitUntil(lambda: panel.detail.detail is not None, timeout=10_000)
    assert panel.charge_button.isEnabled()
    assert not panel.finalize_button.isEnabled()
    assert "Only drafts" in panel.finalize_button.toolTip()


def test_charge_confirms_then_is_disabled_while_in_flight(
    qtbot: QtBot, window: MainWindow, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    panel = _panel(window)
    invoice = _open_invoice(window, sandbox, stripe_client, "4242424242424242")
    _select(qtbot, panel, invoice)
    assert panel.charge_button.isEnabled()
    panel.charge_button.click()
    dialog = open_dialog(qtbot, ChargeDialog)
    qtbot.waitUntil(dialog.charge_button.isEnabled, timeout=10_000)
    assert "Grace Ledger" in dialog.fields["Customer"].text()
    assert dialog.fields["Amount"].text() == "$25.00"
    assert dialog.fields["Currency"].text() == "USD"
    assert "Visa •••• 4242" in dialog.fields["Card"].text()
    assert "$25.00" in dialog.charge_button.text()

    # Stripe takes its time: nothing can start a second charge meanwhile.
    _post(sandbox, "/_sandbox/faults", path_prefix=f"/v1/invoices/{invoice}/pay",
          method="POST", delay_ms=600)  # fmt: skip
    with qtbot.waitSignal(dialog.charge_finished, timeout=15_000) as finished:
        dialog.charge_button.click()
        assert dialog.in_flight
        assert not dialog.charge_button.isEnabled()
        assert not panel.charge_button.isEnabled()
        assert "in progress" in panel.charge_button.toolTip()
        dialog.charge_button.click()  # a double-click does nothing more
    assert finished.args[0].outcome.value == "paid"
    assert dialog.outcome_title.text() == "Paid"
    assert not dialog.charge_button.isEnabled()
    payments = stripe_client.v1.invoice_payments.list({"invoice": invoice}).data
    assert [p.status for p in payments] == ["paid"]
    qtbot.waitUntil(
        lambda: panel.detail.detail is not None and panel.detail.detail.status == "paid",
        timeout=10_000,
    )
    assert not panel.charge_button.isEnabled()
    dialog.close()


def test_a_decline_is_shown_in_plain_words_with_the_invoice_link(
    qtbot: QtBot, window: MainWindow, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    panel = _panel(window)
    invoice = _open_invoice(window, sandbox, stripe_client, "4000000000009995")
    _select(qtbot, panel, invoice)
    panel.charge_button.click()
    dialog = open_dialog(qtbot, ChargeDialog)
    qtbot.waitUntil(dialog.charge_button.isEnabled, timeout=10_000)
    with qtbot.waitSignal(dialog.charge_finished, timeout=15_000):
        dialog.charge_button.click()
    assert dialog.outcome_title.text() == "Declined — not charged"
    assert "insufficient funds" in dialog.outcome.text()
    assert "stays open" in dialog.outcome.text()
    assert dialog.copy_link.isVisibleTo(dialog)
    dialog.copy_link.click()
    assert QApplication.clipboard().text().endswith(invoice)
    qtbot.waitUntil(lambda: panel.detail.detail is not None, timeout=10_000)
    assert panel.detail.detail is not None
    assert panel.detail.detail.status == "open"
    dialog.close()


def test_filter_boxes_apply_as_you_type(qtbot: QtBot, window: MainWindow) -> None:
    panel = _panel(window)
    before = panel.model.total_count
    name = panel.model.visible_rows()[0].customer_name
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        panel.customer_filter.setText(name)  # typed: no Enter, focus stays in the box
    assert 0 < panel.model.total_count < before
    assert {r.customer_name for r in panel.model.visible_rows()} == {name}
    panel.since.setText("2026-1")  # half a date while typing: no error yet, nothing lost
    assert not panel.filter_error.isVisible()
    assert {r.customer_name for r in panel.model.visible_rows()} == {name}
    panel.since.clear()
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        panel.customer_filter.clear()
    assert panel.model.total_count == before
