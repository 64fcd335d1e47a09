"""`admin-app listen`, `events list` and `events replay` from the command line."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import stripe

from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.e2e.test_cli import _env
from tests.sandbox.raw_http import call


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_headless_listener_receives_and_stops_cleanly(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "admin_app", "--api-base", sandbox.url, "listen",
         "--port", str(port), "--stripe-cli"],
        env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"Listening on http://127.0.0.1:{port}/")
        # Wait until `stripe listen` (the sandbox's) is forwarding, then make an event.
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        seen = [proc.stderr.readline()]
        while "forwarding" not in seen[-1]:
            assert time.monotonic() < deadline
            seen.append(proc.stderr.readline())
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})
        made = client.v1.customers.create({"email": "headless@example.com"})
        line = proc.stdout.readline()
        assert line.split()[2] == "applied"
        # It compares the books with Stripe on start (and again once a day).
        while not any("reconcile:" in s for s in seen):
            assert time.monotonic() < deadline + 30
            seen.append(proc.stderr.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert any("reconcile: Books match" in s for s in seen), seen

    listed = subprocess.run(
        [sys.executable, "-m", "admin_app", "--api-base", sandbox.url, "events", "list", "--json"],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    events = json.loads(listed.stdout)
    assert [(e["type"], e["object_id"], e["status"]) for e in events] == [
        ("customer.created", made.id, "applied")
    ]
    replay = subprocess.run(
        [sys.executable, "-m", "admin_app", "--api-base", sandbox.url, "events", "replay",
         events[0]["id"]],
        env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert replay.stdout.strip().endswith("applied")


def test_listen_on_a_busy_port_is_exit_2(tmp_path: Path, sandbox: SandboxServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "admin_app", "--api-base", sandbox.url, "listen",
             "--port", str(port), "--no-catch-up"],
            env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert "Cannot listen for webhooks" in result.stderr


def test_failed_events_are_replayed_from_the_command_line(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Stripe answers 500 to the re-read: the event is stored `failed` (a transient failure).
    Once Stripe is back, `events replay --failed` applies it; `--flagged` lists nothing."""
    port = _free_port()
    status, _, _fault = call(
        sandbox.url, "POST", "/_sandbox/faults",
        "path_prefix=/v1/customers/&method=GET&status=500&count=1000", key=None,
    )  # fmt: skip
    assert status == 200
    proc = subprocess.Popen(
        [sys.executable, "-m", "admin_app", "--api-base", sandbox.url, "listen",
         "--port", str(port), "--stripe-cli", "--no-catch-up"],
        env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"Listening on http://127.0.0.1:{port}/")
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        while "forwarding" not in proc.stderr.readline():
            assert time.monotonic() < deadline
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})
        made = client.v1.customers.create({"email": "later@example.com"})
        assert proc.stdout.readline().split()[2] == "failed"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert call(sandbox.url, "DELETE", "/_sandbox/faults", "", key=None)[0] == 200

    def admin_app(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "admin_app", "--api-base", sandbox.url, *args],
            env=_env(tmp_path), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    listed = admin_app("events", "list", "--status", "failed", "--json")
    [failed] = json.loads(listed.stdout)
    assert (failed["object_id"], failed["attempts"]) == (made.id, 1)
    assert "temporary problem" in failed["last_error"]
    both = admin_app("events", "replay", "--failed", failed["id"])
    assert both.returncode == 2
    assert "not both" in both.stderr
    replayed = admin_app("events", "replay", "--failed")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == f"{failed['id']}: applied"
    assert "Replayed 1 failed events: 1 applied." in replayed.stderr
    assert admin_app("events", "list", "--flagged").stdout == ""
    again = admin_app("events", "replay", "--failed")
    assert "No failed events to replay." in again.stderr
