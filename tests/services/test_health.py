"""`GET /healthz` of the headless listener: 200 with what it knows while all is well; 503
saying what is wrong when the database or Stripe goes away; back to 200 when they return."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe

from admin_app.paths import AppPaths
from admin_app.wiring import Options, Runtime, build_runtime
from services.catchup import CatchUp
from services.health import HealthCheck, HealthServer
from services.listener import ListenerService
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _until(url: str, wanted: Callable[[int, dict[str, Any]], bool]) -> tuple[int, dict[str, Any]]:
    """Ask again until the answer is the one wanted (a deadline only against hanging)."""
    deadline = time.monotonic() + 60
    while True:
        status, body = _get(url)
        if wanted(status, body):
            return status, body
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.1)


@pytest.fixture
def own_sandbox() -> Iterator[SandboxServer]:
    """A sandbox this test may stop (the session's is shared)."""
    server = SandboxServer(port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def listening(
    own_sandbox: SandboxServer, tmp_path: Path
) -> Iterator[tuple[Runtime, ListenerService, HealthServer]]:
    paths = AppPaths(tmp_path / "config", tmp_path / "data", tmp_path / "logs")
    runtime = build_runtime(
        Options(db=f"sqlite:///{tmp_path / 'listen.sqlite3'}", api_base=own_sandbox.url), paths
    )
    ctx = runtime.require_context()
    listener = runtime.make_listener(port=0, kind="headless")  # + the sandbox's `stripe listen`
    check = HealthCheck(
        runtime.database, ctx.gateway, listener, CatchUp(runtime.database, ctx.gateway, ctx.events),
        runs_stripe_cli=True, stripe_every_s=0,
    )  # fmt: skip
    server = HealthServer(check, 0)
    listener.start(catch_up=True)
    server.start()
    try:
        yield runtime, listener, server
    finally:
        server.stop()
        listener.stop()
        runtime.close()


def test_healthz_is_200_with_the_facts_then_503_when_stripe_goes_away(
    listening: tuple[Runtime, ListenerService, HealthServer],
    own_sandbox: SandboxServer,
    tmp_path: Path,
) -> None:
    _runtime, listener, server = listening
    assert server.url.startswith("http://127.0.0.1:")
    status, body = _until(server.url, lambda s, b: s == 200 and b["catch_up"]["last_at"])
    assert body["status"] == "ok"
    assert body["problems"] == []
    assert body["database"]["ok"] is True
    assert body["stripe"] == body["stripe"] | {"ok": True, "problem": None, "mode": "sandbox"}
    assert body["stripe_listen"]["state"] == "forwarding"
    assert body["receiver"]["ok"] is True
    assert body["receiver"]["port"] == listener.state.port
    assert set(body["events"]) == {"last_received_at", "last_applied_at"}
    assert "cursor_lag_s" in body["catch_up"]
    assert "reconcile" in body
    assert body["heartbeat"] == {"problem": None}

    # An event arrives through `stripe listen`: the last event received and applied move.
    client = stripe.StripeClient(TEST_KEY, base_addresses={"api": own_sandbox.url})
    client.v1.customers.create({"email": "health@example.com"})
    status, body = _until(server.url, lambda s, b: b["events"]["last_applied_at"] is not None)
    assert status == 200
    assert body["last_event"]["what"].endswith("applied")
    listener.catch_up_now()  # what the loop does every three minutes: the cursor moves
    _status, body = _get(server.url)
    assert 0 <= body["catch_up"]["cursor_lag_s"] < 3600

    # Stripe (the sandbox) goes away: 503 naming Stripe.
    own_sandbox.stop()
    status, body = _until(server.url, lambda s, b: s == 503 and not b["stripe"]["ok"])
    assert body["stripe"]["problem"].startswith("Stripe does not answer")
    assert any(p.startswith("Stripe does not answer") for p in body["problems"])
    assert body["database"]["ok"] is True
    assert "sk_test" not in json.dumps(body)  # no secret in the answer


def test_healthz_is_503_when_the_database_goes_away(
    listening: tuple[Runtime, ListenerService, HealthServer], tmp_path: Path
) -> None:
    _runtime, _listener, server = listening
    _until(server.url, lambda s, _b: s == 200)
    # The database file goes away (a disk unmounted, a volume lost): 503, and what is wrong.
    db_file = tmp_path / "listen.sqlite3"
    db_file.rename(tmp_path / "moved.sqlite3")
    _status, body = _until(server.url, lambda s, _b: s == 503)
    assert body["status"] == "unhealthy"
    assert body["database"]["ok"] is False
    assert any(p.startswith("the database does not answer") for p in body["problems"])
    assert body["stripe"]["ok"] is True


def test_healthz_answers_nothing_else(
    listening: tuple[Runtime, ListenerService, HealthServer],
) -> None:
    _runtime, _listener, server = listening
    status, body = _get(server.url.replace("/healthz", "/other"))
    assert status == 404
    assert body["problems"] == ["try /healthz"]
    request = urllib.request.Request(server.url, data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()
    assert refused.value.code == 501
