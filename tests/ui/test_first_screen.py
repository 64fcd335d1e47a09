"""Start-up at many customers: the first screen paints first, the whole list follows (issue 15).

The whole list's load is held on its worker so the state in between can be looked at: what a
clerk sees and can do while 300,000 customers load.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from admin_app.paths import AppPaths
from admin_app.wiring import Options, Runtime, build_runtime
from bench.customer_data import fill_customers
from services.browse import CustomerColumns
from stripe_sandbox import SandboxServer
from ui.main_window import MainWindow
from ui.panels.customers import CustomersPanel
from ui.tasks import TaskRunner

CUSTOMERS = 300
FIRST = 50


@pytest.fixture
def many(sandbox: SandboxServer, app_paths: AppPaths, tmp_path: Path) -> Iterator[Runtime]:
    db = tmp_path / "many.sqlite3"
    fill_customers(db, CUSTOMERS)
    rt = build_runtime(Options(db=f"sqlite:///{db}", api_base=sandbox.url), app_paths)
    yield rt
    rt.close()


def test_the_first_screen_paints_before_the_whole_list_and_nothing_reads_a_part_as_the_whole(
    qtbot: QtBot, many: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    ctx = many.require_context()
    whole: CustomerColumns = ctx.browse.customer_columns()
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    panel = window.panels["customers"]
    assert isinstance(panel, CustomersPanel)
    panel.first_screen_rows = FIRST
    release = threading.Event()
    load = panel._load

    def held() -> object:
        release.wait(20)
        return load()

    panel._load = held
    exported = tmp_path / "customers.csv"
    window.choose_export_path = lambda _name: exported
    window.show()
    window.show_panel("customers")
    try:
        panel.refresh()
        qtbot.waitUntil(lambda: panel.model.rowCount() == FIRST, timeout=10_000)
        # The newest customers, as the whole list starts; no count claimed yet.
        assert [panel.model.row_at(i).stripe_id for i in range(FIRST)] == [
            whole.row(i).stripe_id for i in range(FIRST)
        ]
        assert panel.stack.currentWidget() is panel.table
        assert panel.count_label.text() == "Loading…"
        assert not panel.loaded

        # A search for a customer beyond the first screen waits for the whole list, saying so,
        # rather than answering "no match" from part of it.
        far = whole.row(CUSTOMERS - 10)
        panel.search.setText(far.email)
        assert panel.stack.currentWidget() is panel.empty
        assert panel.empty.title.text() == "Loading customers…"

        # Export waits for the whole list too: a file of 50 rows would look complete.
        window.export_current()
        tasks.wait_idle(2_000)
        assert not exported.exists()
        assert "still loading" in window.statusBar().currentMessage()

        with qtbot.waitSignal(panel.rows_loaded, timeout=20_000):
            release.set()
        assert panel.loaded
        assert panel.model.total_count == CUSTOMERS
        assert [panel.model.row_at(i).stripe_id for i in range(panel.model.rowCount())] == [
            far.stripe_id
        ]
        assert panel.count_label.text() == f"1 of {CUSTOMERS} customers"
        assert panel.stack.currentWidget() is panel.table
        panel.search.clear()
        assert panel.count_label.text() == f"{CUSTOMERS} customers"
        with qtbot.waitSignal(window.export_finished, timeout=20_000):
            window.export_current()
        assert len(exported.read_text(encoding="utf-8").splitlines()) == CUSTOMERS + 1
    finally:
        release.set()
        tasks.wait_idle()


def test_the_window_builds_only_the_page_it_shows_and_the_others_once_that_page_has_loaded(
    qtbot: QtBot, many: Runtime, tasks: TaskRunner
) -> None:
    window = MainWindow(many.require_context(), tasks)
    qtbot.addWidget(window)
    assert window.panels.built() == []  # the Overview is in front: no list page yet
    assert "audit" in window.panels  # asking whether there is a page is not building it
    assert window.panels.built() == []
    window.show_panel("customers")
    customers = window.panels.built()
    assert [type(p) for p in customers] == [CustomersPanel]
    assert window.stack.currentWidget() is customers[0]
    window.show()
    with qtbot.waitSignal(customers[0].rows_loaded, timeout=20_000):
        window.start(sync_first=False)
    tasks.wait_idle()
    # Then every other page, each with its rows loaded, in its place in the navigation.
    assert window.panels.unbuilt() == []
    for name, panel in window.panels.items():
        assert window.stack.widget(window.nav_row(name)) is panel
        assert panel.loaded, name
    assert window.stack.currentWidget() is customers[0]
    assert window.current_panel() is customers[0]
