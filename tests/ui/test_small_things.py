"""Small things a user trips on: readable status bar, About, plural forms."""

from __future__ import annotations

import socket

from PySide6.QtWidgets import QApplication, QLabel
from pytestqt.qtbot import QtBot

from admin_app import __version__
from admin_app.paths import resources_dir
from admin_app.wiring import Runtime
from tests.helpers.qt import spin_until
from ui.app import make_application
from ui.main_window import MainWindow
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner


def test_status_bar_messages_are_readable_whole(qtbot: QtBot, synced_window: MainWindow) -> None:
    window = synced_window
    window.resize(1280, 800)
    QApplication.processEvents()
    bar = window.statusBar()
    message = bar.currentMessage()
    assert message.startswith("Synced 63 customers, 33 invoices")
    permanent = [
        w
        for w in (
            window.journal_indicator, window.mode_label, window.connection_label,
            window.webhook_label, window.operator_label, window.db_label,
        )
        if w.isVisible()
    ]  # fmt: skip
    room = bar.width() - sum(w.width() + 12 for w in permanent) - 24
    assert bar.fontMetrics().horizontalAdvance(message) <= room, (message, room)
    assert bar.toolTip() == message  # and whole on hover, whatever its length
    # The database path keeps both ends; the whole of it is on hover.
    label: QLabel = window.db_label
    assert label.text().endswith("ui.sqlite3")
    assert window.ctx.database_label in label.toolTip()
    assert label.width() <= 260


def test_about_names_the_version(qtbot: QtBot, synced_window: MainWindow) -> None:
    make_application(resources_dir(), __version__)
    assert f"Version: {__version__}" in synced_window.about_text()


def test_counts_say_one_row_not_one_rows(qtbot: QtBot, tasks: TaskRunner) -> None:
    panel: ListPanel[int] = ListPanel(tasks, lambda: [7], [Column[int]("N", str)], str)
    panel.noun = ("invoice", "invoices")
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.rows_loaded, timeout=5000):
        panel.refresh()
    assert panel.count_label.text() == "1 invoice"
    panel.search.setText("nothing matches")
    assert panel.count_label.text() == "0 of 1 invoice"


def test_webhooks_off_says_the_port_is_in_use(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = taken.getsockname()[1]
        window = MainWindow(runtime.require_context(), tasks)
        qtbot.addWidget(window)
        listener = runtime.make_listener(port=port, use_cli=False)
        window.attach_listener(listener)
        listener.start(catch_up=False)
        try:
            spin_until(lambda: "in use" in window.webhook_label.text())
            assert window.webhook_label.text() == f"Webhooks: off — port {port} in use"
            assert "already in use" in window.webhook_label.toolTip().lower()
        finally:
            listener.stop()
    finally:
        taken.close()


def test_the_window_fits_the_screen_and_comes_back_where_it_was(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    window = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(window)
    room = window.screen().availableGeometry()
    assert window.width() <= room.width()
    assert window.height() + 40 <= room.height()  # the title bar too: the status bar shows
    window.resize(700, 500)
    window.move(room.x() + 30, room.y() + 20)
    saved = window.placement()
    again = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(again)
    assert again.restore_placement(saved)
    assert (again.width(), again.height()) == (700, 500)
