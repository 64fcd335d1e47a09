"""The window keeps `None`, `True` and `False` alive however long it is used.

PySide6 6.12.0 on Python 3.11 drops one reference to `None` on every call of a void Qt method
from Python (and one to `True` on every `emit()`); after a few thousand keystrokes the interpreter
aborts in `none_dealloc` (docs/platform-bugs.md). These tests drive the real window the way a
person does and fail when a reference to a singleton goes missing, whatever Qt call loses it.
On Python 3.12+ these objects are immortal and the counts cannot move; the tests still drive the
window, and `tests/ui/test_qt_binding.py` checks the probe that names the bug.
"""

from __future__ import annotations

import gc
import sys
import time

import pytest
import stripe
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.models import Customer
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.helpers.qt import spin_until
from ui.main_window import MainWindow
from ui.panels.customers import CustomersPanel
from ui.panels.events import EventsPanel
from ui.tasks import TaskRunner

#: Once the window is idle, a few references come and go with caches; a leak is hundreds.
SLACK = 20
#: While events are in flight their payloads hold references too; this only stops a leaking
#: binding before it aborts the whole run.
IN_FLIGHT_SLACK = 200

_SINGLETONS = {"None": None, "True": True, "False": False}


class Watch:
    """Reference counts of None/True/False from now on; `check()` fails once any fell.

    Checked often inside the loops, so a leaking binding fails the test with the count it lost
    instead of aborting the whole test run in `none_dealloc` a few thousand calls later.
    """

    def __init__(self) -> None:
        # Garbage from earlier tests, freed by a collection inside the loop, would take its
        # references with it and look like a leak: collect at both ends.
        gc.collect()
        self.start = {name: sys.getrefcount(obj) for name, obj in _SINGLETONS.items()}

    def check(self, what: str, slack: int = SLACK) -> None:
        gc.collect()
        lost = {name: self.start[name] - sys.getrefcount(obj) for name, obj in _SINGLETONS.items()}
        leaks = [f"{name} lost {n} references" for name, n in lost.items() if n > slack]
        assert not leaks, f"after {what}: " + ", ".join(leaks)


def _insert_customers(runtime: Runtime, count: int) -> None:
    now = int(time.time())
    rows = [
        {
            "stripe_id": f"cus_soak{i:07d}",
            "created": now - i,
            "raw": {"id": f"cus_soak{i:07d}", "object": "customer"},
            "synced_at": now,
            "name": f"Person {i} Example",
            "email": f"person{i}@example.com",
            "currency": "usd",
        }
        for i in range(count)
    ]
    with runtime.database.atomic():
        for start in range(0, count, 500):
            Customer.insert_many(rows[start : start + 500]).execute()


@pytest.fixture
def window(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> MainWindow:
    window = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(window)
    window.show()
    return window


def _customers(window: MainWindow) -> CustomersPanel:
    panel = window.panels["customers"]
    assert isinstance(panel, CustomersPanel)
    return panel


def test_typing_in_the_search_keeps_singletons_alive(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, window: MainWindow
) -> None:
    _insert_customers(runtime, 10_000)
    panel = _customers(window)
    with qtbot.waitSignal(panel.rows_loaded, timeout=20_000):
        window.start(sync_first=False)
    tasks.wait_idle()
    assert panel.model.total_count == 10_000
    panel.focus_search()
    watch = Watch()
    typed = 0
    while typed < 5000:
        # "person 12" narrows the list, then the backspaces widen it again: each keystroke
        # filters, resets the model and repaints.
        QTest.keyClicks(panel.search, "person 12")
        for _ in range(9):
            QTest.keyClick(panel.search, Qt.Key.Key_Backspace)
        typed += 18
        if typed % 90 == 0:
            QApplication.processEvents()  # let the view paint
            watch.check(f"{typed} keystrokes")
    assert panel.search.text() == ""
    assert panel.model.rowCount() == 10_000
    watch.check(f"{typed} keystrokes")


def test_events_arriving_with_the_window_open_keep_singletons_alive(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, window: MainWindow, sandbox: SandboxServer
) -> None:
    events = window.panels["events"]
    assert isinstance(events, EventsPanel)
    listener = runtime.make_listener(port=0)  # receiver + the sandbox's own `stripe listen`
    window.attach_listener(listener)
    window.show_panel("events")  # in front: each arrival is added to the list as it comes
    with qtbot.waitSignal(events.rows_loaded, timeout=10_000):
        window.start(sync_first=False)
    listener.start()
    try:
        watch = Watch()
        spin_until(lambda: "forwarding" in window.webhook_label.text(), 20_000)
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})
        customer = client.v1.customers.create({"name": "Busy Weekend"})
        sent = 1
        while sent < 2000:
            client.v1.customers.update(customer.id, {"description": f"update {sent}"})
            sent += 1
            if sent % 50 == 0:
                QApplication.processEvents()  # the window takes arrivals as Stripe sends
                watch.check(f"{sent} events", IN_FLIGHT_SLACK)
        spin_until(lambda: events.model.total_count >= 2000, 120_000)
        tasks.wait_idle()
        watch.check(f"{sent} events")
    finally:
        listener.stop()


def test_syncing_in_the_window_keeps_singletons_alive(
    qtbot: QtBot, tasks: TaskRunner, window: MainWindow, sandbox: SandboxServer
) -> None:
    sandbox.seed_demo()
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})
    for i in range(300):
        client.v1.customers.create({"name": f"Synced {i}", "email": f"synced{i}@example.com"})
    window.show_panel("customers")  # in front: the rows a sync wrote are shown at once
    with qtbot.waitSignal(window.sync_finished, timeout=60_000):
        window.start_sync()
    tasks.wait_idle()
    # From the second sync on the rows shown hold as many Nones as before: the count must not
    # move (the first one fills the panels, and the references their rows hold hide a leak).
    watch = Watch()
    for n in range(2, 5):
        with qtbot.waitSignal(window.sync_finished, timeout=60_000):
            window.start_sync()
        tasks.wait_idle()
        watch.check(f"{n} syncs")
    assert _customers(window).model.total_count >= 300
