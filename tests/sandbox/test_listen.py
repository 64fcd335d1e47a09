"""`python -m stripe_sandbox listen`: the Stripe CLI's `stripe listen` against the sandbox."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import stripe

from stripe_sandbox import SandboxServer
from stripe_sandbox.listen import main, signing_secret
from tests.sandbox.test_events_webhooks import _Receiver

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk_test_listen"
READY = re.compile(
    r"^Ready! You are using Stripe API Version \[(?P<version>[^\]]+)\]\. Your webhook signing "
    r"secret is (?P<secret>whsec_[0-9a-f]{64}) \(\^C to quit\)$"
)
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d   --> (?P<type>\S+) \[(?P<id>evt_\w+)\]$")
RESPONSE_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d  <--  \[(?P<status>\d+)\] POST (?P<url>\S+) "
    r"\[(?P<id>evt_\w+)\]$"
)


def _wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class _Running:
    """`listen` running in a thread with captured output."""

    def __init__(self, argv: list[str]) -> None:
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.stop = threading.Event()
        self.code: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.code.append(main(argv, self.out, self.err, self.stop))
        )
        self.thread.start()
        _wait_for(lambda: "Ready!" in self.err.getvalue() or bool(self.code))

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()

    def close(self) -> int:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive()
        return self.code[0]


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.close()


def _args(sandbox: SandboxServer, *extra: str) -> list[str]:
    return ["--api-key", KEY, "--api-base", sandbox.url, "--poll-interval", "0.05", *extra]


def test_print_secret_is_stable_per_key(sandbox: SandboxServer) -> None:
    secrets = []
    for key in (KEY, KEY, "sk_test_other"):
        out, err = io.StringIO(), io.StringIO()
        code = main(["--api-key", key, "--api-base", sandbox.url, "--print-secret"], out, err)
        assert code == 0
        assert err.getvalue() == ""
        secrets.append(out.getvalue())
    assert secrets[0] == secrets[1] == signing_secret(KEY) + "\n"
    assert secrets[2] != secrets[0]
    assert re.fullmatch(r"whsec_[0-9a-f]{64}\n", secrets[0])


@pytest.mark.parametrize("key", ["sk_live_" + "0123456789abcdef", "nonsense"])
def test_bad_key_fails_like_the_cli(sandbox: SandboxServer, key: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--api-key", key, "--api-base", sandbox.url], out, err)
    assert code == 1
    assert err.getvalue().startswith(
        "FATAL Error while authenticating with Stripe: Authorization failed, status=401, body="
    )
    assert "Ready!" not in err.getvalue()
    assert out.getvalue() == ""


def test_bad_arguments(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    err = io.StringIO()
    assert main(["--api-base", sandbox.url], io.StringIO(), err) == 2
    assert "--api-key" in err.getvalue()
    err = io.StringIO()
    code = main(_args(sandbox, "--forward-to", "https://example.com/hook"), io.StringIO(), err)
    assert code == 2
    assert "loopback" in err.getvalue()
    err = io.StringIO()
    assert main(["--api-key", KEY, "--api-base", "http://127.0.0.1:9"], io.StringIO(), err) == 1
    assert "Error while authenticating with Stripe" in err.getvalue()


def test_forwards_new_events_signed(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, receiver: _Receiver
) -> None:
    stripe_client.v1.customers.create({"name": "Before listen"})
    # A forward-to without a scheme means http://, as with the CLI.
    target = receiver.url.removeprefix("http://")
    running = _Running(
        _args(sandbox, "--forward-to", target, "--events", "customer.created,customer.updated")
    )
    try:
        ready = READY.match(running.err.getvalue().strip())
        assert ready is not None, running.err.getvalue()
        assert ready["version"] == stripe.api_version
        secret = ready["secret"]
        assert secret == signing_secret(KEY)

        customer = stripe_client.v1.customers.create({"name": "After listen"})
        stripe_client.v1.products.create({"name": "Not forwarded"})
        stripe_client.v1.customers.update(customer.id, {"name": "Renamed"})
        _wait_for(lambda: len(receiver.received) == 2 and len(running.lines()) == 4)
    finally:
        assert running.close() == 0
    events = [
        stripe.Webhook.construct_event(body.decode(), signature, secret)
        for body, signature in receiver.received
    ]
    assert [e.type for e in events] == ["customer.created", "customer.updated"]
    assert events[0].data.object["id"] == customer.id
    lines = running.lines()
    first, answer = EVENT_LINE.match(lines[0]), RESPONSE_LINE.match(lines[1])
    assert first is not None
    assert answer is not None
    assert (first["type"], first["id"]) == ("customer.created", events[0].id)
    assert (answer["status"], answer["url"], answer["id"]) == ("200", receiver.url, events[0].id)
    assert EVENT_LINE.match(lines[2]) is not None
    assert "Before listen" not in "".join(b.decode() for b, _ in receiver.received)


def test_all_events_by_default_and_after_a_reset(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, receiver: _Receiver
) -> None:
    stripe_client.v1.customers.create({"name": "Old"})
    running = _Running(_args(sandbox, "--forward-to", receiver.url))
    try:
        stripe_client.v1.products.create({"name": "P"})
        _wait_for(lambda: len(receiver.received) == 1)
        sandbox.reset()
        stripe_client.v1.customers.create({"name": "New"})
        _wait_for(lambda: len(receiver.received) == 2)
    finally:
        assert running.close() == 0
    types = [EVENT_LINE.match(line) for line in running.lines()]
    assert [m["type"] for m in types if m] == ["product.created", "customer.created"]


def test_failed_forward_is_reported(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    running = _Running(_args(sandbox, "--forward-to", f"http://127.0.0.1:{port}/hook"))
    try:
        stripe_client.v1.customers.create({"name": "Nobody listens"})
        _wait_for(lambda: "[ERROR] Failed to POST" in running.out.getvalue())
    finally:
        assert running.close() == 0
    assert EVENT_LINE.match(running.lines()[0]) is not None


def test_command_line(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, receiver: _Receiver
) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "STRIPE_API_KEY": KEY}
    secret = subprocess.run(
        [
            sys.executable,
            "-m",
            "stripe_sandbox",
            "listen",
            "--print-secret",
            "--api-base",
            sandbox.url,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert secret == signing_secret(KEY) + "\n"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stripe_sandbox.listen",
            "--forward-to",
            receiver.url,
            "--api-base",
            sandbox.url,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        assert READY.match(proc.stderr.readline().strip())
        stripe_client.v1.customers.create({"name": "Via the command line"})
        assert receiver.got_one.wait(timeout=10)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert EVENT_LINE.match(out.splitlines()[0])
