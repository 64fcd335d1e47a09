"""Issuing a top-up link, expiring it, and granting credits, as support and admins do."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from tests.helpers.qt import open_dialog
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
    with qtbot.waitSignal(topups.rows_loaded, timeout=10_000):
        topups.refresh()
    assert [r.status for r in topups.model.visible_rows()] == ["open"]
    topups.table.selectRow(0)
    qtbot.waitUntil(topups.expire_button.isEnabled, timeout=5000)
    with qtbot.waitSignal(topups.rows_loaded, timeout=10_000):
        topups.expire_button.click()
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
