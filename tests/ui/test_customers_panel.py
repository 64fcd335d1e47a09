"""The customers panel as support staff use it: find, create, edit, portal link."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from tests.helpers.qt import open_dialog, spin_until
from ui.customer_dialogs import CustomerDialog, PortalLinkDialog
from ui.invoice_dialogs import NewInvoiceDialog
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


def test_the_detail_lists_invoices_and_top_ups_that_open(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    window = synced_window
    panel = _panel(window)
    with_invoices = next(
        r for r in panel.model.visible_rows() if window.ctx.customers.detail(r.stripe_id).invoices
    )
    topup = window.ctx.credits.issue_topup(with_invoices.stripe_id, None, credits=500).topup
    assert panel.select_where(lambda r: r.stripe_id == with_invoices.stripe_id)
    spin_until(lambda: panel.detail.invoices.count() > 0 and panel.detail.topups.count() == 1)
    assert "500 credits" in panel.detail.topups.item(0).text()
    assert panel.detail.invoices_caption.text().startswith("Invoices: ")
    assert "1 link," in panel.detail.topups_caption.text()  # singular, not "1 links"
    first = panel.detail.invoices.item(0)
    invoice_id = first.data(Qt.ItemDataRole.UserRole)
    panel.detail.invoices.itemActivated.emit(first)  # what a double-click or Enter sends
    invoices = window.panels["invoices"]
    assert window.current_panel() is invoices
    spin_until(lambda: (invoices.current_row() or None) is not None)
    current = invoices.current_row()
    assert current is not None
    assert current.stripe_id == invoice_id

    window.show_panel("customers")
    panel.detail.topups.itemActivated.emit(panel.detail.topups.item(0))
    topups = window.panels["topups"]
    assert window.current_panel() is topups
    spin_until(lambda: topups.current_row() is not None)
    assert topups.current_row().topup_id == topup.topup_id  # type: ignore[union-attr]


def test_new_invoice_for_the_selected_customer_picks_by_name(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    window = synced_window
    panel = _panel(window)
    panel.table.selectRow(1)
    qtbot.waitUntil(panel.invoice_button.isEnabled, timeout=5000)
    chosen = panel.current_row()
    assert chosen is not None
    panel.invoice_button.click()
    dialog = open_dialog(qtbot, NewInvoiceDialog)
    spin_until(lambda: dialog.customer.customer() is not None)
    assert dialog.customer.customer().stripe_id == chosen.stripe_id  # type: ignore[union-attr]
    # Typing a name (not a cus_ id) finds the customer, as in the Customers panel.
    other = panel.model.row_at(0)
    dialog.customer.search.setText(other.name.split()[0].lower())
    assert dialog.customer.model.rowCount() >= 1
    if dialog.customer.model.rowCount() > 1:
        dialog.customer.table.selectRow(
            next(
                i
                for i, r in enumerate(dialog.customer.model.visible_rows())
                if r.stripe_id == other.stripe_id
            )
        )
    assert dialog.customer.customer().stripe_id == other.stripe_id  # type: ignore[union-attr]
    assert other.name in dialog.customer.chosen.text()
    dialog.custom_choice.setChecked(True)
    dialog.description.setText("Consulting, March")
    dialog.amount.setText("120.00")
    invoices = window.panels["invoices"]
    with qtbot.waitSignal(dialog.created, timeout=10_000) as created:
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    made = created.args[0]
    assert made.customer_id == other.stripe_id
    # The new draft opens in the Invoices panel.
    spin_until(lambda: invoices.current_row() is not None, timeout_ms=10_000)
    assert window.current_panel() is invoices
    assert invoices.current_row().stripe_id == made.stripe_id  # type: ignore[union-attr]


def test_the_invoice_dialog_refuses_without_a_picked_customer(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    window = synced_window
    dialog = NewInvoiceDialog(window.ctx, window.tasks, "", window)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.customer.loaded, timeout=5000):
        pass
    dialog.customer.search.setText("nobody by this name")
    assert "No customer matches" in dialog.customer.chosen.text()
    dialog.custom_choice.setChecked(True)
    dialog.description.setText("x")
    dialog.amount.setText("1.00")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "Pick the customer" in dialog.error.text()


def test_the_selection_and_detail_stay_while_typing_a_search_that_keeps_the_row(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    panel = _panel(synced_window)
    panel.table.selectRow(panel.model.rowCount() - 1)
    qtbot.waitUntil(lambda: panel.detail.detail is not None, timeout=5000)
    chosen = panel.current_row()
    assert chosen is not None
    blanked: list[object] = []
    panel.row_selected.connect(blanked.append)
    for i in range(1, len(chosen.email) + 1):  # the email typed letter by letter
        panel.search.setText(chosen.email[:i].upper())
        assert panel.current_row() == chosen
    assert panel.model.rowCount() == 1
    panel.table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
    assert panel.current_row() == chosen
    assert blanked == []  # the detail was never emptied on the way
    assert panel.detail.detail is not None
    panel.search.setText(chosen.email + " no-such-thing")
    assert blanked == [None]  # filtered out: the detail empties
    assert panel.detail.title.text() == "Select a customer"
    panel.search.clear()
    assert panel.model.rowCount() == panel.model.total_count
