"""Operators: who may use Billing Admin and in which role (admins manage, everyone may look)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.errors import AppError
from services.operators import OperatorInfo
from services.permissions import Permission, Role
from ui.dialogs import add_live_banner, denied_tooltip
from ui.tasks import TaskRunner

_ROLE_HELP = {
    Role.FINANCE: "browse, export, read the audit log",
    Role.SUPPORT: "browse, issue paid top-up and portal links, edit customers",
    Role.ADMIN: "everything: charge, grant credits, catalog, settings, operators",
}


class OperatorsDialog(QDialog):
    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Operators")
        self.resize(760, 480)
        self._ctx = ctx
        self._tasks = tasks
        self._operators: list[OperatorInfo] = []
        self._select_after_load: str | None = None  # the login to select once reloaded
        may_manage = ctx.authority.can(Permission.MANAGE_OPERATORS)

        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Login", "Name", "Role", "Status"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._on_table_selection_changed)

        self.login_edit = QLineEdit()
        where = "database login" if ctx.database_label.startswith("postgres") else "OS login"
        self.login_edit.setPlaceholderText(f"their {where}, e.g. jsmith")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Display name (optional)")
        self.role_combo = QComboBox()
        for role in Role:
            self.role_combo.addItem(f"{role.label} — {_ROLE_HELP[role]}", role)
        self.add_button = QPushButton("Add operator")
        self.add_button.clicked.connect(self._on_add_clicked)

        self.set_role_button = QPushButton("Give selected the role above")
        self.set_role_button.clicked.connect(self._on_set_role_clicked)
        self.toggle_button = QPushButton("Deactivate")
        self.toggle_button.clicked.connect(self._on_toggle_clicked)

        self.message = QLabel()
        self.message.setObjectName("errorText")
        self.message.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Login:", self.login_edit)
        form.addRow("Name:", self.name_edit)
        form.addRow("Role:", self.role_combo)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addStretch(1)
        row.addWidget(self.set_role_button)
        row.addWidget(self.toggle_button)

        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        add_live_banner(layout, ctx.mode)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addWidget(close)

        self._managed = [
            self.login_edit, self.name_edit, self.role_combo, self.add_button,
            self.set_role_button, self.toggle_button,
        ]  # fmt: skip
        if not may_manage:
            reason = denied_tooltip(ctx.actor.role, Permission.MANAGE_OPERATORS)
            for widget in self._managed:
                widget.setEnabled(False)
                widget.setToolTip(reason)
        self._may_manage = may_manage
        self._on_table_selection_changed()
        self.reload()

    def show_message(self, text: str, *, error: bool) -> None:
        """Success in the hint colour, refusals in red."""
        self.message.setObjectName("errorText" if error else "successText")
        self.message.setStyleSheet("" if error else "color: #1b7a34;")
        self.message.style().polish(self.message)
        self.message.setText(text)

    def reload(self) -> None:
        self._tasks.run(self, self._ctx.operators.all, self._on_list_ok, self._on_error)

    def selected(self) -> OperatorInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self._operators[rows[0].row()] if rows else None

    # ---- slots
    def _on_list_ok(self, operators: list[OperatorInfo]) -> None:
        # The table is rebuilt: keep (or move to) the person acted on, by login, not by row.
        chosen = self.selected()
        wanted = self._select_after_load or (chosen.login if chosen else None)
        self._select_after_load = None
        self._operators = operators
        self.table.setRowCount(len(operators))
        for i, op in enumerate(operators):
            me = " (you)" if op.login == self._ctx.actor.login else ""
            values = (op.login + me, op.display_name, op.role.label,
                      "Active" if op.active else "Deactivated")  # fmt: skip
            for col, value in enumerate(values):
                self.table.setItem(i, col, QTableWidgetItem(value))
        self.table.clearSelection()
        for i, op in enumerate(operators):
            if op.login == wanted:
                self.table.selectRow(i)
        self._on_table_selection_changed()

    def _on_error(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self.show_message(str(exc), error=True)
        self._set_busy(False)

    def _on_done(self, text: str, login: str) -> None:
        self._set_busy(False)
        self.show_message(text, error=False)
        self._select_after_load = login
        self.reload()

    def _on_added(self, op: OperatorInfo) -> None:
        self.login_edit.clear()  # ready for the next person
        self.name_edit.clear()
        self._on_done(f"Added {op.login} as {op.role.value}.", op.login)

    def _set_busy(self, busy: bool) -> None:
        if self._may_manage:
            for widget in self._managed:
                widget.setEnabled(not busy)
            if not busy:
                self._on_table_selection_changed()

    def _on_table_selection_changed(self) -> None:
        op = self.selected()
        has = op is not None and self._may_manage
        self.set_role_button.setEnabled(has)
        self.toggle_button.setEnabled(has)
        self.toggle_button.setText(
            "Reactivate" if op is not None and not op.active else "Deactivate"
        )

    def _on_add_clicked(self) -> None:
        login, name = self.login_edit.text(), self.name_edit.text()
        role: Role = self.role_combo.currentData()
        self._set_busy(True)
        self._tasks.run(
            self,
            lambda: self._ctx.operators.add(login, role, name),
            self._on_added,
            self._on_error,
        )

    def _on_set_role_clicked(self) -> None:
        op = self.selected()
        if op is None:
            return
        role: Role = self.role_combo.currentData()
        self._set_busy(True)
        self._tasks.run(
            self,
            lambda: self._ctx.operators.set_role(op.login, role),
            lambda changed: self._on_done(
                f"{changed.login} is now {changed.role.value}.", changed.login
            ),
            self._on_error,
        )

    def _on_toggle_clicked(self) -> None:
        op = self.selected()
        if op is None:
            return
        self._set_busy(True)
        call = self._ctx.operators.reactivate if not op.active else self._ctx.operators.deactivate
        self._tasks.run(
            self,
            lambda: call(op.login),
            lambda changed: self._on_done(
                f"{changed.login} is {'active' if changed.active else 'deactivated'}.",
                changed.login,
            ),
            self._on_error,
        )
