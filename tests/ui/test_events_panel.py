"""The Events panel and the status bar while events arrive."""

from __future__ import annotations

import time

import stripe
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.events import Source
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from ui.main_window import MainWindow
from ui.panels.events import EventsPanel
from ui.tasks import TaskRunner


def test_events_arrive_live_and_show_their_payload(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, sandbox: SandboxServer
) -> None:
    ctx = runtime.require_context()
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    listener = runtime.make_listener(port=0)  # receiver + sandbox listen + catch-up
    window.attach_listener(listener)
    panel = window.panels["events"]
    assert isinstance(panel, EventsPanel)
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        window.start(sync_first=False)
    listener.start()
    try:
        qtbot.waitUntil(lambda: "forwarding" in window.webhook_label.text(), timeout=20_000)
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})
        made = client.v1.customers.create({"email": "live@example.com", "name": "Live Event"})
        qtbot.waitUntil(lambda: panel.model.total_count >= 1, timeout=20_000)
        row = panel.model.visible_rows()[0]
        assert (row.type, row.object_id, row.status) == ("customer.created", made.id, "applied")
        customers = window.panels["customers"]
        qtbot.waitUntil(lambda: customers.model.total_count == 1, timeout=10_000)
        panel.table.selectRow(0)
        qtbot.waitUntil(lambda: made.id in panel.payload.toPlainText(), timeout=5000)
        assert panel.replay_button.isEnabled()  # the bootstrapped admin may replay
        assert "last event" in panel.listener_label.text()
    finally:
        listener.stop()


def test_replay_from_the_panel(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> None:
    ctx = runtime.require_context()
    ctx.events.receive(
        {"id": "evt_panel_replay", "type": "unknown.thing", "created": int(time.time()),
         "data": {"object": {"id": "x_1"}}},
        Source.RECEIVER,
    )  # fmt: skip
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    panel = window.panels["events"]
    assert isinstance(panel, EventsPanel)
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        window.start(sync_first=False)
    panel.table.selectRow(0)
    qtbot.waitUntil(panel.replay_button.isEnabled, timeout=5000)
    panel.replay_button.click()  # asks first; Cancel changes nothing
    panel.confirm_box.button(QMessageBox.StandardButton.Cancel).click()
    assert panel.model.visible_rows()[0].source == "receiver"
    panel.replay_button.click()
    replay = next(b for b in panel.confirm_box.buttons() if b.text() == "Replay")
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        replay.click()
    assert panel.model.visible_rows()[0].source == "replay"
