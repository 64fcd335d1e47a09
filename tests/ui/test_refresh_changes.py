"""Refresh only what changed: an applied event, a sync or an action names its rows, and each
panel re-reads just those (one update per panel per frame; hidden pages when shown)."""

from __future__ import annotations

import time
import uuid

import stripe
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.browse import CustomerRow
from services.changes import ALL, Changes
from services.events import Source
from services.sync import SyncTarget
from stripe_sandbox import SandboxServer
from tests.helpers.qt import spin_until
from ui.main_window import MainWindow
from ui.panels.base import MAX_PATCH
from ui.panels.customers import COLUMNS, CustomersPanel
from ui.table_model import RowTableModel
from ui.tasks import TaskRunner

PEOPLE = 12


def _event(kind: str, object_id: str) -> dict[str, object]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": object_id, "object": kind.split(".")[0]}},
    }


class _Counts:
    """How a model told its view about changes: resets, and the rows of each dataChanged."""

    def __init__(self, model: RowTableModel[CustomerRow]) -> None:
        self.resets = 0
        self.changed_rows: list[tuple[int, int]] = []
        model.modelReset.connect(self._on_reset)
        model.dataChanged.connect(self._on_data_changed)

    def _on_reset(self) -> None:
        self.resets += 1

    def _on_data_changed(self, top: object, bottom: object) -> None:
        self.changed_rows.append((top.row(), bottom.row()))  # type: ignore[attr-defined]


def _window(
    qtbot: QtBot,
    runtime: Runtime,
    tasks: TaskRunner,
    client: stripe.StripeClient,
    *,
    front: str = "customers",
) -> tuple[MainWindow, CustomersPanel]:
    for n in range(PEOPLE):
        client.v1.customers.create({"name": f"Person {n:02}", "email": f"p{n}@example.com"})
    ctx = runtime.require_context()
    ctx.sync.pull(SyncTarget.CUSTOMERS)
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    window.attach_listener(runtime.make_listener(port=0))  # not started: events come by hand
    window.show()
    window.show_panel(front)
    panel = window.panels["customers"]
    assert isinstance(panel, CustomersPanel)
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        window.start(sync_first=False)
    tasks.wait_idle()
    return window, panel


def test_an_applied_event_updates_exactly_its_row_in_place(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, stripe_client: stripe.StripeClient
) -> None:
    window, panel = _window(qtbot, runtime, tasks, stripe_client)
    before = list(panel.model.visible_rows())  # the compact model makes rows when asked
    assert len(before) == PEOPLE
    target = before[4]
    panel.table.selectRow(1)
    selected = panel.current_row()
    counts = _Counts(panel.model)
    reloads: list[int] = []
    panel.rows_loaded.connect(reloads.append)
    stripe_client.v1.customers.update(target.stripe_id, {"name": "Renamed By Stripe"})

    with qtbot.waitSignal(panel.rows_patched, timeout=10_000) as patched:
        window.ctx.events.receive(_event("customer.updated", target.stripe_id), Source.RECEIVER)
    assert patched.args == [1]  # one customer re-read, not the list
    after = panel.model.visible_rows()
    assert counts.resets == 0
    assert reloads == []
    assert counts.changed_rows == [(4, 4)]
    assert after[4].name == "Renamed By Stripe"
    # Every other row is as it was: untouched.
    assert all(a == b for i, (a, b) in enumerate(zip(before, after, strict=True)) if i != 4)
    assert panel.current_row() == selected  # the selection stayed


def test_a_burst_of_events_is_one_update_per_panel(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, stripe_client: stripe.StripeClient
) -> None:
    window, panel = _window(qtbot, runtime, tasks, stripe_client)
    rows = panel.model.visible_rows()
    applied: list[Changes] = []
    window.changes_applied.connect(applied.append)
    patches: list[int] = []
    panel.rows_patched.connect(patches.append)
    read: list[int] = []
    load = panel.load_rows_by_key
    panel.load_rows_by_key = lambda keys: (read.append(len(keys)), load(keys))[1]  # type: ignore[method-assign]
    events = window.panels["events"]
    event_patches: list[int] = []
    events.rows_patched.connect(event_patches.append)

    # Eight customers changed in Stripe, their events in one go (as the receiver's threads
    # deliver them within a frame). An event whose re-read finds nothing new names no row.
    for n, row in enumerate(rows[:8]):
        stripe_client.v1.customers.update(row.stripe_id, {"name": f"Burst {n}"})
    for row in rows[:8]:
        window.ctx.events.receive(_event("customer.updated", row.stripe_id), Source.RECEIVER)
    spin_until(lambda: bool(patches))
    tasks.wait_idle()
    assert len(applied) == 1
    assert applied[0].customers == {r.stripe_id for r in rows[:8]}
    assert len(applied[0].events) == 8
    assert patches == [8]
    assert read == [8]  # one read of the eight customers, off the GUI thread
    assert sorted(r.name for r in panel.model.visible_rows())[:8] == [
        f"Burst {n}" for n in range(8)
    ]
    assert event_patches == []  # the Events page is hidden: it only went stale
    assert events.stale


def test_a_hidden_page_goes_stale_and_reloads_when_shown(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, stripe_client: stripe.StripeClient
) -> None:
    window, panel = _window(qtbot, runtime, tasks, stripe_client)
    window.show_panel("invoices")
    target = panel.model.visible_rows()[2]
    stripe_client.v1.customers.update(target.stripe_id, {"name": "Changed While Hidden"})
    loads: list[int] = []
    panel.rows_loaded.connect(loads.append)
    panel.rows_patched.connect(loads.append)

    window.ctx.events.receive(_event("customer.updated", target.stripe_id), Source.RECEIVER)
    window.flush_changes()
    tasks.wait_idle()
    assert panel.stale
    assert loads == []  # nothing read for a page nobody looks at
    assert all(r.name != "Changed While Hidden" for r in panel.model.visible_rows())

    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        window.show_panel("customers")
    assert not panel.stale
    assert any(r.name == "Changed While Hidden" for r in panel.model.visible_rows())


def test_too_many_or_unknown_changes_reload_the_whole_list(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, stripe_client: stripe.StripeClient
) -> None:
    window, panel = _window(qtbot, runtime, tasks, stripe_client)
    counts = _Counts(panel.model)
    patches: list[int] = []
    panel.rows_patched.connect(patches.append)

    many = frozenset(f"cus_elsewhere{n}" for n in range(MAX_PATCH + 1))
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        window.note_changes(Changes(customers=many))
    assert counts.resets == 1
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        window.note_changes(ALL)
    assert counts.resets == 2
    assert patches == []


def test_a_sync_that_changed_nothing_reloads_no_list(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, stripe_client: stripe.StripeClient
) -> None:
    window, _ = _window(qtbot, runtime, tasks, stripe_client)
    reloads: list[str] = []
    for name, other in window.panels.items():
        other.rows_loaded.connect(lambda _n, name=name: reloads.append(name))
        other.rows_patched.connect(lambda _n, name=name: reloads.append(name))
    applied: list[Changes] = []
    window.changes_applied.connect(applied.append)
    with qtbot.waitSignal(window.sync_finished, timeout=30_000):
        window.start_sync()
    spin_until(lambda: bool(applied))
    tasks.wait_idle()
    changes = applied[0]
    assert not changes.everything
    assert changes.customers == changes.invoices == changes.products == frozenset()
    assert changes.audit  # the sync itself is audited
    assert reloads == []  # the Customers list in front: nothing of it changed
    assert window.panels["audit"].stale  # the audit log, behind, reloads when shown


def test_an_action_says_what_it_changed(
    qtbot: QtBot,
    runtime: Runtime,
    tasks: TaskRunner,
    sandbox: SandboxServer,
    stripe_client: stripe.StripeClient,
) -> None:
    window, panel = _window(qtbot, runtime, tasks, stripe_client)
    customer = panel.model.visible_rows()[0]
    made: list[Changes] = []
    tasks.changes_made.connect(made.append)
    with qtbot.waitSignal(tasks.changes_made, timeout=10_000):
        tasks.run(window, lambda: window.ctx.credits.grant(customer.stripe_id, 50, "goodwill"))
    assert made[0].credits == {customer.stripe_id}
    assert made[0].audit
    assert not made[0].customers
    # Reads say nothing.
    tasks.run(window, lambda: window.ctx.browse.customers())
    tasks.wait_idle()
    assert len(made) == 1


def test_the_model_replaces_in_place_or_resets_when_a_row_leaves_the_search(
    qtbot: QtBot, qtmodeltester: object
) -> None:
    from ui.customer_picker import customer_search_text

    def row(n: int, name: str) -> CustomerRow:
        return CustomerRow(f"cus_{n}", name, f"{n}@x.example", "", "usd", 0, n, False, "")

    model: RowTableModel[CustomerRow] = RowTableModel(COLUMNS, customer_search_text)
    model.set_rows([row(n, f"Anna {n}") for n in range(5)])
    model.set_filter("anna")
    counts = _Counts(model)
    key = lambda r: r.stripe_id  # noqa: E731

    assert not model.update_rows({"cus_2": row(2, "Anna Two")}, key)
    assert counts.changed_rows == [(2, 2)]
    assert counts.resets == 0
    assert model.update_rows({"cus_3": row(3, "Bob")}, key)  # no longer matches "anna"
    assert counts.resets == 1
    assert [r.stripe_id for r in model.visible_rows()] == ["cus_0", "cus_1", "cus_2", "cus_4"]
    assert model.update_rows({"cus_9": row(9, "Anna New"), "cus_0": None}, key)
    assert [r.stripe_id for r in model.visible_rows()] == ["cus_9", "cus_1", "cus_2", "cus_4"]
    qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_a_renamed_customer_updates_the_invoice_rows_that_show_the_name(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, stripe_client: stripe.StripeClient
) -> None:
    from services.invoices import DraftLine, InvoiceDraft
    from ui.panels.invoices import InvoicesPanel

    window, customers = _window(qtbot, runtime, tasks, stripe_client, front="invoices")
    ctx = window.ctx
    target = customers.model.visible_rows()[0]
    line = DraftLine(description="Named", amount=1200, currency="usd")
    draft = ctx.invoices.create_draft(InvoiceDraft(target.stripe_id, (line,)), None)
    panel = window.panels["invoices"]
    assert isinstance(panel, InvoicesPanel)
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        panel.refresh()
    before = {r.stripe_id: r for r in panel.model.visible_rows()}
    assert before[draft.stripe_id].customer_name == target.name
    stripe_client.v1.customers.update(target.stripe_id, {"name": "Renamed On Invoices"})

    with qtbot.waitSignal(panel.rows_patched, timeout=10_000):
        ctx.events.receive(_event("customer.updated", target.stripe_id), Source.RECEIVER)
    after = {r.stripe_id: r for r in panel.model.visible_rows()}
    assert after[draft.stripe_id].customer_name == "Renamed On Invoices"
