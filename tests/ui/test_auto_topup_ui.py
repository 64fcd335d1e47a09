"""The Auto top-up dialog, the *needs attention* list and "Save the card" on a top-up link."""

from __future__ import annotations

from pathlib import Path

import stripe
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QLabel
from pytestqt.qtbot import QtBot

from services.context import AppContext
from tests.helpers.qt import open_dialog, spin_until
from ui.auto_topup_dialogs import AttentionDialog, AutoTopUpDialog
from ui.main_window import MainWindow
from ui.panels.credits import CreditsPanel
from ui.topup_dialogs import TopUpDialog


def _with_card(ctx: AppContext, client: stripe.StripeClient, index: int, token: str) -> str:
    customer: str = ctx.browse.customers()[index].stripe_id
    pm = client.v1.payment_methods.attach(token, {"customer": customer})
    client.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": pm.id}})
    ctx.credits.grant(customer, 100, "starting balance")
    return customer


def _shot(widget: object, path: Path) -> None:
    QApplication.processEvents()
    widget.grab().save(str(path))  # type: ignore[attr-defined]


def test_set_auto_topup_then_see_a_decline_in_needs_attention(
    qtbot: QtBot, synced_window: MainWindow, stripe_client: stripe.StripeClient, tmp_path: Path
) -> None:
    window = synced_window
    ctx = window.ctx
    good = _with_card(ctx, stripe_client, 0, "pm_card_visa")
    bad = _with_card(ctx, stripe_client, 1, "pm_card_chargeDeclinedInsufficientFunds")
    credits = window.panels["credits"]
    assert isinstance(credits, CreditsPanel)
    window.show_panel("credits")
    credits.refresh()
    spin_until(lambda: credits.model.total_count == 2)
    credits.select_where(lambda r: r.customer_id == good)
    qtbot.waitUntil(credits.auto_topup_button.isEnabled, timeout=5000)
    credits.auto_topup_button.click()
    dialog = open_dialog(qtbot, AutoTopUpDialog)
    spin_until(dialog.buttons.isEnabled)
    assert dialog.pack.count() > 0
    dialog.enabled.setChecked(True)
    dialog.threshold.setValue(50)
    dialog.pack.setCurrentIndex(dialog.pack.findText("500 credits", Qt.MatchFlag.MatchContains))
    _shot(dialog, tmp_path / "auto-topup.png")
    with qtbot.waitSignal(dialog.saved, timeout=10_000) as saved:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    config = saved.args[0]
    assert (config.enabled, config.threshold) == (True, 50)
    spin_until(lambda: credits.ledger.auto_topup.text().startswith("Auto top-up on"))

    # The declining customer: the scan charges, the card declines, the list says why.
    ctx.auto_topup.configure(
        bad, enabled=True, threshold=500, pack_product_id=config.pack_product_id
    )
    report = ctx.auto_topup.after_spend(bad)
    assert len(report.failed) == 1
    credits.attention_button.click()
    attention = open_dialog(qtbot, AttentionDialog)
    spin_until(lambda: attention.table.rowCount() == 1)
    assert "insufficient" in attention.table.item(0, 4).text()
    _shot(attention, tmp_path / "attention.png")
    attention.table.selectRow(0)
    assert attention.link_button.isEnabled()
    attention.link_button.click()
    link = open_dialog(qtbot, TopUpDialog)  # a normal Checkout link for that customer
    assert any(bad in label.text() for label in link.findChildren(QLabel))
    link.close()
    attention.close()
    credits.select_where(lambda r: r.customer_id == bad)
    spin_until(lambda: "Needs attention" in credits.ledger.auto_topup.text())
    _shot(window, tmp_path / "credits.png")


def test_a_top_up_link_can_save_the_card(
    qtbot: QtBot, synced_window: MainWindow, stripe_client: stripe.StripeClient
) -> None:
    window = synced_window
    customer = window.ctx.browse.customers()[2]
    dialog = TopUpDialog(window.ctx, window.tasks, customer.stripe_id, customer.name)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.custom_choice.setChecked(True)
    dialog.credits_spin.setValue(300)
    dialog.save_card.setChecked(True)
    with qtbot.waitSignal(dialog.issued, timeout=10_000) as issued:
        dialog.create_button.click()
    session = stripe_client.v1.checkout.sessions.retrieve(issued.args[0].topup.checkout_session_id)
    options = session.to_dict(for_json=True)["payment_method_options"]["card"]
    assert options["setup_future_usage"] == "off_session"
    assert not dialog.save_card.isEnabled()
