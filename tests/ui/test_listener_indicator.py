"""The status bar says when the team's listener was last seen, and warns when none has been
seen for 5 minutes or when two forward from two `stripe listen` sessions at once."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pytestqt.qtbot import QtBot

from admin_app.wiring import Runtime
from services.heartbeat import STALE_S, BeatState, HeartbeatWriter
from services.models import ListenerHeartbeat
from services.stripe_listen import ListenState
from ui.main_window import MainWindow
from ui.tasks import TaskRunner

#: `BILLING_ADMIN_SHOTS=DIR` keeps the screenshots (to look at them); else under tmp_path.
SHOTS_VAR = "BILLING_ADMIN_SHOTS"


def _row(login: str, host: str, seen_at: int, *, forwarding: bool, instance: str) -> None:
    ListenerHeartbeat.insert(
        instance=instance, login=login, host=host, pid=4242, kind="headless",
        started_at=seen_at - 3600, seen_at=seen_at, receiving=True,
        listen_state=(ListenState.FORWARDING if forwarding else ListenState.STOPPED).value,
        listen_session=f"{host}:4242" if forwarding else None, detail="receiver :4242",
    ).execute()  # fmt: skip


def _window(qtbot: QtBot, runtime: Runtime, tasks: TaskRunner) -> MainWindow:
    window = MainWindow(runtime.require_context(), tasks)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    return window


def _refreshed(window: MainWindow, tasks: TaskRunner) -> str:
    window.listener_indicator.refresh()
    tasks.wait_idle()
    return window.listener_indicator.text()


def _shot(window: MainWindow, tmp_path: Path, name: str) -> Path:
    out = Path(os.environ.get(SHOTS_VAR) or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    assert window.grab().save(str(path))
    return path


def test_no_listener_ever_then_a_live_one_then_silence(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    window = _window(qtbot, runtime, tasks)
    assert _refreshed(window, tasks) == "⚠ No listener has run"
    assert window.listener_indicator.toolTip().startswith("No listener has ever run")
    assert window.listener_indicator.property("warning") is True

    writer = HeartbeatWriter(
        runtime.database,
        lambda: BeatState(True, ListenState.FORWARDING, "receiver :4242 · forwarding"),
        login="svc_listen", kind="headless",
    )  # fmt: skip
    writer.beat()
    text = _refreshed(window, tasks)
    assert text == "Listener seen just now"
    assert "Last heartbeat: svc_listen@" in window.listener_indicator.toolTip()
    assert window.listener_indicator.property("warning") is False
    assert writer.problem == ""

    # The listener's machine lost power six minutes ago: no clean stop, no new heartbeat.
    ListenerHeartbeat.update(seen_at=int(time.time()) - STALE_S - 60).execute()
    assert _refreshed(window, tasks) == "⚠ No listener seen for 6 min"
    tip = window.listener_indicator.toolTip()
    assert tip.startswith("No listener seen for 6 min (last: svc_listen@")
    assert "not arriving" in tip
    assert window.listener_indicator.property("warning") is True
    _shot(window, tmp_path, "listener-silent")


def test_a_clean_stop_is_not_a_warning_until_five_minutes_pass(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    window = _window(qtbot, runtime, tasks)
    writer = HeartbeatWriter(
        runtime.database, lambda: BeatState(True, ListenState.STOPPED, "receiver :4242"),
        login="alee", kind="window",
    )  # fmt: skip
    writer.beat(stopped=True)
    text = _refreshed(window, tasks)
    assert text == "Listener seen just now"
    assert "alee@" in window.listener_indicator.toolTip()
    assert "(window)" in window.listener_indicator.toolTip()
    ListenerHeartbeat.update(seen_at=int(time.time()) - STALE_S).execute()
    assert _refreshed(window, tasks) == "⚠ No listener seen for 5 min"


def test_two_forwarding_listeners_are_named(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner, tmp_path: Path
) -> None:
    window = _window(qtbot, runtime, tasks)
    now = int(time.time())
    _row("svc_listen", "billing-srv", now - 5, forwarding=True, instance="a")
    _row("alee", "alee-laptop", now - 20, forwarding=True, instance="b")
    _row("old", "retired-box", now - 86400, forwarding=True, instance="c")  # long gone
    assert _refreshed(window, tasks) == "⚠ 2 listeners forwarding at once"
    tip = window.listener_indicator.toolTip()
    assert tip.startswith("2 listeners forward from separate `stripe listen` sessions")
    assert "svc_listen@billing-srv (headless)" in tip
    assert "alee@alee-laptop" in tip
    assert "retired-box" not in tip
    assert "Running now: svc_listen@billing-srv (headless), alee@alee-laptop" in tip
    _shot(window, tmp_path, "listener-two-sessions")

    # One of them stops forwarding: no warning any more.
    ListenerHeartbeat.update(listen_state=ListenState.STOPPED.value).where(
        ListenerHeartbeat.instance == "b"
    ).execute()
    text = _refreshed(window, tasks)
    assert text == "Listener seen just now"
    assert (
        "Last heartbeat: svc_listen@billing-srv (headless)" in window.listener_indicator.toolTip()
    )


def test_the_windows_own_listener_shows_up_once_it_beats(
    qtbot: QtBot, runtime: Runtime, tasks: TaskRunner
) -> None:
    window = _window(qtbot, runtime, tasks)
    window.listener_indicator.start()
    tasks.wait_idle()
    assert window.listener_indicator.text() == "⚠ No listener has run"
    listener = runtime.make_listener(port=0, use_cli=False)
    window.attach_listener(listener)
    listener.start(catch_up=False)
    try:
        qtbot.waitUntil(
            lambda: window.listener_indicator.text().startswith("Listener seen"), timeout=15_000
        )
        assert "(window)" in window.listener_indicator.toolTip()
    finally:
        listener.stop()
    (row,) = ListenerHeartbeat.select()
    assert row.stopped_at is not None
