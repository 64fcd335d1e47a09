"""Unconfirmed Stripe requests: a status-bar indicator and the small list it opens.

A request whose answer was lost may or may not have happened in Stripe. The indicator says how
many there are ("2 unconfirmed requests") so nobody guesses; the list says what, who, when,
with which idempotency key, and the Stripe object if an event has named it since. Running the
same action again resolves one (Stripe replays the first answer).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.journal import JournalEntry
from ui.formatting import format_datetime
from ui.table_model import Column, RowTableModel
from ui.tasks import TaskRunner

#: How often the indicator re-reads the journal besides on `data_changed` (another process,
#: or a dialog that failed without changing data, may have added an entry).
REFRESH_MS = 15_000


def _state(e: JournalEntry) -> str:
    if e.outcome == "pending":
        return "no answer yet"
    if not e.replayable():
        return "unknown (over 24 h: check in Stripe)"
    return "unknown: run it again"


COLUMNS: list[Column[JournalEntry]] = [
    Column("When", lambda e: format_datetime(e.created_at), sort_key=lambda e: e.created_at),
    Column("Who", lambda e: e.operator),
    Column("What", lambda e: e.summary, tooltip=lambda e: e.action),
    Column("State", _state, tooltip=lambda e: e.error),
    Column("Tries", lambda e: str(e.attempts), sort_key=lambda e: e.attempts, numeric=True),
    Column("Stripe object", lambda e: e.found_object_id or "not seen yet"),
    Column("Idempotency key", lambda e: e.idempotency_key),
    Column("#", lambda e: str(e.id), sort_key=lambda e: e.id, numeric=True),
]


def indicator_text(count: int) -> str:
    return f"⚠ {count} unconfirmed request{'s' if count != 1 else ''}"


class JournalDialog(QDialog):
    """The unconfirmed requests, newest first (read off the GUI thread)."""

    loaded = Signal(int)

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self.setWindowTitle("Unconfirmed Stripe requests")
        self.resize(1260, 360)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Stripe's answer to these requests was lost, so nobody knows yet whether they "
            "happened. Run the same action again (same details, within 24 hours): it re-uses "
            "the request's idempotency key, so Stripe replays its first answer instead of doing "
            "it twice. An admin can resolve one by hand with `admin-app journal forget ID "
            "--reason …`."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.model: RowTableModel[JournalEntry] = RowTableModel(
            COLUMNS, lambda e: f"{e.summary} {e.operator} {e.idempotency_key}"
        )
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(self.table, 1)
        self.status = QLabel("Loading…")
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.reload_button = buttons.addButton("Reload", QDialogButtonBox.ButtonRole.ActionRole)
        self.reload_button.clicked.connect(self.reload)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.reload()

    def reload(self) -> None:
        journal = self._ctx.journal
        self._tasks.run(self, journal.entries, self._on_entries_loaded, self._on_load_failed)

    def _on_entries_loaded(self, entries: list[JournalEntry]) -> None:
        self.model.set_rows(entries)
        self.status.setText(
            "Nothing unconfirmed: every request's outcome is known."
            if not entries
            else f"{len(entries)} unconfirmed."
        )
        self.loaded.emit(len(entries))

    def _on_load_failed(self, exc: BaseException) -> None:
        self.status.setText(f"Could not read the journal: {exc}")


class JournalIndicator(QPushButton):
    """ "⚠ 2 unconfirmed requests" in the status bar; hidden while there are none."""

    count_changed = Signal(int)

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self._loading = False
        self.count = 0
        self.dialog: JournalDialog | None = None
        self.setObjectName("journalIndicator")
        self.setFlat(True)
        self.setToolTip("Stripe requests whose outcome is not known yet: click to see them.")
        self.setVisible(False)
        self.clicked.connect(self.open_dialog)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def start(self) -> None:
        self.refresh()
        self._timer.start()

    def refresh(self) -> None:
        if self._loading:
            return
        self._loading = True
        journal = self._ctx.journal
        self._tasks.run(self, journal.unconfirmed_count, self._on_count_loaded, self._on_failed)

    def open_dialog(self) -> None:
        if self.dialog is None:
            self.dialog = JournalDialog(self._ctx, self._tasks, self.window())
            self.dialog.loaded.connect(self._on_count_loaded)
        else:
            self.dialog.reload()
        self.dialog.show()

    def _on_count_loaded(self, count: int) -> None:
        self._loading = False
        changed = count != self.count
        self.count = count
        self.setText(indicator_text(count))
        self.setVisible(count > 0)
        if changed:
            self.count_changed.emit(count)

    def _on_failed(self, _exc: BaseException) -> None:
        self._loading = False  # the next refresh tries again; the window's problems show elsewhere
