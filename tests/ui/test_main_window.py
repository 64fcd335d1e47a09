"""The main window as a clerk meets it: banner, empty states, sync, search, shortcuts."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.stripe_gateway import StripeMode
from stripe_sandbox import SandboxServer
from ui.main_window import PANEL_NAMES, MainWindow
from ui.tasks import TaskRunner


def _window(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> MainWindow:
    window = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(window)
    window.show()
    return window


def _start_and_wait(qtbot: QtBot, window: MainWindow, *, sync: bool) -> None:
    signals = [p.rows_loaded for p in window.panels.values()]
    with qtbot.waitSignals(signals, timeout=15_000):
        window.start(sync_first=False)
    if sync:
        with qtbot.waitSignal(window.sync_finished, timeout=30_000):
            window.start_sync()
        window.tasks.wait_idle()


def test_empty_database_shows_real_empty_states(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    window = _window(qtbot, runtime, tasks)
    _start_and_wait(qtbot, window, sync=False)
    for name in ("customers", "products", "invoices", "credits"):
        panel = window.panels[name]
        assert panel.stack.currentWidget() is panel.empty
        assert panel.empty.title.text().startswith("No ")
        assert panel.empty.hint.text()
    # The first sign-in made this operator admin, and that is the audit log's first record.
    (first,) = window.panels["audit"].model.visible_rows()
    assert (first.action, first.outcome) == ("operator.bootstrap", "ok")
    assert "Sandbox" in window.banner.text()
    assert window.banner.property("mode") == "sandbox"


def test_sync_fills_the_panels_and_search_filters(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, sandbox: SandboxServer
) -> None:
    counts = sandbox.seed_demo()
    window = _window(qtbot, runtime, tasks)
    _start_and_wait(qtbot, window, sync=True)

    customers = window.panels["customers"]
    # The Overview is in front: the lists the sync changed load as each is shown.
    window.flush_changes()
    assert customers.stale
    with qtbot.waitSignal(customers.rows_loaded, timeout=10_000):
        window.show_panel("customers")
    assert customers.model.total_count == counts["customers"]
    assert customers.stack.currentWidget() is customers.table
    assert f"{counts['customers']} customers" in customers.count_label.text()

    first = customers.model.row_at(0)
    qtbot.keyClicks(customers.search, first.email)
    assert customers.model.rowCount() >= 1
    assert all(first.email in r.email for r in customers.model.visible_rows())

    customers.search.setText("zzz-no-such-customer")
    assert customers.stack.currentWidget() is customers.empty
    assert "match" in customers.empty.title.text()
    qtbot.keyClick(customers, Qt.Key.Key_Escape)
    assert customers.search.text() == ""
    assert customers.model.rowCount() == counts["customers"]

    products = window.panels["products"]
    with qtbot.waitSignal(products.rows_loaded, timeout=10_000):
        window.show_panel("products")
    assert any(r.credits for r in products.model.visible_rows())
    assert window.connection_label.text() == "● Connected to sandbox"


def test_panel_shortcuts_and_find(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> None:
    window = _window(qtbot, runtime, tasks)
    _start_and_wait(qtbot, window, sync=False)
    shortcuts = {a.shortcut().toString(): a for a in window.actions()}
    for number, name in enumerate(PANEL_NAMES, start=1):
        shortcuts[f"Ctrl+{number}"].trigger()
        assert window.current_panel() is window.panels[name]
    assert "Ctrl+F" in shortcuts
    assert "F5" in shortcuts
    assert "Ctrl+R" in shortcuts


def test_live_mode_has_a_red_banner(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> None:
    ctx = dataclasses.replace(runtime.require_context(), mode=StripeMode.LIVE)
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    assert window.banner.property("mode") == "live"
    assert "LIVE" in window.banner.text()
    assert "real money" in window.windowTitle()


def test_an_unreachable_stripe_shows_in_the_status_bar(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, sandbox: SandboxServer
) -> None:
    gateway = runtime.require_context().gateway
    gateway._max_network_retries = 0
    gateway.api_base = "http://127.0.0.1:9"
    window = _window(qtbot, runtime, tasks)
    with qtbot.waitSignal(window.connection_checked, timeout=15_000) as blocker:
        window.check_connection()
    assert blocker.args
    assert "Cannot reach Stripe" in blocker.args[0]
    assert window.connection_label.text() == "● Stripe unreachable"


@pytest.mark.parametrize("name", PANEL_NAMES)
def test_every_panel_model_passes_the_model_tester(
    qtbot: QtBot,
    qtmodeltester: object,
    runtime: Runtime,
    tasks: TaskRunner,
    sandbox: SandboxServer,
    name: str,
) -> None:
    sandbox.seed_demo()
    window = _window(qtbot, runtime, tasks)
    _start_and_wait(qtbot, window, sync=True)
    qtmodeltester.check(window.panels[name].model)  # type: ignore[attr-defined]
