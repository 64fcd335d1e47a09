"""One place where bugs surface: logged with their traceback, shown once in a dialog."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from services.redaction import redact

log = logging.getLogger(__name__)


class CrashHandler:
    """Installs itself as `sys.excepthook` while the GUI runs."""

    def __init__(self, log_file: Path | None) -> None:
        self._log_file = log_file
        self._showing = False
        self._previous = sys.excepthook

    def install(self) -> None:
        sys.excepthook = self.handle

    def uninstall(self) -> None:
        sys.excepthook = self._previous

    def handle(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        log.critical("Unexpected error", exc_info=(exc_type, exc, tb))
        if self._showing or QApplication.instance() is None:
            return  # one dialog at a time; the log has every one
        self._showing = True
        try:
            show_crash_dialog(None, exc, tb, self._log_file)
        finally:
            self._showing = False


def show_crash_dialog(
    parent: QWidget | None,
    exc: BaseException,
    tb: TracebackType | None,
    log_file: Path | None,
) -> None:
    details = redact("".join(traceback.format_exception(type(exc), exc, tb)))
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle("Billing Admin — unexpected problem")
    box.setText(
        "Billing Admin hit a problem it did not expect. Nothing more was sent to Stripe.\n\n"
        "Please send the details below to the team that maintains Billing Admin."
    )
    where = f"\n\nThe full report is also in {log_file}." if log_file else ""
    box.setInformativeText(f"{type(exc).__name__}: {redact(str(exc))}{where}")
    box.setDetailedText(details)
    box.exec()
