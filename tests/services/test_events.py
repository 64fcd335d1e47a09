"""The event pipeline through real HTTP: verify, store once, apply once, in any order."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import peewee
import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.audit import Authority
from services.catchup import CatchUp
from services.errors import (
    PermissionDenied,
    RateLimited,
    StripeRefused,
    StripeUnreachable,
    ValidationError,
)
from services.events import MAX_ATTEMPTS, ROUTES, EventPipeline, Handler, Result, Source, Status
from services.models import (
    AuditRecord,
    CreditEntry,
    Customer,
    Invoice,
    Price,
    Product,
    WebhookEvent,
)
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.stripe_gateway import StripeGateway
from services.stripe_listen import ListenState, ListenStatus, ListenSupervisor
from services.sync import SyncService, SyncTarget
from services.webhook_receiver import MAX_BODY, WEBHOOK_PATH, WebhookReceiver
from stripe_sandbox import SandboxServer
from stripe_sandbox.listen import signing_secret
from tests.conftest import TEST_KEY
from tests.sandbox.raw_http import call

SECRET = "whsec_test_secret_for_the_receiver_0001"
OTHER_SECRET = "whsec_rotated_secret_still_valid_0002"


def _counting_route() -> tuple[list[str], tuple[str, Handler]]:
    """A handler for `test.counted` that writes one ledger row per application."""
    applied: list[str] = []

    def apply(_ctx: Any, event: Mapping[str, Any], _fetched: Any) -> Status:
        applied.append(event["id"])
        CreditEntry.create(
            customer_id="cus_counted", amount=1, kind="adjustment", source=event["id"],
            operator="test", created_at=int(time.time()),
        )  # fmt: skip
        return Status.APPLIED

    return applied, ("test.counted", Handler(lambda _c, _e: None, apply))


def _failing_route(fail: list[Exception | None]) -> tuple[str, Handler]:
    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        if fail[0] is not None:
            raise fail[0]
        return Status.APPLIED

    return ("test.fragile", Handler(lambda _c, _e: None, apply))


@pytest.fixture
def gateway(sandbox: SandboxServer) -> StripeGateway:
    return StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True, max_network_retries=0)


@pytest.fixture
def counted() -> list[str]:
    return []


@pytest.fixture
def fail_flag() -> list[Exception | None]:
    return [StripeUnreachable("Cannot reach Stripe (the handler broke)")]


@pytest.fixture
def pipeline(
    database: peewee.Database,
    gateway: StripeGateway,
    counted: list[str],
    fail_flag: list[Exception | None],
) -> EventPipeline:
    applied, route = _counting_route()
    pipe = EventPipeline(database, gateway, [route, _failing_route(fail_flag), *ROUTES])
    pipe.test_applied = applied  # type: ignore[attr-defined]
    return pipe


@pytest.fixture
def receiver(pipeline: EventPipeline) -> Iterator[WebhookReceiver]:
    rx = WebhookReceiver(pipeline, lambda: [OTHER_SECRET, SECRET], port=0)
    rx.start()
    yield rx
    rx.stop()


def _event(evt_id: str, event_type: str = "test.counted", obj: dict[str, Any] | None = None,
           created: int | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": evt_id, "object": "event", "type": event_type, "api_version": stripe.api_version,
        "created": created or int(time.time()), "livemode": False, "pending_webhooks": 1,
        "data": {"object": obj or {"id": "obj_1", "object": "thing"}},
        "request": {"id": None, "idempotency_key": None},
    }  # fmt: skip


def _post(
    rx: WebhookReceiver,
    body: bytes,
    signature: str | None,
    *,
    method: str = "POST",
    path: str = WEBHOOK_PATH,
    headers: dict[str, str] | None = None,
) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", rx.port, timeout=10)
    try:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if signature is not None:
            all_headers["Stripe-Signature"] = signature
        conn.request(method, path, body=body, headers=all_headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """Signed exactly as Stripe signs: t=…,v1=HMAC-SHA256(secret, "t." + body), any bytes."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _signed(
    event: dict[str, Any], secret: str = SECRET, at: int | None = None
) -> tuple[bytes, str]:
    """Signed exactly as Stripe signs (t=…,v1=HMAC-SHA256 of "t.payload")."""
    body = json.dumps(event).encode()
    return body, sign(body, secret, at or int(time.time()))


def test_a_valid_event_is_stored_and_applied_once(
    receiver: WebhookReceiver, pipeline: EventPipeline
) -> None:
    body, sig = _signed(_event("evt_valid_1"))
    for _ in range(3):  # Stripe delivers at least once
        assert _post(receiver, body, sig) == 200
    row = WebhookEvent.get(WebhookEvent.evt_id == "evt_valid_1")
    assert (row.status, row.attempts, row.source) == ("applied", 1, "receiver")
    assert pipeline.test_applied == ["evt_valid_1"]  # type: ignore[attr-defined]
    assert CreditEntry.select().count() == 1


def test_a_rotated_secret_is_still_accepted(receiver: WebhookReceiver) -> None:
    body, sig = _signed(_event("evt_rotated"), secret=OTHER_SECRET)
    assert _post(receiver, body, sig) == 200


def test_concurrent_duplicates_apply_once(receiver: WebhookReceiver) -> None:
    body, sig = _signed(_event("evt_concurrent"))
    statuses: list[int] = []
    threads = [
        threading.Thread(target=lambda: statuses.append(_post(receiver, body, sig)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert statuses == [200] * 8
    assert CreditEntry.select().count() == 1
    assert WebhookEvent.select().count() == 1


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        ("tampered", 400),
        ("wrong-secret", 400),
        ("stale", 400),
        ("malformed-header", 400),
        ("no-header", 400),
        ("garbage", 400),
        ("oversize", 413),
        ("get", 405),
        ("wrong-path", 404),
    ],
)
def test_bad_deliveries_are_refused_and_write_nothing(
    receiver: WebhookReceiver, mutate: str, expected: int
) -> None:
    body, sig = _signed(_event("evt_bad"))
    method, path = "POST", WEBHOOK_PATH
    header: str | None = sig
    if mutate == "tampered":
        body = body.replace(b"test.counted", b"test.countee")
    elif mutate == "wrong-secret":
        body, header = _signed(_event("evt_bad"), secret="whsec_not_ours_at_all_0000")
    elif mutate == "stale":
        body, header = _signed(_event("evt_bad"), at=int(time.time()) - 3600)
    elif mutate == "malformed-header":
        header = "this is not a signature"
    elif mutate == "no-header":
        header = None
    elif mutate == "garbage":
        body = b"\xff\xfe not json"
        header = sign(body, SECRET, int(time.time()))
    elif mutate == "oversize":
        body = b"x" * (MAX_BODY + 1)
    elif mutate == "get":
        method = "GET"
    elif mutate == "wrong-path":
        path = "/webhooks/other"
    assert _post(receiver, body, header, method=method, path=path) == expected
    assert not WebhookEvent.select().exists()


@pytest.mark.parametrize(
    "transient",
    [
        StripeUnreachable("Cannot reach Stripe (the handler broke)"),
        RateLimited("Stripe is receiving too many requests (the handler broke)"),
        peewee.OperationalError("database is locked (the handler broke)"),
    ],
    ids=["unreachable", "rate-limited", "db-locked"],
)
def test_a_transient_failure_answers_500_and_is_replayable(
    database: peewee.Database,
    receiver: WebhookReceiver,
    pipeline: EventPipeline,
    authority: Authority,
    fail_flag: list[Exception | None],
    transient: Exception,
) -> None:
    fail_flag[0] = transient
    body, sig = _signed(_event("evt_fragile", "test.fragile"))
    assert _post(receiver, body, sig) == 500
    row = WebhookEvent.get(WebhookEvent.evt_id == "evt_fragile")
    assert (row.status, row.attempts, row.flagged) == ("failed", 1, None)
    assert "the handler broke" in row.last_error
    assert _post(receiver, body, sig) == 500  # Stripe's retry tries again, and fails again
    fail_flag[0] = None
    OperatorService(database, authority).add("fin", Role.FINANCE)
    finance = Authority(database, sign_in(database, "fin"))
    with pytest.raises(PermissionDenied, match="replay events"):
        pipeline.replay("evt_fragile", finance)
    assert pipeline.replay("evt_fragile", authority) is Result.APPLIED
    row = WebhookEvent.get(WebhookEvent.evt_id == "evt_fragile")
    assert (row.status, row.attempts, row.source) == ("applied", 3, "replay")
    audit = AuditRecord.select().where(AuditRecord.action == "event.replay")
    assert sorted(r.outcome for r in audit) == ["denied", "ok"]


@pytest.mark.parametrize(
    "permanent",
    [
        RuntimeError("the handler broke"),
        KeyError("amount_total"),
        StripeRefused("Stripe refused the request: Invalid object"),
        ValidationError("Credits must be a whole number"),
    ],
    ids=["bug", "missing-field", "stripe-refused", "invalid"],
)
def test_a_permanent_failure_is_rejected_flagged_and_answered_200(
    receiver: WebhookReceiver,
    pipeline: EventPipeline,
    authority: Authority,
    fail_flag: list[Exception | None],
    permanent: Exception,
) -> None:
    """Stripe's retries cannot fix it: a 500 would only pile up red for three days."""
    fail_flag[0] = permanent
    body, sig = _signed(_event("evt_fragile", "test.fragile"))
    assert _post(receiver, body, sig) == 200
    row = WebhookEvent.get(WebhookEvent.evt_id == "evt_fragile")
    assert (row.status, row.attempts) == ("rejected", 1)
    assert row.flagged.startswith("rejected: ")
    assert str(permanent).strip("'") in row.last_error
    assert _post(receiver, body, sig) == 200  # a redelivery is a duplicate, not a second try
    assert WebhookEvent.get(WebhookEvent.evt_id == "evt_fragile").attempts == 1
    assert [r.evt_id for r in pipeline.events(authority, flagged=True)] == ["evt_fragile"]
    fail_flag[0] = None  # the bug fixed: an admin replays it
    assert pipeline.replay("evt_fragile", authority) is Result.APPLIED
    row = WebhookEvent.get(WebhookEvent.evt_id == "evt_fragile")
    assert (row.status, row.flagged) == ("applied", None)


@pytest.mark.parametrize(
    "event",
    [
        {"id": "evt_nodata", "object": "event", "type": "customer.updated", "created": 1},
        {
            "id": "evt_strcreated",
            "object": "event",
            "type": "customer.updated",
            "created": "yesterday",
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        },
        {
            "id": "evt_nocreated",
            "object": "event",
            "type": "customer.updated",
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        },
        {
            "id": "evt_hugecreated",
            "object": "event",
            "type": "customer.updated",
            "created": 10**30,
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        },
        {
            "id": "evt_negcreated",
            "object": "event",
            "type": "customer.updated",
            "created": -(10**20),
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        },
        {
            "id": "evt_infcreated",
            "object": "event",
            "type": "customer.updated",
            "created": float("inf"),
            "data": {"object": {"id": "cus_1", "object": "customer"}},
        },
        {"id": "evt_listdata", "object": "event", "type": "customer.updated", "data": []},
        {
            "id": "evt_strobj",
            "object": "event",
            "type": "product.created",
            "data": {"object": "prod_1"},
        },
        {"id": "evt_notype", "object": "event", "data": {"object": {"id": "cus_1"}}},
        {"object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}},
        {"id": 12, "object": "event", "type": "customer.created", "data": {"object": {}}},
        {
            "id": "evt_thinbad",
            "object": "v2.core.event",
            "type": "v1.billing.meter.x",
            "created": "2026-12-03T10:00:00.000Z",
            "related_object": "mtr_1",
        },
    ],
    ids=[
        "no-data",
        "str-created",
        "no-created",
        "huge-created",
        "negative-created",
        "infinite-created",
        "data-list",
        "object-string",
        "no-type",
        "no-id",
        "numeric-id",
        "thin-bad",
    ],
)
def test_a_malformed_but_signed_event_is_stored_rejected_once(
    receiver: WebhookReceiver, event: dict[str, Any]
) -> None:
    body, sig = _signed(event)
    assert _post(receiver, body, sig) == 200
    assert _post(receiver, body, sig) == 200
    rows = list(WebhookEvent.select())
    assert len(rows) == 1, "stored once, under its id or one made from its contents"
    assert rows[0].status == "rejected"
    assert rows[0].flagged.startswith("rejected: ")
    if not str(event.get("id", "")).startswith("evt_"):
        assert rows[0].evt_id.startswith("evt_unusable_")
    assert not Customer.select().exists()
    assert not Product.select().exists()


def test_replay_failed_retries_what_stripe_would_and_flags_the_rest(
    database: peewee.Database,
    pipeline: EventPipeline,
    authority: Authority,
    fail_flag: list[Exception | None],
) -> None:
    def deliver(evt_id: str, created: int) -> Result:
        return pipeline.receive(_event(evt_id, "test.fragile", created=created), Source.RECEIVER)

    now = int(time.time())
    for evt_id in ("evt_young", "evt_tired", "evt_stale"):
        assert deliver(evt_id, now) is Result.FAILED
    assert deliver("evt_old", now - 4 * 86400) is Result.FAILED
    old = WebhookEvent.get(WebhookEvent.evt_id == "evt_old")
    assert "older than Stripe's 3 days" in old.flagged  # flagged at once: no one will retry
    for _ in range(MAX_ATTEMPTS - 1):
        assert deliver("evt_tired", now) is Result.FAILED
    tired = WebhookEvent.get(WebhookEvent.evt_id == "evt_tired")
    assert (tired.status, tired.attempts) == ("failed", MAX_ATTEMPTS)
    assert f"failed {MAX_ATTEMPTS} times" in tired.flagged
    # Time passes: evt_stale has sat failed beyond Stripe's retry window.
    stale_created = now - 3 * 86400 - 60
    WebhookEvent.update(created=stale_created).where(WebhookEvent.evt_id == "evt_stale").execute()
    fail_flag[0] = None
    report = pipeline.replay_failed(authority)
    assert report.results == {"evt_young": Result.APPLIED}
    assert report.flagged == ["evt_stale"]
    assert "1 applied" in report.summary()
    assert "1 flagged" in report.summary()
    statuses = {r.evt_id: (r.status, bool(r.flagged)) for r in pipeline.events(authority)}
    assert statuses == {
        "evt_young": ("applied", False),
        "evt_tired": ("failed", True),
        "evt_stale": ("failed", True),
        "evt_old": ("failed", True),
    }
    assert pipeline.replay_failed(authority).results == {}  # flagged ones stay for a person
    # A person can still replay one by hand; that clears its flag.
    assert pipeline.replay("evt_tired", authority) is Result.APPLIED
    assert WebhookEvent.get(WebhookEvent.evt_id == "evt_tired").flagged is None


def test_unknown_types_are_stored_as_ignored(receiver: WebhookReceiver) -> None:
    body, sig = _signed(_event("evt_unknown", "radar.early_fraud_warning.created"))
    assert _post(receiver, body, sig) == 200
    assert WebhookEvent.get(WebhookEvent.evt_id == "evt_unknown").status == "ignored"


def test_an_older_event_never_overwrites_newer_state(
    receiver: WebhookReceiver, stripe_client: stripe.StripeClient
) -> None:
    customer = stripe_client.v1.customers.create({"email": "v1@example.com", "name": "First"})
    stripe_client.v1.customers.update(customer.id, {"name": "Second"})
    stripe_client.v1.customers.update(customer.id, {"name": "Third"})
    events = stripe_client.v1.events.list({"type": "customer.*", "limit": 10}).data  # newest first
    for event in events:  # delivered newest first: the worst order
        body, sig = _signed(event.to_dict(for_json=True))
        assert _post(receiver, body, sig) == 200
    assert Customer.get(Customer.stripe_id == customer.id).name == "Third"


def test_a_customer_deleted_in_stripe_is_marked(
    receiver: WebhookReceiver, stripe_client: stripe.StripeClient
) -> None:
    customer = stripe_client.v1.customers.create({"email": "bye@example.com"})
    stripe_client.v1.customers.delete(customer.id)
    for event in reversed(stripe_client.v1.events.list({"type": "customer.*"}).data):
        body, sig = _signed(event.to_dict(for_json=True))
        assert _post(receiver, body, sig) == 200
    assert Customer.get(Customer.stripe_id == customer.id).deleted


def test_catch_up_gets_what_was_missed_exactly_once(
    database: peewee.Database,
    gateway: StripeGateway,
    pipeline: EventPipeline,
    stripe_client: stripe.StripeClient,
) -> None:
    catch_up = CatchUp(database, gateway, pipeline)
    first = catch_up.run()
    assert first.seen == 0
    made = [stripe_client.v1.customers.create({"email": f"m{i}@example.com"}) for i in range(3)]
    second = catch_up.run()
    assert second.seen == 3
    assert second.applied == 3
    assert {c.stripe_id for c in Customer.select()} == {c.id for c in made}
    third = catch_up.run()
    assert (third.seen, third.applied) == (0, 0)  # it pages on from the newest event it has
    assert WebhookEvent.select().where(WebhookEvent.source == "catch-up").count() == 3


def test_the_supervisor_runs_the_sandbox_listen_end_to_end(
    sandbox: SandboxServer, pipeline: EventPipeline, stripe_client: stripe.StripeClient
) -> None:
    states: list[ListenStatus] = []
    command = [
        sys.executable,
        "-m",
        "stripe_sandbox",
        "listen",
        "--api-base",
        sandbox.url,
    ]
    # The receiver accepts what the supervised CLI signs with the secret it printed.
    receiver = WebhookReceiver(
        pipeline, lambda: [supervisor.secret] if supervisor.secret else [], port=0
    )
    receiver.start()
    supervisor = ListenSupervisor(command, receiver.url, TEST_KEY, states.append, backoff=[0.2])
    supervisor.start()
    try:
        deadline = time.monotonic() + 20
        while supervisor.status.state is not ListenState.FORWARDING and time.monotonic() < deadline:
            time.sleep(0.05)
        assert supervisor.status.state is ListenState.FORWARDING
        assert supervisor.secret == signing_secret(TEST_KEY)
        made = stripe_client.v1.customers.create({"email": "forwarded@example.com"})
        while not Customer.select().where(Customer.stripe_id == made.id).exists():
            assert time.monotonic() < deadline, "the event was not forwarded"
            time.sleep(0.05)
    finally:
        supervisor.stop()
        receiver.stop()
    assert [s.state for s in states][:2] == [ListenState.STARTING, ListenState.FORWARDING]
    assert states[-1].state is ListenState.STOPPED
    row = WebhookEvent.get(WebhookEvent.object_id == made.id)
    assert (row.status, row.source) == ("applied", "receiver")


def test_the_supervisor_reports_a_failing_cli_and_restarts_it(tmp_path: Path) -> None:
    script = tmp_path / "fake-stripe"
    script.write_text("#!/bin/sh\necho 'Authorization failed, status=401'\nexit 1\n")
    script.chmod(0o755)
    states: list[ListenStatus] = []
    supervisor = ListenSupervisor([str(script), "listen"], "http://127.0.0.1:9/x", "sk_test_x",
                                  states.append, backoff=[0.05])  # fmt: skip
    supervisor.start()
    deadline = time.monotonic() + 10
    while supervisor.restarts < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    supervisor.stop()
    failed = [s for s in states if s.state is ListenState.FAILED]
    assert failed
    assert failed[0].message == "Authorization failed, status=401"
    assert supervisor.restarts >= 2


def test_a_missing_cli_is_not_installed() -> None:
    states: list[ListenStatus] = []
    supervisor = ListenSupervisor(None, "http://127.0.0.1:9/x", "sk_test_x", states.append)
    supervisor.start()
    supervisor.stop()
    assert states[0].state is ListenState.NOT_INSTALLED


@pytest.mark.skipif(
    not __import__("shutil").which("stripe"), reason="the Stripe CLI is not installed"
)
def test_the_real_stripe_cli_fails_offline_and_says_so() -> None:
    import shutil

    states: list[ListenStatus] = []
    supervisor = ListenSupervisor([shutil.which("stripe") or "stripe", "listen"],
                                  "http://127.0.0.1:9/x", "sk_test_offline000000", states.append,
                                  backoff=[30])  # fmt: skip
    supervisor.start()
    deadline = time.monotonic() + 60
    while not any(s.state is ListenState.FAILED for s in states) and time.monotonic() < deadline:
        time.sleep(0.1)
    supervisor.stop()
    failed = [s for s in states if s.state is ListenState.FAILED]
    assert failed, states
    assert failed[0].message


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=2048),
    header=st.one_of(st.none(), st.text(max_size=200)),
)
def test_random_bytes_and_headers_never_write_a_row(
    receiver: WebhookReceiver, body: bytes, header: str | None
) -> None:
    safe_header = header.encode("latin-1", "ignore").decode("latin-1") if header else header
    if safe_header is not None:
        safe_header = "".join(c for c in safe_header if c.isprintable())
    status = _post(receiver, body, safe_header)
    assert status in (400, 413)
    assert not WebhookEvent.select().exists()


def _two_processes(db_url: str, evt_id: str, barrier: Path) -> list[str]:
    """Both processes deliver the event; each waits in fetch until the other is there too, so
    both passed the status check before either claims: only the claim can keep it to once."""
    barrier.mkdir()
    script = f"""
import os, pathlib, sys, time
from services.database import open_database
from services.events import EventPipeline, Handler, Source, Status
from services.models import CreditEntry
from services.stripe_gateway import StripeGateway
db = open_database({db_url!r})
barrier = pathlib.Path({str(barrier)!r})
def fetch(ctx, event):
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while len(list(barrier.iterdir())) < 2:
        assert time.monotonic() < deadline, "the other process never arrived"
        time.sleep(0.01)
def apply(ctx, event, fetched):
    CreditEntry.create(customer_id="cus_x", amount=1, kind="adjustment", source=event["id"],
                       operator="proc", created_at=0)
    return Status.APPLIED
route = ("test.counted", Handler(fetch, apply))
pipe = EventPipeline(db, StripeGateway("sk_test_x"), [route])
event = {{"id": {evt_id!r}, "type": "test.counted", "created": 1, "data": {{"object": {{}}}}}}
print(pipe.receive(event, Source.RECEIVER).value)
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def test_two_processes_applying_one_event_apply_it_once(
    database: peewee.Database, db_url: str, tmp_path: Path
) -> None:
    outputs = _two_processes(db_url, "evt_two_procs", tmp_path / "barrier")
    assert sorted(outputs) == ["applied", "duplicate"]
    assert CreditEntry.select().count() == 1


def test_sync_and_events_agree(
    database: peewee.Database,
    gateway: StripeGateway,
    authority: Authority,
    receiver: WebhookReceiver,
    stripe_client: stripe.StripeClient,
) -> None:
    made = stripe_client.v1.customers.create({"email": "both@example.com"})
    SyncService(database, gateway, authority).pull(SyncTarget.CUSTOMERS)
    event = stripe_client.v1.events.list({"type": "customer.created"}).data[0]
    body, sig = _signed(event.to_dict(for_json=True))
    assert _post(receiver, body, sig) == 200
    assert Customer.select().where(Customer.stripe_id == made.id).count() == 1


def test_a_stuck_client_does_not_block_other_deliveries(receiver: WebhookReceiver) -> None:
    import socket

    stuck = socket.create_connection(("127.0.0.1", receiver.port), timeout=5)
    try:
        # Headers promise a body that never comes: this connection waits on its own thread.
        stuck.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nContent-Length: 500\r\n\r\n{")
        body, sig = _signed(_event("evt_while_stuck"))
        assert _post(receiver, body, sig) == 200
        # ...and the stuck connection is still open and unanswered: the delivery above was
        # served beside it, not after the server gave up on it.
        stuck.setblocking(False)
        with pytest.raises(BlockingIOError):
            stuck.recv(1)
    finally:
        stuck.close()
    assert WebhookEvent.get(WebhookEvent.evt_id == "evt_while_stuck").status == "applied"


# ---- Stripe's event shapes the sandbox does not send: each settles, none is retried forever


def _stored(evt_id: str) -> WebhookEvent:
    row: WebhookEvent = WebhookEvent.get(WebhookEvent.evt_id == evt_id)
    return row


def _deliver(receiver: WebhookReceiver, event: dict[str, Any]) -> int:
    return _post(receiver, *_signed(event))


def test_deleted_objects_are_settled_from_the_event(
    receiver: WebhookReceiver, stripe_client: stripe.StripeClient
) -> None:
    product = stripe_client.v1.products.create({"name": "Gone soon"})
    price = stripe_client.v1.prices.create(
        {"product": product.id, "currency": "usd", "unit_amount": 500}
    )
    customer = stripe_client.v1.customers.create({"email": "gone@example.com"})
    for i, obj in enumerate((product, price, customer)):
        assert _deliver(receiver, _event(f"evt_made_{i}", f"{obj.object}.created",
                                         obj.to_dict(for_json=True))) == 200  # fmt: skip
    stripe_client.v1.customers.delete(customer.id)
    # Stripe's deleted-object shapes ({id, object, deleted: true}) and a late "created" for a
    # product deleted since (Stripe answers 404 to the re-read).
    deleted = [
        ("evt_del_product", "product.deleted", {"id": product.id, "object": "product",
                                                "deleted": True}),
        ("evt_del_price", "price.deleted", {**price.to_dict(for_json=True)}),
        ("evt_del_invoice", "invoice.deleted", {"id": "in_1Gone", "object": "invoice",
                                                "deleted": True}),
        ("evt_late_product", "product.created", {"id": "prod_NeverSeen", "object": "product",
                                                 "name": "x", "active": True}),
        ("evt_late_customer", "customer.updated", customer.to_dict(for_json=True)),
    ]  # fmt: skip
    for evt_id, event_type, obj in deleted:
        assert _deliver(receiver, _event(evt_id, event_type, obj)) == 200, evt_id
        assert _stored(evt_id).status in ("applied", "ignored"), _stored(evt_id).last_error
    assert not Product.select().where(Product.stripe_id == product.id).exists()
    assert not Price.select().where(Price.stripe_id == price.id).exists()
    assert Customer.get(Customer.stripe_id == customer.id).deleted
    assert WebhookEvent.select().where(WebhookEvent.status == "failed").count() == 0


def test_an_upcoming_invoice_has_no_id_and_is_ignored_with_the_reason(
    receiver: WebhookReceiver,
) -> None:
    upcoming = {
        "object": "invoice",
        "customer": "cus_Upcoming",
        "amount_due": 1200,
        "currency": "usd",
        "status": "draft",
        "lines": {"object": "list", "data": []},
    }
    assert _deliver(receiver, _event("evt_upcoming", "invoice.upcoming", upcoming)) == 200
    row = _stored("evt_upcoming")
    assert row.status == "ignored"
    assert "no id" in row.last_error
    assert Invoice.select().count() == 0


@pytest.mark.parametrize(
    ("event_type", "obj", "outcome"),
    [
        ("customer.source.created", {"id": "card_1Src", "object": "card", "brand": "Visa",
                                     "last4": "4242"}, "applied"),
        ("customer.tax_id.created", {"id": "txi_1Tax", "object": "tax_id", "type": "eu_vat",
                                     "value": "DE123456789"}, "applied"),
        ("customer.discount.created", {"id": "di_1Disc", "object": "discount"}, "applied"),
        ("customer.cash_balance_transaction.created",
         {"id": "ccsbtxn_1", "object": "customer_cash_balance_transaction"}, "ignored"),
        ("customer.source.created", {"id": "src_1", "object": "source"}, "ignored"),
    ],
)  # fmt: skip
def test_sub_object_events_refresh_their_customer_and_never_become_one(
    receiver: WebhookReceiver,
    stripe_client: stripe.StripeClient,
    event_type: str,
    obj: dict[str, Any],
    outcome: str,
) -> None:
    owner = stripe_client.v1.customers.create({"email": "owner@example.com", "name": "Owner"})
    evt_id = f"evt_sub_{obj['object'][:12]}"
    assert _deliver(receiver, _event(evt_id, event_type, {**obj, "customer": owner.id})) == 200
    row = _stored(evt_id)
    assert row.status == outcome, row.last_error
    if outcome == "ignored":
        assert row.last_error
        assert Customer.select().count() == 0
    else:  # the customer it belongs to is re-read and mirrored: no row with a card_/txi_ id
        assert [c.stripe_id for c in Customer.select()] == [owner.id]
        assert Customer.get().email == "owner@example.com"


def test_invoice_payment_events_refresh_the_invoice(
    receiver: WebhookReceiver, stripe_client: stripe.StripeClient
) -> None:
    customer = stripe_client.v1.customers.create({"email": "payer@example.com"})
    invoice = stripe_client.v1.invoices.create({"customer": customer.id})
    payment = {
        "id": "inpay_1Paid", "object": "invoice_payment", "amount_paid": 0, "currency": "usd",
        "invoice": invoice.id, "is_default": True, "status": "paid", "livemode": False,
        "payment": {"type": "payment_intent", "payment_intent": "pi_1"},
    }  # fmt: skip
    assert _deliver(receiver, _event("evt_inpay", "invoice_payment.paid", payment)) == 200
    assert _stored("evt_inpay").status == "applied"
    assert [i.stripe_id for i in Invoice.select()] == [invoice.id]


@pytest.mark.parametrize(
    "event_type",
    ["invoice.paid", "invoice.payment_failed", "invoice.payment_action_required",
     "invoice.marked_uncollectible", "invoice.voided", "invoice.finalized"],
)  # fmt: skip
def test_invoice_status_events_mirror_what_stripe_says_now(
    receiver: WebhookReceiver, stripe_client: stripe.StripeClient, event_type: str
) -> None:
    customer = stripe_client.v1.customers.create({"email": "status@example.com"})
    invoice = stripe_client.v1.invoices.create({"customer": customer.id})
    stale = {**invoice.to_dict(for_json=True), "status": "paid", "amount_paid": 999_999}
    assert _deliver(receiver, _event("evt_inv", event_type, stale)) == 200
    assert _stored("evt_inv").status == "applied"
    mirrored = Invoice.get(Invoice.stripe_id == invoice.id)
    assert mirrored.status == "draft"  # what Stripe says, not what the (stale) payload said


@pytest.mark.parametrize(
    "event_type", ["payment_intent.succeeded", "payment_intent.payment_failed"]
)
def test_payment_intent_events_credit_nothing_and_say_why(
    receiver: WebhookReceiver, event_type: str
) -> None:
    """The old web app credited top-ups on payment_intent.succeeded; here they settle only from
    their Checkout session, so these are ignored with the reason."""
    intent = {
        "id": "pi_1Old", "object": "payment_intent", "amount": 700, "currency": "usd",
        "status": "succeeded", "metadata": {"topup_id": "tu_forged", "credits": "700"},
    }  # fmt: skip
    assert _deliver(receiver, _event("evt_pi", event_type, intent)) == 200
    row = _stored("evt_pi")
    assert row.status == "ignored"
    assert "Checkout session" in row.last_error
    assert not CreditEntry.select().exists()


def test_a_v2_thin_event_is_stored_and_settled(receiver: WebhookReceiver) -> None:
    thin = {
        "id": "evt_test_65R9Ijk8Vj1L3AQBq2V",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-11-30T12:00:00.000Z",
        "livemode": False,
        "context": None,
        "reason": None,
        "related_object": {"id": "mtr_test_61R9", "type": "billing.meter",
                           "url": "/v1/billing/meters/mtr_test_61R9"},
    }  # fmt: skip
    assert _deliver(receiver, thin) == 200
    row = _stored(thin["id"])
    assert row.status == "ignored"
    assert "thin" in row.last_error
    assert row.created == 1_796_040_000  # 2026-11-30T12:00:00Z
    assert row.object_id == "mtr_test_61R9"


def test_a_burst_of_concurrent_deliveries_is_all_answered(
    receiver: WebhookReceiver, pipeline: EventPipeline
) -> None:
    """`stripe listen` forwards concurrently and does not retry: 64 senders at once, each on
    its own connection, twice over; every one answered, none reset."""
    errors: list[str] = []
    statuses: list[int] = []
    start = threading.Barrier(64)

    def send(i: int) -> None:
        body, sig = _signed(_event(f"evt_burst_{i % 32}"))  # each event twice, concurrently
        start.wait()
        for _ in range(2):
            try:
                statuses.append(_post(receiver, body, sig))
            except OSError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=send, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert statuses == [200] * 128
    assert sorted(pipeline.test_applied) == sorted(f"evt_burst_{i}" for i in range(32))  # type: ignore[attr-defined]


def test_a_redelivered_ignored_event_is_a_duplicate(pipeline: EventPipeline) -> None:
    """Ignored types settle in one INSERT; the second delivery finds the row and says so."""
    event = _event("evt_twice_ignored", "radar.early_fraud_warning.created")
    assert pipeline.receive(_event("evt_first", "customer.updated", {}), Source.RECEIVER)
    assert pipeline.receive(event, Source.RECEIVER) is Result.IGNORED
    assert pipeline.receive(event, Source.RECEIVER) is Result.DUPLICATE
    assert WebhookEvent.get(WebhookEvent.evt_id == "evt_twice_ignored").attempts == 1


def test_the_sandboxs_new_shapes_settle_through_the_pipeline(
    pipeline: EventPipeline, stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    """Genuine events of the shapes the sandbox learned: a card source, a tax id, a deleted
    draft invoice, an upcoming invoice (no id)."""
    customer = stripe_client.v1.customers.create({"email": "shapes@example.com"})
    stripe_client.v1.customers.payment_sources.create(customer.id, {"source": "tok_visa"})
    stripe_client.v1.customers.tax_ids.create(
        customer.id, {"type": "eu_vat", "value": "DE123456789"}
    )
    draft = stripe_client.v1.invoices.create({"customer": customer.id})
    stripe_client.v1.invoices.delete(draft.id)
    stripe_client.v1.invoice_items.create(
        {"customer": customer.id, "amount": 1200, "currency": "usd"}
    )
    status, _, _ = call(
        sandbox.url, "POST", f"/_sandbox/customers/{customer.id}/invoice_upcoming", "", key=None
    )
    assert status == 200
    events = [e.to_dict(for_json=True) for e in stripe_client.v1.events.list({"limit": 100})]
    wanted = {"customer.source.created", "customer.tax_id.created", "invoice.created",
              "invoice.deleted", "invoice.upcoming", "customer.created"}  # fmt: skip
    assert wanted <= {e["type"] for e in events}
    results = {e["type"]: pipeline.receive(e, Source.RECEIVER) for e in reversed(events)}
    assert results["invoice.upcoming"] is Result.IGNORED
    assert results["customer.tax_id.created"] is Result.APPLIED
    assert results["customer.source.created"] is Result.APPLIED
    assert [c.stripe_id for c in Customer.select()] == [customer.id]
    assert not Invoice.select().where(Invoice.stripe_id == draft.id).exists()
    assert WebhookEvent.select().where(WebhookEvent.status.in_(["failed", "rejected"])).count() == 0


def test_replaying_an_applied_event_keeps_it_applied(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    """A replay finds the effect already there (e.g. the credit is in the ledger): the handler
    says "nothing to do", and the event stays `applied`, never `ignored`."""
    runs: list[int] = []

    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        runs.append(1)
        return Status.APPLIED if len(runs) == 1 else Status.IGNORED

    pipe = EventPipeline(database, gateway, [("test.once", Handler(lambda _c, _e: None, apply))])
    assert pipe.receive(_event("evt_once", "test.once"), Source.RECEIVER) is Result.APPLIED
    assert pipe.replay("evt_once", authority) is Result.APPLIED
    assert len(runs) == 2
    assert WebhookEvent.get(WebhookEvent.evt_id == "evt_once").status == "applied"
