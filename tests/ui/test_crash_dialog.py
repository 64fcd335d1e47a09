"""Bugs surface once, in one dialog, with the traceback — and never with a secret in it."""

from __future__ import annotations

import logging
import sys

import pytest
from PySide6.QtWidgets import QMessageBox

from ui.crash_dialog import CrashHandler

KEY = "sk_live_" + "51CrashDialogSecretKey999"  # not a literal that looks real


def test_a_bug_is_logged_and_shown_once_without_secrets(
    qapp: object, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    shown: list[QMessageBox] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append(box)
        return 0

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    handler = CrashHandler(log_file=None)
    handler.install()
    try:
        assert sys.excepthook == handler.handle
        try:
            raise RuntimeError(f"request with {KEY} failed")
        except RuntimeError as exc:
            with caplog.at_level(logging.CRITICAL):
                handler.handle(type(exc), exc, exc.__traceback__)
    finally:
        handler.uninstall()
    assert sys.excepthook != handler.handle
    (box,) = shown
    assert "RuntimeError" in box.informativeText()
    assert "Traceback" in box.detailedText()
    for text in (box.text(), box.informativeText(), box.detailedText()):
        assert KEY not in text
    assert "Unexpected error" in caplog.text
