"""Does the window hold still? The GUI thread's longest stall while Stripe's events pour in and
while a sync runs, in the real window.

The window: `MainWindow` over 10,000 customers (SQLite file, offscreen, Customers panel in front),
its webhook receiver on a loopback port, all wired as `admin-app` wires them. Stripe (the
sandbox) and the senders run in their own processes, as they do for real: only the app's own
threads share the GUI thread's interpreter. The probe: a 5 ms `QTimer` on the GUI thread; the
figure is its longest gap between two ticks (anything the GUI thread did in one go — a model
reset, a slot, waiting for the GIL — shows as a gap).

Interleaved, each repetition measures:
- baseline: the same window idle for one second;
- a burst: 1,000 signed `customer.updated` deliveries from 4 senders at once (as `stripe listen`
  forwards), each for a customer whose mirror row is out of date, so each is applied and names
  its row; measured until the last event is applied and the window has shown it. The same burst
  with the window not told of the changes is measured too: what the receiver's threads alone
  cost the GUI thread (they share one interpreter lock);
- a sync: every one of the 10,000 mirror rows out of date, then *Sync* (Ctrl+R) in the window,
  until it finished and the list shows the rows it wrote.

Goal: no stall over 50 ms (the longest gap, median of the repetitions). `quick`: 1,000
customers, 200-event bursts, half a second idle.
`python -m bench.stall --send PORT TAG` is the sender process (ids on stdin, the signing secret
in STALL_WEBHOOK_SECRET).
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, Qt, QTimer

from admin_app.paths import AppPaths, resources_dir
from admin_app.wiring import Options, build_runtime
from bench.delivery import Sender
from bench.results import Line, Result
from services.models import Customer
from services.sync import SyncTarget
from stripe_sandbox import SandboxServer
from stripe_sandbox.resources import customers
from stripe_sandbox.resources.common import Ctx
from stripe_sandbox.store import RequestInfo
from ui.app import make_application
from ui.main_window import MainWindow, _ListenerRelay
from ui.panels.customers import CustomersPanel
from ui.tasks import TaskRunner

SECRET_VAR = "STALL_WEBHOOK_SECRET"
GOAL_MS = 50.0
TICK_MS = 5
SENDERS = 4


class _Probe:
    """A 5 ms timer on the GUI thread that remembers its longest gap.

    A watchdog thread samples what the GUI thread is doing whenever a tick is 20 ms late (the
    profile behind a stall): the innermost frames of ours, or `exec` when the GUI thread was in
    Qt — painting, or waiting for the interpreter lock held by another thread."""

    def __init__(self) -> None:
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._on_tick)
        self._last = 0.0
        self.worst = 0.0
        self.samples: Counter[str] = Counter()
        self._gui = threading.get_ident()
        self._running = False
        self._active = False  # read by the watchdog: no Qt call from its thread
        self.phase = ""
        self._watchdog: threading.Thread | None = None

    def watch(self) -> None:
        self._running = True
        self._watchdog = threading.Thread(target=self._watch, name="stall-watchdog", daemon=True)
        self._watchdog.start()

    def unwatch(self) -> None:
        self._running = False
        if self._watchdog is not None:
            self._watchdog.join()

    def _watch(self) -> None:
        while self._running:
            time.sleep(0.002)
            if self._active and time.perf_counter() - self._last > 0.020:
                frame = sys._current_frames().get(self._gui)
                stack = traceback.extract_stack(frame)[-3:] if frame is not None else []
                del frame  # at once: the GUI thread's locals are not ours to free
                where = " < ".join(
                    f"{Path(f.filename).stem}.{f.name}:{f.lineno}" for f in reversed(stack)
                )
                self.samples[f"{self.phase}: {where}"] += 1

    def start(self) -> None:
        self.worst = 0.0
        self._last = time.perf_counter()
        self._timer.start()
        self._active = True

    def stop(self) -> float:
        """The longest gap in ms since `start`, the last stretch included."""
        self._on_tick()
        self._active = False
        self._timer.stop()
        return self.worst * 1000

    def _on_tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self._last)
        self._last = now


class _Loop:
    """Runs the event loop (as `app.exec()` does) until something is done; never
    `processEvents` in a busy loop, which would itself be the GUI thread doing everything in
    one go. Its timers live as long as it does: the watchdog's glimpses of the GUI thread's
    frames must not be what last holds a timer (Qt objects die on their own thread)."""

    def __init__(self) -> None:
        self._loop = QEventLoop()
        self._poll = QTimer()
        self._poll.setInterval(10)
        self._give_up = QTimer()
        self._give_up.setSingleShot(True)
        self._give_up.timeout.connect(self._loop.quit)
        self._done: Callable[[], bool] = lambda: True
        self._poll.timeout.connect(self._on_poll)

    def _on_poll(self) -> None:
        if self._done():
            self._loop.quit()

    def wait(self, done: Callable[[], bool], timeout_s: float = 300.0) -> None:
        if done():
            return
        self._done = done
        self._poll.start()
        self._give_up.start(int(timeout_s * 1000))
        self._loop.exec()
        self._poll.stop()
        self._give_up.stop()
        if not done():
            raise TimeoutError(f"not done within {timeout_s:.0f} s")

    def idle(self, seconds: float) -> None:
        until = time.perf_counter() + seconds
        self.wait(lambda: time.perf_counter() >= until, seconds + 5)


def _seed(sandbox: SandboxServer, count: int) -> list[str]:
    store = sandbox.api.store
    request = RequestInfo(None, None)
    ids = []
    with store.lock:
        now = store.now()
        for i in range(count):
            params = {"name": f"Stall Person {i}", "email": f"stall.p{i}@example.com"}
            ids.append(customers.create(Ctx(store, now - count + i, request), params, "")["id"])
    return ids


def _out_of_date(ids: list[str]) -> None:
    """Make these mirror rows differ from Stripe's objects (as if Stripe changed them since),
    so re-reading them writes each one and names its row."""
    for at in range(0, len(ids), 500):
        Customer.update(raw={}).where(Customer.stripe_id.in_(ids[at : at + 500])).execute()


def _send_main(port: int, tag: str) -> int:
    """The sender process: one signed `customer.updated` per id on stdin, from SENDERS
    keep-alive connections at once. Prints `sent N failed M`."""
    ids: list[str] = json.load(sys.stdin)
    secret = os.environ[SECRET_VAR]
    counts = [0, 0]
    lock = threading.Lock()

    def send(part: list[str], n: int) -> None:
        sender = Sender(port, secret)
        for i, customer_id in enumerate(part):
            event = {
                "id": f"evt_stall{tag}x{n}x{i:06d}", "object": "event",
                "api_version": "2026-10-28.endive", "created": int(time.time()),
                "livemode": False, "pending_webhooks": 1,
                "request": {"id": None, "idempotency_key": None}, "type": "customer.updated",
                "data": {"object": {"id": customer_id, "object": "customer"}},
            }  # fmt: skip
            ok = sender.post(event)
            with lock:
                counts[0 if ok else 1] += 1
        sender.close()

    threads = [threading.Thread(target=send, args=(ids[n::SENDERS], n)) for n in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"sent {counts[0]} failed {counts[1]}", flush=True)
    return 0


def _start_sandbox(state: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--state", str(state)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("Sandbox ready: "):
        proc.kill()
        raise RuntimeError(f"the sandbox did not start: {line!r}")
    return proc, line.removeprefix("Sandbox ready: ")


def _spread_ms(samples: list[float]) -> str:
    return (
        f"median {statistics.median(samples):.1f} ms "
        f"(min {min(samples):.1f}, max {max(samples):.1f})"
    )


def run(quick: bool = False) -> list[Line]:
    count = 1_000 if quick else 10_000
    events = 200 if quick else 1_000
    idle_s = 0.5 if quick else 1.0
    reps = 5
    secret = "whsec_" + secrets.token_hex(24)
    idle: list[float] = []
    burst: list[float] = []
    quiet: list[float] = []
    quiet_s: list[float] = []
    sync: list[float] = []
    burst_s: list[float] = []
    sync_s: list[float] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="billing-admin-stall-") as tmp:
        root = Path(tmp)
        seeding = SandboxServer(port=0, state_file=root / "sandbox.json")
        seeding.start()
        ids = _seed(seeding, count)
        seeding.stop()  # flushes the state file the sandbox process starts from
        sandbox, api_base = _start_sandbox(root / "sandbox.json")
        os.environ["STRIPE_WEBHOOK_SECRET"] = secret  # the documented override, this run only
        runtime = None
        try:
            app = make_application(resources_dir())
            paths = AppPaths(root / "config", root / "data", root / "logs")
            runtime = build_runtime(
                Options(db=f"sqlite:///{root / 'stall.sqlite3'}", api_base=api_base), paths
            )
            ctx = runtime.require_context()
            ctx.sync.pull(SyncTarget.ALL)
            tasks = TaskRunner()
            window = MainWindow(ctx, tasks)
            window.resize(1280, 800)
            window.show()
            window.show_panel("customers")
            window.start(sync_first=False)
            tasks.wait_idle(600_000)
            panel = window.panels["customers"]
            assert isinstance(panel, CustomersPanel)
            listener = runtime.make_listener(port=0, use_cli=False)
            window.attach_listener(listener)
            listener.start(catch_up=False)
            port = listener.receiver.port if listener.receiver else 0
            synced: list[object] = []
            window.sync_finished.connect(synced.append)
            applied: list[int] = []
            ctx.events.add_listener(lambda _e, _r: applied.append(1))
            relay = window.findChild(_ListenerRelay)
            assert relay is not None
            probe = _Probe()
            loop = _Loop()
            probe.watch()
            app.processEvents()

            def settled() -> bool:
                return not tasks.busy and not window.changes_pending()

            env = {**os.environ, SECRET_VAR: secret}
            for rep in range(reps):
                probe.phase = "idle"
                probe.start()
                loop.idle(idle_s)
                idle.append(probe.stop())

                # The same burst twice: first with the window not told (the receiver's own
                # cost to the GUI thread: the interpreter lock it holds), then updating.
                for told in (False, True):
                    first = (rep * 2 + told) * events % count
                    targets = (ids[first:] + ids[:first])[:events]
                    _out_of_date(targets)
                    applied.clear()
                    relay.blockSignals(not told)
                    probe.phase = "burst" if told else "burst, window not told"
                    sender = subprocess.Popen(
                        [sys.executable, "-m", "bench.stall", "--send", str(port),
                         f"{rep}{int(told)}"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                    )  # fmt: skip
                    probe.start()
                    t0 = time.perf_counter()
                    assert sender.stdin is not None
                    sender.stdin.write(json.dumps(targets))
                    sender.stdin.close()
                    wanted = len(targets)
                    loop.wait(lambda s=sender, n=wanted: s.poll() is not None  # type: ignore[misc]
                          and len(applied) >= n and settled())  # fmt: skip
                    (burst_s if told else quiet_s).append(time.perf_counter() - t0)
                    (burst if told else quiet).append(probe.stop())
                    assert sender.stdout is not None
                    report = sender.stdout.read().split()
                    failed += int(report[-1]) if report else len(targets)
                relay.blockSignals(False)

                _out_of_date(ids)
                synced.clear()
                probe.phase = "sync"
                probe.start()
                t0 = time.perf_counter()
                window.start_sync()
                loop.wait(lambda: bool(synced) and settled())
                sync_s.append(time.perf_counter() - t0)
                sync.append(probe.stop())
            assert panel.model.total_count == count
            probe.unwatch()
            listener.stop()
            tasks.shutdown()
            window.close()
            window.deleteLater()
            app.processEvents()
        finally:
            if runtime is not None:
                runtime.close()
            sandbox.terminate()
            sandbox.wait(30)
            os.environ.pop("STRIPE_WEBHOOK_SECRET", None)
    base = statistics.median(idle)
    lines: list[Line] = [
        f"  window over {count:,} customers, Customers panel in front; {reps} repetitions, "
        f"interleaved; idle baseline: longest gap of a {TICK_MS} ms timer {_spread_ms(idle)}",
        f"  the same {events:,}-event burst with the window not told (what intake alone costs "
        f"the GUI thread): longest gap {_spread_ms(quiet)}; took "
        f"{statistics.median(quiet_s):.1f} s median",
    ]
    for what, samples, took in (
        (f"{events:,}-event burst", burst, burst_s),
        (f"sync of {count:,} changed customers", sync, sync_s),
    ):
        value = statistics.median(samples)
        refused = failed if "burst" in what else 0
        met = value < GOAL_MS and refused == 0
        lines.append(
            Result(
                f"GUI stall during a {what}", round(value, 1), "ms", round(base, 1),
                round(value / base, 3), f"longest gap < {GOAL_MS:.0f} ms", met,
                f"  GUI stall during a {what}: longest gap {_spread_ms(samples)}; took "
                f"{statistics.median(took):.1f} s median (idle {base:.1f} ms; ratio "
                f"{value / base:.2f}x){'' if met else '  BELOW GOAL'}"
                + (f"; {refused} deliveries refused" if refused else ""),
            )
        )  # fmt: skip
    seen = sum(probe.samples.values())
    if seen:
        lines.append(f"  where the GUI thread was during ticks over 20 ms late ({seen} samples):")
        lines += [f"    {n:4d}  {where}" for where, n in probe.samples.most_common(8)]
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["--send"]:
        sys.exit(_send_main(int(sys.argv[2]), sys.argv[3]))
    for line in run(quick="--quick" in sys.argv):
        print(line, flush=True)
