"""Starting the Qt application: style, crash handler, main window, and the screenshot mode."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import (
    QMessageLogContext,
    Qt,
    QTimer,
    QtMsgType,
    qInstallMessageHandler,
    qVersion,
)
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QVBoxLayout, QWidget

from services.context import AppContext
from services.listener import ListenerService
from services.stripe_gateway import StripeMode
from ui.banner import ModeBanner
from ui.crash_dialog import CrashHandler
from ui.first_paint import after_first_paint, install_from_environment
from ui.invoice_dialogs import NewInvoiceDialog
from ui.journal_dialog import JournalDialog
from ui.main_window import OVERVIEW, PANEL_NAMES, MainWindow
from ui.operators_dialog import OperatorsDialog
from ui.panels.base import EmptyState
from ui.qt_binding import reference_leaks
from ui.settings_dialog import SettingsDialog
from ui.subscription_dialogs import NewSubscriptionDialog
from ui.tasks import TaskRunner

log = logging.getLogger(__name__)
_qt_log = logging.getLogger("qt")

# Said by the offscreen platform plugin for every top-level window; not a problem.
_QT_NOISE = ("This plugin does not support propagateSizeHints()",)
_QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def _on_qt_message(kind: QtMsgType, context: QMessageLogContext, message: str) -> None:
    """Qt's own messages go to our log (qutebrowser's qt_message_handler, in small)."""
    level = logging.DEBUG if message in _QT_NOISE else _QT_LEVELS.get(kind, logging.WARNING)
    _qt_log.log(level, "%s", message)


#: How long a thread may hold the interpreter lock while another waits (Python's default: 5 ms).
GUI_SWITCH_INTERVAL_S = 0.001


def make_application(resources: Path, version: str = "") -> QApplication:
    """The QApplication, styled; reuses one that already exists (tests)."""
    qInstallMessageHandler(_on_qt_message)
    # The GUI thread shares the interpreter lock with the webhook receiver's and the task
    # runner's threads; each holds it up to the switch interval before handing over. At the
    # default 5 ms a burst of events left the GUI thread waiting ~80 ms at a time; at 1 ms,
    # ~40 ms (bench/stall.py).
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("Billing Admin")
    app.setOrganizationName("Billing Admin")
    if version:
        app.setApplicationVersion(version)  # shown in Help ▸ About
    app.setStyle("Fusion")
    icon = resources / "icon.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    qss = resources / "style.qss"
    if qss.exists():
        app.setStyleSheet(qss.read_text(encoding="utf-8"))
    return app


class AccessDeniedWindow(QMainWindow):
    """What someone who is not an operator sees: why, and what to ask for. No data at all."""

    def __init__(self, mode: StripeMode, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Billing Admin — not signed in")
        self.resize(900, 420)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(ModeBanner(mode))
        state = EmptyState()
        state.show_message("You are not a Billing Admin operator", message)
        layout.addWidget(state, 1)
        self.message = message
        self.setCentralWidget(central)


class CannotStartWindow(QMainWindow):
    """Why the app refused to start (e.g. a database others can write), and what to do."""

    def __init__(self, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Billing Admin — cannot start")
        self.resize(900, 420)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(48, 48, 48, 48)
        title = QLabel("Billing Admin cannot start")
        title.setObjectName("emptyTitle")
        self.text = QLabel(message)
        self.text.setObjectName("emptyHint")
        self.text.setWordWrap(True)
        # Selectable: the message often holds the command that fixes it (chmod go-w …).
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addStretch(1)
        layout.addWidget(title)
        layout.addWidget(self.text)
        layout.addStretch(2)
        self.message = message
        self.setCentralWidget(central)


def run_cannot_start(message: str, *, resources: Path, screenshot_dir: Path | None) -> None:
    """Show the refusal in a window until it is closed (or render it into `screenshot_dir`)."""
    app = make_application(resources)
    window = CannotStartWindow(message)
    window.show()
    if screenshot_dir is not None:
        screenshot_dir.mkdir(parents=True, exist_ok=True)
        QApplication.processEvents()
        window.grab().save(str(screenshot_dir / "cannot-start.png"))
        return
    app.exec()


def build_window_offscreen(ctx: AppContext, resources: Path) -> str:
    """For the self-test: build the main window, render it, and tear it down."""
    app = make_application(resources)
    tasks = TaskRunner()
    window = MainWindow(ctx, tasks)
    try:
        window.resize(1280, 800)
        image = window.grab()
        if image.isNull() or image.width() < 100:
            raise RuntimeError("Qt could not render the main window")
        panels = len(window.panels)
    finally:
        tasks.shutdown()
        window.deleteLater()
    return f"main window with {panels} panels renders (Qt {qVersion()}, {app.platformName()})"


def run_gui(
    ctx: AppContext | None,
    *,
    mode: StripeMode,
    access_problem: str | None,
    make_listener: Callable[[], ListenerService | None] | None = None,
    resources: Path,
    log_file: Path | None,
    screenshot_dir: Path | None = None,
    version: str = "",
    placement_file: Path | None = None,
) -> int:
    """Open the main window and run until it closes (or take screenshots and return).

    With no `ctx` (the person is not an operator) only the access-denied window opens.
    `make_listener` builds the window's webhook listener (None: the team's listener receives
    them); it reads the keyring, so it runs on a worker after the first paint.
    """
    app = make_application(resources, version)
    for leak in reference_leaks():
        # The pinned binding has none; a swapped one would abort the app within hours.
        log.error("Qt binding bug, the app may abort: %s (docs/platform-bugs.md)", leak)
    if ctx is None:
        denied = AccessDeniedWindow(mode, access_problem or "Ask an admin to add you.")
        if screenshot_dir is not None:
            screenshot_dir.mkdir(parents=True, exist_ok=True)
            denied.show()
            QApplication.processEvents()
            denied.grab().save(str(screenshot_dir / "access-denied.png"))
            return 3
        denied.show()
        return app.exec()
    crash = CrashHandler(log_file)
    tasks = TaskRunner()
    window = MainWindow(ctx, tasks)
    listener: ListenerService | None = None
    try:
        if screenshot_dir is not None:
            if not ctx.events.may_apply():
                window.show_team_listener()
            return take_screenshots(window, tasks, screenshot_dir)
        if placement_file is not None and placement_file.exists():
            window.restore_placement(placement_file.read_bytes())
        crash.install()
        tasks.unhandled_error.connect(lambda exc: crash.handle(type(exc), exc, exc.__traceback__))
        if install_from_environment(window.panels["customers"], tasks) is not None:
            window.show_panel("customers")  # what cold-start benchmark measures

        def begin() -> None:
            window.start(sync_first=ctx.mode is StripeMode.SANDBOX)
            if make_listener is None:
                listener_made(None)
            else:
                # On a worker: it reads the webhook secret from the keyring (finding the
                # backend alone takes ~0.1 s), which would hold the rows' first paint back.
                tasks.run(window, make_listener, listener_made)

        def listener_made(made: ListenerService | None) -> None:
            nonlocal listener
            listener = made
            if listener is not None:
                window.attach_listener(listener)
                listener.start()
            elif not ctx.events.may_apply():
                window.show_team_listener()

        # The window first, everything that can wait after its first paint (rows, Stripe).
        after_first_paint(window, begin)
        window.show()
        _quit_on_signals(app)
        code = app.exec()
        if placement_file is not None:
            _save_placement(placement_file, window.placement())
        return code
    finally:
        if listener is not None:
            listener.stop()
        crash.uninstall()
        tasks.shutdown()
        window.deleteLater()


def _save_placement(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:  # not worth failing the exit for
        log.warning("Could not remember the window's size and position: %s", exc)


def _quit_on_signals(app: QApplication) -> None:
    """Ctrl+C or SIGTERM closes the app cleanly, stopping what it started (the listener)."""

    def on_signal(_signum: int, _frame: object) -> None:
        app.quit()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Python runs signal handlers only between bytecodes: wake it regularly.
    timer = QTimer(app)
    timer.timeout.connect(lambda: None)
    timer.start(250)


def take_screenshots(window: MainWindow, tasks: TaskRunner, out_dir: Path) -> int:
    """Render every panel (and Settings) into `out_dir/<name>.png` once their data has loaded."""
    out_dir.mkdir(parents=True, exist_ok=True)
    window.resize(1280, 800)
    window.show()
    window.start(sync_first=window.ctx.mode is StripeMode.SANDBOX)
    tasks.wait_idle()
    # The sync's changes update the panels within a frame; pages behind go stale and reload
    # when shown (below), so each is waited for.
    window.flush_changes()
    tasks.wait_idle()
    written = []
    window.show_panel(OVERVIEW)
    tasks.wait_idle()
    QApplication.processEvents()
    path = out_dir / "overview.png"
    if not window.grab().save(str(path)):
        log.error("Could not write %s", path)
        return 1
    written.append(path)
    for name in PANEL_NAMES:
        if name not in window.panels:
            continue
        window.show_panel(name)
        tasks.wait_idle()  # a page that went stale while hidden reloads as it is shown
        panel = window.panels[name]
        if name in ("customers", "invoices", "topups", "subscriptions") and panel.model.rowCount():
            panel.table.selectRow(0)  # show the detail pane with something in it
            tasks.wait_idle()
        QApplication.processEvents()
        path = out_dir / f"{name}.png"
        if not window.grab().save(str(path)):
            log.error("Could not write %s", path)
            return 1
        written.append(path)
    for name, dialog in (
        ("settings", SettingsDialog(window.ctx, tasks, window)),
        ("operators", OperatorsDialog(window.ctx, tasks, window)),
        ("journal", JournalDialog(window.ctx, tasks, window)),
        ("new-invoice", NewInvoiceDialog(window.ctx, tasks, "", window)),
        ("new-subscription", NewSubscriptionDialog(window.ctx, tasks, "", window)),
    ):
        dialog.show()
        tasks.wait_idle()
        QApplication.processEvents()
        path = out_dir / f"{name}.png"
        dialog.grab().save(str(path))
        dialog.close()
        written.append(path)
    for path in written:
        print(path)
    return 0
