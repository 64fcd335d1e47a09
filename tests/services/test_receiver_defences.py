"""The receiver's checks that the socket tests answered only by status: each refusal here is
pinned by its message too, and each acceptance by the event stored (docs/mutants.md: receiver).
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import peewee
import pytest

from services.database import open_database
from services.errors import ConfigurationError, StripeUnreachable, ValidationError
from services.events import ROUTES, EventPipeline, Handler, Status
from services.stripe_gateway import StripeGateway
from services.webhook_receiver import MAX_BODY, WEBHOOK_PATH, WebhookReceiver, verify
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.services.test_webhook_receiver import (
    SECRET,
    _event_body,
    _exchange,
    _read_answer,
    _sign,
    _stored,
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[peewee.Database]:
    database = open_database(f"sqlite:///{tmp_path / 'rxd.sqlite3'}")
    yield database
    database.close()


@pytest.fixture
def receiver(db: peewee.Database, sandbox: SandboxServer) -> Iterator[WebhookReceiver]:
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    rx = WebhookReceiver(EventPipeline(db, gateway, list(ROUTES)), lambda: [SECRET], port=0)
    rx.start()
    yield rx
    rx.stop()


def _request(body: bytes, *headers: str, path: str = WEBHOOK_PATH) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _message(answer: bytes) -> tuple[int, str]:
    sent = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    return sent["status"], sent["message"]


@pytest.mark.parametrize("query", ["?attempt=2", "?next=/a?b=1"])
def test_a_query_string_on_the_webhook_path_is_still_the_webhook(
    receiver: WebhookReceiver, db: peewee.Database, query: str
) -> None:
    body = _event_body("evt_query")
    raw = _request(
        body, f"Stripe-Signature: {_sign(body)}", f"Content-Length: {len(body)}",
        path=f"{WEBHOOK_PATH}{query}",  # a query may itself hold a "?"
    )  # fmt: skip
    status, answer = _exchange(receiver, raw)
    assert (status, _message(answer)) == (200, (200, "ignored"))
    assert _stored() == ["evt_query"]


@pytest.mark.parametrize(
    ("path", "headers", "expected"),
    [
        ("/webhooks/other", [], (404, "not found")),
        (f"{WEBHOOK_PATH}/", [], (404, "not found")),
        (
            WEBHOOK_PATH,
            ["Transfer-Encoding: gzip"],
            (400, "Transfer-Encoding is not supported: send Content-Length"),
        ),
    ],
    ids=["other-path", "trailing-slash", "transfer-encoding"],
)
def test_a_delivery_to_the_wrong_place_or_framed_wrongly_is_refused_with_why(
    receiver: WebhookReceiver,
    db: peewee.Database,
    path: str,
    headers: list[str],
    expected: tuple[int, str],
) -> None:
    body = _event_body("evt_wrong")
    raw = _request(
        body, f"Stripe-Signature: {_sign(body)}", f"Content-Length: {len(body)}", *headers,
        path=path,
    )  # fmt: skip
    status, answer = _exchange(receiver, raw)
    assert (status, _message(answer)) == (expected[0], expected)
    assert _stored() == []


def test_the_answer_says_what_became_of_the_event(
    db: peewee.Database, sandbox: SandboxServer
) -> None:
    """200 with "applied" / "duplicate"; a handler that failed (Stripe unreachable) gets a
    500 that says the event is stored and will be retried."""
    fail = [True]

    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        if fail[0]:
            raise StripeUnreachable("Cannot reach Stripe")
        return Status.APPLIED

    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    routes = [("test.not_routed", Handler(lambda _c, _e: None, apply))]
    rx = WebhookReceiver(EventPipeline(db, gateway, routes), lambda: [SECRET], port=0)
    rx.start()
    try:
        body = _event_body("evt_told")
        raw = _request(body, f"Stripe-Signature: {_sign(body)}", f"Content-Length: {len(body)}")
        answers = []
        for now_failing in (True, False, False):
            fail[0] = now_failing
            answers.append(_message(_exchange(rx, raw)[1]))
    finally:
        rx.stop()
    assert answers == [
        (500, "stored; the handler failed and it will be retried"),
        (200, "applied"),
        (200, "duplicate"),
    ]


@pytest.mark.parametrize(
    ("length_headers", "expected"),
    [
        # The first one is right: a server that reads only it would accept the event.
        (
            ["Content-Length: {n}", "Content-Length: {more}"],
            (400, "conflicting Content-Length headers"),
        ),
        (["Content-Length: {n}", "Content-Length: {n}"], (200, "ignored")),  # the same twice
        ([], (411, "Content-Length required")),
        (["Content-Length: ten"], (400, "bad Content-Length")),
        (["Content-Length: -1"], (413, "body too large")),
        # An empty body is read (and its signature then fails), not refused as too large.
        (
            ["Content-Length: 0"],
            (400, "signature verification failed: No signatures found matching the expected "
                  "signature for payload"),
        ),
    ],
    ids=["conflicting", "repeated", "missing", "not-a-number", "negative", "zero"],
)  # fmt: skip
def test_the_body_length_is_taken_from_one_unambiguous_content_length(
    receiver: WebhookReceiver,
    db: peewee.Database,
    length_headers: list[str],
    expected: tuple[int, str],
) -> None:
    body = _event_body("evt_length")
    headers = [h.format(n=len(body), more=len(body) + 5) for h in length_headers]
    status, answer = _exchange(
        receiver, _request(body, f"Stripe-Signature: {_sign(body)}", *headers)
    )
    assert (status, _message(answer)) == (expected[0], expected)
    assert _stored() == (["evt_length"] if expected[0] == 200 else [])


def test_a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_not(
    receiver: WebhookReceiver, db: peewee.Database
) -> None:
    for evt_id, size, expected in (
        ("evt_at_limit", MAX_BODY, 200),
        ("evt_over", MAX_BODY + 1, 413),
    ):
        body = _event_body(evt_id)
        body = body[:-1] + b" " * (size - len(body)) + b"}"
        assert len(body) == size
        raw = _request(body, f"Stripe-Signature: {_sign(body)}", f"Content-Length: {size}")
        assert _exchange(receiver, raw)[0] == expected
    assert _stored() == ["evt_at_limit"]


def test_a_sender_of_a_too_large_body_can_read_the_413(receiver: WebhookReceiver) -> None:
    """A body up to 8 MiB is read and thrown away, so the sender finishes sending and reads the
    answer; closing with its bytes unread would reset the connection under the answer."""
    body = b"x" * (8 * MAX_BODY)  # the most it drains: more than the socket buffers hold
    raw = _request(body, "Stripe-Signature: t=1,v1=00", f"Content-Length: {len(body)}")
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=30) as sock:
        sock.sendall(raw)
        status, answer = _read_answer(sock)
    assert (status, _message(answer)) == (413, (413, "body too large"))


def test_an_empty_signature_header_is_a_missing_one(
    receiver: WebhookReceiver, db: peewee.Database
) -> None:
    body = _event_body("evt_nosig")
    raw = _request(body, "Stripe-Signature: ", f"Content-Length: {len(body)}")
    _status, answer = _exchange(receiver, raw)
    assert _message(answer) == (400, "missing Stripe-Signature header")
    assert _stored() == []


def test_an_event_that_cannot_be_stored_gets_500_so_stripe_retries(
    receiver: WebhookReceiver, db: peewee.Database
) -> None:
    db.execute_sql("DROP TABLE webhook_event")
    body = _event_body("evt_unstorable")
    raw = _request(body, f"Stripe-Signature: {_sign(body)}", f"Content-Length: {len(body)}")
    status, answer = _exchange(receiver, raw)
    assert (status, _message(answer)) == (500, (500, "could not store the event"))


def test_verify_returns_the_event_signed_by_any_of_the_secrets() -> None:
    body = _event_body("evt_verify")
    event = verify(body, _sign(body), ["whsec_someone_else", SECRET])
    assert event["id"] == "evt_verify"
    assert event["type"] == "test.not_routed"


@pytest.mark.parametrize(
    ("body", "secrets", "words"),
    [
        (b"[1, 2]", [SECRET], "the body is not a JSON object"),
        (b'"just a string"', [SECRET], "the body is not a JSON object"),
        (b"{}", [], "no webhook signing secret is configured"),
        # Stripe's reason is kept: the log says why a delivery was refused.
        (b"{}", ["whsec_someone_else"], "verification failed: No signatures found matching"),
    ],
    ids=["array", "string", "no-secret", "wrong-secret"],
)
def test_verify_refuses_what_is_not_a_signed_event_object(
    body: bytes, secrets: list[str], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        verify(body, _sign(body), secrets)


def test_a_second_receiver_on_the_same_port_says_what_is_wrong(
    receiver: WebhookReceiver, db: peewee.Database
) -> None:
    other = WebhookReceiver(receiver._pipeline, lambda: [SECRET], port=receiver.port)
    with pytest.raises(ConfigurationError, match="Is another Billing Admin listening there"):
        other.start()
    assert not other.running
    assert other.port == receiver.port  # the port it was asked for
    other.stop()  # stopping what never started is harmless


def test_starting_twice_keeps_one_server_and_stopping_twice_is_harmless(
    receiver: WebhookReceiver, db: peewee.Database
) -> None:
    port = receiver.port
    receiver.start()
    assert (receiver.running, receiver.port) == (True, port)
    assert receiver.url == f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
    receiver.stop()
    receiver.stop()
    assert not receiver.running
    with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize(
    "headers",
    [
        ["Content-Length: {n}", "Content-Length: 2"],
        ["Transfer-Encoding: chunked", "Content-Length: {n}"],
        ["Content-Length: -1"],
    ],
    ids=["conflicting-lengths", "transfer-encoding", "negative-length"],
)
def test_a_request_whose_body_cannot_be_trusted_ends_the_connection(
    receiver: WebhookReceiver, db: peewee.Database, headers: list[str]
) -> None:
    """Where its body ends is in doubt (or it is not read), so nothing after it may be taken
    as the next request on that connection (request smuggling): the answer says
    `Connection: close` and the server hangs up."""
    body = _event_body("evt_smuggled")
    raw = _request(body, *(h.format(n=len(body)) for h in headers))
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=10) as sock:
        sock.sendall(
            raw + _request(body, f"Stripe-Signature: {_sign(body)}", f"Content-Length: {len(body)}")
        )
        status, answer = _read_answer(sock)
        assert status in (400, 413)
        assert b"\r\nConnection: close\r\n" in answer.split(b"\r\n\r\n", 1)[0] + b"\r\n"
        rest = b""
        with contextlib.suppress(ConnectionResetError):  # hung up with our bytes unread
            while chunk := sock.recv(65536):
                rest += chunk
    assert rest == b"", "a second answer: the rest was read as another request"
    assert _stored() == []


def test_an_event_the_pipeline_refuses_as_bad_input_gets_400_with_its_words(
    db: peewee.Database, sandbox: SandboxServer
) -> None:
    """Defence in depth: today `receive` refuses only what `verify` already refused, but a refusal
    it raises must answer 400 with its reason (Stripe stops retrying), never a 500 retried for
    three days nor a 200 that hides it."""

    class Refusing(EventPipeline):
        def receive(self, event: Mapping[str, Any], source: Any) -> Any:
            raise ValidationError("The event's object is not one this app can read.")

    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    rx = WebhookReceiver(Refusing(db, gateway, list(ROUTES)), lambda: [SECRET], port=0)
    rx.start()
    try:
        body = _event_body("evt_refused")
        raw = _request(body, f"Stripe-Signature: {_sign(body)}", f"Content-Length: {len(body)}")
        status, answer = _exchange(rx, raw)
    finally:
        rx.stop()
    assert (status, _message(answer)) == (
        400,
        (400, "The event's object is not one this app can read."),
    )
    assert _stored() == []
