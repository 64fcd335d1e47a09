"""Settings: keys go to the keyring after validation; a bad field changes nothing."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox
from pytestqt.qtbot import QtBot

from admin_app.paths import AppPaths
from admin_app.wiring import Runtime
from services.secrets import KEYRING_SERVICE
from tests.helpers.memory_keyring import MemoryKeyring
from ui.settings_dialog import SettingsDialog
from ui.tasks import TaskRunner

KEY = "sk_test_51SettingsDialogKey0001"


def _dialog(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> SettingsDialog:
    dialog = SettingsDialog(runtime.require_context(), tasks)
    qtbot.addWidget(dialog)
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    qtbot.waitUntil(save.isEnabled, timeout=5000)
    return dialog


def test_a_bad_key_is_explained_and_nothing_is_saved(
    qtbot: QtBot,
    runtime: Runtime,
    tasks: TaskRunner,
    memory_keyring: MemoryKeyring,
    app_paths: AppPaths,
) -> None:
    dialog = _dialog(qtbot, runtime, tasks)
    assert dialog.key_status.text() == "Not set."
    dialog.key_edit.setText("pk_test_thisIsPublishable")
    dialog.db_edit.setText("sqlite:////tmp/should-not-be-saved.sqlite3")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "publishable" in dialog.error_label.text()
    assert memory_keyring.store == {}
    assert not app_paths.settings_file.exists()


def test_a_good_key_goes_to_the_keyring_not_the_settings_file(
    qtbot: QtBot,
    runtime: Runtime,
    tasks: TaskRunner,
    memory_keyring: MemoryKeyring,
    app_paths: AppPaths,
) -> None:
    dialog = _dialog(qtbot, runtime, tasks)
    dialog.key_edit.setText(KEY)
    dialog.api_edit.setText("http://127.0.0.1:12111")
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert memory_keyring.store[(KEYRING_SERVICE, "STRIPE_SECRET_KEY")] == KEY
    saved = app_paths.settings_file.read_text()
    assert "127.0.0.1:12111" in saved
    assert KEY not in saved


def test_top_up_prices_are_validated_and_saved(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, app_paths: AppPaths
) -> None:
    dialog = _dialog(qtbot, runtime, tasks)
    dialog.price_edit.setText("0.001")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "Amount must be a number" in dialog.error_label.text()
    dialog.price_edit.setText("0.25")
    dialog.min_edit.setText("1000")
    dialog.max_edit.setText("10")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "larger than the largest" in dialog.error_label.text()
    assert not app_paths.settings_file.exists()
    dialog.max_edit.setText("50000")
    dialog.success_edit.setText("https://example.com/thanks?s={CHECKOUT_SESSION_ID}")
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    snapshot = runtime.require_context().config.snapshot()
    saved, pricing = snapshot.settings, snapshot.pricing
    # The team's prices went to the database (audited), not to this machine's settings file.
    assert (pricing.unit_amount, pricing.minimum, pricing.maximum) == (25, 1000, 50000)
    assert "credit" not in app_paths.settings_file.read_text()
    assert saved.topup_success_url == "https://example.com/thanks?s={CHECKOUT_SESSION_ID}"


def test_purchased_credits_expiry_is_the_teams_setting(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, app_paths: AppPaths
) -> None:
    dialog = _dialog(qtbot, runtime, tasks)
    assert dialog.expiry_spin.text() == "never"  # the default
    dialog.expiry_spin.setValue(12)
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert runtime.require_context().config.snapshot().purchase_expiry_months == 12
    assert "expiry" not in app_paths.settings_file.read_text()  # the database's, not a file's
    again = _dialog(qtbot, runtime, tasks)
    assert again.expiry_spin.value() == 12


def test_the_webhook_port_is_checked_then_saved_for_this_machine(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, app_paths: AppPaths
) -> None:
    dialog = _dialog(qtbot, runtime, tasks)
    assert dialog.port_edit.text() == ""
    dialog.port_edit.setText("80")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert "between 1024 and 65535" in dialog.error_label.text()
    assert not app_paths.settings_file.exists()
    dialog.port_edit.setText("4343")
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Save).click()
    assert '"webhook_port": 4343' in app_paths.settings_file.read_text()
    again = _dialog(qtbot, runtime, tasks)
    assert again.port_edit.text() == "4343"
