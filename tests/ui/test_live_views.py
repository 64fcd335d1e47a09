"""Views that hold still: events arriving, and the user's own changes, keep what is shown."""

from __future__ import annotations

import time
import uuid

import stripe
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.events import Source
from services.invoices import DraftLine, InvoiceDraft
from services.sync import SyncTarget
from stripe_sandbox import SandboxServer
from tests.helpers.qt import spin_until
from ui.main_window import MainWindow
from ui.panels.customers import CustomersPanel
from ui.panels.invoices import InvoicesPanel
from ui.tasks import TaskRunner


def _event(kind: str, object_id: str) -> dict[str, object]:
    return {
        "id": f"evt_{uuid.uuid4().hex[:20]}",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": object_id, "object": kind.split(".")[0]}},
    }


def test_events_keep_the_selection_scroll_and_detail(
    qtbot: QtBot,
    runtime: Runtime,
    tasks: TaskRunner,
    sandbox: SandboxServer,
    stripe_client: stripe.StripeClient,
) -> None:
    sandbox.seed_demo()
    for n in range(40):  # enough rows that the list scrolls
        stripe_client.v1.customers.create({"name": f"Scroll Person {n:02}"})
    ctx = runtime.require_context()
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    window.resize(1100, 560)
    window.attach_listener(runtime.make_listener(port=0))  # not started: events come by hand
    window.show()
    with qtbot.waitSignal(window.sync_finished, timeout=30_000):
        window.start(sync_first=True)
    tasks.wait_idle()
    panel = window.panels["customers"]
    assert isinstance(panel, CustomersPanel)
    window.show_panel("customers")  # a page not shown reloads when it is shown
    spin_until(lambda: panel.model.total_count > 40)
    rows = panel.model.visible_rows()
    pick = len(rows) - 3
    chosen = rows[pick]
    panel.table.selectRow(pick)
    panel.table.scrollToBottom()
    spin_until(lambda: panel.detail.detail is not None)
    scroll = panel.table.verticalScrollBar().value()
    assert scroll > 0
    other = next(r for r in rows if r.stripe_id != chosen.stripe_id)
    stripe_client.v1.customers.update(other.stripe_id, {"name": "Renamed Elsewhere"})

    with qtbot.waitSignal(panel.rows_patched, timeout=10_000):  # that row only, in place
        ctx.events.receive(_event("customer.updated", other.stripe_id), Source.RECEIVER)
    tasks.wait_idle()
    assert any(r.name == "Renamed Elsewhere" for r in panel.model.visible_rows())
    current = panel.current_row()
    assert current is not None
    assert current.stripe_id == chosen.stripe_id
    assert panel.table.verticalScrollBar().value() == scroll
    assert panel.detail.detail is not None
    assert panel.detail.detail.stripe_id == chosen.stripe_id
    assert panel.detail.title.text() == (chosen.name or chosen.email)
    assert panel.edit_button.isEnabled()
    assert panel.topup_button.isEnabled()

    # An event for the selected customer itself refreshes the detail in place.
    stripe_client.v1.customers.update(chosen.stripe_id, {"phone": "+1 212 555 0142"})
    with qtbot.waitSignal(panel.rows_patched, timeout=10_000):
        ctx.events.receive(_event("customer.updated", chosen.stripe_id), Source.RECEIVER)
    spin_until(lambda: panel.detail.fields["Phone"].text() == "+1 212 555 0142")
    current = panel.current_row()
    assert current is not None
    assert current.stripe_id == chosen.stripe_id


def test_finalize_keeps_the_invoice_selected_and_refreshes_its_detail(
    qtbot: QtBot, synced_window: MainWindow
) -> None:
    window = synced_window
    ctx = window.ctx
    customer = ctx.browse.customers()[0]
    line = DraftLine(description="Keep me selected", amount=4200, currency="usd")
    draft = ctx.invoices.create_draft(InvoiceDraft(customer.stripe_id, (line,)), None)
    ctx.sync.pull(SyncTarget.INVOICES)
    window.show_panel("invoices")
    panel = window.panels["invoices"]
    assert isinstance(panel, InvoicesPanel)
    with qtbot.waitSignal(panel.rows_loaded, timeout=10_000):
        panel.refresh()
    assert panel.select_where(lambda r: r.stripe_id == draft.stripe_id)
    spin_until(lambda: panel.detail.detail is not None and panel.finalize_button.isEnabled())
    blanked: list[object] = []
    panel.row_selected.connect(lambda row: blanked.append(row) if row is None else None)
    panel.finalize_button.click()
    yes = next(b for b in panel.confirm_box.buttons() if b.text() == "Finalize")
    yes.click()
    spin_until(
        lambda: panel.detail.detail is not None and panel.detail.detail.status == "open",
        timeout_ms=15_000,
    )
    window.tasks.wait_idle()
    assert blanked == []  # the detail pane was never emptied on the way
    current = panel.current_row()
    assert current is not None
    assert current.stripe_id == draft.stripe_id
    assert panel.detail.detail is not None
    assert panel.detail.detail.stripe_id == draft.stripe_id
    assert panel.charge_button.isEnabled()
