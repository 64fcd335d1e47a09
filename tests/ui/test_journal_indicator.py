"""The window's "unconfirmed requests" indicator, and dialogs re-using the journal's key.

Stripe's answer is lost three times (after the sandbox applied the request) while a New customer
dialog saves: the indicator appears; the same dialog's retry, and a new dialog with the same
details, re-use the first request's key, so Stripe holds one customer and the indicator goes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import stripe
from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from admin_app.paths import AppPaths
from admin_app.wiring import Options, Runtime, build_runtime
from stripe_sandbox import SandboxServer
from tests.helpers.dropping_proxy import DroppingProxy
from ui.customer_dialogs import CustomerDialog
from ui.journal_dialog import JournalDialog
from ui.main_window import MainWindow
from ui.tasks import TaskRunner


@pytest.fixture
def proxy(sandbox: SandboxServer) -> Iterator[DroppingProxy]:
    with DroppingProxy(sandbox.url) as p:
        yield p


@pytest.fixture
def proxied_runtime(proxy: DroppingProxy, app_paths: AppPaths, tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(
        Options(db=f"sqlite:///{tmp_path / 'ui.sqlite3'}", api_base=proxy.url), app_paths
    )
    yield rt
    rt.close()


def _save(qtbot: QtBot, dialog: CustomerDialog, tasks: TaskRunner) -> None:
    dialog.email.setText("lost.in.ui@example.com")
    dialog.name.setText("Lost In UI")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    tasks.wait_idle()


def test_lost_answers_show_the_indicator_and_a_new_dialog_reuses_the_key(
    qtbot: QtBot,
    proxied_runtime: Runtime,
    tasks: TaskRunner,
    proxy: DroppingProxy,
    stripe_client: stripe.StripeClient,
    qtmodeltester: ModelTester,
) -> None:
    ctx = proxied_runtime.require_context()
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    window.show()
    window.start(sync_first=False)
    tasks.wait_idle()
    indicator = window.journal_indicator
    assert not indicator.isVisible()

    proxy.drop("/v1/customers", count=3)
    first = CustomerDialog(ctx, tasks, parent=window)
    qtbot.addWidget(first)
    first.show()
    _save(qtbot, first, tasks)
    assert "Cannot reach Stripe" in first.error.text()
    assert first.isVisible()
    journal_key = first.idempotency_key
    assert journal_key is not None  # "Try again" from this dialog sends the same key

    with qtbot.waitSignal(indicator.count_changed, timeout=10_000):
        window.data_changed.emit()
    assert indicator.isVisible()
    assert indicator.text() == "⚠ 1 unconfirmed request"

    indicator.click()
    dialog = indicator.dialog
    assert isinstance(dialog, JournalDialog)
    tasks.wait_idle()
    qtmodeltester.check(dialog.model)
    assert dialog.model.rowCount() == 1
    [entry] = dialog.model._all
    assert (entry.idempotency_key, entry.outcome) == (journal_key, "unknown")
    dialog.close()
    first.close()

    second = CustomerDialog(ctx, tasks, parent=window)  # a new dialog, the same details
    qtbot.addWidget(second)
    second.show()
    with qtbot.waitSignal(second.saved, timeout=10_000) as saved:
        _save(qtbot, second, tasks)
    customers = stripe_client.v1.customers.list({"email": "lost.in.ui@example.com"}).data
    assert [c.id for c in customers] == [saved.args[0].stripe_id]
    [done] = ctx.journal.entries(include_resolved=True)
    assert (done.idempotency_key, done.outcome, done.object_id) == (
        journal_key, "succeeded", saved.args[0].stripe_id,
    )  # fmt: skip
    with qtbot.waitSignal(indicator.count_changed, timeout=10_000):
        window.data_changed.emit()
    assert not indicator.isVisible()
