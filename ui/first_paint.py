"""When did the Customers panel first paint with data, and how much memory did that take?

For `bench/cold_start.py`: with `BILLING_ADMIN_FIRST_PAINT_FILE=PATH` set, the window opens on
Customers and this probe writes PATH (JSON, replaced whole) twice: at the first paint of the
table with rows in it (`first_paint`, seconds since the epoch, and the RSS then: the first
screen of customers, see `ListPanel.first_screen_rows`), and once the start-up work has
settled (every task done, every page built, the whole list and its search index loaded:
`settled` and its RSS).
Unset, nothing is installed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:  # the cold-start baseline imports this module: it must stay as light as Qt
    from ui.panels.base import ListPanel
    from ui.tasks import TaskRunner

ENV_VAR = "BILLING_ADMIN_FIRST_PAINT_FILE"
_PAINT = QEvent.Type.Paint


def rss_bytes() -> int | None:
    """This process's resident set size now (Linux /proc), or None where it cannot be read."""
    try:
        resident = Path("/proc/self/statm").read_text(encoding="ascii").split()[1]
    except (OSError, IndexError):
        return None
    return int(resident) * os.sysconf("SC_PAGE_SIZE")


class FirstPaintProbe(QObject):
    """Watches `panel`'s table for its first paint with rows, then `tasks` for idleness."""

    def __init__(self, panel: ListPanel[Any], tasks: TaskRunner, path: Path) -> None:
        super().__init__(panel)
        self._panel = panel
        self._tasks = tasks
        self._path = path
        self.record: dict[str, Any] = {}
        panel.table.viewport().installEventFilter(self)
        # Polled: a task's result arrives just after the runner says it is idle.
        self._settle = QTimer(self)
        self._settle.setInterval(50)
        self._settle.timeout.connect(self._on_settle_timeout)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == _PAINT and not self.record and self._panel.model.rowCount() > 0:
            self.record = {
                "first_paint": time.time(),
                "rows": self._panel.model.total_count,
                "rss_at_first_paint": rss_bytes(),
            }
            self._write()
            self._panel.table.viewport().removeEventFilter(self)
            self._settle.start()
        return False

    def _on_settle_timeout(self) -> None:
        if self._tasks.busy == 0 and getattr(self._panel.model, "has_haystacks", True):
            self._settle.stop()
            self.record.update(settled=time.time(), rss_settled=rss_bytes())
            self._write()

    def _write(self) -> None:
        temporary = self._path.with_name(self._path.name + ".part")
        temporary.write_text(json.dumps(self.record), encoding="utf-8")
        temporary.replace(self._path)


class _AfterPaint(QObject):
    def __init__(self, widget: QWidget, then: Callable[[], None]) -> None:
        super().__init__(widget)
        self._then: Callable[[], None] | None = then
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == _PAINT and self._then is not None:
            then, self._then = self._then, None
            watched.removeEventFilter(self)
            QTimer.singleShot(0, then)  # once this paint is on screen
        return False


def after_first_paint(widget: QWidget, then: Callable[[], None]) -> None:
    """Call `then` on the GUI thread just after `widget` first paints (install before show)."""
    _AfterPaint(widget, then)


def install_from_environment(panel: ListPanel[Any], tasks: TaskRunner) -> FirstPaintProbe | None:
    """The probe when `BILLING_ADMIN_FIRST_PAINT_FILE` names a file, else None."""
    target = os.environ.get(ENV_VAR, "").strip()
    return FirstPaintProbe(panel, tasks, Path(target)) if target else None
