"""The grant dialog's expiry and the credits panel's split: available, paid, promotional."""

from __future__ import annotations

import os
import time
from pathlib import Path

from PySide6.QtCore import QDate
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from services import lots
from ui.main_window import MainWindow
from ui.panels.credits import CreditsPanel
from ui.topup_dialogs import GrantDialog


def test_a_grant_with_an_expiry_shows_in_the_split_and_the_next_expiry(
    qtbot: QtBot, synced_window: MainWindow, tmp_path: Path
) -> None:
    window = synced_window
    customer = window.panels["customers"].model.row_at(0)
    dialog = GrantDialog(window.ctx, window.tasks, customer.stripe_id, customer.name)
    qtbot.addWidget(dialog)
    assert not dialog.expiry_date.isEnabled()  # no expiry unless asked for
    dialog.credits.setValue(250)
    dialog.reason.setText("launch promo")
    dialog.expires.setChecked(True)
    assert dialog.expiry_date.isEnabled()
    day = QDate.currentDate().addMonths(6)
    dialog.expiry_date.setDate(day)
    dialog.show()
    shot = tmp_path / "grant-expiry.png"
    assert dialog.grab().save(str(shot))
    if os.environ.get("BILLING_ADMIN_SHOTS"):  # for a person to look at
        dialog.grab().save(str(Path(os.environ["BILLING_ADMIN_SHOTS"]) / "grant-expiry.png"))
    assert shot.stat().st_size > 0
    with qtbot.waitSignal(dialog.granted, timeout=10_000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    expected = lots.parse_expiry_date(day.toString("yyyy-MM-dd"))
    b = window.ctx.credits.balances(customer.stripe_id)
    assert (b.available, b.promotional, b.paid) == (250, 250, 0)
    assert (b.next_expiry_at, b.next_expiry_credits) == (expected, 250)

    window.show_panel("credits")
    credits = window.panels["credits"]
    assert isinstance(credits, CreditsPanel)
    with qtbot.waitSignal(credits.rows_loaded, timeout=10_000):
        credits.refresh()
    (row,) = credits.model.visible_rows()
    assert (row.balance, row.paid, row.promotional, row.pending) == (250, 0, 250, 0)
    credits.table.selectRow(0)
    qtbot.waitUntil(lambda: "expire" in credits.ledger.title.text(), timeout=5000)
    title = credits.ledger.title.text()
    assert "250 available (paid 0 · promotional 250)" in title
    assert time.strftime("%Y", time.localtime(expected)) in title
    if os.environ.get("BILLING_ADMIN_SHOTS"):
        window.grab().save(str(Path(os.environ["BILLING_ADMIN_SHOTS"]) / "credits-panel.png"))


def test_an_expiry_date_in_the_past_cannot_be_chosen(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    window = synced_window
    customer = window.panels["customers"].model.row_at(0)
    dialog = GrantDialog(window.ctx, window.tasks, customer.stripe_id, customer.name)
    qtbot.addWidget(dialog)
    dialog.expires.setChecked(True)
    dialog.expiry_date.setDate(QDate(2001, 1, 1))
    assert dialog.expiry_date.date() > QDate.currentDate()  # the widget refuses the past
