"""The main window: mode banner, panel navigation, menus and shortcuts, and the status bar."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from services.changes import ALL, NONE, Changes
from services.context import AppContext
from services.errors import AppError
from services.export import PANEL_TABLES
from services.listener import ListenerService, ListenerState
from services.permissions import Permission
from services.stripe_gateway import StripeMode
from services.stripe_listen import ListenState
from services.sync import SyncProgress, SyncSummary, SyncTarget
from ui.banner import ModeBanner
from ui.dialogs import denied_tooltip
from ui.journal_dialog import JournalIndicator
from ui.listener_indicator import ListenerIndicator
from ui.operators_dialog import OperatorsDialog
from ui.panels.audit import AuditPanel
from ui.panels.base import EmptyState, ListPanel
from ui.panels.credits import CreditsPanel
from ui.panels.customers import CustomersPanel
from ui.panels.events import EventsPanel
from ui.panels.invoices import InvoicesPanel
from ui.panels.overview import DrillDown, OverviewPanel
from ui.panels.products import ProductsPanel
from ui.panels.subscriptions import SubscriptionsPanel
from ui.panels.topups import TopUpsPanel
from ui.reconcile_dialog import ReconcileIndicator
from ui.settings_dialog import SettingsDialog
from ui.tasks import CancelToken, TaskRunner

log = logging.getLogger(__name__)

PANEL_NAMES = (
    "customers", "products", "invoices", "credits", "topups", "events", "audit", "subscriptions",
)  # fmt: skip
OVERVIEW = "overview"  # the first page (Ctrl+0); the list panels follow it, Ctrl+1 … Ctrl+8
CONNECTION_CHECK_MS = 120_000  # the status bar's "Connected" should not go stale
DEFAULT_SIZE = QSize(1280, 800)
DB_LABEL_PX = 230  # the database label's width; the rest of the bar is for messages
#: Changes arriving within this many ms are merged into one update per panel (one frame).
COALESCE_MS = 16


def _sync_message(summary: SyncSummary) -> str:
    """Short enough for the status bar: counts seen, and how many changed in all."""
    # Prices go with their products (their changes are counted): the line must fit the bar.
    seen = ", ".join(f"{n:,} {kind}" for kind, n in summary.seen.items() if kind != "prices")
    changed = sum(summary.changed.values())
    text = f"Synced {seen or 'nothing'} · {changed:,} changed"
    if summary.marked_deleted:
        text += f" · {summary.marked_deleted:,} customers marked deleted"
    return f"Sync cancelled: {text}" if summary.cancelled else text


LISTENER_KEEPS_MIRROR = (
    "On this shared database the team's listener (and admins) keep the data current from "
    "Stripe's events; your login reads it."
)


class _ProgressRelay(QObject):
    """Carries progress from a worker thread to the GUI thread (queued signal)."""

    progressed = Signal(object)


class _ListenerRelay(QObject):
    """Carries listener state and event arrivals from background threads to the GUI."""

    state_changed = Signal(object)
    changes_arrived = Signal(object)


class Pages(Mapping[str, "ListPanel[Any]"]):
    """The list panels by name. Each is built the first time it is asked for or shown: the
    window paints its first page without building the others (~0.2 s of a cold start, issue
    15); once that page has its data, it builds the rest one a turn, each loading its rows."""

    def __init__(self, names: Sequence[str], build: Callable[[str], ListPanel[Any]]) -> None:
        self._names = tuple(names)
        self._build = build
        self._built: dict[str, ListPanel[Any]] = {}

    def __getitem__(self, name: str) -> ListPanel[Any]:
        panel = self._built.get(name)
        if panel is None:
            if name not in self._names:
                raise KeyError(name)
            panel = self._built[name] = self._build(name)
        return panel

    def __contains__(self, name: object) -> bool:  # without building it
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def built(self) -> list[ListPanel[Any]]:
        """The panels built so far (the others load when they are built)."""
        return list(self._built.values())

    def unbuilt(self) -> list[str]:
        return [name for name in self._names if name not in self._built]


def _nothing() -> None:
    return None


#: The list panels' classes (called with the context and the task runner; `title` read unbuilt).
_PAGE_CLASSES: dict[str, Any] = {
    "customers": CustomersPanel, "products": ProductsPanel, "invoices": InvoicesPanel,
    "credits": CreditsPanel, "topups": TopUpsPanel, "events": EventsPanel,
    "audit": AuditPanel, "subscriptions": SubscriptionsPanel,
}  # fmt: skip


class MainWindow(QMainWindow):
    #: Something changed the local data in a way nobody named: every panel reloads.
    data_changed = Signal()
    #: Anki's operation_did_execute: once per frame, every `Changes` that arrived since the
    #: last (events applied, a sync, a finished action) merged into one; each panel updates
    #: just the rows named.
    changes_applied = Signal(object)
    #: Emitted with the result of the connection check (None when connected, else the message).
    connection_checked = Signal(object)
    #: Emitted when a sync finished, with its summary or error message.
    sync_finished = Signal(object)
    #: Emitted when File ▸ Export finished, with what the status bar says.
    export_finished = Signal(str)

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.tasks = tasks
        self._sync_token: CancelToken | None = None
        self._may_sync = ctx.sync.may_write()
        #: Asks where to save an export (a file dialog; tests put a function returning a path).
        self.choose_export_path: Callable[[str], Path | None] = self._ask_export_path
        self._checking = False
        self._pending_changes: Changes = NONE
        self._overview_stale = False
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(COALESCE_MS)
        self._flush_timer.timeout.connect(self._flush_changes)
        self.setWindowTitle(f"Billing Admin — {ctx.mode.label}")
        self.fit_to_screen()

        self._load_when_built = False  # once started or refreshed: a page built then loads
        self._swapping = False  # a built page is taking its placeholder's place in the stack
        may_audit = ctx.authority.can(Permission.VIEW_AUDIT)
        self.panels = Pages([n for n in PANEL_NAMES if n != "audit" or may_audit], self._build_page)
        self.nav = QListWidget()
        self.nav.setObjectName("nav")
        self.nav.setFixedWidth(170)
        self.stack = QStackedWidget()
        self.overview = OverviewPanel(ctx, tasks)
        overview_item = QListWidgetItem(self.overview.title)
        overview_item.setToolTip(f"{self.overview.title} (Ctrl+0)")
        self.nav.addItem(overview_item)
        self.stack.addWidget(self.overview)
        self.overview.load_failed.connect(self._on_panel_load_failed)
        self.overview.drill_requested.connect(self._on_overview_drill_requested)
        for number, name in enumerate(PANEL_NAMES, start=1):
            title = _PAGE_CLASSES[name].title
            item = QListWidgetItem(title)
            item.setToolTip(f"{title} (Ctrl+{number})")
            self.nav.addItem(item)
            if name not in self.panels:
                # Shown, but greyed out with the reason: the operator knows it exists.
                reason = denied_tooltip(ctx.actor.role, Permission.VIEW_AUDIT)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                item.setToolTip(reason)
                placeholder = EmptyState()
                placeholder.show_message("Audit log", reason)
                self.stack.addWidget(placeholder)
                continue
            self.stack.addWidget(QWidget())  # until the panel is built (Pages)
        self.data_changed.connect(lambda: self.note_changes(ALL))
        tasks.changes_made.connect(self.note_changes)
        self.nav.currentRowChanged.connect(self._on_nav_current_row_changed)
        self.stack.currentChanged.connect(self._on_stack_current_changed)

        body = QHBoxLayout()
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        self.banner = ModeBanner(ctx.mode)
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)
        outer.addWidget(self.banner)
        outer.addLayout(body, 1)
        self.setCentralWidget(central)

        self._build_status_bar()
        self._build_actions()
        self.nav.setCurrentRow(0)
        tasks.busy_changed.connect(self._on_tasks_busy_changed)
        self._connection_timer = QTimer(self)
        self._connection_timer.setInterval(CONNECTION_CHECK_MS)
        self._connection_timer.timeout.connect(self.check_connection)

    # ---- construction
    def _build_page(self, name: str) -> ListPanel[Any]:
        """Build the panel `name` and put it in its place (Pages calls this once a panel)."""
        panel: ListPanel[Any] = _PAGE_CLASSES[name](self.ctx, self.tasks)
        if isinstance(panel, AuditPanel):
            panel.exported.connect(lambda text: self.statusBar().showMessage(text, 15_000))
        index = self.nav_row(name)
        placeholder = self.stack.widget(index)
        assert placeholder is not None
        current = self.stack.currentIndex()
        self._swapping = True
        try:
            self.stack.insertWidget(index, panel)
            self.stack.removeWidget(placeholder)
            self.stack.setCurrentIndex(current)
        finally:
            self._swapping = False
        placeholder.deleteLater()
        panel.load_failed.connect(self._on_panel_load_failed)
        panel.changed_elsewhere.connect(self.data_changed)
        panel.open_requested.connect(self._on_panel_open_requested)
        self.changes_applied.connect(panel.apply_changes)
        if self._load_when_built:
            panel.refresh()  # built after the others loaded: its rows now
        return panel

    def _build_pages_after_current_loads(self) -> None:
        """The pages not built yet, one a turn once the page shown has its data on screen
        (built sooner, they held its first rows' paint back by ~0.3 s)."""
        page = self.stack.currentWidget()
        if isinstance(page, ListPanel) and not page.loaded:
            done, failed = page.rows_loaded, page.load_failed
        elif page is self.overview:
            done, failed = self.overview.overview_shown, self.overview.load_failed
        else:
            self._next_page_soon()
            return
        begun = False

        def begin(*_args: object) -> None:
            nonlocal begun
            if not begun:
                begun = True
                self._next_page_soon()

        done.connect(begin)
        failed.connect(begin)

    def _next_page_soon(self) -> None:
        # Through the task runner (a task that does nothing): the event loop paints between
        # two pages, and whoever waits for the runner to be idle (screenshots, tests) waits
        # for every page to be built and loading.
        if self.panels.unbuilt():
            self.tasks.run(self, _nothing, lambda _: self._build_next_page())

    def _build_next_page(self) -> None:
        """Build one more page (it loads its rows), then the next one a turn later."""
        unbuilt = self.panels.unbuilt()
        if unbuilt:
            self.panels[unbuilt[0]]
            self._next_page_soon()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.mode_label = QLabel(self.ctx.mode.label)
        self.mode_label.setObjectName("modeLabel")
        self.mode_label.setProperty("mode", self.ctx.mode.value)
        self.connection_label = QLabel("Stripe: checking…")
        actor = self.ctx.actor
        # Short permanent labels (the whole text on hover) leave the messages room to be read.
        self.operator_label = QLabel(f"{actor.login} · {actor.role.label}")
        self.operator_label.setToolTip(
            f"Signed in as {actor.display_name} ({actor.login}) · {actor.role.label}"
        )
        self.operator_label.setObjectName("operatorLabel")
        self.webhook_label = QLabel("Webhooks: off")
        self.webhook_label.setToolTip("Start the app normally to receive Stripe's events live.")
        # A path is told by its two ends: elide the middle, never the file name.
        self.db_label = QLabel()
        self.db_label.setText(
            self.db_label.fontMetrics().elidedText(
                f"Database: {self.ctx.database_label}", Qt.TextElideMode.ElideMiddle, DB_LABEL_PX
            )
        )
        self.db_label.setToolTip(f"Database: {self.ctx.database_label}")
        self.sync_progress = QProgressBar()
        self.sync_progress.setMaximumWidth(220)
        self.sync_progress.setTextVisible(True)
        self.sync_progress.setVisible(False)
        self.sync_cancel = QPushButton("Cancel")
        self.sync_cancel.setVisible(False)
        self.sync_cancel.clicked.connect(self._on_sync_cancel_clicked)
        # A message too long for the bar is readable whole on hover.
        bar.messageChanged.connect(lambda text: bar.setToolTip(text))
        bar.addWidget(self.sync_progress)
        bar.addWidget(self.sync_cancel)
        # Stripe requests with a lost answer: shown until someone re-runs or resolves them.
        self.journal_indicator = JournalIndicator(self.ctx, self.tasks, self)
        self.data_changed.connect(self.journal_indicator.refresh)
        # The last reconcile ("Books match · 07:00"), for finance and admins.
        self.reconcile_indicator = ReconcileIndicator(self.ctx, self.tasks, self)
        self.reconcile_indicator.repaired.connect(self.data_changed)
        # When the team's listener was last seen (heartbeats), and warnings about it.
        self.listener_indicator = ListenerIndicator(self.ctx, self.tasks, self)
        for widget in (
            self.listener_indicator,
            self.reconcile_indicator,
            self.journal_indicator,
            self.mode_label,
            self.connection_label,
            self.webhook_label,
            self.operator_label,
            self.db_label,
        ):
            bar.addPermanentWidget(widget)

    def _build_actions(self) -> None:
        menu_file = self.menuBar().addMenu("&File")
        self.sync_action = self._action(
            "&Sync from Stripe", QKeySequence("Ctrl+R"), self.start_sync, menu_file
        )
        self.sync_action.setStatusTip("Pull customers, products and prices from Stripe")
        self.export_action = self._action(
            "&Export…", QKeySequence("Ctrl+Shift+E"), self.export_current, menu_file
        )
        self.export_action.setStatusTip("Save the list shown, as filtered, to a CSV file")
        if not self.ctx.authority.can(Permission.EXPORT):
            self.export_action.setEnabled(False)
            self.export_action.setToolTip(denied_tooltip(self.ctx.actor.role, Permission.EXPORT))
        self.reconcile_action = self._action(
            "&Reconcile with Stripe…", QKeySequence("Ctrl+Shift+R"), self.open_reconcile,
            menu_file,
        )  # fmt: skip
        self.reconcile_action.setStatusTip(
            "Compare the credits, top-ups, invoices and events with Stripe"
        )
        if not self.ctx.authority.can(Permission.RECONCILE):
            self.reconcile_action.setEnabled(False)
            self.reconcile_action.setToolTip(
                denied_tooltip(self.ctx.actor.role, Permission.RECONCILE)
            )
        menu_file.addSeparator()
        self._action(
            "S&ettings…",
            QKeySequence(QKeySequence.StandardKey.Preferences),
            self.open_settings,
            menu_file,
        ).setShortcuts([QKeySequence("Ctrl+,")])
        menu_file.addSeparator()
        self.operators_action = self._action(
            "&Operators…", QKeySequence("Ctrl+Shift+O"), self.open_operators, menu_file
        )
        if not self.ctx.authority.can(Permission.MANAGE_OPERATORS):
            self.operators_action.setText("&Operators (view)…")
            self.operators_action.setToolTip(
                denied_tooltip(self.ctx.actor.role, Permission.MANAGE_OPERATORS)
            )
        menu_file.addSeparator()
        self._action("&Quit", QKeySequence(QKeySequence.StandardKey.Quit), self.close, menu_file)

        menu_view = self.menuBar().addMenu("&View")
        self._action(
            self.overview.title,
            QKeySequence("Ctrl+0"),
            lambda: self.show_panel(OVERVIEW),
            menu_view,
        )
        for number, name in enumerate(PANEL_NAMES, start=1):
            action = self._action(
                self.nav.item(number).text(),
                QKeySequence(f"Ctrl+{number}"),
                lambda n=name: self.show_panel(n),
                menu_view,
            )
            if name not in self.panels:
                action.setEnabled(False)
        menu_view.addSeparator()
        self._action(
            "&Find", QKeySequence(QKeySequence.StandardKey.Find), self._focus_search, menu_view
        )
        self._action(
            "&Refresh", QKeySequence(QKeySequence.StandardKey.Refresh), self.refresh, menu_view
        )

        menu_help = self.menuBar().addMenu("&Help")
        self._action("&About Billing Admin", QKeySequence(), self._show_about, menu_help)

    def _action(self, text: str, shortcut: QKeySequence, slot: Any, menu: Any) -> QAction:
        action = QAction(text, self)
        if not shortcut.isEmpty():
            action.setShortcut(shortcut)
        action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    # ---- public
    def open_reconcile(self) -> None:
        if self.ctx.authority.can(Permission.RECONCILE):
            self.reconcile_indicator.open_dialog()

    def show_team_listener(self) -> None:
        """This login reads events; the team's listener (admin-app listen) receives them."""
        events = self.panels["events"]
        if isinstance(events, EventsPanel):
            events.show_listener(
                "Events are received and applied by the team's listener (admin-app listen); "
                "this window shows what it stored."
            )
        self.webhook_label.setText("Webhooks: the team's listener")

    def attach_listener(self, listener: ListenerService) -> None:
        """Show the listener's state, and refresh the panels as events arrive."""
        relay = _ListenerRelay(self)
        relay.state_changed.connect(self._on_listener_state_changed)
        relay.state_changed.connect(lambda _state: self.listener_indicator.refresh_soon())
        relay.changes_arrived.connect(self.note_changes)
        listener.add_listener(relay.state_changed.emit)
        # Each applied event says what it changed; a burst is merged into one update a frame.
        self.ctx.events.add_change_listener(relay.changes_arrived.emit)
        self._on_listener_state_changed(listener.state)

    def start(self, *, sync_first: bool) -> None:
        """Show what the local database has, check Stripe, and pull if asked."""
        self._load_when_built = True
        self.overview.refresh()
        for panel in self.panels.built():
            panel.refresh()
        self._build_pages_after_current_loads()
        self.check_connection()
        self._connection_timer.start()
        self.journal_indicator.start()
        self.listener_indicator.start()
        self.reconcile_indicator.refresh()
        if not self._may_sync:
            self.sync_action.setEnabled(False)
            self.sync_action.setStatusTip(LISTENER_KEEPS_MIRROR)
            self.sync_action.setToolTip(LISTENER_KEEPS_MIRROR)
        elif sync_first:
            self.start_sync()

    def fit_to_screen(self) -> None:
        """1280x800, or less: the whole window (status bar included) on the available screen,
        e.g. 1366x768 less its task bar."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        room = screen.availableGeometry()
        frame = 40  # the window manager's title bar and borders, outside our geometry
        size = QSize(min(DEFAULT_SIZE.width(), room.width()), min(DEFAULT_SIZE.height(),
                     room.height() - frame))  # fmt: skip
        self.resize(size)
        self.move(room.x() + (room.width() - size.width()) // 2, room.y())

    def restore_placement(self, saved: bytes) -> bool:
        """Put the window where it was last time (Qt moves it back on screen if needed)."""
        return bool(saved) and self.restoreGeometry(QByteArray(saved))

    def placement(self) -> bytes:
        return bytes(self.saveGeometry().data())

    def current_panel(self) -> ListPanel[Any] | None:
        """The list panel shown (None on the Overview)."""
        index = self.stack.currentIndex()
        return self.panels.get(PANEL_NAMES[index - 1]) if index > 0 else None

    @staticmethod
    def nav_row(name: str) -> int:
        """The row of a page in the navigation (and the stack): the Overview first."""
        return 0 if name == OVERVIEW else PANEL_NAMES.index(name) + 1

    def show_panel(self, name: str) -> None:
        self.nav.setCurrentRow(self.nav_row(name))

    def refresh(self) -> None:
        """Reload every page (building the pages not built yet: each loads as it is built)."""
        self._load_when_built = True
        self.overview.refresh()
        for panel in self.panels.built():
            panel.refresh()
        for name in self.panels.unbuilt():
            self.panels[name]

    def note_changes(self, changes: Changes) -> None:
        """Something changed these rows: update the panels within a frame, merged with
        whatever else arrives meanwhile (a burst of events is one update per panel)."""
        if not changes:
            return
        self._pending_changes = self._pending_changes | changes
        if not self._flush_timer.isActive():  # not restarted: a steady stream still flushes
            self._flush_timer.start()

    def changes_pending(self) -> bool:
        """Changes noted and not yet shown (they will be within a frame)."""
        return self._flush_timer.isActive()

    def flush_changes(self) -> None:
        """Apply what is pending now (tests, benchmarks); normally the frame timer does it."""
        self._flush_timer.stop()
        self._flush_changes()

    def _flush_changes(self) -> None:
        changes, self._pending_changes = self._pending_changes, NONE
        if not changes:
            return
        log.debug("Changes: %s", changes.describe())
        for name in self.panels.unbuilt():
            self.panels[name]  # built now, each takes these changes as it would have
        if changes.everything or changes.invoices or changes.topups or changes.credits:
            if self.isVisible() and self.stack.currentWidget() is not self.overview:
                self._overview_stale = True
            else:
                self.overview.refresh()
        if changes.everything or changes.invoices or changes.topups or changes.audit:
            self.journal_indicator.refresh()
        self.changes_applied.emit(changes)

    def _on_nav_current_row_changed(self, row: int) -> None:
        if row > 0 and PANEL_NAMES[row - 1] in self.panels:
            self.panels[PANEL_NAMES[row - 1]]  # built before it is shown
        self.stack.setCurrentIndex(row)

    def _on_stack_current_changed(self, _index: int) -> None:
        if self._swapping:
            return
        page = self.stack.currentWidget()
        if page is self.overview:
            if self._overview_stale:
                self._overview_stale = False
                self.overview.refresh()
        elif isinstance(page, ListPanel):
            page.on_shown()

    def check_connection(self) -> None:
        if self._checking:
            return
        self._checking = True
        self.tasks.run(
            self,
            self.ctx.gateway.check_connection,
            lambda _: self._on_connection_result(None),
            self._on_connection_error,
        )

    def start_sync(self) -> None:
        if self._sync_token is not None or not self._may_sync:
            return
        token = CancelToken()
        self._sync_token = token
        relay = _ProgressRelay(self)
        relay.progressed.connect(self._on_sync_progressed)
        self.sync_action.setEnabled(False)
        self.sync_progress.setRange(0, 0)  # Stripe gives no totals: busy until the first page
        self.sync_progress.setFormat("Syncing…")
        self.sync_progress.setVisible(True)
        self.sync_cancel.setVisible(True)
        self.statusBar().showMessage("Syncing from Stripe…")

        def work() -> SyncSummary:
            return self.ctx.sync.pull(
                SyncTarget.ALL,
                progress=relay.progressed.emit,
                cancelled=token.is_cancelled,
            )

        self.tasks.run(self, work, self._on_sync_ok, self._on_sync_err)

    def export_current(self) -> None:
        """Save the current list, exactly as shown (filters, search, order), to a CSV file.

        The rows are taken on the GUI thread (a list copy); the file is written by a worker.
        """
        panel = self.current_panel()  # None on the Overview: nothing to export there
        if panel is None or not self.export_action.isEnabled():
            return
        if not panel.loaded:  # only its first screen, or nothing yet: not the list
            self.statusBar().showMessage(f"{panel.title} is still loading: export it then.", 10_000)
            return
        name = PANEL_NAMES[self.stack.currentIndex() - 1]
        table = PANEL_TABLES[name]
        path = self.choose_export_path(f"{table.name}.csv")
        if path is None:
            return
        rows = panel.model.visible_rows()
        noun = panel.noun[0] if len(rows) == 1 else panel.noun[1]
        self.export_action.setEnabled(False)
        self.statusBar().showMessage(f"Exporting {len(rows):,} {noun} to {path}…")
        self.tasks.run(
            self,
            lambda: self.ctx.exports.to_file(path, table, rows),
            lambda count: self._on_export_ok(f"Exported {count:,} {noun} to {path}"),
            self._on_export_err,
        )

    def open_operators(self) -> None:
        dialog = OperatorsDialog(self.ctx, self.tasks, self)
        dialog.setModal(True)
        dialog.finished.connect(lambda _: self.data_changed.emit())
        dialog.open()

    def open_settings(self) -> None:
        dialog = SettingsDialog(self.ctx, self.tasks, self)
        dialog.setModal(True)
        dialog.open()

    # ---- slots
    def _focus_search(self) -> None:
        panel = self.current_panel()
        if panel is not None:
            panel.focus_search()
        elif self.stack.currentWidget() is self.overview:
            self.overview.focus_search()

    def _on_connection_result(self, problem: str | None) -> None:
        self._checking = False
        if problem is None:
            where = "sandbox" if self.ctx.mode is StripeMode.SANDBOX else "Stripe"
            self.connection_label.setText(f"● Connected to {where}")
            self.connection_label.setProperty("state", "ok")
            self.connection_label.setToolTip(self.ctx.gateway.api_base or "https://api.stripe.com")
        else:
            self.connection_label.setText("● Stripe unreachable")
            self.connection_label.setProperty("state", "error")
            self.connection_label.setToolTip(problem)
        self.connection_label.style().polish(self.connection_label)
        self.connection_checked.emit(problem)

    def _on_connection_error(self, exc: BaseException) -> None:
        if not isinstance(exc, AppError):
            raise exc
        self._on_connection_result(str(exc))

    def _on_sync_progressed(self, progress: SyncProgress) -> None:
        if progress.estimate:
            self.sync_progress.setRange(0, progress.estimate)
            self.sync_progress.setValue(min(progress.done, progress.estimate))
            self.sync_progress.setFormat(
                f"{progress.kind}: {progress.done:,} of ~{progress.estimate:,}"
            )
        else:
            self.sync_progress.setRange(0, 0)
            self.sync_progress.setFormat(f"{progress.kind}: {progress.done:,}")

    def _on_sync_cancel_clicked(self) -> None:
        if self._sync_token is not None:
            self._sync_token.cancel()
            self.sync_cancel.setEnabled(False)
            self.sync_progress.setFormat("Cancelling…")

    def _end_sync(self) -> None:
        self._sync_token = None
        self.sync_action.setEnabled(self._may_sync)
        self.sync_progress.setVisible(False)
        self.sync_cancel.setVisible(False)
        self.sync_cancel.setEnabled(True)

    def _on_sync_ok(self, summary: SyncSummary) -> None:
        self._end_sync()
        self.statusBar().showMessage(_sync_message(summary), 15_000)
        self._on_connection_result(None)
        # The sync's rows come with the task runner's changes (what the pull wrote).
        self.sync_finished.emit(summary)

    def _on_sync_err(self, exc: BaseException) -> None:
        self._end_sync()
        if not isinstance(exc, AppError):
            raise exc
        self.statusBar().showMessage(f"Sync failed: {exc}", 15_000)
        self.sync_finished.emit(str(exc))

    def _ask_export_path(self, suggested: str) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(
            self, "Export to CSV", suggested, "CSV files (*.csv);;All files (*)"
        )
        return Path(name) if name else None

    def _on_export_ok(self, message: str) -> None:
        self.export_action.setEnabled(True)
        self.statusBar().showMessage(message, 15_000)
        self.export_finished.emit(message)

    def _on_export_err(self, exc: BaseException) -> None:
        self.export_action.setEnabled(True)
        if not isinstance(exc, AppError):
            raise exc
        message = f"Export failed: {exc}"
        self.statusBar().showMessage(message, 15_000)
        self.export_finished.emit(message)

    def _on_listener_state_changed(self, state: ListenerState) -> None:
        forwarding = state.listen.state is ListenState.FORWARDING
        problem = state.receiver_problem
        if not state.receiving and problem:
            # Say why, not a neutral "off": the events are not arriving live.
            in_use = "in use" in problem.lower()
            why = f"port {state.port} in use" if in_use else "could not start"
            text = f"Webhooks: off — {why}"
        elif not state.receiving:
            text = "Webhooks: off"
        elif forwarding:
            text = f"● Webhooks: forwarding to :{state.port}"
        else:
            text = f"Webhooks: :{state.port}, stripe listen {state.listen.state.value}"
        self.webhook_label.setText(text)
        failed = state.listen.state.value == "failed" or bool(problem and not state.receiving)
        self.webhook_label.setProperty("state", "ok" if forwarding else "error" if failed else "")
        self.webhook_label.style().polish(self.webhook_label)
        self.webhook_label.setToolTip(state.line())
        events = self.panels.get("events")
        if isinstance(events, EventsPanel):
            events.show_listener(state.line())

    def _on_overview_drill_requested(self, drill: DrillDown) -> None:
        panel = self.panels.get(drill.panel)
        if panel is None:
            return
        self.show_panel(drill.panel)
        if isinstance(panel, InvoicesPanel) and drill.invoice_filter is not None:
            panel.show_filtered(drill.label, drill.invoice_filter)
        else:
            panel.show_only(drill.label, drill.predicate)

    def _on_panel_open_requested(self, name: str, key: object) -> None:
        panel = self.panels.get(name)
        if panel is not None:
            self.show_panel(name)
            panel.reveal(key)

    def _on_panel_load_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 10_000)

    def _on_tasks_busy_changed(self, busy: int) -> None:
        self.setCursor(Qt.CursorShape.BusyCursor if busy else Qt.CursorShape.ArrowCursor)

    def about_text(self) -> str:
        version = QApplication.applicationVersion() or "unknown"
        return (
            f"Billing Admin {version} — the internal desktop admin over Stripe Billing.\n\n"
            f"Version: {version}\nMode: {self.ctx.mode.label}\n"
            f"Database: {self.ctx.database_label}"
        )

    def _show_about(self) -> None:
        QMessageBox.about(self, "About Billing Admin", self.about_text())

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._sync_token is not None:
            self._sync_token.cancel()
        self.listener_indicator.stop()
        super().closeEvent(event)
