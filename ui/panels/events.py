"""Stripe events as they arrive: type, object, status, source; the payload; Replay for admins."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from datetime import datetime

from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from services.changes import Changes
from services.context import AppContext
from services.errors import AppError
from services.events import MAX_ATTEMPTS, EventRow, ReplayReport
from services.permissions import Permission
from ui.dialogs import ask_first, denied_tooltip
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner

_RED = QColor("#b3261e")
_GREY = QColor("#7a7a7a")
ANY = "Any status"
FLAGGED = "flagged ⚑"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _status_colour(row: EventRow) -> QColor | None:
    if row.status in ("failed", "rejected") or row.flagged:
        return _RED
    return _GREY if row.status == "ignored" else None


COLUMNS: list[Column[EventRow]] = [
    Column("Received", lambda r: _when(r.received_at), sort_key=lambda r: r.received_at),
    Column("Type", lambda r: r.type),
    Column("Object", lambda r: r.object_id),
    Column(
        "Status",
        lambda r: r.status + (" ⚑" if r.flagged else ""),
        foreground=lambda r: _status_colour(r),
        tooltip=lambda r: "\n".join(filter(None, [r.flagged, r.last_error])) or r.status,
    ),
    Column("Source", lambda r: r.source),
    Column("Attempts", lambda r: str(r.attempts), sort_key=lambda r: r.attempts, numeric=True),
    Column("Event id", lambda r: r.evt_id),
]


def _search_text(row: EventRow) -> str:
    return f"{row.type} {row.object_id} {row.status} {row.evt_id} {row.last_error}"


class EventsPanel(ListPanel[EventRow]):
    title = "Events"
    noun = ("event", "events")
    search_placeholder = "Search type, object or event id (Ctrl+F)"
    empty_title = "No events yet"
    empty_hint = (
        "Stripe's events arrive here through the webhook receiver (and `stripe listen`), and "
        "are caught up every few minutes, so nothing is missed while the app is closed."
    )

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        self._ctx = ctx
        self._status: str | None = None
        super().__init__(tasks, self._load_rows, COLUMNS, _search_text, parent)
        self.status_combo = QComboBox()
        self.status_combo.addItems(
            [ANY, "applied", "failed", "rejected", "ignored", "received", FLAGGED]
        )
        self.status_combo.currentTextChanged.connect(self._on_status_combo_changed)
        self.replay_button = QPushButton("Replay")
        self.replay_button.setEnabled(False)
        self.replay_button.clicked.connect(self.replay_selected)
        self._can_replay = ctx.authority.can(Permission.REPLAY_EVENTS)
        if not self._can_replay:
            self.replay_button.setToolTip(denied_tooltip(ctx.actor.role, Permission.REPLAY_EVENTS))
        self.replay_failed_button = QPushButton("Replay failed")
        self.replay_failed_button.setToolTip(
            "Apply every failed event again that Stripe would still retry; events that failed "
            f"{MAX_ATTEMPTS} times or are older than 3 days are flagged for a person instead"
        )
        self.replay_failed_button.clicked.connect(self.replay_all_failed)
        self.replay_failed_button.setEnabled(self._can_replay)
        if not self._can_replay:
            self.replay_failed_button.setToolTip(self.replay_button.toolTip())
        self.toolbar.addWidget(self.status_combo)
        self.toolbar.addWidget(self.replay_button)
        self.toolbar.addWidget(self.replay_failed_button)
        self.listener_label = QLabel("Listener: not running in this window")
        self.listener_label.setObjectName("hintText")
        self.payload = QPlainTextEdit()
        self.payload.setReadOnly(True)
        self.payload.setPlaceholderText("Select an event to see what Stripe sent.")
        self.payload.setFont(QFont("monospace"))
        splitter = QSplitter()
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.removeWidget(self.stack)
        splitter.addWidget(self.stack)
        splitter.addWidget(self.payload)
        splitter.setSizes([760, 400])
        row = QHBoxLayout()
        row.addWidget(self.listener_label, 1)
        layout.insertLayout(1, row)
        layout.addWidget(splitter, 1)
        self.row_selected.connect(self._on_self_row_selected)
        self.selection_kept.connect(self._on_self_selection_kept)

    def column_widths(self) -> Sequence[int]:
        return (140, 230, 170, 70, 70, 60, 200)

    key_attr = "evt_id"

    def row_key(self, row: EventRow) -> object:
        return row.evt_id

    def rows_changed(self, changes: Changes) -> Set[object] | None:
        return None if changes.everything else changes.events

    def load_rows_by_key(self, keys: Set[object]) -> Mapping[object, EventRow | None]:
        ids = [str(k) for k in keys]
        if self._status == FLAGGED:
            rows = self._ctx.events.events(self._ctx.authority, flagged=True, ids=ids)
        else:
            rows = self._ctx.events.events(self._ctx.authority, status=self._status, ids=ids)
        found: dict[object, EventRow | None] = {row.evt_id: row for row in rows}  # newest first
        for key in keys:
            found.setdefault(key, None)
        return found

    def show_listener(self, text: str) -> None:
        self.listener_label.setText(text)

    def replay_selected(self) -> None:
        """Asks first: a replay re-runs the event's handler (it cannot apply anything twice)."""
        row = self.current_row()
        if row is None or not self._can_replay:
            return
        self.confirm_box = ask_first(
            self, "Replay event",
            f"Apply {row.type} ({row.evt_id}) again?\n\nIts handler runs again with what "
            "Stripe says now. Nothing is applied twice: an event already applied stays applied.",
            "Replay", lambda: self._replay(row),
        )  # fmt: skip

    def _replay(self, row: EventRow) -> None:
        self.replay_button.setEnabled(False)
        self._tasks.run(
            self,
            lambda: self._ctx.events.replay(row.evt_id, self._ctx.authority),
            lambda result: self._after_replay(f"Replayed {row.evt_id}: {result.value}"),
            self._on_replay_failed,
        )

    def replay_all_failed(self) -> None:
        if not self._can_replay:
            return
        self.replay_failed_button.setEnabled(False)

        def done(report: ReplayReport) -> None:
            self.replay_failed_button.setEnabled(True)
            self._after_replay(report.summary())

        def failed(exc: BaseException) -> None:
            self.replay_failed_button.setEnabled(True)
            self._on_replay_failed(exc)

        self._tasks.run(
            self, lambda: self._ctx.events.replay_failed(self._ctx.authority), done, failed
        )

    def _load_rows(self) -> list[EventRow]:
        if self._status == FLAGGED:
            return self._ctx.events.events(self._ctx.authority, flagged=True)
        return self._ctx.events.events(self._ctx.authority, status=self._status)

    def _after_replay(self, message: str) -> None:
        self.load_failed.emit(message)  # shown in the status bar
        self.refresh()

    def _on_replay_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self._after_replay(f"Replay failed: {exc}")

    def _on_status_combo_changed(self, text: str) -> None:
        self._status = None if text == ANY else text
        self.refresh()

    def _on_self_selection_kept(self, row: EventRow, changed: bool) -> None:
        if changed:
            self._on_self_row_selected(row)

    def _on_self_row_selected(self, row: EventRow | None) -> None:
        self.replay_button.setEnabled(self._can_replay and row is not None)
        if row is None:
            self.payload.clear()
            return
        self._tasks.run(
            self,
            lambda: self._ctx.events.payload(self._ctx.authority, row.evt_id),
            self.payload.setPlainText,
            lambda exc: self.payload.setPlainText(str(exc)),
        )
