"""Small pytest-qt helpers shared by the UI tests."""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

W = TypeVar("W", bound=QWidget)


def open_dialog(qtbot: QtBot, kind: type[W], timeout: int = 5000) -> W:
    """The visible top-level widget of type `kind`, once it has opened."""

    def find() -> W | None:
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, kind) and widget.isVisible():
                return widget
        return None

    qtbot.waitUntil(lambda: find() is not None, timeout=timeout)
    found = find()
    assert found is not None
    return found
