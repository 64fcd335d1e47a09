"""Running service calls off the GUI thread (Anki's `taskman`, reduced to what we need).

`TaskRunner.run(owner, fn, on_ok, on_err)` runs `fn()` on a worker thread and calls `on_ok(result)`
or `on_err(exc)` back on the GUI thread through a queued signal. When `owner` has been destroyed in
the meantime the callbacks are dropped, so a closed dialog never gets a late result.

Like Anki's `CollectionOp`, every task reports what it changed: the rows the services it called
noted (`services.changes`) come back as one `Changes`, announced by `changes_made` on the GUI
thread just before `on_ok`/`on_err` — whether or not the owner still lives, since the data did
change. Reads note nothing and announce nothing.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QTimer, Signal

from services.changes import Changes, collecting

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    owner: QObject
    on_ok: Callable[[Any], None] | None
    on_err: Callable[[BaseException], None] | None


class CancelToken:
    """Shared between the GUI and a work function so long work can stop between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    def is_cancelled(self) -> bool:
        return self._event.is_set()


class TaskRunner(QObject):
    """A small worker pool whose results come back as queued signals on the GUI thread."""

    # Emitted from worker threads; the receiver lives on the GUI thread, so Qt queues it.
    # Carries one (task id, ok, payload, changes) tuple.
    _finished = Signal(object)
    #: Emitted on the GUI thread with the `Changes` a finished task made (never empty).
    changes_made = Signal(object)
    #: Emitted with the number of tasks still running whenever it changes.
    busy_changed = Signal(int)
    #: Emitted on the GUI thread with an unexpected exception that had no `on_err`.
    unhandled_error = Signal(object)

    def __init__(self, max_workers: int = 4, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="task")
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._closed = False
        self._finished.connect(self._on_self_finished)

    @property
    def busy(self) -> int:
        return len(self._pending)

    def run(
        self,
        owner: QObject,
        fn: Callable[[], Any],
        on_ok: Callable[[Any], None] | None = None,
        on_err: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Run `fn` off the GUI thread; deliver the outcome to `owner`'s callbacks if it lives.

        After `shutdown` (the window is closing) new work is dropped: a signal still queued for
        a panel must not start a task on a pool that is gone."""
        if self._closed:
            log.debug("Dropped a task asked for after shutdown")
            return
        task_id = next(self._ids)
        self._pending[task_id] = _Pending(owner, on_ok, on_err)
        self.busy_changed.emit(len(self._pending))

        def work() -> None:
            with collecting() as noted:
                try:
                    result = fn()
                except BaseException as exc:  # delivered to on_err or the crash dialog
                    outcome: tuple[int, bool, object] = (task_id, False, exc)
                else:
                    outcome = (task_id, True, result)
            self._finished.emit((*outcome, noted.changes()))

        self._pool.submit(work)

    def wait_idle(self, timeout_ms: int = 30_000) -> bool:
        """Spin the event loop until no task is pending; False on timeout (screenshots, tests)."""
        loop = QEventLoop()
        timer = QTimer()
        timer.setSingleShot(True)
        timer.timeout.connect(loop.quit)
        timer.start(timeout_ms)
        while self._pending and timer.isActive():
            loop.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)
        QCoreApplication.processEvents()
        return not self._pending

    def shutdown(self) -> None:
        """Stop accepting work; running tasks finish, their results are dropped."""
        self._closed = True
        self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _on_self_finished(self, outcome: tuple[int, bool, object, Changes]) -> None:
        task_id, ok, payload, changes = outcome
        pending = self._pending.pop(task_id, None)
        self.busy_changed.emit(len(self._pending))
        if pending is None:
            return
        if changes:
            self.changes_made.emit(changes)
        if not shiboken6.isValid(pending.owner):
            log.debug("Dropped the result of task %d: its window is gone", task_id)
            return
        if ok:
            if pending.on_ok is not None:
                pending.on_ok(payload)
        elif pending.on_err is not None:
            assert isinstance(payload, BaseException)
            pending.on_err(payload)
        else:
            self.unhandled_error.emit(payload)
