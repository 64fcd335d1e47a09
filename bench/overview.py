"""Opening the Overview and the Invoices panel over 100,000 customers and 200,000 invoices.

Overview, "open": from `refresh()` until the figures and the four charts are on screen: the
figures computed on a worker thread (SQLite file), the charts drawn on the GUI thread (goal:
100 ms). Baseline: one plain full scan of the invoice table (`SELECT SUM(amount_paid) FROM
invoice`), the least any figure over every invoice could cost.

Invoices panel, "open": the real `InvoicesPanel` (the window's services over the same file),
from `refresh()` until its rows (the newest 20,000, the panel's page) are in the table, the
totals under it and the view painted. Baseline: a bare `QTableView` over a minimal
`QAbstractTableModel`, filled on the GUI thread by one plain `sqlite3` SELECT of the same
columns and rows, then painted (goal: <= 1.5x the bare table).

Each repetition runs the baseline and ours back to back (interleaved); medians with min/max.
`quick`: 4,000 customers and 10,000 invoices.
"""

from __future__ import annotations

import os
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import (
    QAbstractTableModel,
    QEventLoop,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtWidgets import QApplication, QTableView

from bench.results import Line, Result
from services.audit import Authority
from services.database import open_database
from services.models import CreditEntry, Customer, Invoice, TopUp
from services.operators import sign_in
from services.overview import OverviewService, PeriodKind, period_for

DAY = 86_400
RUNS = 7
PANEL_GOAL = 1.5
_DISPLAY = Qt.ItemDataRole.DisplayRole
_BARE_SQL = (
    "SELECT i.stripe_id, COALESCE(i.number, ''), i.customer_id, "
    "COALESCE(c.name, c.email, ''), COALESCE(i.status, ''), i.currency, i.total, "
    "i.amount_due, i.amount_paid, i.created, i.due_date FROM invoice i "
    "LEFT JOIN customer c ON c.stripe_id = i.customer_id "
    "ORDER BY i.created DESC, i.id DESC LIMIT 20000"
)


def _fill(db_path: Path, customers: int, invoices: int) -> tuple[Any, Authority]:
    db = open_database(f"sqlite:///{db_path}")
    now = int(time.time())
    rng = random.Random(14)
    with db.atomic():
        for start in range(0, customers, 5_000):
            Customer.insert_many(
                {"stripe_id": f"cus_{i:014d}", "created": now - i, "synced_at": now,
                 "raw": {"id": f"cus_{i:014d}"}, "name": f"Customer {i}",
                 "email": f"c{i}@example.com", "currency": "usd"}
                for i in range(start, start + 5_000)
            ).execute()  # fmt: skip
        for start in range(0, invoices, 5_000):
            rows = []
            for i in range(start, start + 5_000):
                created = now - rng.randrange(400 * DAY)
                status = rng.choices(("paid", "open", "void", "draft"), (80, 12, 4, 4))[0]
                paid_at = created + rng.randrange(20 * DAY) if status == "paid" else None
                amount = rng.randrange(500, 500_000)
                raw = {"id": f"in_{i:014d}", "status": status,
                       "status_transitions": {"paid_at": paid_at}}  # fmt: skip
                rows.append(
                    {"stripe_id": f"in_{i:014d}", "created": created, "synced_at": now,
                     "raw": raw, "customer_id": f"cus_{i % customers:014d}", "status": status,
                     "currency": "usd" if i % 5 else "eur", "total": amount,
                     "amount_due": amount, "amount_paid": amount if paid_at else 0,
                     "amount_remaining": amount if status == "open" else 0,
                     "due_date": created + 30 * DAY, "paid_at": paid_at}
                )  # fmt: skip
            Invoice.insert_many(rows).execute()
        for start in range(0, customers, 5_000):
            CreditEntry.insert_many(
                {"customer_id": f"cus_{i:014d}", "amount": 100 if i % 7 else -50,
                 "kind": "purchase" if i % 7 else "clawback", "source": f"src_{i}",
                 "operator": "bench", "created_at": now - rng.randrange(400 * DAY)}
                for i in range(start, start + 5_000)
            ).execute()  # fmt: skip
        TopUp.insert_many(
            {"topup_id": f"tu_{i}", "customer_id": f"cus_{i:014d}", "credits": 100, "amount": 1000,
             "currency": "usd", "status": "credited" if i % 3 else "expired",
             "checkout_session_id": f"cs_{i}", "issued_by": "bench",
             "issued_at": now - i * 300, "expires_at": now - i * 300 + DAY,
             "paid_at": now - i * 300 + 60 if i % 3 else None,
             "credited_at": now - i * 300 + 60 if i % 3 else None}
            for i in range(10_000)
        ).execute()  # fmt: skip
    db.execute_sql("ANALYZE")
    return db, Authority(db, sign_in(db, "bench"))


class _BareModel(QAbstractTableModel):
    """The least a table of these rows needs: tuples, and `str()` of a cell on display."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[Any, ...]] = []

    def fill(self, rows: list[tuple[Any, ...]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else 9

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        if role != _DISPLAY or not index.isValid():
            return None
        return str(self.rows[index.row()][index.column()])


def _spread(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples):.1f} ms "
        f"(min {min(samples):.1f}, max {max(samples):.1f})"
    )


def _until(signal: Any, start: Callable[[], None]) -> float:
    """ms from `start()` until `signal` fired and the GUI painted what it shows."""
    loop = QEventLoop()
    give_up = QTimer()
    give_up.setSingleShot(True)
    give_up.timeout.connect(loop.quit)

    def done(*_: object) -> None:
        loop.quit()

    signal.connect(done)
    t0 = time.perf_counter()
    start()
    give_up.start(60_000)
    loop.exec()
    app = QApplication.instance()
    assert app is not None
    app.processEvents()  # painted
    took = (time.perf_counter() - t0) * 1000
    signal.disconnect(done)
    return took


def run(quick: bool = False) -> list[Line]:
    from admin_app.wiring import build_context
    from services.secrets import SecretStore
    from services.settings import SettingsStore
    from services.stripe_gateway import StripeGateway
    from ui.panels.invoices import InvoicesPanel
    from ui.panels.overview import OverviewPanel
    from ui.tasks import TaskRunner

    customers, invoices = (4_000, 10_000) if quick else (100_000, 200_000)
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        db_path = Path(tmp) / "bench.sqlite3"
        db, authority = _fill(db_path, customers, invoices)
        fill_s = time.perf_counter() - started
        service = OverviewService(db, authority)
        lines: list[Line] = [
            f"overview and invoices @ {customers:,} customers, {invoices:,} invoices "
            f"(filled in {fill_s:.0f} s)"
        ]
        compute: dict[str, list[float]] = {}
        for kind in (PeriodKind.DAYS_30, PeriodKind.DAYS_90):
            period = period_for(kind, service.today())
            compute[kind.value] = []
            for _ in range(RUNS):
                t0 = time.perf_counter()
                service.overview(period, "usd")
                compute[kind.value].append((time.perf_counter() - t0) * 1000)

        # The panels as the window has them: a worker reads, the GUI thread shows.
        ctx = build_context(
            db, StripeGateway("sk_test_unused", api_base="http://127.0.0.1:9", sandbox=True),
            authority.actor, SettingsStore(Path(tmp) / "settings.json"), SecretStore(),
            "bench",
        )  # fmt: skip
        tasks = TaskRunner()
        overview = OverviewPanel(ctx, tasks)
        overview.resize(1100, 720)
        overview.show()
        panel = InvoicesPanel(ctx, tasks)
        panel.resize(1280, 760)
        panel.show()
        bare_model = _BareModel()
        bare = QTableView()
        bare.setModel(bare_model)
        bare.resize(1280, 760)
        bare.show()
        plain = sqlite3.connect(db_path)
        # The first of each builds the charts' fonts and caches: not counted.
        _until(overview.overview_shown, overview.refresh)
        _until(panel.rows_loaded, panel.refresh)
        scan: list[float] = []
        opened: list[float] = []
        bare_ms: list[float] = []
        panel_ms: list[float] = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            db.execute_sql("SELECT SUM(amount_paid) FROM invoice").fetchone()
            scan.append((time.perf_counter() - t0) * 1000)
            opened.append(_until(overview.overview_shown, overview.refresh))
            t0 = time.perf_counter()
            bare_model.fill(plain.execute(_BARE_SQL).fetchall())
            app.processEvents()
            bare_ms.append((time.perf_counter() - t0) * 1000)
            panel_ms.append(_until(panel.rows_loaded, panel.refresh))
        shown = panel.model.total_count
        plain.close()
        tasks.shutdown()
        for widget in (overview, panel, bare):
            widget.close()
            widget.deleteLater()
        app.processEvents()
        db.close()
    o_ms, s_ms = statistics.median(opened), statistics.median(scan)
    p_ms, b_ms = statistics.median(panel_ms), statistics.median(bare_ms)
    p_ok = p_ms <= PANEL_GOAL * b_ms
    lines += [
        f"  figures, 30 days: {_spread(compute['30d'])}; 90 days: {_spread(compute['90d'])}",
        Result(f"overview panel opens @ {customers:,} customers, {invoices:,} invoices",
               round(o_ms, 2), "ms", round(s_ms, 2), round(o_ms / s_ms, 3),
               "median < 100 ms", o_ms < 100,
               f"  Overview opens (30 days, figures + 4 charts drawn): {_spread(opened)} "
               f"(goal < 100 ms){'' if o_ms < 100 else '  BELOW GOAL'}; baseline, one full "
               f"scan of the invoice table: {_spread(scan)}; ratio {o_ms / s_ms:.2f}x"),
        Result(f"invoices panel opens @ {invoices:,} invoices ({shown:,} shown)",
               round(p_ms, 2), "ms", round(b_ms, 2), round(p_ms / b_ms, 3),
               f"ratio <= {PANEL_GOAL}x", p_ok,
               f"  Invoices panel opens ({shown:,} newest rows, totals, painted): "
               f"{_spread(panel_ms)}; bare QTableView + sqlite3 SELECT of the same rows: "
               f"{_spread(bare_ms)}; ratio {p_ms / b_ms:.2f}x (goal <= {PANEL_GOAL}x)"
               f"{'' if p_ok else '  BELOW GOAL'}"),
    ]  # fmt: skip
    return lines
