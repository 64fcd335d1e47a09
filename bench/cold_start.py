"""Cold start: process start → the Customers panel painted with data, and RSS, at 10k/100k/300k.

The real `admin-app` as a subprocess (offscreen, a test-mode key in its environment, the API
address a closed loopback port so nothing leaves the machine) over a SQLite file of N customers,
with `BILLING_ADMIN_FIRST_PAINT_FILE` set (see `ui/first_paint.py`): the window opens on
Customers and records when its table first painted rows, and its RSS once start-up settled
(every load done, the search index built). The app is then stopped with SIGTERM.

Baseline, in the same run and interleaved: `bench/bare_window.py`, a bare QMainWindow +
QTableView of the same rows read with sqlite3. Both timed from just before `Popen` to the
first paint's wall-clock time. Goals: ≤ 1.5x bare; RSS at 300k < 250 MB.

Both processes run as an installed app does: from compiled bytecode (pip and PyInstaller ship
`.pyc` files). Here `PYTHONDONTWRITEBYTECODE=1` may be set for every process, which would make
each start compile every module from source (~0.25 s for the app, a few ms for the baseline):
so the children get a private `PYTHONPYCACHEPREFIX` instead, filled by one unmeasured start of
each before the timed ones (which also warms the file cache for both alike).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.customer_data import fill_customers
from bench.results import Line, Result

SIZES = (10_000, 100_000, 300_000)
QUICK_SIZES = (10_000,)
REPS = 5
QUICK_REPS = 3
RSS_GOAL_MB = 250.0
RSS_AT = 300_000
TIMEOUT_S = 120.0
_MB = 1024 * 1024


def _admin_app() -> list[str]:
    script = Path(sys.executable).with_name("admin-app")
    return [str(script)] if script.exists() else [sys.executable, "-m", "admin_app"]


def _wait_for(path: Path, key: str, proc: subprocess.Popen[bytes]) -> dict[str, float]:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            record: dict[str, float] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # not there yet (both writers replace the file whole)
            record = {}
        if key in record:
            return record
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"exited with {proc.returncode} before {key}: {err[-500:]}")
        time.sleep(0.02)
    raise RuntimeError(f"no {key} within {TIMEOUT_S:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _child_env(home: Path) -> dict[str, str]:
    """The environment of both children: offscreen, and compiled bytecode kept (see above)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "QT_QPA_PLATFORM": "offscreen",
            "PYTHONPYCACHEPREFIX": str(home.parent / "pycache")}  # fmt: skip


def _app_once(db: Path, home: Path) -> tuple[float, float, float]:
    """(seconds to first paint with data, RSS then, RSS settled) of one `admin-app` start."""
    out = home / "first-paint.json"
    out.unlink(missing_ok=True)
    env = {**_child_env(home), "BILLING_ADMIN_HOME": str(home),
           "STRIPE_SECRET_KEY": "sk_test_cold_start_bench",
           "BILLING_ADMIN_FIRST_PAINT_FILE": str(out)}  # fmt: skip
    command = [*_admin_app(), "--db", f"sqlite:///{db}", "--api-base", "http://127.0.0.1:9"]
    started = time.time()
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=home
    )
    try:
        record = _wait_for(out, "settled", proc)
    finally:
        _stop(proc)
    return record["first_paint"] - started, record["rss_at_first_paint"], record["rss_settled"]


def _bare_once(db: Path, home: Path) -> tuple[float, float, float]:
    out = home / "bare-paint.json"
    out.unlink(missing_ok=True)
    env = _child_env(home)
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_window", str(db), str(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        record = _wait_for(out, "first_paint", proc)
    finally:
        _stop(proc)
    return record["first_paint"] - started, record["rss_at_first_paint"], record["rss_settled"]


def _spread(samples: list[float], unit: str = "ms") -> str:
    return (
        f"median {statistics.median(samples):,.0f} {unit} "
        f"(min {min(samples):,.0f}, max {max(samples):,.0f})"
    )


def _measure(size: int, reps: int, tmp: Path) -> list[Line]:
    home = tmp / f"home-{size}"
    home.mkdir(mode=0o700)
    db = home / "customers.sqlite3"
    fill_customers(db, size)
    app: list[tuple[float, float, float]] = []
    bare: list[tuple[float, float, float]] = []
    _app_once(db, home)  # warm-up, not counted (see above)
    _bare_once(db, home)
    for rep in range(reps):
        runs = [(_app_once, app), (_bare_once, bare)]
        for once, out in runs if rep % 2 == 0 else runs[::-1]:
            out.append(once(db, home))
    app_ms = [a[0] * 1000 for a in app]
    bare_ms = [b[0] * 1000 for b in bare]
    value, baseline = statistics.median(app_ms), statistics.median(bare_ms)
    ratio = value / baseline
    lines: list[Line] = [
        Result(
            f"cold start to Customers painted with data @ {size:,} customers",
            round(value, 1),
            "ms",
            round(baseline, 1),
            round(ratio, 3),
            "ratio <= 1.5x bare",
            ratio <= 1.5,
            f"cold start @ {size:,} customers: {_spread(app_ms)}; bare QMainWindow+QTableView "
            f"{_spread(bare_ms)}; ratio {ratio:.2f}x (goal <= 1.5x; {reps} reps)",
        )
    ]
    rss = [a[2] / _MB for a in app]
    rss_paint = [a[1] / _MB for a in app]
    bare_rss = [b[2] / _MB for b in bare]
    rss_value, rss_base = statistics.median(rss), statistics.median(bare_rss)
    goal = f"< {RSS_GOAL_MB:.0f} MB" if size == RSS_AT else ""
    lines.append(
        Result(
            f"RSS after start @ {size:,} customers",
            round(rss_value, 1),
            "MB",
            round(rss_base, 1),
            round(rss_value / rss_base, 3),
            goal,
            rss_value < RSS_GOAL_MB if size == RSS_AT else None,
            f"  RSS settled (index built) {_spread(rss, 'MB')}, at first paint "
            f"{_spread(rss_paint, 'MB')}; bare {_spread(bare_rss, 'MB')}"
            + (f" (goal {goal})" if goal else ""),
        )
    )
    return lines


def run(quick: bool = False) -> list[Line]:
    lines: list[Line] = []
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o700)  # a SQLite database must not sit in a folder others can write
        for size in QUICK_SIZES if quick else SIZES:
            lines += _measure(size, QUICK_REPS if quick else REPS, Path(tmp))
    return lines
