"""Server lifecycle: state file round-trip, reset, the CLI's ready line and port errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import stripe

from stripe_sandbox import SandboxServer
from stripe_sandbox.cli import run
from tests.sandbox.raw_http import call

ROOT = Path(__file__).resolve().parents[2]


def test_state_file_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "state" / "sandbox.json"
    with SandboxServer(state_file=state) as first:
        client = stripe.StripeClient("sk_test_state", base_addresses={"api": first.url})
        customer = client.v1.customers.create({"email": "kept@example.com"})
        first.seed_demo()
    assert json.loads(state.read_text())["format"] == 1
    assert [p.name for p in state.parent.iterdir()] == ["sandbox.json"]

    with SandboxServer(state_file=state) as second:
        client = stripe.StripeClient("sk_test_state", base_addresses={"api": second.url})
        assert client.v1.customers.retrieve(customer.id).email == "kept@example.com"
        assert second.seed_demo() == {
            "customers": 0,
            "products": 0,
            "prices": 0,
            "payment_methods": 0,
            "invoices": 0,
            "subscriptions": 0,
            "test_clocks": 0,
        }
        second.reset()
    with SandboxServer(state_file=state) as third:
        client = stripe.StripeClient("sk_test_state", base_addresses={"api": third.url})
        assert client.v1.customers.list().data == []


def test_stop_is_idempotent() -> None:
    server = SandboxServer()
    server.start()
    assert server.url == f"http://127.0.0.1:{server.port}"
    server.stop()
    server.stop()


def test_cli_prints_ready_line_first(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_sandbox", "--port", "0", "--state", str(tmp_path / "s")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("Sandbox ready: http://127.0.0.1:")
        port = int(first.rsplit(":", 1)[1])
        assert port != 0
        client = stripe.StripeClient(
            "sk_test_cli", base_addresses={"api": f"http://127.0.0.1:{port}"}
        )
        client.v1.customers.create({"name": "via cli"})
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (tmp_path / "s").exists()


def test_port_in_use_returns_2(capsys: object) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        assert run(port=port) == 2
    captured = capsys.readouterr()  # type: ignore[attr-defined]
    assert "already in use" in captured.err
    assert captured.out == ""


def test_state_file_keeps_payments_invoices_and_the_clock(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    with SandboxServer(state_file=state) as first:
        client = stripe.StripeClient("sk_test_state", base_addresses={"api": first.url})
        customer = client.v1.customers.create({"email": "kept@example.com"})
        session = client.v1.checkout.sessions.create(
            {
                "customer": customer.id,
                "line_items": [
                    {
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 500,
                            "product_data": {"name": "Pack"},
                        },
                        "quantity": 1,
                    }
                ],
                "expires_at": client.v1.customers.retrieve(customer.id).created + 1800,
            }
        )
        invoice = client.v1.invoices.create({"customer": customer.id})
        client.v1.invoice_items.create(
            {"customer": customer.id, "invoice": invoice.id, "amount": 900, "currency": "usd"}
        )
    with SandboxServer(state_file=state) as second:
        client = stripe.StripeClient("sk_test_state", base_addresses={"api": second.url})
        assert client.v1.invoices.retrieve(invoice.id).total == 900
        lines = client.v1.checkout.sessions.line_items.list(session.id).data
        assert [li.description for li in lines] == ["Pack"]
        # Expiry still happens after a restart.
        status, _, _ = call(second.url, "POST", "/_sandbox/clock/advance", "seconds=1801")
        assert status == 200
    with SandboxServer(state_file=state) as third:
        client = stripe.StripeClient("sk_test_state", base_addresses={"api": third.url})
        assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
        assert call(third.url, "GET", "/_sandbox/clock")[2]["offset_seconds"] == 1801


def test_a_stable_port_is_kept_across_restarts_unless_taken(tmp_path: Path) -> None:
    state = tmp_path / "sandbox-state.json"
    first = SandboxServer(port=0, state_file=state, stable_port=True)
    first.start()
    port = first.port
    first.stop()
    again = SandboxServer(port=0, state_file=state, stable_port=True)
    again.start()
    try:
        assert again.port == port  # links issued last time point here
    finally:
        again.stop()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen(1)
    try:
        moved = SandboxServer(port=0, state_file=state, stable_port=True)
        moved.start()
        new_port = moved.port
        try:
            assert new_port not in (0, port)  # taken: a free one, not a failure
        finally:
            moved.stop()
    finally:
        blocker.close()
    assert SandboxServer(port=0, state_file=state, stable_port=True)._store.port == new_port
