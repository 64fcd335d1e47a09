"""The Overview panel over a fixed data set and over nothing: figures, hover, click, screenshots.

The figures themselves are checked against hand sums in tests/services/test_overview.py; here
the panel must show them, explain an empty period, and open the list behind a bar.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from PySide6.QtCore import QDate
from PySide6.QtWidgets import QToolTip
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.overview import PeriodKind
from tests.services.test_overview import fill_fixed_data
from ui.main_window import OVERVIEW, MainWindow
from ui.panels.overview import OverviewPanel
from ui.tasks import TaskRunner

SHOTS = os.environ.get("BILLING_ADMIN_SHOTS")  # set to keep the screenshots for a look


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Days as the data set's docstring counts them (the panel uses local days)."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def _window(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> MainWindow:
    window = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    return window


def _show_week(qtbot: QtBot, panel: OverviewPanel, tasks: TaskRunner) -> None:
    """24-30 November 2026, the data set's week, as a custom period."""
    with qtbot.waitSignal(panel.overview_shown, timeout=10_000):
        panel.period_combo.setCurrentIndex(panel.period_combo.findData(PeriodKind.CUSTOM))
        panel.first_edit.setDate(QDate(2026, 11, 24))
        panel.last_edit.setDate(QDate(2026, 11, 30))
    tasks.wait_idle()


def _shoot(window: MainWindow, tmp_path: Path, name: str) -> Path:
    out = Path(SHOTS) if SHOTS else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    assert window.grab().save(str(path))
    return path


# A tooltip is a window the offscreen platform cannot raise: it says so, harmlessly.
@pytest.mark.qt_log_ignore("This plugin does not support raise")
def test_the_figures_charts_hover_and_clicks(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    fill_fixed_data(runtime.require_context().browse._db)
    window = _window(qtbot, runtime, tasks)
    panel = window.overview
    assert window.stack.currentWidget() is panel  # the first page
    window.refresh()
    tasks.wait_idle()
    _show_week(qtbot, panel, tasks)

    o = panel.current
    assert o is not None
    assert (o.period.first, o.period.last) == (date(2026, 11, 24), date(2026, 11, 30))
    assert panel.stack.currentWidget() is panel.charts
    assert [f.value.text() for f in panel.revenue.figures] == ["$210.50", "$175.50", "$35.00"]
    assert panel.revenue.figures[0].change.text() == "▲ 321.0% vs $50.00"
    assert [f.value.text() for f in panel.credits.figures] == ["440", "50", "250", "360"]
    # Aged against today's clock: every open one with a due date is overdue by now.
    assert [f.value.text() for f in panel.receivables.figures[:2]] == ["$140.00", "$110.00"]
    assert [f.value.text() for f in panel.funnel.figures] == ["5", "1 (20%)", "1 (20%)"]
    assert panel.currency_combo.currentText() == "USD"
    assert [panel.currency_combo.itemText(i) for i in range(3)] == ["USD", "EUR", "JPY"]
    _shoot(window, tmp_path, "overview-data")

    # Hovering the invoices bar of the 24th shows that day's values.
    invoices_bars, topups_bars = panel._keep[0], panel._keep[1]
    invoices_bars.hovered.emit(True, 0)
    assert "Invoices paid: $125.50" in QToolTip.text()
    assert "Top-ups paid: $10.00" in QToolTip.text()

    # Clicking it lists exactly those invoices, and says so.
    invoices = window.panels["invoices"]
    with qtbot.waitSignal(invoices.rows_loaded, timeout=10_000):
        invoices_bars.clicked.emit(0)
    tasks.wait_idle()
    assert window.current_panel() is invoices
    assert {r.stripe_id for r in invoices.model.visible_rows()} == {"in_1", "in_2"}
    assert invoices.scope_label.text() == "Invoices paid on 24 Nov 2026 in USD"
    with qtbot.waitSignal(invoices.rows_loaded, timeout=10_000):
        invoices.scope_clear.click()
    assert invoices.model.total_count == 16

    # The top-ups of the 25th, and the funnel's expired links.
    window.show_panel(OVERVIEW)
    topups = window.panels["topups"]
    topups_bars.clicked.emit(1)
    assert window.current_panel() is topups
    assert [r.topup_id for r in topups.model.visible_rows()] == ["tu_2"]
    window.show_panel(OVERVIEW)
    funnel_bars = panel._keep[-1]
    funnel_bars.clicked.emit(3)  # issued, paid, credited, expired, failed
    assert [r.topup_id for r in topups.model.visible_rows()] == ["tu_3"]

    # Another currency: never added to dollars.
    window.show_panel(OVERVIEW)
    with qtbot.waitSignal(panel.overview_shown, timeout=10_000):
        panel.currency_combo.setCurrentIndex(1)
    assert [f.value.text() for f in panel.revenue.figures] == ["€79.00", "€70.00", "€9.00"]


def test_an_empty_period_says_so(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    window = _window(qtbot, runtime, tasks)
    panel = window.overview
    with qtbot.waitSignal(panel.overview_shown, timeout=10_000):
        window.refresh()
    tasks.wait_idle()
    assert panel.stack.currentWidget() is panel.empty
    assert panel.empty.title.text() == "Nothing happened in USD — last 30 days"
    assert "sync from Stripe" in panel.empty.hint.text()
    assert panel.period_combo.isVisible()  # the way out stays at hand
    _shoot(window, tmp_path, "overview-empty")
