"""Each role sees the actions it may use enabled, and the others disabled with the reason."""

from __future__ import annotations

import dataclasses

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox
from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime, build_context
from services.context import AppContext
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.secrets import SecretStore
from services.stripe_gateway import StripeMode
from ui.dialogs import LIVE_CONFIRM_WORD, LiveConfirmDialog, confirm_money_move
from ui.main_window import MainWindow
from ui.operators_dialog import OperatorsDialog
from ui.settings_dialog import SettingsDialog
from ui.tasks import TaskRunner


def _context_for(runtime: Runtime, role: Role) -> AppContext:
    admin = runtime.require_context()
    login = f"{role.value}-clerk"
    if role is not Role.ADMIN:
        # Straight to the service: the window's own service is single-seat on SQLite.
        OperatorService(runtime.database, admin.authority).add(login, role)
    else:
        login = admin.actor.login
    actor = sign_in(runtime.database, login)
    return build_context(
        runtime.database,
        admin.gateway,
        actor,
        admin.config._store,
        SecretStore(environ={}),
        admin.database_label,
    )


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
def test_main_window_per_role(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, role: Role
) -> None:
    ctx = _context_for(runtime, role)
    window = MainWindow(ctx, tasks)
    qtbot.addWidget(window)
    assert window.operator_label.text().endswith(f"· {role.label}")
    audit_item = window.nav.item(window.nav_row("audit"))
    sees_audit = role in (Role.FINANCE, Role.ADMIN)
    assert bool(audit_item.flags() & Qt.ItemFlag.ItemIsEnabled) == sees_audit
    assert ("audit" in window.panels) == sees_audit
    if not sees_audit:
        assert "view audit log" in audit_item.toolTip()
    manages = role is Role.ADMIN
    assert ("(view)" in window.operators_action.text()) != manages
    exports = role in (Role.FINANCE, Role.ADMIN)
    assert window.export_action.isEnabled() == exports
    if not exports:
        assert "'export' is needed" in window.export_action.toolTip()


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.name)
def test_settings_and_operators_dialogs_per_role(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, role: Role
) -> None:
    ctx = _context_for(runtime, role)
    settings = SettingsDialog(ctx, tasks)
    qtbot.addWidget(settings)
    qtbot.waitUntil(lambda: settings.key_status.text() != "Reading…", timeout=5000)
    save = settings.buttons.button(QDialogButtonBox.StandardButton.Save)
    assert save.isEnabled() == (role is Role.ADMIN)
    if role is not Role.ADMIN:
        assert "manage settings" in save.toolTip()
        assert settings.key_edit.isReadOnly()

    operators = OperatorsDialog(ctx, tasks)
    qtbot.addWidget(operators)
    qtbot.waitUntil(lambda: operators.table.rowCount() >= 1, timeout=5000)
    assert operators.add_button.isEnabled() == (role is Role.ADMIN)
    if role is not Role.ADMIN:
        assert "manage operators" in operators.add_button.toolTip()


def test_admin_cannot_add_a_second_os_login_on_sqlite_in_the_dialog(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    ctx = runtime.require_context()
    dialog = OperatorsDialog(ctx, tasks)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=5000)
    dialog.login_edit.setText("newhire")
    dialog.role_combo.setCurrentIndex(list(Role).index(Role.SUPPORT))
    dialog.add_button.click()
    # The runtime is on SQLite: single-seat, and the dialog says where roles for others live.
    qtbot.waitUntil(lambda: "single-seat" in dialog.message.text(), timeout=5000)
    assert "PostgreSQL" in dialog.message.text()
    assert dialog.table.rowCount() == 1
    dialog.login_edit.setText("bad login")
    dialog.add_button.click()
    qtbot.waitUntil(lambda: "not a valid login" in dialog.message.text(), timeout=5000)
    assert dialog.table.rowCount() == 1


def test_the_operators_dialog_after_add_on_a_shared_database(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    """Where several operators are allowed (a shared PostgreSQL): the form clears after Add,
    the person just added stays selected, and success is not shown in red."""
    ctx = runtime.require_context()
    ctx = dataclasses.replace(ctx, operators=OperatorService(runtime.database, ctx.authority))
    dialog = OperatorsDialog(ctx, tasks)
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1, timeout=5000)
    dialog.login_edit.setText("newhire")
    dialog.role_combo.setCurrentIndex(list(Role).index(Role.SUPPORT))
    dialog.add_button.click()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=5000)
    assert "Added newhire as support" in dialog.message.text()
    assert dialog.message.objectName() != "errorText"  # success is not shown in red
    assert (dialog.login_edit.text(), dialog.name_edit.text()) == ("", "")  # ready for the next
    chosen = dialog.selected()  # the person just added, not whoever sorts into that row
    assert chosen is not None
    assert chosen.login == "newhire"
    dialog.login_edit.setText("second")
    dialog.add_button.click()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 3, timeout=5000)
    chosen = dialog.selected()
    assert chosen is not None
    assert chosen.login == "second"
    dialog.login_edit.setText("bad login")
    dialog.add_button.click()
    qtbot.waitUntil(lambda: "not a valid login" in dialog.message.text(), timeout=5000)
    assert dialog.message.objectName() == "errorText"
    assert dialog.table.rowCount() == 3


def test_live_mode_needs_typed_confirmation(qtbot: QtBot) -> None:
    dialog = LiveConfirmDialog("Charge invoice in_123 for $500.00")
    qtbot.addWidget(dialog)
    assert not dialog.ok.isEnabled()
    dialog.typed.setText("live")
    assert not dialog.ok.isEnabled()
    dialog.typed.setText(LIVE_CONFIRM_WORD)
    assert dialog.ok.isEnabled()
    assert confirm_money_move(StripeMode.TEST, "anything", None)
    assert confirm_money_move(StripeMode.SANDBOX, "anything", None)


def test_live_mode_refused_when_not_confirmed(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LiveConfirmDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    assert not confirm_money_move(StripeMode.LIVE, "Charge", None)
