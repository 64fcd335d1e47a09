"""The Subscriptions panel (Ctrl+8): the list, its filters and export, the detail, the create and
cancel dialogs (each confirmed in money), the customer's list, and what finance may not do."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import stripe
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.permissions import Role
from stripe_sandbox import SandboxServer
from tests.helpers.qt import open_dialog, spin_until
from tests.ui.test_roles import _context_for
from ui.main_window import MainWindow
from ui.panels.customers import CustomersPanel
from ui.panels.subscriptions import SubscriptionsPanel
from ui.subscription_dialogs import (
    AdvanceClockDialog,
    CancelSubscriptionDialog,
    ChangeSubscriptionDialog,
    NewSubscriptionDialog,
)
from ui.tasks import TaskRunner


def _seed(client: stripe.StripeClient) -> dict[str, str]:
    """Two customers with cards, two recurring prices and two subscriptions, one of which
    cancels at the period end."""
    made: dict[str, str] = {}
    product = client.v1.products.create({"name": "Pro plan", "metadata": {"credits": "100"}})
    made["monthly"] = client.v1.prices.create(
        {"product": product.id, "unit_amount": 1500, "currency": "usd",
         "recurring": {"interval": "month"}}
    ).id  # fmt: skip
    team = client.v1.products.create({"name": "Team plan"})
    made["yearly"] = client.v1.prices.create(
        {"product": team.id, "unit_amount": 120_000, "currency": "usd",
         "recurring": {"interval": "year"}}
    ).id  # fmt: skip
    for key, name in (("ada", "Ada Lovelace"), ("bob", "Bob Builder")):
        customer = client.v1.customers.create(
            {"name": name, "email": f"{key}@example.com", "payment_method": "pm_card_visa"}
        )
        pm = client.v1.customers.payment_methods.list(customer.id).data[0].id
        client.v1.customers.update(
            customer.id, {"invoice_settings": {"default_payment_method": pm}}
        )
        made[key] = customer.id
    made["sub_ada"] = client.v1.subscriptions.create(
        {"customer": made["ada"], "items": [{"price": made["monthly"], "quantity": 2}]}
    ).id
    made["sub_bob"] = client.v1.subscriptions.create(
        {"customer": made["bob"], "items": [{"price": made["yearly"]}],
         "cancel_at_period_end": True}
    ).id  # fmt: skip
    return made


@pytest.fixture
def seeded(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> dict[str, str]:
    return _seed(stripe_client)


def _window(qtbot: QtBot, ctx: object, tasks: TaskRunner) -> MainWindow:
    window = MainWindow(ctx, tasks)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.sync_finished, timeout=30_000):
        window.start(sync_first=True)
    tasks.wait_idle()
    return window


def _panel(window: MainWindow) -> SubscriptionsPanel:
    panel = window.panels["subscriptions"]
    assert isinstance(panel, SubscriptionsPanel)
    return panel


def _shown(panel: SubscriptionsPanel) -> list[str]:
    return [r.stripe_id for r in panel.model.visible_rows()]


def test_the_panel_lists_filters_exports_and_shows_the_detail(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, seeded: dict[str, str], tmp_path: Path,
    qtmodeltester: object,
) -> None:  # fmt: skip
    window = _window(qtbot, runtime.require_context(), tasks)
    ctrl8 = [a for a in window.actions() if a.shortcut() == QKeySequence("Ctrl+8")]
    assert [a.text() for a in ctrl8] == ["Subscriptions"]
    ctrl8[0].trigger()
    panel = _panel(window)
    spin_until(lambda: window.stack.currentWidget() is panel)
    spin_until(lambda: len(_shown(panel)) == 2)
    qtmodeltester.check(panel.model)  # type: ignore[attr-defined]
    texts = {
        r.stripe_id: [panel.model.data(panel.model.index(i, c)) for c in range(9)]
        for i, r in enumerate(panel.model.visible_rows())
    }
    ada = texts[seeded["sub_ada"]]
    assert ada[:6] == ["Ada Lovelace", "Pro plan", "active", "$30.00 / month", "$30.00",
                       ada[5]]  # fmt: skip
    bob = texts[seeded["sub_bob"]]
    assert bob[3:5] == ["$1,200.00 / year", "$100.00"]
    assert bob[6] == bob[5]  # the cancels-at-period-end marker: on the period's last day
    assert ada[6] == ""

    panel.search.setText("team")  # instant search, no reload
    assert _shown(panel) == [seeded["sub_bob"]]
    panel.search.clear()
    panel.status_combo.setCurrentIndex(panel.status_combo.findData("trialing"))
    spin_until(lambda: panel.count_label.text() == "No subscriptions")
    panel.status_combo.setCurrentIndex(0)
    spin_until(lambda: len(_shown(panel)) == 2)
    panel.price_combo.setCurrentIndex(panel.price_combo.findData(seeded["yearly"]))
    spin_until(lambda: _shown(panel) == [seeded["sub_bob"]])

    out = tmp_path / "subs.csv"
    window.choose_export_path = lambda _suggested: out
    with qtbot.waitSignal(window.export_finished, timeout=10_000):
        window.export_action.trigger()
    with out.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["id"], r["amount"], r["mrr"], r["cancel_at_period_end"]) for r in rows] == [
        (seeded["sub_bob"], "1200.00", "100.00", "true")
    ]

    panel.table.selectRow(0)
    spin_until(lambda: "Loading" not in panel.detail.upcoming[1].text())
    assert "1 x Team plan" in panel.detail.items[1].text()
    assert panel.detail.fields["Cancels"].text().endswith(": not charged again")
    # It ends at the period end: no renewal invoice to preview.
    assert panel.detail.upcoming[1].text().startswith("None: it ends on ")
    spin_until(lambda: panel.detail.invoices.count() == 1)


def test_create_and_cancel_through_the_dialogs(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, seeded: dict[str, str],
    stripe_client: stripe.StripeClient,
) -> None:  # fmt: skip
    window = _window(qtbot, runtime.require_context(), tasks)
    window.show_panel("subscriptions")
    panel = _panel(window)
    spin_until(lambda: len(_shown(panel)) == 2)

    panel.new_button.click()
    dialog = open_dialog(qtbot, NewSubscriptionDialog)
    qtbot.waitUntil(lambda: dialog.price_combo.count() == 2, timeout=5000)
    qtbot.waitUntil(lambda: dialog.customer.model.total_count > 0, timeout=5000)
    dialog.customer.search.setText("bob@example.com")
    assert dialog.customer.customer() is not None
    dialog.price_combo.setCurrentIndex(dialog.price_combo.findData(seeded["monthly"]))
    dialog.quantity.setValue(3)
    dialog.trial.setValue(14)
    dialog.ok_button.click()
    spin_until(lambda: dialog.confirm_box is not None)
    box = dialog.confirm_box
    assert box is not None
    assert "No charge now: a free trial of 14 days" in box.text()
    assert "then $45.00 every month" in box.text()
    assert "300 credits" in box.text()  # a credit plan: 3 x 100 each paid period
    with qtbot.waitSignal(dialog.succeeded, timeout=10_000) as created:
        next(b for b in box.buttons() if b.text() == "Create subscription").click()
    row = created.args[0]
    assert (row.status, row.quantity, row.customer_id) == ("trialing", 3, seeded["bob"])
    spin_until(lambda: row.stripe_id in _shown(panel))

    # Cancel the new one at the period end.
    assert panel.select_where(lambda r: r.stripe_id == row.stripe_id)
    qtbot.waitUntil(panel.cancel_button.isEnabled, timeout=5000)
    panel.cancel_button.click()
    cancel = open_dialog(qtbot, CancelSubscriptionDialog)
    assert cancel.at_period_end.isChecked()
    cancel.ok_button.click()
    spin_until(lambda: cancel.confirm_box is not None)
    box = cancel.confirm_box
    assert box is not None
    assert "the customer is not charged again" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()  # asked first: nothing sent
    assert not stripe_client.v1.subscriptions.retrieve(row.stripe_id).cancel_at_period_end
    cancel.ok_button.click()
    spin_until(lambda: cancel.confirm_box is not box)
    with qtbot.waitSignal(cancel.succeeded, timeout=10_000):
        next(b for b in cancel.confirm_box.buttons()
             if b.text() == "Cancel subscription").click()  # fmt: skip
    assert stripe_client.v1.subscriptions.retrieve(row.stripe_id).cancel_at_period_end
    spin_until(lambda: any(r.stripe_id == row.stripe_id and r.cancels_at
                           for r in panel.model.visible_rows()))  # fmt: skip

    # The customer's detail lists both of Bob's subscriptions.
    window.show_panel("customers")
    customers = window.panels["customers"]
    assert isinstance(customers, CustomersPanel)
    # A page shown after changes reloads then (off the GUI thread): wait for Bob's row.
    spin_until(lambda: customers.select_where(lambda r: r.stripe_id == seeded["bob"]))
    spin_until(lambda: customers.detail.subscriptions.count() == 2)
    assert customers.detail.subscriptions_caption.text() == "Subscriptions: 2, 2 not ended"


def test_finance_reads_but_cannot_change(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, seeded: dict[str, str]
) -> None:
    ctx = _context_for(runtime, Role.FINANCE)
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    window.show()
    window.refresh()
    panel = _panel(window)
    # Finance reads what the admin's sync brought in.
    runtime.require_context().sync.pull()
    window.refresh()
    spin_until(lambda: len(_shown(panel)) == 2)
    panel.table.selectRow(0)
    for button in (panel.new_button, *panel.action_buttons):
        assert not button.isEnabled()
        assert "manage subscriptions" in button.toolTip()
    panel.cancel_selected()  # a shortcut or a stray call does nothing either
    assert panel.dialog is None
    tasks.wait_idle()


def test_pause_and_resume_from_the_panel_ask_first(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, seeded: dict[str, str],
    stripe_client: stripe.StripeClient,
) -> None:  # fmt: skip
    window = _window(qtbot, runtime.require_context(), tasks)
    window.show_panel("subscriptions")
    panel = _panel(window)
    spin_until(lambda: len(_shown(panel)) == 2)
    sub = seeded["sub_ada"]
    assert panel.select_where(lambda r: r.stripe_id == sub)
    qtbot.waitUntil(panel.pause_button.isEnabled, timeout=5000)
    assert not panel.resume_button.isEnabled()
    panel.pause_button.trigger()
    spin_until(lambda: isinstance(panel.confirm_box, QMessageBox))
    box = panel.confirm_box
    assert isinstance(box, QMessageBox)
    assert "created and voided at once" in box.text()
    next(b for b in box.buttons() if b.text() == "Pause collection").click()
    spin_until(lambda: any(r.stripe_id == sub and r.pause_collection == "void"
                           for r in panel.model.visible_rows()))  # fmt: skip
    assert stripe_client.v1.subscriptions.retrieve(sub).pause_collection is not None
    qtbot.waitUntil(panel.resume_button.isEnabled, timeout=5000)
    panel.resume_button.trigger()
    spin_until(lambda: panel.confirm_box is not box)
    resume_box = panel.confirm_box
    assert isinstance(resume_box, QMessageBox)
    assert "Collection resumes" in resume_box.text()
    next(b for b in resume_box.buttons() if b.text() == "Resume").click()
    spin_until(lambda: any(r.stripe_id == sub and not r.pause_collection
                           for r in panel.model.visible_rows()))  # fmt: skip
    assert stripe_client.v1.subscriptions.retrieve(sub).pause_collection is None


def test_advance_the_test_clock_from_the_panel(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, stripe_client: stripe.StripeClient
) -> None:
    client = stripe_client
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": 1_790_000_000})
    customer = client.v1.customers.create(
        {"test_clock": clock.id, "name": "Clock Customer", "payment_method": "pm_card_visa"}
    )
    pm = client.v1.customers.payment_methods.list(customer.id).data[0].id
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm}})
    product = client.v1.products.create({"name": "Clock plan"})
    price = client.v1.prices.create({"product": product.id, "unit_amount": 700, "currency": "usd",
                                     "recurring": {"interval": "month"}})  # fmt: skip
    sub = client.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    first_end = sub["items"].data[0].current_period_end
    window = _window(qtbot, runtime.require_context(), tasks)
    window.show_panel("subscriptions")
    panel = _panel(window)
    spin_until(lambda: _shown(panel) == [sub.id])
    assert panel.clock_button.isVisible()  # sandbox mode (hidden with a live key)
    panel.table.selectRow(0)
    spin_until(panel.clock_button.isEnabled)  # once the detail says it is on a clock
    panel.clock_button.trigger()
    dialog = open_dialog(qtbot, AdvanceClockDialog)
    dialog.days.setValue(35)
    with qtbot.waitSignal(dialog.succeeded, timeout=30_000) as advanced:
        dialog.ok_button.click()
    row = advanced.args[0]
    assert row.current_period_end > first_end  # renewed once
    spin_until(lambda: panel.model.visible_rows()[0].current_period_end == row.current_period_end)


def test_an_upgrade_is_confirmed_with_what_the_customer_pays_now(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, seeded: dict[str, str],
    stripe_client: stripe.StripeClient,
) -> None:  # fmt: skip
    product = stripe_client.v1.products.create({"name": "Pro plus"})
    bigger = stripe_client.v1.prices.create(
        {"product": product.id, "unit_amount": 4500, "currency": "usd",
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    window = _window(qtbot, runtime.require_context(), tasks)
    window.show_panel("subscriptions")
    panel = _panel(window)
    spin_until(lambda: len(_shown(panel)) == 2)
    sub = seeded["sub_ada"]
    assert panel.select_where(lambda r: r.stripe_id == sub)
    qtbot.waitUntil(panel.change_button.isEnabled, timeout=5000)
    panel.change_button.click()
    dialog = open_dialog(qtbot, ChangeSubscriptionDialog)
    qtbot.waitUntil(lambda: dialog.price_combo.findData(bigger.id) >= 0, timeout=5000)
    dialog.price_choice.setChecked(True)
    dialog.price_combo.setCurrentIndex(dialog.price_combo.findData(bigger.id))
    dialog.proration.setCurrentIndex(dialog.proration.findData("always"))
    dialog.ok_button.click()
    spin_until(lambda: dialog.confirm_box is not None)
    box = dialog.confirm_box
    assert box is not None
    assert box.text().startswith("The customer is charged $")
    assert "now for the upgrade." in box.text()
    shown = box.text().split("charged ")[1].split(" now")[0]
    with qtbot.waitSignal(dialog.succeeded, timeout=10_000) as changed:
        next(b for b in box.buttons() if b.text() == "Change it").click()
    assert changed.args[0].amount == 2 * 4500
    latest = stripe_client.v1.invoices.list({"subscription": sub, "limit": 1}).data[0]
    assert latest.billing_reason == "subscription_update"
    assert f"${latest.amount_paid / 100:,.2f}" == shown  # charged what was shown, to the cent
