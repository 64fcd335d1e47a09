"""Reconcile: do the books match Stripe? The findings, and their repairs, in the window.

A status-bar button shows the last result ("Books match · 07:00", "3 differences · 07:00") for
finance and admins; it opens the Reconcile view, which runs the comparison off the GUI thread
with progress, lists each difference (severity, kind, objects, amounts, the fix it offers) and
lets an admin repair one or all — with a reason, for the audit log. A *credited, not paid*
finding is never repaired automatically: *Claw back…* takes the credits back explicitly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QDate, QObject, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.errors import AppError
from services.money import format_amount
from services.permissions import Permission
from services.reconcile import Finding, Kind, ReconcileReport, RepairReport, Severity
from ui.dialogs import ask_first, denied_tooltip
from ui.formatting import format_datetime
from ui.table_model import Column, RowTableModel
from ui.tasks import TaskRunner

_COLOUR = {
    Severity.CRITICAL: QColor("#b3261e"),
    Severity.HIGH: QColor("#b3261e"),
    Severity.MEDIUM: QColor("#8a5a00"),
}

COLUMNS: list[Column[Finding]] = [
    Column(
        "Severity",
        lambda f: f.severity.value,
        foreground=lambda f: _COLOUR.get(f.severity),
        sort_key=lambda f: list(Severity).index(f.severity),
    ),
    Column("Difference", lambda f: f.kind.value),
    Column("Object", lambda f: f.target),
    Column("Customer", lambda f: f.customer_id),
    Column(
        "Credits",
        lambda f: f"{f.credits:,}" if f.credits is not None else "",
        sort_key=lambda f: f.credits or 0,
        numeric=True,
    ),
    Column(
        "Amount",
        lambda f: format_amount(f.amount, f.currency) if f.amount is not None else "",
        sort_key=lambda f: f.amount or 0,
        numeric=True,
    ),
    Column("What", lambda f: f.summary, tooltip=lambda f: f.summary),
    Column("Fix", lambda f: f.fix or "a person decides", tooltip=lambda f: f.fix),
]


def status_text(last: Any) -> str:
    """ "Books match · 07:00", "3 differences · 07:00", or "Not reconciled yet"."""
    if not last:
        return "Not reconciled yet"
    at = datetime.fromtimestamp(int(last.get("at") or 0)).strftime("%H:%M")
    return f"{last.get('line') or '?'} · {at}"


class _Progress(QObject):
    said = Signal(str)


class ReconcileDialog(QDialog):
    """Runs the comparison and shows the findings; admins repair (with a reason)."""

    finished_run = Signal(object)  # ReconcileReport
    repaired = Signal(object)  # RepairReport

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self.report: ReconcileReport | None = None
        self._may_repair = ctx.authority.can(Permission.REPAIR_BOOKS)
        self.setWindowTitle("Reconcile with Stripe")
        self.resize(1180, 520)
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Compares the credits, top-ups, invoices and events here with what Stripe says: "
            "every paid top-up credited once, every purchase paid for, every refund and lost "
            "dispute taken back, the invoices as Stripe has them, no event left unapplied."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        row.addWidget(QLabel("Since"))
        self.since_edit = QDateEdit(QDate.currentDate().addDays(-30))
        self.since_edit.setCalendarPopup(True)
        self.since_edit.setDisplayFormat("yyyy-MM-dd")
        row.addWidget(self.since_edit)
        self.run_button = QPushButton("Compare now")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.run)
        row.addWidget(self.run_button)
        row.addStretch(1)
        layout.addLayout(row)
        self.model: RowTableModel[Finding] = RowTableModel(COLUMNS, lambda f: f.summary)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table, 1)
        self.status = QLabel("Not compared yet in this window.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        reason_row = QHBoxLayout()
        reason_row.addWidget(QLabel("Reason (for the audit log)"))
        self.reason_edit = QLineEdit()
        self.reason_edit.setPlaceholderText("e.g. monthly close; listener was down on the 3rd")
        reason_row.addWidget(self.reason_edit, 1)
        layout.addLayout(reason_row)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        role = QDialogButtonBox.ButtonRole.ActionRole
        self.repair_one = buttons.addButton("Repair selected", role)
        self.repair_all = buttons.addButton("Repair all", role)
        self.claw_back = buttons.addButton("Claw back…", role)
        self.repair_one.clicked.connect(lambda: self._repair(selected_only=True))
        self.repair_all.clicked.connect(lambda: self._repair(selected_only=False))
        self.claw_back.clicked.connect(self._claw_back)
        if not self._may_repair:
            why = denied_tooltip(ctx.actor.role, Permission.REPAIR_BOOKS)
            for button in (self.repair_one, self.repair_all, self.claw_back):
                button.setToolTip(why)
            self.reason_edit.setEnabled(False)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self._progress = _Progress(self)
        self._progress.said.connect(self.status.setText)
        self._update_buttons()

    # ---- comparing
    def run(self) -> None:
        self.run_button.setEnabled(False)
        self.status.setText("Reading Stripe…")
        d = self.since_edit.date()
        since = int(datetime(d.year(), d.month(), d.day(), tzinfo=UTC).timestamp())
        emit = self._progress.said.emit
        self._tasks.run(
            self,
            lambda: self._ctx.reconcile.run(since, progress=emit),
            self._on_report,
            self._on_failed,
        )

    def _on_report(self, report: ReconcileReport) -> None:
        self.report = report
        self.model.set_rows(report.findings)
        self.run_button.setEnabled(True)
        checked = ", ".join(f"{n:,} {what}" for what, n in report.checked.items())
        when = format_datetime(report.at)
        self.status.setText(
            f"{report.line()} — {when}; checked {checked} in {report.seconds:.1f} s."
            if report.findings
            else f"Books match — {when}; checked {checked} in {report.seconds:.1f} s."
        )
        self._update_buttons()
        self.finished_run.emit(report)

    def _on_failed(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.run_button.setEnabled(True)
        self.status.setText(f"Could not compare: {exc}")
        self._update_buttons()

    # ---- repairing
    def _selected(self) -> Finding | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()) if rows else None

    def _update_buttons(self, *_args: object) -> None:
        busy = not self.run_button.isEnabled()
        chosen = self._selected()
        has = bool(self.report and self.report.findings)
        self.repair_all.setEnabled(self._may_repair and has and not busy)
        self.repair_one.setEnabled(
            self._may_repair and chosen is not None and chosen.kind is not Kind.CREDITED_NOT_PAID
            and not busy
        )  # fmt: skip
        self.claw_back.setEnabled(
            self._may_repair and chosen is not None and chosen.kind is Kind.CREDITED_NOT_PAID
            and not busy
        )  # fmt: skip

    def _reason(self) -> str | None:
        reason = self.reason_edit.text().strip()
        if not reason:
            self.status.setText("Write a reason first: repairs are recorded in the audit log.")
            self.reason_edit.setFocus()
            return None
        return reason

    def _repair(self, *, selected_only: bool) -> None:
        reason = self._reason()
        report = self.report
        if reason is None or report is None:
            return
        chosen = self._selected()
        only = [chosen.target] if selected_only and chosen is not None else None
        self.run_button.setEnabled(False)
        self._update_buttons()
        self.status.setText("Repairing…")
        self._tasks.run(
            self,
            lambda: self._ctx.reconcile.repair(report, reason, only),
            self._on_repaired,
            self._on_failed,
        )

    def _on_repaired(self, done: RepairReport) -> None:
        self.repaired.emit(done)
        self.run_button.setEnabled(True)
        self.status.setText(
            f"Repaired {len(done.repaired)}; left for a person {len(done.skipped)}; "
            f"failed {len(done.failed)}. Comparing again…"
        )
        self.run()

    def _claw_back(self) -> None:
        chosen = self._selected()
        reason = self._reason()
        if chosen is None or reason is None:
            return

        def go() -> None:
            self.run_button.setEnabled(False)
            self._tasks.run(
                self,
                lambda: self._ctx.reconcile.claw_back_unpaid(chosen.target, reason),
                lambda _credits: self._on_repaired(RepairReport([chosen.target], [], [])),
                self._on_failed,
            )

        self.confirm_box = ask_first(
            self, "Claw back credits",
            f"Take back {chosen.credits or 0:,} credits from {chosen.customer_id}?\n\n"
            f"{chosen.summary}\n\nThe ledger keeps both entries; this is recorded in the audit "
            "log with your reason.",
            "Claw back", go, warning=True,
        )  # fmt: skip


class ReconcileIndicator(QPushButton):
    """The last reconcile in the status bar; opens the Reconcile view (finance and admins)."""

    #: A repair (or clawback) changed the books: the window reloads what it shows.
    repaired = Signal()

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__("Not reconciled yet", parent)
        self._ctx = ctx
        self._tasks = tasks
        self.dialog: ReconcileDialog | None = None
        self.setObjectName("reconcileIndicator")
        self.setFlat(True)
        self.setToolTip("Do the books match Stripe? Click to compare and see the differences.")
        self.setVisible(ctx.authority.can(Permission.RECONCILE))
        self.clicked.connect(self.open_dialog)

    def refresh(self) -> None:
        if not self.isVisibleTo(self.parentWidget() or self):
            return
        self._tasks.run(self, self._ctx.reconcile.last, self._show, lambda _exc: None)

    def _show(self, last: Any) -> None:
        self.setText(status_text(last))
        alarming = bool(last and last.get("findings"))
        self.setStyleSheet("color: #b3261e;" if alarming else "")

    def open_dialog(self) -> None:
        if self.dialog is None:
            self.dialog = ReconcileDialog(self._ctx, self._tasks, self.window())
            self.dialog.finished_run.connect(lambda _r: self.refresh())
            self.dialog.repaired.connect(lambda _r: self.repaired.emit())
        self.dialog.show()
