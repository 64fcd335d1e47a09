"""`admin-app --self-test`: proves an installation works, source or frozen, one line per check."""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

import stripe

from admin_app import __version__
from admin_app.paths import resources_dir

Check = Callable[[], str]


def _database() -> str:
    from services import migrations
    from services.database import open_database

    with tempfile.TemporaryDirectory(prefix="billing-admin-selftest-") as tmp:
        db = open_database(f"sqlite:///{Path(tmp) / 'selftest.sqlite3'}")
        try:
            version = migrations.current_version(db)
        finally:
            db.close()
    if version != migrations.latest_version():
        raise RuntimeError(f"schema {version}, expected {migrations.latest_version()}")
    return f"temporary database migrated to schema {version}"


def _keyring() -> str:
    from services.secrets import SecretStore

    return f"keyring backend: {SecretStore().backend_description()}"


def _resources() -> str:
    root = resources_dir()
    missing = [name for name in ("style.qss", "icon.svg") if not (root / name).is_file()]
    if missing:
        raise RuntimeError(f"missing in {root}: {', '.join(missing)}")
    return f"resources found in {root}"


def _api_pin() -> str:
    from services.stripe_gateway import PINNED_API_VERSION

    expected = "2026-10-28.endive"
    if expected != PINNED_API_VERSION or stripe.api_version != expected:
        raise RuntimeError(f"stripe-python pins {stripe.api_version}, expected {expected}")
    return f"Stripe API version pinned to {PINNED_API_VERSION} (stripe-python {stripe.VERSION})"


def _window() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from admin_app.paths import AppPaths
    from admin_app.wiring import Options, build_runtime
    from ui.app import build_window_offscreen

    with tempfile.TemporaryDirectory(prefix="billing-admin-selftest-") as tmp:
        root = Path(tmp)
        paths = AppPaths(root / "config", root / "data", root / "logs")
        db = f"sqlite:///{root / 'window.sqlite3'}"
        runtime = build_runtime(Options(db=db, sandbox=True, need_stripe=False), paths)
        try:
            return build_window_offscreen(runtime.require_context(), resources_dir())
        finally:
            runtime.close()


def _qt_binding() -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from ui.app import make_application
    from ui.qt_binding import check_binding

    make_application(resources_dir())
    return check_binding()


CHECKS: list[tuple[str, Check]] = [
    ("database", _database),
    ("keyring", _keyring),
    ("resources", _resources),
    ("stripe", _api_pin),
    ("window", _window),
    ("qt-binding", _qt_binding),
]


def run_self_test() -> int:
    frozen = " (frozen)" if getattr(sys, "frozen", False) else ""
    print(f"Billing Admin {__version__}{frozen} self-test", flush=True)
    failed = 0
    for name, check in CHECKS:
        try:
            detail = check()
        except Exception as exc:
            failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
            traceback.print_exc(file=sys.stderr)
        else:
            print(f"ok   {name}: {detail}", flush=True)
    if failed:
        print(f"self-test: {failed} check(s) failed", flush=True)
        return 1
    print("self-test: ok", flush=True)
    return 0
