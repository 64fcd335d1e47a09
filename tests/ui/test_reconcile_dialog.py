"""The Reconcile view: compare, see the difference, claw back with a reason (admins), and the
status bar's last result."""

from __future__ import annotations

import time

from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.models import CreditEntry
from services.reconcile import Kind
from ui.main_window import MainWindow
from ui.reconcile_dialog import status_text
from ui.tasks import TaskRunner


def test_compare_find_and_claw_back_from_the_window(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    ctx = runtime.require_context()
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    assert window.reconcile_indicator.isVisibleTo(window)
    assert window.reconcile_indicator.text() == "Not reconciled yet"
    CreditEntry.insert(customer_id="cus_someone", amount=5000, kind="purchase",
                       source="tu_never_paid", operator="sqlite3",
                       created_at=int(time.time())).execute()  # fmt: skip
    window.open_reconcile()
    dialog = window.reconcile_indicator.dialog
    assert dialog is not None
    with qtbot.waitSignal(dialog.finished_run, timeout=30_000):
        dialog.run_button.click()
    [finding] = dialog.model.visible_rows()
    assert finding.kind is Kind.CREDITED_NOT_PAID
    assert "1 difference" in dialog.status.text()
    qtbot.waitUntil(lambda: window.reconcile_indicator.text().startswith("1 difference"),
                    timeout=5000)  # fmt: skip
    assert not dialog.repair_one.isEnabled()  # never repaired automatically
    dialog.table.selectRow(0)
    assert dialog.claw_back.isEnabled()
    dialog.claw_back.click()
    assert "reason" in dialog.status.text()  # a reason first
    dialog.reason_edit.setText("never paid: written by hand")
    dialog.claw_back.click()
    yes = next(b for b in dialog.confirm_box.buttons() if b.text() == "Claw back")
    with qtbot.waitSignal(dialog.finished_run, timeout=30_000):
        yes.click()
    assert dialog.model.visible_rows() == []
    assert "Books match" in dialog.status.text()
    assert ctx.credits.balance("cus_someone") == 0


def test_the_status_text_of_the_last_result() -> None:
    at = int(time.mktime((2026, 12, 3, 7, 0, 0, 0, 0, -1)))
    assert status_text(None) == "Not reconciled yet"
    assert status_text({"at": at, "findings": 0, "line": "Books match"}) == "Books match · 07:00"
    assert status_text({"at": at, "findings": 3, "line": "3 differences"}) == (
        "3 differences · 07:00"
    )


def test_finance_compares_but_cannot_repair(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    from admin_app.wiring import build_context
    from services.operators import OperatorService, sign_in
    from services.permissions import Role
    from services.secrets import SecretStore
    from ui.reconcile_dialog import ReconcileDialog

    admin = runtime.require_context()
    OperatorService(runtime.database, admin.authority).add("fin-clerk", Role.FINANCE)
    ctx = build_context(
        runtime.database, admin.gateway, sign_in(runtime.database, "fin-clerk"),
        admin.config._store, SecretStore(environ={}), admin.database_label,
    )  # fmt: skip
    dialog = ReconcileDialog(ctx, tasks)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.finished_run, timeout=30_000):
        dialog.run_button.click()
    assert "Books match" in dialog.status.text()
    assert not dialog.repair_all.isEnabled()
    assert "repair the books" in dialog.repair_all.toolTip()
    assert not dialog.reason_edit.isEnabled()
