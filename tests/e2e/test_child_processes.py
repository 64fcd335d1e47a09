"""No secret on any child's command line: `ps` and /proc/PID/cmdline are world-readable.

The app runs `stripe listen` (or the sandbox's look-alike); the key goes to it in its
environment (STRIPE_API_KEY), and the child inherits nothing it does not need.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
import stripe

from admin_app.paths import AppPaths
from admin_app.wiring import SANDBOX_KEY, Options, build_runtime
from services.listener import ListenerService
from services.models import Customer
from services.stripe_listen import ListenState
from stripe_sandbox import SandboxServer

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/cmdline").exists(), reason="needs Linux's /proc"
)

KEY = "sk_test_51ChildScanKnownKey0000000000000001"
# Built at run time so no literal in the source looks like a real secret.
WEBHOOK = "whsec_" + "ChildScanKnownWebhookSecret0001"
SECRET_PREFIXES = (b"sk_", b"rk_", b"whsec_")


def _descendants(root: int) -> list[int]:
    """Every process whose chain of parents reaches `root` (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and ")"
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def _scan_children() -> list[tuple[int, bytes, dict[bytes, bytes]]]:
    seen = []
    for pid in _descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            raw_env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        env = dict(item.split(b"=", 1) for item in raw_env.split(b"\0") if b"=" in item)
        seen.append((pid, cmdline, env))
    return seen


def _assert_no_secret_in_any_child(expected_key: str) -> None:
    children = _scan_children()
    listeners = [c for c in children if b"listen" in c[1]]
    assert listeners, f"no `listen` child found among {[c[1] for c in children]}"
    for pid, cmdline, env in children:
        for prefix in SECRET_PREFIXES:
            assert prefix not in cmdline, f"pid {pid} has a secret on its command line"
        assert b"STRIPE_WEBHOOK_SECRET" not in env, f"pid {pid} inherited the webhook secret"
        assert b"STRIPE_SECRET_KEY" not in env, f"pid {pid} inherited STRIPE_SECRET_KEY"
        assert b"BILLING_ADMIN_DB" not in env
    for _pid, _cmdline, env in listeners:
        assert env[b"STRIPE_API_KEY"] == expected_key.encode()


def _wait_forwarding(listener: ListenerService) -> None:
    deadline = time.monotonic() + 30
    while listener.state.listen.state is not ListenState.FORWARDING:
        assert time.monotonic() < deadline, listener.state.line()
        time.sleep(0.05)


def _run_and_scan(
    tmp_path: Path, options: Options, sandbox: SandboxServer, expected_key: str
) -> None:
    paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")
    runtime = build_runtime(options, paths)
    try:
        listener = runtime.make_listener(port=0)
        listener.start(catch_up=False)
        try:
            _wait_forwarding(listener)
            _assert_no_secret_in_any_child(expected_key)
            # And while an event goes through: the child is still clean.
            client = stripe.StripeClient(expected_key, base_addresses={"api": sandbox.url})
            made = client.v1.customers.create({"email": "scan@example.com"})
            deadline = time.monotonic() + 20
            while not Customer.select().where(Customer.stripe_id == made.id).exists():
                assert time.monotonic() < deadline, "the event was not forwarded"
                time.sleep(0.05)
            _assert_no_secret_in_any_child(expected_key)
        finally:
            listener.stop()
    finally:
        runtime.close()
    assert not [c for c in _scan_children() if b"listen" in c[1]], "a listen child outlived stop()"


def test_the_sandbox_look_alike_gets_its_key_in_the_environment_only(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Present in the app's own environment: a child that inherited everything would show them.
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK)
    monkeypatch.setenv("BILLING_ADMIN_DB", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    options = Options(db=f"sqlite:///{tmp_path / 'a.sqlite3'}", api_base=sandbox.url)
    _run_and_scan(tmp_path, options, sandbox, SANDBOX_KEY)


def test_the_stripe_cli_gets_the_secret_key_in_the_environment_only(
    tmp_path: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in `stripe` binary: the sandbox's look-alike behind a script, as the CLI is run.
    cli = tmp_path / "stripe"
    cli.write_text(
        f"#!/bin/sh\nshift\nexec {sys.executable} -m admin_app sandbox-listen "
        f'--api-base {sandbox.url} "$@"\n'
    )
    cli.chmod(0o700)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "settings.json").write_text(f'{{"stripe_cli": "{cli}"}}')
    monkeypatch.setenv("STRIPE_SECRET_KEY", KEY)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", WEBHOOK)
    options = Options(db=f"sqlite:///{tmp_path / 'b.sqlite3'}", api_base=sandbox.url)
    _run_and_scan(tmp_path, options, sandbox, KEY)
