"""The task runner: work off the GUI thread, results back on it, dropped for dead owners."""

from __future__ import annotations

import threading

import shiboken6
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from services.errors import ValidationError
from ui.tasks import TaskRunner


def test_result_arrives_on_the_gui_thread(qtbot: QtBot, tasks: TaskRunner) -> None:
    owner = QObject()
    gui = threading.get_ident()
    seen: dict[str, int] = {}

    def work() -> int:
        seen["worker"] = threading.get_ident()
        return 42

    def on_ok(value: int) -> None:
        seen["callback"] = threading.get_ident()
        seen["value"] = value

    tasks.run(owner, work, on_ok)
    qtbot.waitUntil(lambda: "value" in seen, timeout=5000)
    assert seen["value"] == 42
    assert seen["callback"] == gui
    assert seen["worker"] != gui


def test_errors_go_to_on_err(qtbot: QtBot, tasks: TaskRunner) -> None:
    owner = QObject()
    errors: list[BaseException] = []

    def work() -> None:
        raise ValidationError("bad input")

    tasks.run(owner, work, on_err=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    assert isinstance(errors[0], ValidationError)


def test_unhandled_errors_are_announced(qtbot: QtBot, tasks: TaskRunner) -> None:
    owner = QObject()

    def work() -> None:
        raise RuntimeError("a bug")

    with qtbot.waitSignal(tasks.unhandled_error, timeout=5000) as blocker:
        tasks.run(owner, work)
    assert isinstance(blocker.args[0], RuntimeError)


def test_callbacks_are_dropped_when_the_owner_is_gone(qtbot: QtBot, tasks: TaskRunner) -> None:
    owner = QObject()
    release = threading.Event()
    called: list[object] = []
    tasks.run(owner, lambda: release.wait(5), called.append, called.append)
    shiboken6.delete(owner)
    release.set()
    assert tasks.wait_idle(5000)
    assert called == []


def test_work_submitted_after_shutdown_is_dropped(qapp: object) -> None:
    from PySide6.QtCore import QObject

    from ui.tasks import TaskRunner

    runner = TaskRunner()
    owner = QObject()
    runner.shutdown()
    ran: list[int] = []
    runner.run(owner, lambda: ran.append(1), lambda _r: ran.append(2))  # e.g. a late timer
    assert runner.busy == 0
    assert ran == []
