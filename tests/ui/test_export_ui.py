"""File ▸ Export… (Ctrl+Shift+E): the list as shown, filters applied, in the CLI's CSV shape."""

from __future__ import annotations

import csv
from pathlib import Path

from PySide6.QtGui import QKeySequence
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.export import CUSTOMERS, INVOICES, to_text
from tests.helpers.known_rows import T0_ISO, seed
from ui.main_window import MainWindow
from ui.tasks import TaskRunner


def _window(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> MainWindow:
    seed(runtime.database)
    window = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignals([p.rows_loaded for p in window.panels.values()], timeout=15_000):
        window.start(sync_first=False)
    return window


def _export(qtbot: QtBot, window: MainWindow, path: Path) -> tuple[list[list[str]], str]:
    asked: list[str] = []
    window.choose_export_path = lambda suggested: asked.append(suggested) or path
    with qtbot.waitSignal(window.export_finished, timeout=10_000) as done:
        window.export_action.trigger()
    assert asked, "the path is asked for"
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh)), str(done.args[0])


def test_export_writes_exactly_the_filtered_rows(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    window = _window(qtbot, runtime, tasks)
    assert window.export_action.shortcut() == QKeySequence("Ctrl+Shift+E")
    window.show_panel("customers")
    panel = window.panels["customers"]
    panel.search.setText("LOVELACE")
    assert panel.model.rowCount() == 1 < panel.model.total_count

    out = tmp_path / "exports" / "customers.csv"
    rows, message = _export(qtbot, window, out)
    assert rows == [
        ["id", "name", "email", "phone", "balance", "currency", "created"],
        ["cus_usd", "Ada Lovelace", "ada@example.com", "'+44 20 7946 0001", "-2.10", "usd",
         T0_ISO],
    ]  # fmt: skip
    assert message == f"Exported 1 customer to {out}"
    assert window.statusBar().currentMessage() == message
    assert window.export_action.isEnabled()
    # The same file the CLI writes for the same rows.
    assert out.read_bytes().decode() == to_text(CUSTOMERS, panel.model.visible_rows())


def test_export_of_a_zero_decimal_currency_and_of_a_search_in_another_script(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    window = _window(qtbot, runtime, tasks)
    window.show_panel("invoices")
    panel = window.panels["invoices"]
    panel.search.setText("山田")
    rows, message = _export(qtbot, window, tmp_path / "invoices.csv")
    assert [r[0] for r in rows[1:]] == ["in_jpy"]
    assert rows[0] == INVOICES.header()
    assert rows[1][6:11] == ["1500", "1500", "0", "1500", "jpy"]
    assert message.startswith("Exported 1 invoice to ")


def test_an_export_that_cannot_be_written_says_why(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    window = _window(qtbot, runtime, tasks)
    window.show_panel("customers")  # the window opens on the Overview, which has no list
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    window.choose_export_path = lambda _suggested: blocker / "x.csv"
    with qtbot.waitSignal(window.export_finished, timeout=10_000) as done:
        window.export_action.trigger()
    assert str(done.args[0]).startswith("Export failed: Cannot write")
    assert window.export_action.isEnabled()
