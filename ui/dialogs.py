"""What every dialog shares: the live-mode banner, and typed confirmation for money moves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from services.errors import AppError
from services.permissions import Permission, Role, why_not
from services.stripe_gateway import StripeMode
from ui.banner import ModeBanner
from ui.tasks import TaskRunner

LIVE_CONFIRM_WORD = "LIVE"


def add_live_banner(layout: QVBoxLayout, mode: StripeMode) -> None:
    """Put the red banner at the top of a dialog when a live key is in use."""
    if mode is StripeMode.LIVE:
        layout.insertWidget(0, ModeBanner(mode))


def denied_tooltip(role: Role, permission: Permission) -> str:
    return why_not(role, permission)


class LiveConfirmDialog(QDialog):
    """Typed confirmation before a money-moving action with a live key.

    The operator must type LIVE: a deliberate act that a stray Enter or double-click cannot do.
    """

    def __init__(self, description: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Confirm a live-mode action")
        layout = QVBoxLayout(self)
        add_live_banner(layout, StripeMode.LIVE)
        text = QLabel(
            f"{description}\n\nThis uses a live Stripe key: it moves real money.\n"
            f"Type {LIVE_CONFIRM_WORD} to continue."
        )
        text.setWordWrap(True)
        layout.addWidget(text)
        self.typed = QLineEdit()
        self.typed.setPlaceholderText(LIVE_CONFIRM_WORD)
        layout.addWidget(self.typed)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Do it")
        self.ok.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.typed.textChanged.connect(self._on_typed_text_changed)
        layout.addWidget(self.buttons)

    def _on_typed_text_changed(self, text: str) -> None:
        self.ok.setEnabled(text.strip() == LIVE_CONFIRM_WORD)


def ask_first(
    parent: QWidget,
    title: str,
    text: str,
    verb: str,
    on_yes: Callable[[], None],
    *,
    warning: bool = False,
) -> QMessageBox:
    """A window-modal question with Cancel (the default) and `verb`; `on_yes` runs only for
    `verb`. Returned so a caller (and a test) can keep and press it."""
    box = QMessageBox(
        QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Question,
        title,
        text,
        QMessageBox.StandardButton.Cancel,
        parent,
    )
    yes = box.addButton(verb, QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.buttonClicked.connect(lambda button: on_yes() if button is yes else None)
    box.open()
    return box


def confirm_money_move(mode: StripeMode, description: str, parent: QWidget | None) -> bool:
    """True when the action may go ahead: always outside live mode, after typing LIVE inside it.

    Every money-moving action (charges, top-up links, grants) asks this first.
    """
    if mode is not StripeMode.LIVE:
        return True
    dialog = LiveConfirmDialog(description, parent)
    return dialog.exec() == QDialog.DialogCode.Accepted


def key_after_failure(exc: BaseException, current: str | None) -> str | None:
    """The idempotency key a retry from the same dialog sends after `exc`.

    An unconfirmed request's own key (so Stripe replays it, never doing it twice); after a
    definite refusal none, so the request journal picks a fresh one.
    """
    if not isinstance(exc, AppError) or exc.journal_outcome is None:
        return current
    if exc.journal_outcome in ("pending", "unknown"):
        return exc.idempotency_key
    return None


class SubmitDialog(QDialog):
    """A form that sends one service call off the GUI thread.

    While the call runs the buttons are disabled; on success `succeeded` is emitted with the result
    and the dialog closes; an expected error is shown under the form, which stays as it was so
    the person can fix it and press the button again (with the same idempotency key).
    Subclasses provide `self.buttons` and `self.error`.
    """

    succeeded = Signal(object)
    failure_prefix = "Not saved"

    buttons: QDialogButtonBox
    error: QLabel

    def __init__(self, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tasks = tasks

    def submit(self, work: Callable[[], Any], busy_text: str = "Saving to Stripe…") -> None:
        self.show_error("")
        self.error.setText(busy_text)
        self.buttons.setEnabled(False)
        self._tasks.run(self, work, self._on_submit_ok, self._on_submit_failed)

    def show_error(self, text: str) -> None:
        self.error.setObjectName("errorText")
        self.error.style().polish(self.error)
        self.error.setText(text)

    def _on_submit_ok(self, result: object) -> None:
        self.succeeded.emit(result)
        self.accept()

    idempotency_key: str | None = None

    def _on_submit_failed(self, exc: BaseException) -> None:
        self.idempotency_key = key_after_failure(exc, self.idempotency_key)
        self.buttons.setEnabled(True)
        if not isinstance(exc, AppError):
            raise exc
        self.show_error(f"{self.failure_prefix}: {exc}")
