"""Soak: the real window in use for minutes on end, then its reference counts and memory.

A support person types in the Customers search all day while webhook events stream in and syncs
run. PySide6 6.12.0 lost a reference to `None` on every void Qt call, and the window aborted in
`none_dealloc` after ~2,100 keystrokes (docs/platform-bugs.md). This drives the whole app as a
user and Stripe do — the main window over the sandbox, the loopback webhook receiver with signed
`customer.updated` deliveries from a second thread, a sync every few minutes — and reports the
references to None/True/False and the RSS at the start and at the end.

Baseline, in the same run: the process right after the window showed its first data; the report
gives the change in each count (steady: near 0) and the RSS ratio end/start.

`make bench` runs it for 20 s at 10,000 customers; `make bench ARGS=--soak` runs 30 minutes at
100,000 customers (or until 100,000 keystrokes and 100,000 events, if later).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from admin_app.paths import AppPaths, resources_dir
from admin_app.wiring import Options, build_runtime
from bench.delivery import Sender
from bench.results import Line, Result
from services.sync import SyncTarget
from stripe_sandbox import SandboxServer
from stripe_sandbox.resources import customers
from stripe_sandbox.resources.common import Ctx
from stripe_sandbox.store import RequestInfo
from ui.app import make_application
from ui.main_window import MainWindow
from ui.panels.customers import CustomersPanel
from ui.tasks import TaskRunner

QUERIES = ("anna", "example.com", "person 12", "cus_", "zz", "@", "9 ex", "e")
REPORT_EVERY_S = 60.0


@dataclass
class Soak:
    minutes: float
    customers: int
    keystroke_goal: int = 0
    event_goal: int = 0
    sync_every_s: float = 120.0
    phase_s: float = 20.0
    lines: list[str] = field(default_factory=list)
    keystrokes: int = 0
    events_sent: int = 0
    syncs: int = 0

    def say(self, line: str) -> None:
        self.lines.append(line)
        if self.minutes >= 1:  # a long run reports as it goes
            print(line, flush=True)


def _counts() -> dict[str, int]:
    return {"None": sys.getrefcount(None), "True": sys.getrefcount(True),
            "False": sys.getrefcount(False)}  # fmt: skip


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _seed(sandbox: SandboxServer, count: int) -> None:
    """`count` customers straight into the sandbox's store (what 'create' does, minus HTTP)."""
    sandbox.seed_demo()
    store = sandbox.api.store
    request = RequestInfo(None, None)
    first = ("Anna", "Ben", "Carla", "Dev", "Eli", "Fatima", "George", "Hana", "Ivan", "Jo")
    with store.lock:
        now = store.now()
        for i in range(count):
            name = f"{first[i % 10]} Person {i}"
            params = {"name": name, "email": f"{first[i % 10].lower()}.p{i}@example.com"}
            customers.create(Ctx(store, now - count + i, request), params, "")


def _customer_objects(base_url: str, key: str, limit: int = 100) -> list[dict[str, object]]:
    req = urllib.request.Request(
        f"{base_url}/v1/customers?limit={limit}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(req, timeout=30) as answer:
        data: list[dict[str, object]] = json.loads(answer.read())["data"]
    return data


class _Deliverer(threading.Thread):
    """Posts signed `customer.updated` events to the receiver as fast as it answers."""

    def __init__(self, port: int, secret: str, objects: list[dict[str, object]]) -> None:
        super().__init__(name="soak-deliveries", daemon=True)
        self.port = port
        self.secret = secret
        self.objects = objects
        self.sent = 0
        self.failed = 0
        self.limit = 0
        self.flowing = threading.Event()  # cleared: Stripe is quiet for a while
        self._halt = threading.Event()

    def halt(self) -> None:
        self._halt.set()
        self.flowing.set()

    def run(self) -> None:
        sender = Sender(self.port, self.secret)
        run_id = secrets.token_hex(4)
        while not self._halt.is_set() and (not self.limit or self.sent < self.limit):
            self.flowing.wait()
            if self._halt.is_set():
                break
            obj = dict(self.objects[self.sent % len(self.objects)])
            obj["description"] = f"soak {self.sent}"
            event = {
                "id": f"evt_soak{run_id}{self.sent:09d}",
                "object": "event",
                "api_version": "2026-10-28.endive",
                "created": int(time.time()),
                "livemode": False,
                "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None},
                "type": "customer.updated",
                "data": {"object": obj, "previous_attributes": {"description": None}},
            }
            if sender.post(event):
                self.sent += 1
            else:
                self.failed += 1
                time.sleep(0.05)
        sender.close()


def _type_for(panel: CustomersPanel, seconds: float, soak: Soak) -> None:
    """Type queries and erase them, letting the window paint and take arrivals in between."""
    app = QApplication.instance()
    assert app is not None
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        query = QUERIES[i % len(QUERIES)]
        i += 1
        QTest.keyClicks(panel.search, query)
        for _ in query:
            QTest.keyClick(panel.search, Qt.Key.Key_Backspace)
        soak.keystrokes += 2 * len(query)
        app.processEvents()  # paint, queued arrivals, task results


def _idle(seconds: float) -> None:
    """The window left open: Qt's event loop, as `app.exec()` runs it. (Not `QTest.qWait`: it
    holds the GIL while it waits, and the receiver's threads would starve.)"""
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def run_soak(soak: Soak) -> list[Line]:
    secret = "whsec_" + secrets.token_hex(24)
    key = "sk_test_soak"
    with tempfile.TemporaryDirectory(prefix="billing-admin-soak-") as tmp:
        root = Path(tmp)
        sandbox = SandboxServer(port=0)
        sandbox.start()
        os.environ["STRIPE_WEBHOOK_SECRET"] = secret  # the documented override, this run only
        runtime = None
        try:
            t0 = time.perf_counter()
            _seed(sandbox, soak.customers)
            seed_s = time.perf_counter() - t0
            app = make_application(resources_dir())
            paths = AppPaths(root / "config", root / "data", root / "logs")
            runtime = build_runtime(
                Options(db=f"sqlite:///{root / 'soak.sqlite3'}", api_base=sandbox.url), paths
            )
            ctx = runtime.require_context()
            t0 = time.perf_counter()
            ctx.sync.pull(SyncTarget.ALL)  # the first pull, before the soak's clock starts
            sync_s = time.perf_counter() - t0
            tasks = TaskRunner()
            window = MainWindow(ctx, tasks)
            window.resize(1280, 800)
            window.show()
            synced: list[object] = []
            window.sync_finished.connect(synced.append)
            window.start(sync_first=False)
            tasks.wait_idle(600_000)
            panel = window.panels["customers"]
            assert isinstance(panel, CustomersPanel)
            listener = runtime.make_listener(port=0, use_cli=False)
            window.attach_listener(listener)
            listener.start(catch_up=False)
            port = listener.receiver.port if listener.receiver else 0
            deliverer = _Deliverer(port, secret, _customer_objects(sandbox.url, key))
            deliverer.limit = soak.event_goal or 0
            soak.say(
                f"  {soak.customers:,} customers seeded in {seed_s:.1f} s, first sync "
                f"{sync_s:.1f} s; window shows {panel.model.total_count:,}"
            )
            panel.focus_search()
            app.processEvents()
            start_counts, start_rss = _counts(), _rss_mb()
            started = time.monotonic()
            deliverer.start()
            last_sync = last_report = started
            deadline = started + soak.minutes * 60
            phase = 0
            while True:
                # Phases: a person searching while Stripe is quiet, then a burst of events with
                # the window open (a typing person and a burst share one GIL, and typing then
                # crawls; see the note in docs/platform-bugs.md).
                typing = phase % 2 == 0
                if time.monotonic() >= deadline:  # overtime: only what is still short
                    typing = soak.keystrokes < soak.keystroke_goal
                if typing:
                    deliverer.flowing.clear()
                    _type_for(panel, soak.phase_s, soak)
                else:
                    deliverer.flowing.set()
                    _idle(soak.phase_s)
                phase += 1
                now = time.monotonic()
                soak.events_sent = deliverer.sent
                soak.syncs = len(synced)
                goals_met = (
                    soak.keystrokes >= soak.keystroke_goal and deliverer.sent >= soak.event_goal
                )
                if now >= deadline and goals_met:
                    break
                if now - last_sync >= soak.sync_every_s:
                    window.start_sync()  # runs on behind whatever the next phase does
                    last_sync = now
                if now - last_report >= REPORT_EVERY_S:
                    last_report = now
                    soak.say(_progress(soak, now - started, start_counts, start_rss))
            deliverer.halt()
            deliverer.join(30)
            tasks.wait_idle(600_000)  # a sync still running finishes
            app.processEvents()
            soak.syncs = len(synced)
            elapsed = time.monotonic() - started
            soak.events_sent = deliverer.sent
            end_counts, end_rss = _counts(), _rss_mb()
            listener.stop()
            tasks.shutdown()
            window.close()
            window.deleteLater()
        finally:
            if runtime is not None:
                runtime.close()
            sandbox.stop()
            os.environ.pop("STRIPE_WEBHOOK_SECRET", None)
    change = ", ".join(f"{k} {end_counts[k] - start_counts[k]:+d}" for k in start_counts)
    return [
        *soak.lines,
        f"  {elapsed / 60:.1f} min: {soak.keystrokes:,} keystrokes, {deliverer.sent:,} events "
        f"applied ({deliverer.failed} refused), {soak.syncs} syncs",
        f"  references at the end vs start: {change}  (steady: within a few hundred)",
        Result("soak RSS at the end", round(end_rss, 1), "MB", round(start_rss, 1),
               round(end_rss / start_rss, 3), "", None,
               f"  RSS {start_rss:.0f} MB -> {end_rss:.0f} MB (ratio {end_rss / start_rss:.2f}x)"),
    ]  # fmt: skip


def _progress(soak: Soak, elapsed: float, start: dict[str, int], start_rss: float) -> str:
    now = _counts()
    change = ", ".join(f"{k} {now[k] - start[k]:+d}" for k in start)
    return (
        f"  {elapsed / 60:5.1f} min: {soak.keystrokes:,} keys, {soak.events_sent:,} events, "
        f"{soak.syncs} syncs; refs {change}; RSS {_rss_mb():.0f} MB (start {start_rss:.0f})"
    )


def run(argv: list[str] | None = None, quick: bool = False) -> list[Line]:
    """The short soak of `make bench`, or the long one with `--soak [MINUTES] [--customers N]`;
    `quick`: 6 s at 2,000 customers."""
    args = list(argv or [])
    if "--soak" not in args:
        if quick:
            return run_soak(Soak(6 / 60, 2_000, sync_every_s=3.0, phase_s=1.5))
        return run_soak(Soak(20 / 60, 10_000, sync_every_s=8.0, phase_s=5.0))
    after = args[args.index("--soak") + 1 :]
    minutes = float(after[0]) if after and not after[0].startswith("-") else 30.0
    customers = int(args[args.index("--customers") + 1]) if "--customers" in args else 10_000
    return run_soak(
        Soak(
            minutes,
            customers,
            keystroke_goal=100_000,
            event_goal=100_000,
            sync_every_s=300.0,
            phase_s=30.0,
        )
    )
