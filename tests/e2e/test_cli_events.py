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
        while "forwarding" not in proc.stderr.readline():
            assert time.monotonic() < deadline
        client = stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url})
        made = client.v1.customers.create({"email": "headless@example.com"})
        line = proc.stdout.readline()
        assert line.split()[2] == "applied"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0

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
