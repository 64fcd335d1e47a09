"""UI fixtures: the real composition root over a sandbox and a database file under tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from admin_app.paths import AppPaths
from admin_app.wiring import Options, Runtime, build_runtime
from stripe_sandbox import SandboxServer
from ui.main_window import MainWindow
from ui.tasks import TaskRunner


@pytest.fixture
def app_paths(tmp_path: Path) -> AppPaths:
    return AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")


@pytest.fixture
def runtime(sandbox: SandboxServer, app_paths: AppPaths, tmp_path: Path) -> Iterator[Runtime]:
    """No key configured and --api-base set: sandbox mode against the test sandbox."""
    rt = build_runtime(
        Options(db=f"sqlite:///{tmp_path / 'ui.sqlite3'}", api_base=sandbox.url), app_paths
    )
    yield rt
    rt.close()


@pytest.fixture
def tasks(qapp: object) -> Iterator[TaskRunner]:
    runner = TaskRunner()
    yield runner
    runner.shutdown()


@pytest.fixture
def synced_window(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, sandbox: SandboxServer
) -> MainWindow:
    """The main window over the demo data, after its first sync."""
    sandbox.seed_demo()
    window = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.sync_finished, timeout=30_000):
        window.start(sync_first=True)
    tasks.wait_idle()
    # Pages not shown update when shown (stale until then); the tests read them all: F5.
    window.flush_changes()
    window.refresh()
    tasks.wait_idle()
    return window
