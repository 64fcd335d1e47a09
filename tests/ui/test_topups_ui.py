"""Issuing a top-up link, expiring it, and granting credits, as support and admins do."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request

import stripe
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.events import Source
from stripe_sandbox import SandboxServer
from tests.helpers.qt import open_dialog, spin_until
from ui.main_window import MainWindow
from ui.panels.credits import CreditsPanel
from ui.panels.customers import CustomersPanel
from ui.panels.topups import TopUpsPanel
from ui.topup_dialogs import GrantDialog, TopUpDialog


def test_issue_a_link_then_expire_it(qtbot: QtBot, synced_window: MainWindow) -> None:
    window = synced_window
    customers = window.panels["customers"]
    assert isinstance(customers, CustomersPanel)
    customers.table.selectRow(0)
    qtbot.waitUntil(customers.topup_button.isEnabled, timeout=5000)
    customers.topup_button.click()
    dialog = open_dialog(qtbot, TopUpDialog)
    assert isinstance(dialog, TopUpDialog)
    qtbot.waitUntil(lambda: dialog.pack_combo.count() > 0, timeout=5000)
    dialog.custom_choice.setChecked(True)
    dialog.credits_spin.setValue(1200)
    assert dialog.price_label.text() == "= $120.00"
    with qtbot.waitSignal(dialog.issued, timeout=10_000) as issued:
        dialog.create_button.click()
    link = issued.args[0]
    assert link.topup.credits == 1200
    assert dialog.url.text().startswith("http://127.0.0.1:")
    assert "1,200 credits" in dialog.email.toPlainText()
    assert not dialog.create_button.isEnabled()  # one link per dialog
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == link.topup.url
    dialog.close()

    window.show_panel("topups")
    topups = window.panels["topups"]
    assert isinstance(topups, TopUpsPanel)
    # Shown at once, without F5.
    spin_until(lambda: [r.status for r in topups.model.visible_rows()] == ["open"])
    topups.table.selectRow(0)
    qtbot.waitUntil(topups.expire_button.isEnabled, timeout=5000)
    spin_until(lambda: topups.detail.attempts.text() == "No attempt to pay yet.")
    topups.expire_button.click()
    box = topups.confirm_box  # asked first: expiring cannot be undone
    assert "cannot be undone" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    window.tasks.wait_idle()
    assert [r.status for r in topups.model.visible_rows()] == ["open"]
    topups.expire_button.click()
    yes = next(b for b in topups.confirm_box.buttons() if b.text() == "Expire link")
    with qtbot.waitSignal(topups.rows_loaded, timeout=10_000):
        yes.click()
    assert [r.status for r in topups.model.visible_rows()] == ["expired"]
    # Issuing added no credits at all.
    assert window.panels["credits"].model.total_count == 0


def test_grant_needs_a_reason(qtbot: QtBot, synced_window: MainWindow) -> None:
    window = synced_window
    ctx = window.ctx
    customer = window.panels["customers"].model.row_at(0)
    dialog = GrantDialog(ctx, window.tasks, customer.stripe_id, customer.name)
    qtbot.addWidget(dialog)
    dialog.credits.setValue(300)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert "reason is required" in dialog.error.text()
    dialog.reason.setText("goodwill: outage 2026-11-20")
    with qtbot.waitSignal(dialog.granted, timeout=10_000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    credits = window.panels["credits"]
    assert isinstance(credits, CreditsPanel)
    with qtbot.waitSignal(credits.rows_loaded, timeout=10_000):
        credits.refresh()
    (row,) = credits.model.visible_rows()
    assert (row.customer_id, row.balance) == (customer.stripe_id, 300)
    credits.table.selectRow(0)
    qtbot.waitUntil(lambda: credits.ledger.table.rowCount() == 1, timeout=5000)
    assert credits.ledger.table.item(0, 2).text() == "Grant (free)"
    assert "goodwill" in credits.ledger.table.item(0, 4).text()


def _pay(sandbox: SandboxServer, session_id: str, **form: str) -> None:
    data = urllib.parse.urlencode(form).encode()
    url = f"{sandbox.url}/_sandbox/checkout/sessions/{session_id}/pay"
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10).close()
    except urllib.error.HTTPError as exc:  # a declined card answers 402
        exc.close()


def test_the_tracker_shows_a_pending_debit_and_declined_attempts(
    qtbot: QtBot,
    synced_window: MainWindow,
    runtime: Runtime,
    sandbox: SandboxServer,
    stripe_client: stripe.StripeClient,
) -> None:
    window = synced_window
    ctx = window.ctx
    window.attach_listener(runtime.make_listener(port=0))  # not started: events come by hand
    customer = window.panels["customers"].model.row_at(0)
    debit = ctx.credits.issue_topup(customer.stripe_id, None, credits=300).topup
    declined = ctx.credits.issue_topup(customer.stripe_id, None, credits=400).topup
    _pay(sandbox, declined.checkout_session_id, card="4000000000000002")
    _pay(sandbox, debit.checkout_session_id, method="bank_debit")
    # Completed but unpaid (a bank debit settling): delivered as Stripe would.
    events = stripe_client.v1.events.list({"type": "checkout.session.completed"})
    assert events.data
    for event in events.data:
        ctx.events.receive(event.to_dict(), Source.RECEIVER)
    window.show_panel("topups")
    topups = window.panels["topups"]
    assert isinstance(topups, TopUpsPanel)

    def status_of(topup_id: str) -> str:
        return next((r.status for r in topups.model.visible_rows() if r.topup_id == topup_id), "")

    spin_until(lambda: status_of(debit.topup_id) == "pending")
    assert status_of(declined.topup_id) == "open"  # a declined card leaves the link payable
    assert topups.select_where(lambda r: r.topup_id == declined.topup_id)
    spin_until(lambda: "DECLINED" in topups.detail.attempts.text())
    assert "····0002" in topups.detail.attempts.text()
    assert "declined" in topups.detail.attempts.text().split("DECLINED", 1)[1].lower()
    assert topups.select_where(lambda r: r.topup_id == debit.topup_id)
    assert "still settling" in topups.detail.fields["Status"].text()
    spin_until(lambda: "settling" in topups.detail.attempts.text())


def test_a_custom_top_up_out_of_range_is_refused_not_changed(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    window = synced_window
    customer = window.panels["customers"].model.row_at(0)
    dialog = TopUpDialog(window.ctx, window.tasks, customer.stripe_id, customer.name, window)
    qtbot.addWidget(dialog)
    dialog.show()
    spin_until(lambda: dialog.pack_combo.count() > 0)
    dialog.custom_choice.setChecked(True)
    dialog.credits_spin.lineEdit().setText("50")  # typed, as a clerk would
    dialog.credits_spin.interpretText()
    dialog.credits_spin.clearFocus()
    assert dialog.credits_spin.value() == 50  # kept as typed, not turned into 100
    assert "100 to 100,000 credits, not 50" in dialog.price_label.text()
    with qtbot.assertNotEmitted(dialog.issued, wait=300):
        dialog.create_button.click()
    assert "100 to 100,000 credits, not 50" in dialog.status.text()
    assert dialog.url.text() == ""
    dialog.credits_spin.setValue(250_000)
    dialog.create_button.click()
    assert "not 250,000" in dialog.status.text()
