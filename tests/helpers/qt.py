"""Small pytest-qt helpers shared by the UI tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QEventLoop, QTimer
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


def spin_until(predicate: Callable[[], bool], timeout_ms: int = 10_000) -> None:
    """Run Qt's event loop until `predicate()` holds (checked every 20 ms), else fail.

    For waits on worker threads (a receiver, a sync): `qtbot.waitUntil` waits in `QTest.qWait`,
    which holds the GIL and slows those threads ~100x (docs/platform-bugs.md). One
    `QEventLoop.exec()` also makes one call into Qt, not thousands of `processEvents()`.
    """
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(20)
    poll.timeout.connect(lambda: loop.quit() if predicate() else None)
    give_up = QTimer()
    give_up.setSingleShot(True)
    give_up.timeout.connect(loop.quit)
    if predicate():
        return
    poll.start()
    give_up.start(timeout_ms)
    loop.exec()
    poll.stop()
    give_up.stop()
    if not predicate():
        raise AssertionError(f"not true within {timeout_ms} ms: {predicate}")
