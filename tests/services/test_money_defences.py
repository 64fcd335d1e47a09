"""Each money defence has a test here that fails when the defence is removed (issue 19).

Checked by hand: each test below was run with its defence taken out of the code and failed.
`make mutants` keeps checking it (docs/mutants.md).
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

import peewee
import pytest
import stripe

import services.credits
from services.audit import Authority
from services.errors import NotFound, StripeRefused, ValidationError
from services.events import EventPipeline, Handler, HandlerContext, Result, Source, Status
from services.invoices import ChargeOutcome, ChargeUnreachable
from services.models import AuditRecord, CreditEntry, RequestJournal, TopUp, WebhookEvent
from services.reconcile import Reconciler
from services.settings import Settings
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.services import test_credits, test_invoices


@pytest.fixture
def topups(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> Iterator[test_credits.World]:  # fmt: skip
    sandbox.seed_demo()
    w = test_credits.World(database, sandbox, authority, stripe_client)
    SyncService(database, w.gateway, authority).pull(SyncTarget.PRODUCTS)
    w.start()
    yield w
    w.receiver.stop()


@pytest.fixture
def invoices(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> test_invoices.World:  # fmt: skip
    return test_invoices.World(database, sandbox, authority, stripe_client)


# ---- a retried top-up link sends exactly the first request again


def test_a_retried_issue_a_minute_later_makes_one_link(
    topups: test_credits.World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every parameter of an idempotent request is fixed when its key is made: a retry a
    minute later (the dialog's "Try again") must not send a different `expires_at`, which
    Stripe refuses for the same key."""
    customer = topups.customer()
    first = topups.credits.issue_topup(customer, "dialog-key", credits=100)
    later = SimpleNamespace(
        time=lambda: time.time() + 60, strftime=time.strftime, localtime=time.localtime
    )
    monkeypatch.setattr(services.credits, "time", later)
    second = topups.credits.issue_topup(customer, "dialog-key", credits=100)
    assert second.topup.checkout_session_id == first.topup.checkout_session_id
    assert second.topup.expires_at == first.topup.expires_at
    assert TopUp.select().count() == 1
    assert RequestJournal.get(RequestJournal.idempotency_key == "dialog-key").outcome == (
        "succeeded"
    )


def _post_keys(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    """The Idempotency-Key of every `POST {path}` the sandbox received ("-" for none)."""
    keys = []
    for record in caplog.records:
        message = record.getMessage()
        if record.name.startswith("stripe_sandbox") and f"POST {path} " in message:
            match = re.search(r"idempotency-key=(\S+)", message)
            keys.append(match.group(1) if match else "-")
    return keys


def test_issuing_a_link_sends_the_actions_idempotency_key_to_stripe(
    topups: test_credits.World, caplog: pytest.LogCaptureFixture
) -> None:
    """The key the dialog made is the one Stripe sees on `POST /v1/checkout/sessions`, so a
    second click or a retry after a lost answer replays the first session instead of making
    another link (stripe-python would otherwise send a random key of its own, or none)."""
    caplog.set_level(logging.DEBUG, logger="stripe_sandbox")
    customer = topups.customer()
    first = topups.credits.issue_topup(customer, "link-key-1", credits=100)
    assert _post_keys(caplog, "/v1/checkout/sessions") == ["link-key-1"]
    # The same key through a fresh service (a restarted app: no journal in memory) replays.
    again = services.credits.CreditService(
        topups.db, StripeGateway(TEST_KEY, api_base=topups.sandbox.url, sandbox=True),
        topups.authority, Settings(),
    ).issue_topup(customer, "link-key-1", credits=100)  # fmt: skip
    assert again.topup.checkout_session_id == first.topup.checkout_session_id
    assert TopUp.select().count() == 1


# ---- a top-up is credited only for a session that pays for exactly it


def _forged_session(
    w: test_credits.World, customer: str, *, currency: str, unit_amount: int,
    metadata: dict[str, str], client_reference_id: str | None = None,
) -> str:  # fmt: skip
    """Someone makes their own Checkout session in the account that names a top-up, and pays
    it: Stripe's events for it are genuine, so only the comparison with the top-up stops it."""
    params: dict[str, Any] = {
        "mode": "payment", "customer": customer, "metadata": metadata,
        "line_items": [{"price_data": {"currency": currency, "unit_amount": unit_amount,
                                       "product_data": {"name": "not ours"}}, "quantity": 1}],
    }  # fmt: skip
    if client_reference_id:
        params["client_reference_id"] = client_reference_id
    session = w.client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]
    status, _ = test_credits._sandbox_post(
        w.sandbox, f"/_sandbox/checkout/sessions/{session.id}/pay", card="4242424242424242"
    )
    assert status == 200
    return session.id


def _flag_of(session_id: str) -> str:
    test_credits._wait(
        lambda: (
            WebhookEvent.select()
            .where((WebhookEvent.object_id == session_id) & WebhookEvent.flagged.is_null(False))
            .exists()
        ),
        "the forged session's event to be flagged",
    )
    event = WebhookEvent.get(
        (WebhookEvent.object_id == session_id) & WebhookEvent.flagged.is_null(False)
    )
    return str(event.flagged)


@pytest.mark.parametrize(
    ("variant", "expected_flag"),
    [
        ("another currency", r"currency eur ≠ usd"),
        ("another customer", r"customer cus_\w+ ≠ cus_\w+"),
        ("no metadata", r"metadata does not match"),
        ("other credits in the metadata", r"metadata does not match"),
    ],
)
def test_a_paid_session_that_does_not_match_the_top_up_credits_nothing(
    topups: test_credits.World, variant: str, expected_flag: str
) -> None:
    customer = topups.customer()
    topup_id = topups.issue(customer, credits=100)
    row = topups.topup(topup_id)
    assert (row.amount, row.currency) == (1000, "usd")
    payer, currency, metadata, ref = customer, "usd", {"topup_id": topup_id, "credits": "100"}, None
    if variant == "another currency":
        currency = "eur"
    elif variant == "another customer":
        payer = topups.customer()
    elif variant == "no metadata":
        metadata, ref = {}, topup_id  # found by its client_reference_id only
    else:
        metadata = {"topup_id": topup_id, "credits": "100000"}
    forged = _forged_session(
        topups, payer, currency=currency, unit_amount=1000, metadata=metadata,
        client_reference_id=ref,
    )  # fmt: skip
    assert re.search(expected_flag, _flag_of(forged))
    assert topups.balance(customer) == 0
    assert topups.balance(payer) == 0
    assert topups.purchases(topup_id) == 0
    assert topups.topup(topup_id).status == "open"
    # The genuine link still works afterwards, and credits once.
    topups.pay(topup_id, card="4242424242424242")
    test_credits._wait(lambda: topups.balance(customer) == 100, "the genuine payment")
    assert topups.purchases(topup_id) == 1


def test_a_forged_paid_payload_is_re_read_and_credits_nothing(topups: test_credits.World) -> None:
    """The event is correctly signed and says paid, with every field matching; Stripe's own
    copy of the session says unpaid. Only the re-read stops it."""
    customer = topups.customer()
    topup_id = topups.issue(customer, credits=700)
    row = topups.topup(topup_id)
    payload = {
        "id": row.checkout_session_id, "object": "checkout.session", "status": "complete",
        "payment_status": "paid", "amount_total": row.amount, "currency": row.currency,
        "customer": customer, "client_reference_id": topup_id, "payment_intent": None,
        "metadata": {"topup_id": topup_id, "credits": "700"},
    }  # fmt: skip
    for kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        forged = {
            "id": f"evt_forged_{uuid.uuid4().hex[:10]}", "object": "event", "type": kind,
            "api_version": stripe.api_version, "created": int(time.time()), "livemode": False,
            "data": {"object": payload},
        }  # fmt: skip
        assert topups.post_event(forged) == 200
    assert topups.balance(customer) == 0
    assert topups.purchases(topup_id) == 0
    assert topups.topup(topup_id).status == "open"


def test_a_replay_after_apply_changes_nothing(topups: test_credits.World) -> None:
    """A paid top-up credited once; the same event again (replayed by an admin, delivered
    again, caught up) is answered without a second credit or a second `applied`."""
    customer = topups.customer()
    topup_id = topups.issue(customer, credits=300)
    topups.pay(topup_id, card="4242424242424242")
    test_credits._wait(lambda: topups.topup(topup_id).status == "credited", "the credit")
    event = topups.event("checkout.session.completed", topups.topup(topup_id).checkout_session_id)
    stored = WebhookEvent.get(WebhookEvent.evt_id == event["id"])
    assert stored.status == "applied"
    assert topups.post_event(event) == 200
    assert topups.pipeline.receive(event, Source.CATCH_UP) is Result.DUPLICATE
    assert topups.pipeline.replay(event["id"], topups.authority) is Result.APPLIED
    assert topups.purchases(topup_id) == 1
    assert topups.balance(customer) == 300
    again = WebhookEvent.get(WebhookEvent.evt_id == event["id"])
    assert again.status == "applied"
    # Only the admin's replay ran the handler again; the deliveries were answered unopened.
    assert again.attempts == stored.attempts + 1


# ---- invoices.pay carries the action's idempotency key, and a retry the same key


def _pay_keys(caplog: pytest.LogCaptureFixture, invoice_id: str) -> list[str]:
    """The Idempotency-Key of every `POST /v1/invoices/{id}/pay` the sandbox received."""
    keys = []
    for record in caplog.records:
        message = record.getMessage()
        if record.name.startswith("stripe_sandbox") and f"POST /v1/invoices/{invoice_id}/pay " in (
            message
        ):
            match = re.search(r"idempotency-key=(\S+)", message)
            keys.append(match.group(1) if match else "-")
    return keys


def test_pay_sends_the_actions_idempotency_key(
    invoices: test_invoices.World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe_sandbox")
    invoice = invoices.open_invoice()
    assert invoices.invoices.charge(invoice, "charge-key-1").outcome is ChargeOutcome.PAID
    assert _pay_keys(caplog, invoice) == ["charge-key-1"]


def test_a_retry_after_a_500_sends_the_same_key(
    invoices: test_invoices.World, caplog: pytest.LogCaptureFixture
) -> None:
    """The first answer is lost (a 500, no retries left); the operator runs it again without
    naming a key: the journal hands the same key back, so Stripe would replay, not re-charge."""
    caplog.set_level(logging.DEBUG, logger="stripe_sandbox")
    invoice = invoices.open_invoice()
    no_retries = invoices.service(max_network_retries=0)
    invoices.fault(invoice, status=500)
    with pytest.raises(ChargeUnreachable):
        no_retries.charge(invoice)
    assert no_retries.charge(invoice).outcome is ChargeOutcome.PAID
    keys = _pay_keys(caplog, invoice)
    assert len(keys) == 2
    assert keys[0] == keys[1] != "-"
    assert (invoices.paid_payments(invoice), invoices.charges(invoice)) == (1, 1)


def test_the_gateways_own_retry_after_a_timeout_sends_the_same_key(
    invoices: test_invoices.World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe_sandbox")
    invoice = invoices.open_invoice()
    patient = invoices.service(timeout=0.5, max_network_retries=2)
    invoices.fault(invoice, delay_ms=1500, count=1)
    assert patient.charge(invoice, "charge-key-2").outcome is ChargeOutcome.PAID
    # The timed-out request still runs in Stripe, later: wait until the sandbox logged both.
    test_credits._wait(lambda: len(_pay_keys(caplog, invoice)) == 2, "both requests logged")
    assert _pay_keys(caplog, invoice) == ["charge-key-2", "charge-key-2"]
    assert (invoices.paid_payments(invoice), invoices.charges(invoice)) == (1, 1)


# ---- an event is applied once: the claim, proven on SQLite too, with barriers not sleeps


class _CountingHandler:
    """A route whose fetch waits at a barrier (so both deliveries are past the cheap check
    before either claims) and whose apply counts how often it ran."""

    def __init__(self, parties: int) -> None:
        self.barrier = threading.Barrier(parties, timeout=test_credits.DEADLINE_S)
        self.fetched = 0
        self.applied = 0
        self._lock = threading.Lock()

    def fetch(self, _ctx: HandlerContext, _event: Mapping[str, Any]) -> None:
        with self._lock:
            self.fetched += 1
        self.barrier.wait()

    def apply(self, _ctx: HandlerContext, _event: Mapping[str, Any], _data: Any) -> Status:
        with self._lock:
            self.applied += 1
        return Status.APPLIED


def _event(evt_id: str) -> dict[str, Any]:
    return {
        "id": evt_id, "object": "event", "type": "test.counted", "created": int(time.time()),
        "livemode": False, "data": {"object": {"id": "obj_1", "object": "test"}},
    }  # fmt: skip


def test_two_deliveries_at_once_apply_once(
    database: peewee.Database, sandbox: SandboxServer
) -> None:
    counting = _CountingHandler(parties=2)
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    route = ("test.counted", Handler(counting.fetch, counting.apply))
    pipeline = EventPipeline(database, gateway, [route])
    event = _event("evt_twice_at_once")
    # Stored first, as by an earlier delivery that failed: both deliveries below take the
    # not-fresh path, pass the cheap status check, and race for the claim.
    WebhookEvent.insert(evt_id=event["id"], type=event["type"], created=event["created"],
                        received_at=0, source="receiver", status="failed", attempts=1,
                        raw=event).execute()  # fmt: skip
    results: list[Result] = []

    def deliver() -> None:
        results.append(pipeline.receive(event, Source.RECEIVER))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(test_credits.DEADLINE_S)
    assert counting.fetched == 2  # both were past the cheap check: only the claim decided
    assert sorted(r.value for r in results) == ["applied", "duplicate"]
    assert counting.applied == 1
    row = WebhookEvent.get(WebhookEvent.evt_id == event["id"])
    assert (row.status, row.attempts) == ("applied", 2)


def test_a_delivery_of_an_applied_event_is_answered_without_asking_stripe(
    database: peewee.Database, sandbox: SandboxServer
) -> None:
    counting = _CountingHandler(parties=1)
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    route = ("test.counted", Handler(counting.fetch, counting.apply))
    pipeline = EventPipeline(database, gateway, [route])
    event = _event("evt_once")
    assert pipeline.receive(event, Source.RECEIVER) is Result.APPLIED
    assert pipeline.receive(event, Source.RECEIVER) is Result.DUPLICATE
    assert pipeline.receive(event, Source.CATCH_UP) is Result.DUPLICATE
    assert (counting.fetched, counting.applied) == (1, 1)


# ---- survivors of `make mutants` in the repairs, grants and replays, killed here


def test_claw_back_unpaid_takes_back_only_what_nothing_paid_for(
    topups: test_credits.World,
) -> None:
    """A paid top-up's credits are never "credited, not paid"; an entry tampered up to more
    than the top-up gives back only the excess; an invoice's credits only while it is unpaid."""
    books = Reconciler(topups.db, topups.gateway, topups.authority, topups.pipeline)
    customer = topups.customer()
    topup_id = topups.issue(customer, credits=300)
    topups.pay(topup_id, card="4242424242424242")
    test_credits._wait(lambda: topups.balance(customer) == 300, "the credit")
    with pytest.raises(ValidationError, match="was paid for in Stripe"):
        books.claw_back_unpaid(topup_id, "looks odd")
    CreditEntry.update(amount=301).where(CreditEntry.source == topup_id).execute()  # tampered
    assert books.claw_back_unpaid(topup_id, "edited in the database") == 1  # just the excess
    assert topups.balance(customer) == 300
    (entry,) = [e for e in topups.credits.ledger(customer) if e.kind == "clawback"]
    assert entry.source == f"unpaid:{topup_id}"
    assert entry.reason == "Credited, not paid: edited in the database"
    assert CreditEntry.get(CreditEntry.source == f"unpaid:{topup_id}").topup_id == topup_id
    audit = AuditRecord.get(AuditRecord.action == "reconcile.claw_back")
    assert (audit.outcome, audit.target) == ("ok", topup_id)
    assert audit.params == {"credits": 1, "customer": customer}

    unpaid = topups.issue(customer, credits=200)  # an open link, "credited" behind our back
    CreditEntry.insert(customer_id=customer, amount=200, kind="purchase", source=unpaid,
                       topup_id=unpaid, operator="x", created_at=0).execute()  # fmt: skip
    assert books.claw_back_unpaid(unpaid, "never paid") == 200

    paid = topups.client.v1.invoices.create({"customer": customer, "auto_advance": False})
    topups.client.v1.invoice_items.create(
        {"customer": customer, "invoice": paid.id, "amount": 500, "currency": "usd"}
    )
    topups.client.v1.invoices.finalize_invoice(paid.id)
    topups.client.v1.invoices.pay(paid.id, {"paid_out_of_band": True})
    other = topups.customer()
    for source, owner in ((paid.id, customer), (paid.id, other), ("in_unknown", customer)):
        CreditEntry.delete().where(CreditEntry.source == source).execute()
        CreditEntry.insert(customer_id=owner, amount=50, kind="purchase", source=source,
                           operator="x", created_at=0).execute()  # fmt: skip
        if owner == customer and source == paid.id:
            with pytest.raises(ValidationError, match="was paid for in Stripe"):
                books.claw_back_unpaid(source, "check")
        else:  # paid by someone else, or not at all: nothing paid for these credits
            assert books.claw_back_unpaid(source, "check") == 50
            CreditEntry.delete().where(CreditEntry.source == f"unpaid:{source}").execute()


def test_a_grant_needs_a_customer_of_ours(topups: test_credits.World) -> None:
    topups.customer()  # someone exists; the grant names someone else
    with pytest.raises(NotFound, match="cus_nobody"):
        topups.credits.grant("cus_nobody", 100, "goodwill")
    assert not CreditEntry.select().where(CreditEntry.customer_id == "cus_nobody").exists()
    audit = AuditRecord.get(AuditRecord.action == "credits.grant")
    assert (audit.outcome, audit.target) == ("refused", "cus_nobody")
    customer = topups.customer()
    topups.credits.grant(customer, 250, "goodwill")
    audit = AuditRecord.select().where(AuditRecord.outcome == "ok").order_by(AuditRecord.id.desc())
    assert audit.get().params == {"credits": 250}


def test_a_replayed_ignored_event_stays_ignored(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority
) -> None:
    seen: list[str] = []

    def apply(_ctx: HandlerContext, event: Mapping[str, Any], _data: Any) -> Status:
        seen.append(str(event["id"]))
        return Status.IGNORED

    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    route = ("test.counted", Handler(lambda _c, _e: None, apply))
    pipeline = EventPipeline(database, gateway, [route])
    event = _event("evt_nothing_to_do")
    assert pipeline.receive(event, Source.RECEIVER) is Result.IGNORED
    assert pipeline.replay(event["id"], authority) is Result.IGNORED
    assert WebhookEvent.get(WebhookEvent.evt_id == event["id"]).status == "ignored"
    assert seen == [event["id"], event["id"]]
    with pytest.raises(ValidationError, match="No stored event evt_other"):
        pipeline.replay("evt_other", authority)
    replays = AuditRecord.select().where(AuditRecord.action == "event.replay")
    assert [(r.target, r.outcome) for r in replays.order_by(AuditRecord.id)] == [
        (event["id"], "ok"), ("evt_other", "failed"),
    ]  # fmt: skip
    assert replays.first().params == {"type": "test.counted", "previous_status": "ignored"}


def test_a_failure_recorded_outside_an_action_keeps_its_error_and_request_id(
    authority: Authority,
) -> None:
    authority.record_failure(
        "invoice.charge", StripeRefused("Your card was declined.", request_id="req_123"),
        target="in_1",
    )  # fmt: skip
    authority.record_failure("sync.pull", ValidationError("Bad page"), target=None)
    rows = [
        (r.action, r.target, r.outcome, r.error, r.stripe_request_id)
        for r in AuditRecord.select().order_by(AuditRecord.id)
    ]
    assert rows[-2:] == [
        ("invoice.charge", "in_1", "refused", "Your card was declined.", "req_123"),
        ("sync.pull", None, "failed", "Bad page", None),
    ]
