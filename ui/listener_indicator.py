"""The status bar's "Listener seen 1 min ago" (who and where on hover), from the team's
heartbeat rows; red with ⚠ when no listener has been seen for 5 minutes, or when two forward
from two `stripe listen` sessions at once."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QWidget

from services.context import AppContext
from services.heartbeat import TeamListenerStatus
from ui.tasks import TaskRunner

#: Read again this often (a heartbeat is written every 30 s).
REFRESH_MS = 30_000
#: After this window's own listener changed state, once its heartbeat has been written.
SOON_MS = 2_000


class ListenerIndicator(QLabel):
    """Hidden until the first read; the whole story (who, where, when) on hover."""

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self._loading = False
        self._stopped = False
        self.status: TeamListenerStatus | None = None
        self.setObjectName("listenerIndicator")
        self.setVisible(False)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._soon = QTimer(self)
        self._soon.setSingleShot(True)
        self._soon.setInterval(SOON_MS)
        self._soon.timeout.connect(self.refresh)

    def refresh_soon(self) -> None:
        """Read again shortly (this window's own listener changed: its heartbeat follows)."""
        if not self._stopped and not self._soon.isActive():
            self._soon.start()

    def start(self) -> None:
        self.refresh()
        self._timer.start()

    def stop(self) -> None:
        """No more reads (the window is closing): later nudges are ignored too."""
        self._stopped = True
        self._timer.stop()
        self._soon.stop()

    def refresh(self) -> None:
        listeners = self._ctx.listeners
        if self._loading or self._stopped or listeners is None:
            return
        self._loading = True
        self._tasks.run(self, listeners.status, self._on_status_loaded, self._on_failed)

    def _on_status_loaded(self, status: TeamListenerStatus) -> None:
        self._loading = False
        self.status = status
        self.setText(status.line())
        self.setProperty("warning", bool(status.warning))
        self.setStyleSheet("color: #b3261e; font-weight: bold;" if status.warning else "")
        lines = [status.warning] if status.warning else []
        if status.running:
            lines.append("Running now: " + ", ".join(r.who() for r in status.running))
        if status.last_seen is not None:
            lines.append(f"Last heartbeat: {status.last_seen.who()} — {status.last_seen.detail}")
        lines.append("Every listener (a window or `admin-app listen`) writes a heartbeat.")
        self.setToolTip("\n".join(lines))
        self.setVisible(True)

    def _on_failed(self, _exc: BaseException) -> None:
        self._loading = False  # the next refresh tries again; the window's problems show elsewhere
