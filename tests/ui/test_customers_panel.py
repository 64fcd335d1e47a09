"""The customers panel as support staff use it: find, create, edit, portal link."""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from tests.helpers.qt import open_dialog
from ui.customer_dialogs import CustomerDialog, PortalLinkDialog
from ui.main_window import MainWindow
from ui.panels.customers import CustomersPanel
from ui.product_dialog import ProductDialog


def _panel(window: MainWindow) -> CustomersPanel:
    panel = window.panels["customers"]
    assert isinstance(panel, CustomersPanel)
    return panel


def test_search_finds_metadata_and_selection_loads_the_detail(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    window = synced_window
    panel = _panel(window)
    panel.search.setText("acct-1001")  # a metadata value, not a shown column
    assert panel.model.rowCount() == 1
    panel.table.selectRow(0)
    qtbot.waitUntil(lambda: panel.detail.detail is not None, timeout=5000)
    detail = panel.detail.detail
    assert detail is not None
    assert detail.metadata.get("account_id") == "acct-1001"
    assert panel.detail.stripe_id.text() == detail.stripe_id
    assert panel.edit_button.isEnabled()
    panel.detail.copy_id.click()
    assert QGuiApplication.clipboard().text() == detail.stripe_id


def test_create_a_customer_in_theopen_dialog(qtbot: QtBot, synced_window: MainWindow) -> None:
    window = synced_window
    panel = _panel(window)
    before = panel.model.total_count
    panel.new_button.click()
    dialog = open_dialog(qtbot, CustomerDialog)
    assert isinstance(dialog, CustomerDialog)
    dialog.email.setText("not an email")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "valid email" in dialog.error.text()
    assert dialog.isVisible()
    dialog.email.setText("new.clerk@example.com")
    dialog.name.setText("Newly Made")
    dialog.notes.setPlainText("met at the fair")
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert panel.model.total_count == before + 1
    qtbot.waitUntil(lambda: panel.detail.detail is not None, timeout=5000)
    detail = panel.detail.detail
    assert detail is not None
    assert (detail.name, detail.notes) == ("Newly Made", "met at the fair")


def test_edit_the_selected_customer(qtbot: QtBot, synced_window: MainWindow) -> None:
    window = synced_window
    panel = _panel(window)
    panel.table.selectRow(0)
    qtbot.waitUntil(lambda: panel.detail.detail is not None, timeout=5000)
    panel.edit_button.click()
    dialog = open_dialog(qtbot, CustomerDialog)
    assert isinstance(dialog, CustomerDialog)
    dialog.phone.setText("+1 212 555 0199")
    with qtbot.waitSignal(dialog.saved, timeout=10_000) as saved:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert saved.args[0].phone == "+1 212 555 0199"


def test_portal_link_dialog_shows_a_copyable_link(qtbot: QtBot, synced_window: MainWindow) -> None:
    window = synced_window
    panel = _panel(window)
    panel.table.selectRow(0)
    qtbot.waitUntil(panel.portal_button.isEnabled, timeout=5000)
    panel.portal_button.click()
    dialog = open_dialog(qtbot, PortalLinkDialog)
    assert isinstance(dialog, PortalLinkDialog)
    qtbot.waitUntil(dialog.copy_button.isEnabled, timeout=5000)
    assert "/_sandbox/portal/bps_" in dialog.url.text()
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.url.text()
    dialog.close()


def test_new_credit_pack_in_the_products_panel(qtbot: QtBot, synced_window: MainWindow) -> None:
    window = synced_window
    panel = window.panels["products"]
    panel.new_button.click()  # type: ignore[attr-defined]
    dialog = open_dialog(qtbot, ProductDialog)
    assert isinstance(dialog, ProductDialog)
    dialog.name.setText("10,000 credits")
    dialog.amount.setText("600.00")
    dialog.credits.setText("0")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "positive whole number" in dialog.error.text()
    dialog.credits.setText("10000")
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    made = [r for r in panel.model.visible_rows() if r.name == "10,000 credits"]
    assert made
    assert made[0].credits == 10_000
    assert made[0].default_price is not None
    assert made[0].default_price.unit_amount == 60_000
