"""The event pipeline's defences that the broader tests in test_events.py did not pin down:
what a replay does with a stored event (malformed, damaged, already applied), what it tells
listeners, and that one event's repair never touches another (docs/mutants.md: events)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import peewee
import pytest

from services.audit import Authority
from services.errors import NotFound, StripeUnreachable, ValidationError
from services.events import (
    ROUTES,
    EventPipeline,
    Handler,
    Ignore,
    Reject,
    Result,
    Source,
    Status,
)
from services.models import AuditRecord, CreditEntry, Customer, WebhookEvent
from services.stripe_gateway import StripeGateway
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY


def _event(evt_id: str, event_type: str, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": evt_id,
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": {"id": "obj_1", "object": "thing"}},
    }
    event.update(fields)
    return event


def _credit(event: Mapping[str, Any]) -> None:
    CreditEntry.create(
        customer_id="cus_defence", amount=1, kind="adjustment", source=event["id"],
        operator="test", created_at=int(time.time()),
    )  # fmt: skip


@pytest.fixture
def gateway(sandbox: SandboxServer) -> StripeGateway:
    return StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True, max_network_retries=0)


def _row(evt_id: str) -> WebhookEvent:
    return WebhookEvent.get(WebhookEvent.evt_id == evt_id)


def test_replaying_a_rejected_malformed_event_never_runs_its_handler(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    """A signed event with no `data.object` was rejected; an admin's replay must reject it
    again, not hand the broken payload to the handler (which would credit)."""

    def apply(_ctx: Any, event: Mapping[str, Any], _fetched: Any) -> Status:
        _credit(event)
        return Status.APPLIED

    pipe = EventPipeline(database, gateway, [("test.credit", Handler(lambda _c, _e: None, apply))])
    broken = _event("evt_broken", "test.credit", data={"object": "not an object"})
    assert pipe.receive(broken, Source.RECEIVER) is Result.REJECTED
    assert pipe.replay("evt_broken", authority) is Result.REJECTED
    assert not CreditEntry.select().exists()
    row = _row("evt_broken")
    assert row.status == "rejected"
    assert row.flagged.startswith("rejected: ")
    assert row.flagged.endswith("the event has no data.object")


def test_replaying_an_event_whose_stored_payload_is_damaged_rejects_it_with_why(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    """A stored payload that is not a JSON object (a damaged row) is replayed as an empty event:
    rejected and flagged with the reason, not a crash in the middle of the replay."""
    pipe = EventPipeline(database, gateway, [])
    assert pipe.receive(_event("evt_damaged", "test.nothing"), Source.RECEIVER) is Result.IGNORED
    WebhookEvent.update(raw="not a json object").where(
        WebhookEvent.evt_id == "evt_damaged"
    ).execute()
    assert pipe.replay("evt_damaged", authority) is Result.REJECTED
    row = _row("evt_damaged")
    assert row.status == "rejected"
    assert row.flagged.startswith("rejected: ")
    assert row.flagged.endswith("the event's created 'None' is not a Unix timestamp")


def test_a_replay_that_finds_nothing_left_to_do_keeps_only_that_event_applied(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    """Replaying an applied event whose handler now says "nothing to do" (with a reason) leaves
    it `applied` with no error; every other stored event keeps its own status."""
    runs: list[str] = []

    def fetch(_ctx: Any, event: Mapping[str, Any]) -> None:
        runs.append(event["id"])
        if len(runs) > 1:
            raise Ignore("the credit is already in the ledger")

    pipe = EventPipeline(
        database,
        gateway,
        [("test.once", Handler(fetch, lambda _c, _e, _d: Status.APPLIED))],
    )
    seen: list[tuple[str, Result]] = []
    pipe.add_listener(lambda evt_id, result: seen.append((evt_id, result)))
    assert pipe.receive(_event("evt_other", "test.unrouted"), Source.RECEIVER) is Result.IGNORED
    assert pipe.receive(_event("evt_once", "test.once"), Source.RECEIVER) is Result.APPLIED
    seen.clear()

    assert pipe.replay("evt_once", authority) is Result.APPLIED
    row = _row("evt_once")
    assert (row.status, row.last_error, row.source) == ("applied", None, "replay")
    assert _row("evt_other").status == "ignored"
    assert seen == [("evt_once", Result.APPLIED)]
    (audit,) = AuditRecord.select().where(AuditRecord.action == "event.replay")
    assert (audit.target, audit.outcome) == ("evt_once", "ok")
    assert audit.params == {"type": "test.once", "previous_status": "applied"}


def test_a_replay_tells_listeners_which_event_ended_how(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    fail = [True]

    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        if fail[0]:
            raise TimeoutError("the database was busy")
        return Status.APPLIED

    pipe = EventPipeline(database, gateway, [("test.flaky", Handler(lambda _c, _e: None, apply))])
    seen: list[tuple[str, Result]] = []
    pipe.add_listener(lambda evt_id, result: seen.append((evt_id, result)))
    assert pipe.receive(_event("evt_flaky", "test.flaky"), Source.RECEIVER) is Result.FAILED
    fail[0] = False
    assert pipe.replay("evt_flaky", authority) is Result.APPLIED
    assert seen == [("evt_flaky", Result.FAILED), ("evt_flaky", Result.APPLIED)]
    row = _row("evt_flaky")  # applied now: the old error is gone with the failure
    assert (row.status, row.attempts, row.last_error) == ("applied", 2, None)


def test_a_long_error_is_stored_cut_to_2000_characters(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    """A handler's error can be huge (a payload echoed back); the stored text is bounded."""

    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        raise TimeoutError("x" * 5000)

    pipe = EventPipeline(database, gateway, [("test.loud", Handler(lambda _c, _e: None, apply))])
    assert pipe.receive(_event("evt_loud", "test.loud"), Source.RECEIVER) is Result.FAILED
    last_error = _row("evt_loud").last_error
    assert last_error.startswith("TimeoutError: xxx")
    assert len(last_error) == 2000


def test_a_failing_listener_neither_fails_the_delivery_nor_silences_the_others(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    """Listeners are the window's business; a broken one must not make Stripe retry."""
    pipe = EventPipeline(database, gateway, [])
    heard: list[str] = []
    changed: list[object] = []

    def broken(*_args: object) -> None:
        raise RuntimeError("a listener broke")

    pipe.add_listener(broken)
    pipe.add_listener(lambda evt_id, _result: heard.append(evt_id))
    pipe.add_change_listener(broken)
    pipe.add_change_listener(changed.append)
    assert pipe.receive(_event("evt_heard", "test.unrouted"), Source.RECEIVER) is Result.IGNORED
    assert heard == ["evt_heard"]
    assert len(changed) == 1
    assert _row("evt_heard").status == "ignored"


def test_the_events_list_filters_by_type_pattern_ids_and_status(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    pipe = EventPipeline(database, gateway, [])
    before_ms = int(time.time() * 1000)
    for evt_id, event_type in (
        ("evt_c1", "customer.created"),
        ("evt_c2", "customer.updated"),
        ("evt_i1", "invoice.paid"),
    ):
        pipe.receive(_event(evt_id, event_type), Source.CATCH_UP)
    after_ms = int(time.time() * 1000)

    def listed(**filters: Any) -> list[str]:
        return sorted(r.evt_id for r in pipe.events(authority, **filters))

    assert listed(event_type="customer.*") == ["evt_c1", "evt_c2"]
    assert listed(event_type="customer.updated") == ["evt_c2"]
    assert listed(ids=["evt_i1", "evt_nope"]) == ["evt_i1"]
    assert listed(status="ignored") == ["evt_c1", "evt_c2", "evt_i1"]
    assert listed(status="applied") == []
    (row,) = pipe.events(authority, ids=["evt_c1"])
    assert before_ms <= row.received_at <= after_ms  # when it arrived, in milliseconds
    assert (row.type, row.object_id, row.source, row.last_error, row.flagged) == (
        "customer.created",
        "obj_1",
        "catch-up",
        "",
        "",
    )


def test_the_payload_viewer_shows_the_stored_event_or_says_it_is_not_there(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    pipe = EventPipeline(database, gateway, [])
    pipe.receive(_event("evt_shown", "test.unrouted"), Source.RECEIVER)
    shown = pipe.payload(authority, "evt_shown")
    assert '"id": "evt_shown"' in shown
    assert shown.index('"created"') < shown.index('"type"')  # keys sorted
    with pytest.raises(NotFound, match="No stored event evt_missing"):
        pipe.payload(authority, "evt_missing")


def test_replay_failed_with_nothing_failed_says_so(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    report = EventPipeline(database, gateway, []).replay_failed(authority)
    assert (report.results, report.flagged) == ({}, [])
    assert report.summary() == "No failed events to replay."


@pytest.mark.parametrize(
    ("event_type", "obj", "why"),
    [
        ("customer.updated", {"object": "customer"}, "the customer has no id"),
        ("customer.source.created", {"id": "card_1", "object": "card"}, "names no customer"),
        ("customer.deleted", {"id": "cus_never_seen", "object": "customer", "deleted": True}, None),
    ],
    ids=["no-id", "orphan-card", "unknown-customer-gone"],
)  # fmt: skip
def test_events_about_nothing_this_app_keeps_are_ignored_without_a_row_written(
    database: peewee.Database,
    gateway: StripeGateway,
    event_type: str,
    obj: dict[str, Any],
    why: str | None,
) -> None:
    pipe = EventPipeline(database, gateway, list(ROUTES))
    event = _event("evt_nothing", event_type, data={"object": obj})
    assert pipe.receive(event, Source.RECEIVER) is Result.IGNORED
    row = _row("evt_nothing")
    assert row.status == "ignored"
    if why:
        assert why in row.last_error
    assert not Customer.select().exists()


def test_replaying_an_event_of_a_type_that_changes_nothing_says_why(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    pipe = EventPipeline(database, gateway, list(ROUTES))
    thin = {
        "id": "evt_thin_replayed",
        "object": "v2.core.event",
        "type": "v1.billing.meter.error_report_triggered",
        "created": "2026-12-03T10:00:00.000Z",
        "related_object": {"id": "mtr_1", "type": "billing.meter", "url": "/v1/billing/meters"},
    }
    item = _event("evt_item", "invoiceitem.created", data={"object": {"id": "ii_1"}})
    for event in (thin, item):
        assert pipe.receive(event, Source.RECEIVER) is Result.IGNORED
    assert pipe.replay("evt_thin_replayed", authority) is Result.IGNORED
    assert _row("evt_thin_replayed").last_error == "a v2 thin event; nothing here needs its payload"
    assert pipe.replay("evt_item", authority) is Result.IGNORED
    assert _row("evt_item").last_error == "invoice items are read with their invoice, not mirrored"


def test_replaying_an_event_that_was_never_stored_is_refused_and_audited(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    pipe = EventPipeline(database, gateway, [])
    with pytest.raises(ValidationError, match="No stored event evt_ghost"):
        pipe.replay("evt_ghost", authority)
    (audit,) = AuditRecord.select().where(AuditRecord.action == "event.replay")
    assert (audit.target, audit.outcome, audit.error) == (
        "evt_ghost",
        "failed",
        "No stored event evt_ghost.",
    )
    assert not WebhookEvent.select().exists()


def test_a_payload_that_is_not_an_object_is_refused_before_anything_is_stored(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    pipe = EventPipeline(database, gateway, [])
    with pytest.raises(ValidationError, match="not a JSON object"):
        pipe.receive(["evt_in_a_list"], Source.CATCH_UP)  # type: ignore[arg-type]
    assert not WebhookEvent.select().exists()
    assert pipe.may_apply()  # SQLite: whoever opens the file applies events


def test_replay_failed_summary_counts_what_it_replayed(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    fail = [True]

    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        if fail[0]:
            raise TimeoutError("busy")
        return Status.APPLIED

    pipe = EventPipeline(database, gateway, [("test.flaky", Handler(lambda _c, _e: None, apply))])
    for evt_id in ("evt_f1", "evt_f2"):
        assert pipe.receive(_event(evt_id, "test.flaky"), Source.RECEIVER) is Result.FAILED
    fail[0] = False
    report = pipe.replay_failed(authority)
    assert report.summary() == "Replayed 2 failed events: 2 applied."


def test_a_handler_that_finds_nothing_to_do_settles_only_its_own_event(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    def apply(_ctx: Any, event: Mapping[str, Any], _fetched: Any) -> Status:
        return Status.APPLIED if event["type"] == "test.does" else Status.IGNORED

    handler = Handler(lambda _c, _e: None, apply)
    pipe = EventPipeline(database, gateway, [("test.does", handler), ("test.skips", handler)])
    assert pipe.receive(_event("evt_does", "test.does"), Source.RECEIVER) is Result.APPLIED
    assert pipe.receive(_event("evt_skips", "test.skips"), Source.RECEIVER) is Result.IGNORED
    assert (_row("evt_does").status, _row("evt_skips").status) == ("applied", "ignored")


def test_a_failed_event_whose_time_is_unknown_is_retried_not_flagged_as_too_old(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    """A v2 thin event's `created` is a string; one that cannot be read is stored as 0, which
    means "unknown", not "1970": a transient failure leaves it for Stripe's retries."""

    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        raise StripeUnreachable("Cannot reach Stripe")

    pipe = EventPipeline(database, gateway, [("v1.test.thin", Handler(lambda _c, _e: None, apply))])
    thin = {
        "id": "evt_thin_undated",
        "object": "v2.core.event",
        "type": "v1.test.thin",
        "created": "sometime",
        "related_object": {"id": "obj_1", "type": "thing", "url": "/v1/things/obj_1"},
    }
    assert pipe.receive(thin, Source.RECEIVER) is Result.FAILED
    row = _row("evt_thin_undated")
    assert (row.status, row.created, row.flagged) == ("failed", 0, None)


def test_a_rejected_events_flag_is_cut_to_2000_characters_too(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        raise Reject("y" * 5000)

    pipe = EventPipeline(database, gateway, [("test.huge", Handler(lambda _c, _e: None, apply))])
    assert pipe.receive(_event("evt_huge", "test.huge"), Source.RECEIVER) is Result.REJECTED
    row = _row("evt_huge")
    assert row.flagged.startswith("rejected: ")
    assert (len(row.flagged), len(row.last_error)) == (2000, 2000)


@pytest.mark.parametrize(
    ("error", "traceback_logged"),
    [(RuntimeError("a bug in the handler"), True), (Reject("no amount in the event"), False)],
    ids=["bug", "known-rejection"],
)
def test_a_handler_bug_is_logged_with_its_traceback_and_a_known_rejection_is_not(
    database: peewee.Database,
    gateway: StripeGateway,
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    traceback_logged: bool,
) -> None:
    def apply(_ctx: Any, _event: Mapping[str, Any], _fetched: Any) -> Status:
        raise error

    pipe = EventPipeline(database, gateway, [("test.bad", Handler(lambda _c, _e: None, apply))])
    assert pipe.receive(_event("evt_bad", "test.bad"), Source.RECEIVER) is Result.REJECTED
    tracebacks = [r for r in caplog.records if r.exc_info and "failed for good" in r.message]
    assert bool(tracebacks) is traceback_logged


def _rejected(pipe: EventPipeline, event: dict[str, Any]) -> list[tuple[str, str, str]]:
    assert pipe.receive(event, Source.RECEIVER) is Result.REJECTED
    return [
        (r.evt_id, r.type, r.last_error) for r in WebhookEvent.select().order_by(WebhookEvent.id)
    ]


def test_an_event_without_id_or_type_is_stored_under_its_content_and_says_what_is_missing(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    pipe = EventPipeline(database, gateway, [])
    no_id = {"object": "event", "type": "customer.updated", "created": 1, "data": {"object": {}}}
    ((evt_id, event_type, why),) = _rejected(pipe, no_id)
    assert evt_id.startswith("evt_unusable_")
    assert (event_type, why) == ("customer.updated", "the event's id '' is not a Stripe event id")
    # The same content with its keys in another order is the same delivery: stored once.
    assert pipe.receive(dict(reversed(list(no_id.items()))), Source.RECEIVER) is Result.DUPLICATE
    assert WebhookEvent.select().count() == 1
    # Different content is a different delivery.
    other = {**no_id, "created": 2}
    assert len(_rejected(pipe, other)) == 2

    no_type = _event("evt_no_type", "")
    assert _rejected(pipe, no_type)[-1] == ("evt_no_type", "(no type)", "the event has no type")


@pytest.mark.parametrize(("length", "kept"), [(255, True), (256, False)])
def test_a_malformed_event_keeps_its_id_only_if_the_column_can_hold_it(
    database: peewee.Database, gateway: StripeGateway, length: int, kept: bool
) -> None:
    evt_id = "evt_" + "x" * (length - 4)
    pipe = EventPipeline(database, gateway, [])
    ((stored, _type, _why),) = _rejected(pipe, _event(evt_id, "test.x", data={}))
    assert (stored == evt_id) is kept
    assert len(stored) <= 255


def test_long_names_are_cut_to_what_their_columns_hold(
    database: peewee.Database, gateway: StripeGateway
) -> None:
    """A signed event may carry any strings; storing it must not fail on a column's length
    (PostgreSQL refuses what SQLite would keep), or the delivery would fail for three days."""
    pipe = EventPipeline(database, gateway, [])
    event = _event("evt_long", "t" * 300, data={"object": {"id": "o" * 300}}, livemode=True)
    assert pipe.receive(event, Source.RECEIVER) is Result.IGNORED
    row = _row("evt_long")
    assert (row.type, row.object_id, row.livemode) == ("t" * 128, "o" * 255, True)
    no_id = _event("evt_no_object_id", "test.x", data={"object": {"object": "thing"}})
    pipe.receive(no_id, Source.RECEIVER)
    assert (_row("evt_no_object_id").object_id, _row("evt_no_object_id").livemode) == (None, False)
