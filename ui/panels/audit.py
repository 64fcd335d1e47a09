"""The audit log: who did what, when, with what outcome — filterable and exportable to CSV."""

from __future__ import annotations

from collections.abc import Sequence, Set
from datetime import UTC, date, datetime, time
from pathlib import Path

from PySide6.QtCore import QDate, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.audit import AuditFilter, AuditRow, describe_params
from services.changes import Changes
from services.context import AppContext
from services.errors import AppError
from services.permissions import Permission
from ui.dialogs import denied_tooltip
from ui.panels.base import ListPanel
from ui.table_model import Column
from ui.tasks import TaskRunner

MAX_ROWS = 10_000  # newest first; narrow the filters to see older records
ANY = "Any"

_RED = QColor("#b3261e")
_AMBER = QColor("#8a6100")


def _day(value: QDate) -> date:
    return date(value.year(), value.month(), value.day())


def _when(row: AuditRow) -> str:
    return datetime.fromtimestamp(row.at / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _outcome_colour(row: AuditRow) -> QColor | None:
    return {"denied": _RED, "failed": _RED, "refused": _AMBER}.get(row.outcome)


def _details(row: AuditRow) -> str:
    parts = [describe_params(row.params)] if row.params else []
    if row.reason:
        parts.append(f"reason: {row.reason}")
    if row.error:
        parts.append(row.error)
    return "  ·  ".join(parts)


COLUMNS: list[Column[AuditRow]] = [
    Column("When", _when, sort_key=lambda r: (r.at, r.id)),
    Column("Operator", lambda r: r.operator),
    Column("Role", lambda r: r.role),
    Column("Action", lambda r: r.action),
    Column("Target", lambda r: r.target),
    Column("Outcome", lambda r: r.outcome, foreground=_outcome_colour),
    Column("Details", _details, tooltip=_details),
    Column("Stripe request", lambda r: r.stripe_request_id),
]


def _search_text(row: AuditRow) -> str:
    return f"{row.operator} {row.action} {row.target} {row.outcome} {_details(row)}"


class AuditPanel(ListPanel[AuditRow]):
    title = "Audit log"
    noun = ("record", "records")
    search_placeholder = "Search shown records (Ctrl+F)"
    empty_title = "No audit records"
    empty_hint = (
        "Every change made here or in Stripe, and every refused attempt, is recorded in this "
        "log. Nothing matches the filters above."
    )

    #: Emitted after an export, with a message for the status bar.
    exported = Signal(str)

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        self._ctx = ctx
        self._filter = AuditFilter(limit=MAX_ROWS)
        super().__init__(tasks, self._load_rows, COLUMNS, _search_text, parent)
        self.operator_combo = QComboBox()
        self.action_combo = QComboBox()
        for combo in (self.operator_combo, self.action_combo):
            combo.addItem(ANY)
            combo.setMinimumWidth(150)
            combo.currentIndexChanged.connect(self._on_filter_changed)
        self.target_edit = QLineEdit()
        self.target_edit.setPlaceholderText("Target id (cus_…, in_…)")
        self.target_edit.editingFinished.connect(self.refresh)
        self.use_dates = QCheckBox("From")
        self.date_from = QDateEdit(QDate.currentDate().addDays(-30))
        self.date_to = QDateEdit(QDate.currentDate())
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.dateChanged.connect(self._on_filter_changed)
        self.use_dates.toggled.connect(self._on_filter_changed)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.clicked.connect(self._on_export_clicked)
        if not ctx.authority.can(Permission.EXPORT):
            self.export_button.setEnabled(False)
            self.export_button.setToolTip(denied_tooltip(ctx.actor.role, Permission.EXPORT))

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Operator"))
        bar.addWidget(self.operator_combo)
        bar.addWidget(QLabel("Action"))
        bar.addWidget(self.action_combo)
        bar.addWidget(self.target_edit)
        bar.addWidget(self.use_dates)
        bar.addWidget(self.date_from)
        bar.addWidget(QLabel("to"))
        bar.addWidget(self.date_to)
        bar.addStretch(1)
        bar.addWidget(self.export_button)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertLayout(1, bar)

    def column_widths(self) -> Sequence[int]:
        return (150, 110, 70, 150, 170, 80, 350, 160)

    def row_key(self, row: AuditRow) -> object:
        return row.id

    def rows_changed(self, changes: Changes) -> Set[object] | None:
        # Read with its filters and a row limit: reloaded whole when something was audited.
        return None if changes.everything or changes.audit else frozenset()

    def current_filter(self) -> AuditFilter:
        """The filters as chosen on screen (read on the GUI thread)."""
        since = until = None
        if self.use_dates.isChecked():
            start = _day(self.date_from.date())
            end = _day(self.date_to.date())
            since = int(datetime.combine(start, time(), UTC).timestamp() * 1000)
            until = int(datetime.combine(end, time.max, UTC).timestamp() * 1000)
        operator = self.operator_combo.currentText()
        action = self.action_combo.currentText()
        return AuditFilter(
            operator=None if operator == ANY else operator,
            action=None if action == ANY else action,
            target=self.target_edit.text().strip() or None,
            since_ms=since,
            until_ms=until,
            limit=MAX_ROWS,
        )

    def refresh(self) -> None:
        if hasattr(self, "operator_combo"):  # not yet while the base class builds the panel
            self._filter = self.current_filter()
        super().refresh()

    def export_to(self, path: Path) -> None:
        """Export what the filters select (not only what is shown) to CSV, off the GUI thread."""
        flt = self.current_filter()
        flt = AuditFilter(flt.operator, flt.action, flt.target, flt.since_ms, flt.until_ms)
        self.export_button.setEnabled(False)
        self._tasks.run(
            self,
            lambda: self._ctx.audit.export_csv(path, flt),
            lambda n: self._on_export_done(f"Exported {n} audit records to {path}"),
            self._on_export_failed,
        )

    # ---- worker side
    def _load_rows(self) -> tuple[list[AuditRow], list[str], list[str]]:
        rows = self._ctx.audit.records(self._filter)
        operators = sorted({op.login for op in self._ctx.operators.all()})
        return rows, operators, self._ctx.audit.actions()

    # ---- slots
    def _on_load_ok(self, result: object) -> None:
        assert isinstance(result, tuple)
        rows, operators, actions = result
        for combo, values in ((self.operator_combo, operators), (self.action_combo, actions)):
            current = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(ANY)
            combo.addItems(values)
            combo.setCurrentText(current if current in values else ANY)
            combo.blockSignals(False)
        super()._on_load_ok(rows)

    def _on_filter_changed(self, *_: object) -> None:
        self.refresh()

    def _on_export_clicked(self) -> None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export audit log", "audit.csv", "CSV files (*.csv)"
        )
        if name:
            self.export_to(Path(name))

    def _on_export_done(self, message: str) -> None:
        self.export_button.setEnabled(True)
        self.exported.emit(message)

    def _on_export_failed(self, exc: BaseException) -> None:
        self.export_button.setEnabled(True)
        if not isinstance(exc, AppError):
            raise exc
        self.exported.emit(f"Export failed: {exc}")
