"""Paid top-ups end to end: sandbox Checkout → signed webhooks → the real receiver → ledger.

Credits appear only after Stripe reports a paid session, exactly once, whatever the events do.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.audit import Authority
from services.catchup import CatchUp
from services.credits import CREDIT_ROUTES, CreditService
from services.customers import CustomerDraft, CustomerService
from services.errors import PermissionDenied, ValidationError
from services.events import ROUTES, EventPipeline, Source
from services.models import (
    AuditRecord,
    CreditAccount,
    CreditAllocation,
    CreditEntry,
    CreditLot,
    Invoice,
    TopUp,
    WebhookEvent,
)
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.settings import Settings
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from services.webhook_receiver import WebhookReceiver
from stripe_sandbox import SandboxServer
from stripe_sandbox.resources import v2_events as v2_event_notification
from stripe_sandbox.store import RequestInfo
from stripe_sandbox.webhooks import sign
from tests.conftest import TEST_KEY

DEADLINE_S = 20


def _forget_lots() -> None:
    """A test that deletes ledger entries (never done for real) forgets their lots too."""
    CreditAllocation.delete().execute()
    CreditLot.delete().execute()
    CreditAccount.delete().execute()


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _sandbox_post(sandbox: SandboxServer, path: str, **form: str) -> tuple[int, Any]:
    data = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(sandbox.url + path, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        exc.close()
        return exc.code, json.loads(body)


class World:
    """The app's services over one database, wired to the sandbox like the real thing."""

    def __init__(
        self, db: peewee.Database, sandbox: SandboxServer, authority: Authority,
        client: stripe.StripeClient,
    ) -> None:  # fmt: skip
        self.db = db
        self.sandbox = sandbox
        self.client = client
        self.gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
        self.authority = authority
        self.pipeline = EventPipeline(db, self.gateway, [*CREDIT_ROUTES, *ROUTES])
        self.credits = CreditService(db, self.gateway, authority, Settings())
        self.customers = CustomerService(db, self.gateway, authority)
        self.secret = ""
        self.receiver = WebhookReceiver(self.pipeline, lambda: [self.secret], port=0)

    def start(self) -> None:
        self.receiver.start()
        endpoint = self.client.v1.webhook_endpoints.create(
            {"url": self.receiver.url, "enabled_events": ["*"]}
        )
        assert endpoint.secret is not None
        self.secret = endpoint.secret

    def customer(self) -> str:
        made = self.customers.create(
            CustomerDraft(email=f"buyer-{uuid.uuid4().hex[:6]}@example.com", name="Buyer"),
            f"k-{uuid.uuid4()}",
        )
        return made.stripe_id

    def issue(self, customer: str, **kwargs: Any) -> str:
        link = self.credits.issue_topup(customer, f"k-{uuid.uuid4()}", **kwargs)
        return link.topup.topup_id

    def topup(self, topup_id: str) -> TopUp:
        return TopUp.get(TopUp.topup_id == topup_id)

    def pay(self, topup_id: str, **form: str) -> tuple[int, Any]:
        session = self.topup(topup_id).checkout_session_id
        return _sandbox_post(self.sandbox, f"/_sandbox/checkout/sessions/{session}/pay", **form)

    def purchases(self, topup_id: str) -> int:
        return (
            CreditEntry.select()
            .where((CreditEntry.kind == "purchase") & (CreditEntry.source == topup_id))
            .count()
        )

    def balance(self, customer: str) -> int:
        return self.credits.balance(customer)

    def event(self, event_type: str, session_id: str) -> dict[str, Any]:
        for event in self.client.v1.events.list({"type": event_type, "limit": 100}).data:
            data: dict[str, Any] = event.to_dict(for_json=True)
            if data["data"]["object"].get("id") == session_id:
                return data
        raise AssertionError(f"no {event_type} for {session_id}")

    def post_event(self, event: dict[str, Any]) -> int:
        body = json.dumps(event).encode()
        request = urllib.request.Request(
            self.receiver.url, data=body, method="POST",
            headers={"Stripe-Signature": sign(body.decode(), self.secret, int(time.time())),
                     "Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            exc.close()
            return int(exc.code)


@pytest.fixture
def world(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> Iterator[World]:  # fmt: skip
    sandbox.seed_demo()
    w = World(database, sandbox, authority, stripe_client)
    SyncService(database, w.gateway, authority).pull(SyncTarget.PRODUCTS)
    w.start()
    yield w
    w.receiver.stop()


def test_issue_pay_credited_exactly_once(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=500)
    row = world.topup(topup_id)
    assert (row.status, row.credits, row.amount, row.currency) == ("open", 500, 5000, "usd")
    assert world.balance(customer) == 0  # issuing a link adds nothing
    assert world.pay(topup_id, card="4242424242424242")[0] == 200
    _wait(lambda: world.topup(topup_id).status == "credited", "the credit")
    assert world.balance(customer) == 500
    assert world.purchases(topup_id) == 1
    assert world.topup(topup_id).payment_intent_id
    issued = AuditRecord.get(AuditRecord.action == "topup.issue")
    assert (issued.target, issued.outcome) == (topup_id, "ok")


def test_a_credit_pack_link(world: World) -> None:
    customer = world.customer()
    pack = next(p for p in world.credits.credit_packs() if p[2] == 500)
    topup_id = world.issue(customer, pack_product_id=pack[0])
    assert (world.topup(topup_id).credits, world.topup(topup_id).amount) == (500, 4500)
    world.pay(topup_id, card="4242424242424242")
    _wait(lambda: world.balance(customer) == 500, "the pack's credits")


def test_the_same_events_three_times_and_shuffled_credit_once(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=300)
    world.pay(topup_id, card="4242424242424242")
    _wait(lambda: world.topup(topup_id).status == "credited", "the credit")
    session = world.topup(topup_id).checkout_session_id
    events = [e.to_dict(for_json=True) for e in world.client.v1.events.list({"limit": 100}).data]
    storm = events * 3
    random.Random(7).shuffle(storm)
    for event in storm:
        assert world.post_event(event) == 200  # applied, ignored or a duplicate: never failed
    assert world.purchases(topup_id) == 1
    assert world.balance(customer) == 300
    assert WebhookEvent.get(WebhookEvent.evt_id == world.event(
        "checkout.session.completed", session)["id"]).status == "applied"  # fmt: skip


def _event_ids(world: World) -> set[str]:
    return {e.id for e in world.client.v1.events.list({"limit": 100}).auto_paging_iter()}


def _all_events_settled(world: World, before: set[str]) -> bool:
    """Every event Stripe made since `before` is stored here and handled (not waiting, failed)."""
    made = _event_ids(world)
    done = {
        evt_id
        for (evt_id,) in WebhookEvent.select(WebhookEvent.evt_id)
        .where(WebhookEvent.status.in_(["applied", "ignored", "rejected"]))
        .tuples()
    }
    return bool(made - before) and made - before <= done


def test_declined_then_paid(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=200)
    before = _event_ids(world)
    status, body = world.pay(topup_id, card="4000000000000002")
    assert status == 402
    assert body["error"]["decline_code"] == "generic_decline"
    _wait(lambda: _all_events_settled(world, before), "every event of the decline to be handled")
    assert world.balance(customer) == 0
    assert world.topup(topup_id).status == "open"
    world.pay(topup_id, card="4242424242424242")
    _wait(lambda: world.balance(customer) == 200, "the credit after the retry")


def test_async_payment_success_and_failure(world: World) -> None:
    customer = world.customer()
    good = world.issue(customer, credits=100)
    bad = world.issue(customer, credits=150)
    for topup_id in (good, bad):
        assert world.pay(topup_id, method="bank_debit")[0] == 200
    _wait(
        lambda: (
            WebhookEvent.select().where(WebhookEvent.type == "checkout.session.completed").count()
            == 2
        ),
        "both completions",
    )
    assert world.balance(customer) == 0  # completed but unpaid: nothing yet
    for topup_id in (good, bad):
        _wait(lambda t=topup_id: world.topup(t).status == "pending", "the debit as settling")
    sandbox = world.sandbox
    _sandbox_post(
        sandbox,
        f"/_sandbox/checkout/sessions/{world.topup(good).checkout_session_id}/settle",
        outcome="succeeded",
    )
    _sandbox_post(
        sandbox,
        f"/_sandbox/checkout/sessions/{world.topup(bad).checkout_session_id}/settle",
        outcome="failed",
    )
    _wait(lambda: world.topup(good).status == "credited", "the async success")
    _wait(lambda: world.topup(bad).status == "failed", "the async failure")
    assert world.balance(customer) == 100


def test_expired_links_credit_nothing(world: World) -> None:
    customer = world.customer()
    by_app = world.issue(customer, credits=100)
    world.credits.expire_topup(by_app, f"k-{uuid.uuid4()}")
    assert world.topup(by_app).status == "expired"
    with pytest.raises(ValidationError, match="not open"):
        world.credits.expire_topup(by_app, f"k-{uuid.uuid4()}")
    by_clock = world.issue(customer, credits=100)
    _sandbox_post(world.sandbox, "/_sandbox/clock/advance", seconds=str(25 * 3600))
    _wait(lambda: world.topup(by_clock).status == "expired", "the expiry event")
    assert world.pay(by_clock, card="4242424242424242")[0] >= 400
    assert world.balance(customer) == 0


def test_a_refund_claws_back_and_may_go_negative(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=1000)
    world.pay(topup_id, card="4242424242424242")
    _wait(lambda: world.balance(customer) == 1000, "the credit")
    pi = world.topup(topup_id).payment_intent_id
    world.client.v1.refunds.create({"payment_intent": pi, "amount": 5000})  # half of $100
    _wait(lambda: world.balance(customer) == 500, "half clawed back")
    world.credits.grant(customer, 1, "test")  # the customer spent nothing; now refund the rest
    world.client.v1.refunds.create({"payment_intent": pi})
    _wait(lambda: world.topup(topup_id).status == "refunded", "the full refund")
    kinds = [(e.kind, e.amount) for e in world.credits.ledger(customer)]
    assert ("clawback", -500) in kinds
    assert kinds.count(("clawback", -500)) == 2
    assert world.balance(customer) == 1


def test_tampered_amount_or_unknown_sessions_credit_nothing(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=1000)
    # Someone makes their own cheap session claiming to be this top-up, and pays it.
    forged = world.client.v1.checkout.sessions.create({
        "mode": "payment", "customer": customer,
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 100,
                                       "product_data": {"name": "cheap"}}, "quantity": 1}],
        "metadata": {"topup_id": topup_id, "credits": "1000"}, "client_reference_id": topup_id,
    })  # fmt: skip
    _sandbox_post(
        world.sandbox, f"/_sandbox/checkout/sessions/{forged.id}/pay", card="4242424242424242"
    )
    # And a session the app never issued at all.
    stranger = world.client.v1.checkout.sessions.create({
        "mode": "payment", "customer": customer,
        "line_items": [{"price_data": {"currency": "usd", "unit_amount": 999,
                                       "product_data": {"name": "?"}}, "quantity": 1}],
    })  # fmt: skip
    _sandbox_post(
        world.sandbox, f"/_sandbox/checkout/sessions/{stranger.id}/pay", card="4242424242424242"
    )
    _wait(
        lambda: WebhookEvent.select().where(WebhookEvent.flagged.is_null(False)).count() == 2,
        "both events flagged",
    )
    assert world.balance(customer) == 0
    assert world.topup(topup_id).status == "open"
    flags = [e.flagged for e in WebhookEvent.select().where(WebhookEvent.flagged.is_null(False))]
    assert any("amount 100 ≠ 10000" in f for f in flags)
    assert any("belongs to no top-up" in f for f in flags)


def test_a_forged_paid_event_for_an_unpaid_session_credits_nothing(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=700)
    session = world.topup(topup_id).checkout_session_id
    forged = {
        "id": "evt_forged_1", "object": "event", "type": "checkout.session.completed",
        "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": session, "object": "checkout.session", "payment_status": "paid",
                            "amount_total": 70000, "currency": "usd", "customer": customer,
                            "metadata": {"topup_id": topup_id, "credits": "700"}}},
    }  # fmt: skip
    # Even correctly signed, the payload is not trusted: the session is re-read from Stripe.
    assert world.post_event(forged) == 200
    assert world.balance(customer) == 0
    assert world.topup(topup_id).status == "open"


def test_two_processes_applying_one_paid_event_credit_once(world: World, db_url: str) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=400)
    world.receiver.stop()  # nobody listening: the event waits in Stripe
    world.pay(topup_id, card="4242424242424242")
    event = world.event("checkout.session.completed", world.topup(topup_id).checkout_session_id)
    script = f"""
import json, sys
from services.database import open_database
from services.credits import CREDIT_ROUTES
from services.events import ROUTES, EventPipeline, Source
from services.stripe_gateway import StripeGateway
db = open_database({db_url!r})
pipe = EventPipeline(db, StripeGateway({TEST_KEY!r}, api_base={world.sandbox.url!r}),
                     [*CREDIT_ROUTES, *ROUTES])
print(pipe.receive(json.loads(sys.stdin.read()), Source.CATCH_UP).value)
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    outputs = []
    for proc in procs:
        out, err = proc.communicate(json.dumps(event), timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    assert sorted(outputs) == ["applied", "duplicate"]
    assert world.purchases(topup_id) == 1
    assert world.balance(customer) == 400


def test_who_may_issue_and_grant(world: World, database: peewee.Database) -> None:
    customer = world.customer()
    ops = OperatorService(database, world.authority)
    ops.add("fin", Role.FINANCE)
    ops.add("sup", Role.SUPPORT)
    finance = CreditService(
        database, world.gateway, Authority(database, sign_in(database, "fin")), Settings()
    )
    support = CreditService(
        database, world.gateway, Authority(database, sign_in(database, "sup")), Settings()
    )
    with pytest.raises(PermissionDenied, match="issue top-up link"):
        finance.issue_topup(customer, "k1", credits=100)
    with pytest.raises(PermissionDenied, match="grant credits"):
        support.grant(customer, 100, "because")
    assert support.issue_topup(customer, "k2", credits=100).topup.status == "open"
    assert world.balance(customer) == 0


def test_grants_need_a_reason_and_are_audited(world: World) -> None:
    customer = world.customer()
    with pytest.raises(ValidationError, match="reason"):
        world.credits.grant(customer, 100, "  ")
    with pytest.raises(ValidationError, match="positive"):
        world.credits.grant(customer, 0, "zero")
    assert world.balance(customer) == 0
    world.credits.grant(customer, 250, "goodwill after outage")
    (entry,) = world.credits.ledger(customer)
    assert (entry.kind, entry.amount, entry.reason) == ("grant", 250, "goodwill after outage")
    audit = AuditRecord.get(AuditRecord.action == "credits.grant")
    assert (audit.outcome, audit.reason, audit.target) == ("ok", "goodwill after outage", customer)


def test_custom_top_ups_respect_the_limits(world: World) -> None:
    customer = world.customer()
    for credits in (1, 99, 100_001):
        with pytest.raises(ValidationError, match="Custom top-ups"):
            world.issue(customer, credits=credits)
    assert not TopUp.select().exists()


def test_a_retried_issue_makes_one_link(world: World) -> None:
    customer = world.customer()
    first = world.credits.issue_topup(customer, "same-dialog", credits=100)
    second = world.credits.issue_topup(customer, "same-dialog", credits=100)
    assert first.topup.topup_id == second.topup.topup_id
    assert first.topup.checkout_session_id == second.topup.checkout_session_id
    assert TopUp.select().count() == 1
    assert "secure payment link for 100 credits" in first.email_text


def test_the_ledger_guard_refuses_a_second_purchase_row(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=100)
    world.pay(topup_id, card="4242424242424242")
    _wait(lambda: world.purchases(topup_id) == 1, "the credit")
    with pytest.raises(peewee.IntegrityError):
        CreditEntry.create(customer_id=customer, amount=100, kind="purchase", source=topup_id,
                           operator="x", created_at=0)  # fmt: skip


def test_replaying_a_paid_event_credits_nothing_more(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=100)
    world.pay(topup_id, card="4242424242424242")
    _wait(lambda: world.balance(customer) == 100, "the credit")
    event = world.event("checkout.session.completed", world.topup(topup_id).checkout_session_id)
    world.pipeline.replay(event["id"], world.authority)
    world.pipeline.receive(event, Source.CATCH_UP)
    assert world.balance(customer) == 100


# ---- Stripe may deliver a top-up's events in any order, or not at all until catch-up


def _events_of(world: World, *object_ids: str) -> dict[str, list[dict[str, Any]]]:
    """Stripe's genuine events about these objects (sessions, charges), by type, oldest first."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in reversed(list(world.client.v1.events.list({"limit": 100}).auto_paging_iter())):
        data: dict[str, Any] = event.to_dict(for_json=True)
        if data["data"]["object"].get("id") in object_ids:
            found.setdefault(data["type"], []).append(data)
    return found


def _paid_quietly(world: World, credits: int) -> tuple[str, str, str]:
    """A top-up paid in Stripe while nobody listens: (customer, top-up id, charge id)."""
    world.receiver.stop()  # the events wait in Stripe; the tests deliver them in their order
    customer = world.customer()
    topup_id = world.issue(customer, credits=credits)
    assert world.pay(topup_id, card="4242424242424242")[0] == 200
    session = world.client.v1.checkout.sessions.retrieve(world.topup(topup_id).checkout_session_id)
    assert isinstance(session.payment_intent, str)
    intent = world.client.v1.payment_intents.retrieve(session.payment_intent)
    assert isinstance(intent.latest_charge, str)
    return customer, topup_id, intent.latest_charge


def test_a_refund_delivered_before_the_payment_leaves_nothing(world: World) -> None:
    customer, topup_id, charge = _paid_quietly(world, 700)
    world.client.v1.refunds.create({"charge": charge})
    session = world.topup(topup_id).checkout_session_id
    events = _events_of(world, session, charge)
    refunded, completed = events["charge.refunded"][0], events["checkout.session.completed"][0]
    assert world.pipeline.receive(refunded, Source.RECEIVER).value == "applied"
    assert world.pipeline.receive(completed, Source.RECEIVER).value == "ignored"  # nothing left
    assert world.balance(customer) == 0  # 700 bought, 700 refunded
    row = world.topup(topup_id)
    assert (row.status, row.refunded_amount) == ("refunded", 7000)
    assert [(e.kind, e.amount) for e in world.credits.ledger(customer)] in (
        [("clawback", -700), ("purchase", 700)],
        [("purchase", 700), ("clawback", -700)],
    )


def test_any_order_of_a_topups_events_ends_the_same(world: World) -> None:
    customer, topup_id, charge = _paid_quietly(world, 700)  # $70.00
    world.client.v1.refunds.create({"charge": charge, "amount": 2100})  # 30%: 210 credits
    world.client.v1.refunds.create({"charge": charge, "amount": 1400})  # 20% more: 140
    session = world.topup(topup_id).checkout_session_id
    by_type = _events_of(world, session, charge)
    genuine = [*by_type["checkout.session.completed"], *by_type["charge.refunded"]]
    assert len(genuine) == 3
    orders = list(itertools.permutations(genuine))
    for order in orders:
        # Forget everything this top-up's events did, then deliver them in this order, twice.
        CreditEntry.delete().where(CreditEntry.topup_id == topup_id).execute()
        _forget_lots()
        TopUp.update(
            status="open", paid_at=None, credited_at=None, payment_intent_id=None,
            refunded_amount=0,
        ).where(TopUp.topup_id == topup_id).execute()  # fmt: skip
        WebhookEvent.delete().execute()
        for event in [*order, *order]:
            world.pipeline.receive(event, Source.RECEIVER)
        row = world.topup(topup_id)
        ledger = sorted((e.kind, e.amount) for e in world.credits.ledger(customer))
        # Hand-computed: 700 bought; 30% refunded takes 210, then 50% in all takes 350 - 210.
        assert ledger == [("clawback", -210), ("clawback", -140), ("purchase", 700)], order
        assert world.balance(customer) == 350
        assert (row.status, row.refunded_amount) == ("credited", 3500)
    assert len(orders) == 6


def test_an_expired_event_for_a_session_still_open_changes_nothing(world: World) -> None:
    customer = world.customer()
    topup_id = world.issue(customer, credits=300)
    session = world.topup(topup_id).checkout_session_id
    forged = {
        "id": "evt_early_expiry", "object": "event", "type": "checkout.session.expired",
        "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": session, "object": "checkout.session", "status": "expired"}},
    }  # fmt: skip
    assert world.pipeline.receive(forged, Source.RECEIVER).value == "ignored"
    assert world.topup(topup_id).status == "open"
    stored = WebhookEvent.get(WebhookEvent.evt_id == "evt_early_expiry")
    assert "Stripe says" in (stored.flagged or "")
    world.pay(topup_id, card="4242424242424242")  # the real payment, later
    _wait(lambda: world.balance(customer) == 300, "the credit after the false expiry")


def test_a_paid_session_credits_whatever_the_local_status(world: World) -> None:
    customer, topup_id, _charge = _paid_quietly(world, 250)
    # However it happened (an old release, a hand edit), the row says expired: Stripe says paid.
    TopUp.update(status="expired").where(TopUp.topup_id == topup_id).execute()
    completed = _events_of(world, world.topup(topup_id).checkout_session_id)
    assert world.pipeline.receive(completed["checkout.session.completed"][0], Source.RECEIVER)
    assert world.balance(customer) == 250
    assert world.topup(topup_id).status == "credited"


def test_catch_up_walks_a_gap_longer_than_any_page_limit(world: World) -> None:
    catch_up = CatchUp(world.db, world.gateway, world.pipeline)
    catch_up.run()  # the cursor, before the outage
    customer, topup_id, _charge = _paid_quietly(world, 1234)
    # Then 10,100 more events while nothing listens (genuine shapes, written straight into
    # the sandbox: 10,100 API calls would only make the test slow).
    store = world.sandbox.api.store
    intent = world.client.v1.payment_intents.retrieve(
        str(world.client.v1.checkout.sessions.retrieve(
            world.topup(topup_id).checkout_session_id).payment_intent)
    ).to_dict(for_json=True)  # fmt: skip
    with store.lock:
        for _ in range(10_100):
            store.record_event(
                "payment_intent.created", intent, RequestInfo(None, None), store.now()
            )
    summary = catch_up.run()
    assert summary.seen >= 10_101
    assert summary.failed == 0
    assert world.balance(customer) == 1234  # the oldest event of the gap was not dropped
    assert world.topup(topup_id).status == "credited"
    assert catch_up.run().seen == 0  # the cursor is at the newest event


# ---- disputes: a lost dispute takes the credits back, like a refund


def _disputed_quietly(world: World, credits: int) -> tuple[str, str, str, str]:
    """A top-up paid with Stripe's dispute test card while nobody listens:
    (customer, top-up id, charge id, dispute id)."""
    world.receiver.stop()
    customer = world.customer()
    topup_id = world.issue(customer, credits=credits)
    assert world.pay(topup_id, card="4000000000000259")[0] == 200
    session = world.client.v1.checkout.sessions.retrieve(world.topup(topup_id).checkout_session_id)
    assert isinstance(session.payment_intent, str)
    intent = world.client.v1.payment_intents.retrieve(session.payment_intent)
    assert isinstance(intent.latest_charge, str)
    [dispute] = world.client.v1.disputes.list({"charge": intent.latest_charge}).data
    return customer, topup_id, intent.latest_charge, dispute.id


def _deliver_all(world: World, *object_ids: str) -> None:
    for events in _events_of(world, *object_ids).values():
        for event in events:
            world.pipeline.receive(event, Source.RECEIVER)


def test_a_dispute_flags_the_topup_and_a_lost_one_claws_back(world: World) -> None:
    customer, topup_id, charge, dispute = _disputed_quietly(world, 700)
    session = world.topup(topup_id).checkout_session_id
    _deliver_all(world, session, charge, dispute)
    assert world.balance(customer) == 700  # paid: credited; the dispute is open, not lost
    row = world.topup(topup_id)
    assert row.status == "credited"
    assert f"dispute {dispute} open" in (row.flagged or "")
    world.client.v1.disputes.close(dispute)  # accepting the dispute: lost
    _deliver_all(world, dispute)
    assert world.balance(customer) == 0
    row = world.topup(topup_id)
    assert (row.status, row.flagged) == ("disputed", None)
    assert sorted((e.kind, e.amount, e.source) for e in world.credits.ledger(customer)) == [
        ("clawback", -700, dispute),
        ("purchase", 700, topup_id),
    ]


def test_a_won_dispute_keeps_the_credits_and_clears_the_flag(world: World) -> None:
    customer, topup_id, charge, dispute = _disputed_quietly(world, 400)
    world.client.v1.disputes.update(
        dispute, {"evidence": {"uncategorized_text": "winning_evidence"}}
    )
    _deliver_all(world, world.topup(topup_id).checkout_session_id, charge, dispute)
    assert world.balance(customer) == 400
    row = world.topup(topup_id)
    assert (row.status, row.flagged) == ("credited", None)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_order_of_pay_refund_dispute_and_expire_ends_the_same(
    world: World, data: st.DataObject
) -> None:
    """Any permutation of a top-up's genuine events (paid, a partial refund, a dispute opened,
    withdrawn and lost) plus a signed `expired` for its session, each delivered twice, ends
    with the same ledger, balance and status."""
    if not hasattr(world, "scenario"):
        customer, topup_id, charge, dispute = _disputed_quietly(world, 1000)  # $100.00
        world.client.v1.disputes.close(dispute)  # lost: the whole $100 (Stripe's test card)
        session = world.topup(topup_id).checkout_session_id
        by_type = _events_of(world, session, charge, dispute)
        completed = by_type["checkout.session.completed"][0]
        expired = {**completed, "id": "evt_expired_too", "type": "checkout.session.expired"}
        genuine = [ev for events in by_type.values() for ev in events] + [expired]
        world.scenario = (customer, topup_id, dispute, genuine)  # type: ignore[attr-defined]
    customer, topup_id, dispute, genuine = world.scenario  # type: ignore[attr-defined]
    order = data.draw(st.permutations(genuine))
    CreditEntry.delete().where(CreditEntry.topup_id == topup_id).execute()
    _forget_lots()
    TopUp.update(
        status="open", paid_at=None, credited_at=None, payment_intent_id=None,
        refunded_amount=0, flagged=None,
    ).where(TopUp.topup_id == topup_id).execute()  # fmt: skip
    WebhookEvent.delete().execute()
    for event in [*order, *order]:
        world.pipeline.receive(event, Source.RECEIVER)
    # Hand-computed: 1000 bought; the lost dispute takes the whole payment back.
    assert sorted((e.kind, e.amount, e.source) for e in world.credits.ledger(customer)) == [
        ("clawback", -1000, dispute),
        ("purchase", 1000, topup_id),
    ], [e["type"] for e in order]
    assert world.balance(customer) == 0
    row = world.topup(topup_id)
    assert (row.status, row.refunded_amount, row.flagged) == ("disputed", 0, None)
    assert WebhookEvent.select().where(WebhookEvent.status.in_(["failed", "rejected"])).count() == 0


def test_a_v2_thin_dispute_event_settles_like_its_snapshot(world: World) -> None:
    """An event destination with the thin payload style sends `v1.charge.dispute.created`
    naming the dispute in `related_object`; the dispute is re-read and settles the top-up."""
    customer, topup_id, _charge, dispute = _disputed_quietly(world, 500)
    assert world.balance(customer) == 0  # nothing delivered yet
    listed = urllib.request.urlopen(
        urllib.request.Request(
            f"{world.sandbox.url}/v2/core/events?object_id={dispute}",
            headers={"Authorization": f"Bearer {TEST_KEY}"},
        ),
        timeout=10,
    )
    with listed:
        [v2_event] = json.loads(listed.read())["data"]
    thin = {k: v2_event[k] for k in v2_event_notification.NOTIFICATION_FIELDS}
    assert thin["object"] == "v2.core.event"
    assert thin["type"] == "v1.charge.dispute.created"
    assert "data" not in thin
    assert world.pipeline.receive(thin, Source.RECEIVER).value == "applied"
    stored = WebhookEvent.get(WebhookEvent.evt_id == thin["id"])
    assert stored.status == "applied", stored.last_error
    # The dispute's re-read found its session: paid (credited) and disputed (flagged).
    assert f"dispute {dispute} open" in (world.topup(topup_id).flagged or "")
    assert world.balance(customer) == 500


def test_a_top_up_priced_off_the_teams_price_is_not_credited(world: World) -> None:
    """A client that priced a custom top-up itself (an edited settings file, an old release):
    the paid event checks the top-up's own amount against the team's price when it was
    issued — 100,000 credits for $1,000 is flagged, not credited."""
    customer = world.customer()
    now = int(time.time())
    metadata = {"topup_id": "tu_cheap", "credits": "100000"}
    session = world.client.v1.checkout.sessions.create(
        {
            "mode": "payment", "customer": customer, "client_reference_id": "tu_cheap",
            "metadata": metadata, "payment_intent_data": {"metadata": metadata},
            "line_items": [{"quantity": 1, "price_data": {
                "currency": "usd", "unit_amount": 100_000,
                "product_data": {"name": "100,000 credits"}}}],
        }
    )  # fmt: skip
    TopUp.insert(
        topup_id="tu_cheap", customer_id=customer, credits=100_000, amount=100_000,
        currency="usd", status="open", checkout_session_id=session.id, url=session.url,
        issued_by="support", issued_at=now, expires_at=now + 3600,
    ).execute()  # fmt: skip
    assert world.pay("tu_cheap", card="4242424242424242")[0] == 200
    _wait(lambda: bool(world.topup("tu_cheap").flagged), "the flag on the cheap top-up")
    assert world.balance(customer) == 0
    assert "cost $10,000.00 at the team's price" in (world.topup("tu_cheap").flagged or "")


# ---- credit packs sold on invoices


def _invoice_with(world: World, customer: str, items: list[dict[str, Any]]) -> str:
    invoice = world.client.v1.invoices.create(
        {"customer": customer, "pending_invoice_items_behavior": "exclude"}
    )
    for item in items:
        world.client.v1.invoice_items.create({"customer": customer, "invoice": invoice.id, **item})
    world.client.v1.invoices.finalize_invoice(invoice.id)
    return invoice.id


def test_a_paid_invoice_for_credit_packs_credits_them_once(world: World) -> None:
    customer = world.customer()
    _sandbox_post(world.sandbox, f"/_sandbox/customers/{customer}/attach_card",
                  card="4242424242424242")  # fmt: skip
    pack = next(p for p in world.credits.credit_packs() if p[2] == 500)
    price = world.client.v1.products.retrieve(pack[0]).default_price
    invoice = _invoice_with(world, customer, [
        {"pricing": {"price": price}, "quantity": 2},  # 2 x 500 credits
        {"amount": 1500, "currency": "usd", "description": "Onboarding call"},  # not credits
    ])  # fmt: skip
    assert world.balance(customer) == 0  # finalized and open: nothing yet
    world.client.v1.invoices.pay(invoice)
    _wait(lambda: world.balance(customer) == 1000, "the credits of the paid invoice")
    # Every event about the invoice again (Stripe retries, catch-up, replays): still once.
    for events in _events_of(world, invoice).values():
        for event in events:
            world.pipeline.receive(event, Source.CATCH_UP)
            world.pipeline.replay(event["id"], world.authority)
    assert world.balance(customer) == 1000
    [entry] = world.credits.ledger(customer)
    assert (entry.kind, entry.amount, entry.source) == ("purchase", 1000, invoice)
    assert "2 x 500-credit pack" in entry.reason


def test_an_unpaid_or_packless_invoice_credits_nothing(world: World) -> None:
    customer = world.customer()
    pack = next(p for p in world.credits.credit_packs() if p[2] == 500)
    price = world.client.v1.products.retrieve(pack[0]).default_price
    unpaid = _invoice_with(world, customer, [{"pricing": {"price": price}}])
    world.client.v1.invoices.void_invoice(unpaid)
    plain = _invoice_with(world, customer, [{"amount": 2500, "currency": "usd"}])
    world.client.v1.invoices.pay(plain, {"paid_out_of_band": True})
    _wait(
        lambda: (
            Invoice.get_or_none(Invoice.stripe_id == plain) is not None
            and Invoice.get(Invoice.stripe_id == plain).status == "paid"
        ),
        "the paid invoice in the mirror",
    )
    assert world.balance(customer) == 0
