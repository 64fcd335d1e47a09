"""Low balance and automatic top-up, against the sandbox and a real database.

Spends are simulated the way the ledger records a negative entry today (`_spend`); the lead
switches them to `CreditService.consume` when credit lots land.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

import peewee
import psycopg2
import pytest
import stripe

from services.audit import Authority
from services.auto_topup import (
    AUTO_TOPUP_ROUTES,
    FAILED,
    IN_FLIGHT,
    NOT_OURS,
    SUCCEEDED,
    AutoTopUpService,
)
from services.catchup import CatchUp
from services.credits import CREDIT_ROUTES, CreditService
from services.customers import CustomerDraft, CustomerService
from services.errors import PermissionDenied, ValidationError
from services.events import ROUTES, EventPipeline, Result, Source
from services.listener import ListenerService
from services.models import (
    AuditRecord,
    AutoTopUpSetting,
    AutoTopUpTrigger,
    CreditEntry,
    WebhookEvent,
)
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.reconcile import Kind, Reconciler
from services.settings import Settings
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.helpers.dropping_proxy import DroppingProxy
from tests.services.test_pg_security import Team, _open_as, team  # noqa: F401 (a fixture)


def _spend(world: World, customer: str, credits: int) -> None:
    """A spend through the app's own path (`consume`, which then runs the low-balance check)."""
    world.credits.consume(customer, credits, f"spend-{uuid.uuid4()}", "test spend")


class World:
    def __init__(
        self, db: peewee.Database, sandbox: SandboxServer, authority: Authority,
        client: stripe.StripeClient,
    ) -> None:  # fmt: skip
        self.db = db
        self.client = client
        self.authority = authority
        self.gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
        self.pipeline = EventPipeline(
            db, self.gateway, [*AUTO_TOPUP_ROUTES, *CREDIT_ROUTES, *ROUTES]
        )
        self.credits = CreditService(db, self.gateway, authority, Settings())
        self.auto = AutoTopUpService(db, self.gateway, authority, self.credits)
        self.credits.after_spend = self.auto.after_spend  # as admin_app.wiring does
        self.customers = CustomerService(db, self.gateway, authority)
        self.seen: set[str] = set()
        self.demo: set[str] = set()

    def pack(self) -> tuple[str, str, int, int, str]:
        return next(p for p in self.credits.credit_packs() if p[2] == 500)

    def customer(self, card: str | None = "pm_card_visa", balance: int = 1000) -> str:
        made = self.customers.create(
            CustomerDraft(email=f"auto-{uuid.uuid4().hex[:6]}@example.com", name="Auto"),
            f"k-{uuid.uuid4()}",
        )
        if card:
            pm = self.client.v1.payment_methods.attach(card, {"customer": made.stripe_id})
            self.client.v1.customers.update(
                made.stripe_id, {"invoice_settings": {"default_payment_method": pm.id}}
            )
        if balance:
            self.credits.grant(made.stripe_id, balance, "starting balance")
        return made.stripe_id

    def enable(self, customer: str, threshold: int = 600, failure_limit: int = 3) -> None:
        self.auto.configure(
            customer, enabled=True, threshold=threshold, pack_product_id=self.pack()[0],
            failure_limit=failure_limit,
        )  # fmt: skip

    def events(self, *types: str) -> list[dict[str, Any]]:
        """This test's events (not the demo's), oldest first, of `types` if given."""
        listed = self.client.v1.events.list({"limit": 100}).auto_paging_iter()
        found = [e.to_dict(for_json=True) for e in listed]
        return [
            e for e in reversed(found)
            if e["id"] not in self.demo and (not types or e["type"] in types)
        ]  # fmt: skip

    def deliver_new(self) -> None:
        """Every event not yet delivered, oldest first (as the catch-up would)."""
        for event in self.events():
            if event["id"] not in self.seen:
                self.seen.add(event["id"])
                self.pipeline.receive(event, Source.CATCH_UP)

    def intents(self, customer: str) -> list[stripe.PaymentIntent]:
        return list(self.client.v1.payment_intents.list({"customer": customer}).data)

    def purchases(self, customer: str) -> int:
        return (
            CreditEntry.select()
            .where((CreditEntry.customer_id == customer) & (CreditEntry.kind == "purchase"))
            .count()
        )


@pytest.fixture
def world(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> World:  # fmt: skip
    sandbox.seed_demo()
    w = World(database, sandbox, authority, stripe_client)
    SyncService(database, w.gateway, authority).pull(SyncTarget.PRODUCTS)
    w.demo = {e["id"] for e in w.events()}  # the demo's own events are not under test
    w.seen = set(w.demo)
    return w


def test_a_burst_of_spends_crossing_the_threshold_charges_once(world: World) -> None:
    customer = world.customer(balance=1000)
    world.enable(customer, threshold=600)
    threads = 8
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def spend() -> None:
        try:
            barrier.wait()
            _spend(world, customer, 100)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=spend) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    world.auto.scan()  # the listener's periodic scan finds nothing more to do
    intents = world.intents(customer)
    assert len(intents) == 1
    intent = intents[0]
    assert intent.status == "succeeded"
    assert (intent.amount, intent.currency) == (4500, "usd")
    assert intent.metadata["auto_topup_id"].startswith("atu_")
    assert world.credits.balance(customer) == 200  # the charge alone credits nothing
    trigger = AutoTopUpTrigger.get(AutoTopUpTrigger.customer_id == customer)
    assert (trigger.status, trigger.payment_intent_id) == (IN_FLIGHT, intent.id)
    world.deliver_new()
    assert world.credits.balance(customer) == 700
    assert world.purchases(customer) == 1
    assert AutoTopUpTrigger.get_by_id(trigger.id).status == SUCCEEDED
    entry = CreditEntry.get(
        (CreditEntry.kind == "purchase") & (CreditEntry.customer_id == customer)
    )
    assert (entry.source, entry.amount) == (intent.id, 500)
    charged = AuditRecord.get(AuditRecord.action == "auto_topup.charge")
    assert charged.target == customer
    # Above the threshold again: nothing more happens.
    world.auto.scan()
    assert len(world.intents(customer)) == 1


def test_one_trigger_in_flight_is_enforced_by_the_database(world: World) -> None:
    customer = world.customer()
    now = int(time.time())
    row = {"customer_id": customer, "status": IN_FLIGHT, "pack_product_id": "prod_x",
           "credits": 1, "amount": 100, "currency": "usd", "balance": 0,
           "created_at": now}  # fmt: skip
    AutoTopUpTrigger.insert(trigger_id="atu_a", idempotency_key="ka", **row).execute()
    with pytest.raises(peewee.IntegrityError), world.db.atomic():
        AutoTopUpTrigger.insert(trigger_id="atu_b", idempotency_key="kb", **row).execute()
    # Settled ones do not count.
    AutoTopUpTrigger.update(status=FAILED).where(AutoTopUpTrigger.trigger_id == "atu_a").execute()
    AutoTopUpTrigger.insert(trigger_id="atu_b", idempotency_key="kb", **row).execute()


@pytest.mark.parametrize(
    ("card", "words"),
    [
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_authenticationRequired", "Authentication required"),
    ],
)
def test_a_declining_card_credits_nothing_and_stops_after_n(
    world: World, card: str, words: str
) -> None:
    customer = world.customer(card=card, balance=100)
    world.enable(customer, threshold=500, failure_limit=2)
    first = world.auto.after_spend(customer)
    assert len(first.failed) == 1
    config = world.auto.config(customer)
    assert (config.enabled, config.failures) == (True, 1)
    assert words in config.attention
    world.auto.after_spend(customer)
    config = world.auto.config(customer)
    assert (config.enabled, config.failures) == (False, 2)  # off after N
    world.auto.after_spend(customer)
    world.auto.scan()
    assert len(world.intents(customer)) == 2
    audited = AuditRecord.select().where(AuditRecord.action == "auto_topup.charge")
    assert [a.outcome for a in audited] == ["refused", "refused"]
    # The failure events, three times and shuffled, count nothing twice and credit nothing.
    storm = world.events("payment_intent.payment_failed", "payment_intent.created") * 3
    random.Random(3).shuffle(storm)
    for event in storm:
        world.pipeline.receive(event, Source.CATCH_UP)
    assert world.auto.config(customer).failures == 2
    assert world.credits.balance(customer) == 100
    assert world.purchases(customer) == 0
    attention = world.auto.attention()
    assert [a.customer_id for a in attention] == [customer]
    assert words in attention[0].reason
    assert attention[0].enabled is False
    # A person turns it on again: counting starts afresh and the customer leaves the list.
    world.enable(customer, threshold=500, failure_limit=2)
    assert world.auto.attention() == []


def test_payment_intent_events_three_times_shuffled_credit_once(world: World) -> None:
    customer = world.customer(balance=1000)
    world.enable(customer, threshold=600)
    _spend(world, customer, 500)
    events = world.events("payment_intent.created", "payment_intent.succeeded", "charge.succeeded")
    storm = events * 3
    random.Random(11).shuffle(storm)
    for event in storm:
        world.pipeline.receive(event, Source.RECEIVER)
    assert world.credits.balance(customer) == 1000
    assert world.purchases(customer) == 1
    succeeded = next(e for e in events if e["type"] == "payment_intent.succeeded")
    row = WebhookEvent.get(WebhookEvent.evt_id == succeeded["id"])
    assert row.status == "applied"
    created = next(e for e in events if e["type"] == "payment_intent.created")
    assert WebhookEvent.get(WebhookEvent.evt_id == created["id"]).last_error == NOT_OURS


def test_a_forged_succeeded_event_credits_nothing(world: World) -> None:
    customer = world.customer(card="pm_card_chargeDeclined", balance=100)
    world.enable(customer, threshold=500)
    world.auto.after_spend(customer)
    trigger = AutoTopUpTrigger.get(AutoTopUpTrigger.customer_id == customer)
    assert trigger.status == FAILED
    forged = {
        "id": "evt_forged_auto", "object": "event", "type": "payment_intent.succeeded",
        "created": int(time.time()), "livemode": False,
        "data": {"object": {"id": trigger.payment_intent_id, "object": "payment_intent",
                            "status": "succeeded", "amount": trigger.amount, "currency": "usd",
                            "customer": customer,
                            "metadata": {"auto_topup_id": trigger.trigger_id,
                                         "credits": str(trigger.credits)}}},
    }  # fmt: skip
    assert world.pipeline.receive(forged, Source.RECEIVER) is Result.IGNORED
    assert world.credits.balance(customer) == 100
    row = WebhookEvent.get(WebhookEvent.evt_id == "evt_forged_auto")
    assert "Stripe says" in (row.flagged or "")
    # A payment intent that is not an auto top-up stays ignored, with the old reason.
    stranger = {**forged, "id": "evt_stranger"}
    stranger["data"] = {"object": {"id": "pi_stranger", "object": "payment_intent",
                                   "status": "succeeded", "metadata": {}}}  # fmt: skip
    assert world.pipeline.receive(stranger, Source.RECEIVER) is Result.IGNORED
    assert WebhookEvent.get(WebhookEvent.evt_id == "evt_stranger").last_error == NOT_OURS


def test_a_refund_of_an_auto_topup_claws_back(world: World) -> None:
    customer = world.customer(balance=1000)
    world.enable(customer, threshold=600)
    _spend(world, customer, 500)
    world.deliver_new()
    assert world.credits.balance(customer) == 1000
    intent = world.intents(customer)[0]
    world.client.v1.refunds.create({"payment_intent": intent.id, "amount": 2250})  # half
    world.deliver_new()
    assert world.credits.balance(customer) == 750
    world.deliver_new()
    clawbacks = CreditEntry.select().where(
        (CreditEntry.customer_id == customer) & (CreditEntry.kind == "clawback")
    )
    assert [c.amount for c in clawbacks] == [-250]


def test_reconcile_knows_auto_topups_as_purchases(world: World) -> None:
    customer = world.customer(balance=1000)
    world.enable(customer, threshold=600)
    _spend(world, customer, 500)
    world.deliver_new()
    report = Reconciler(world.db, world.gateway, world.authority, world.pipeline).run()
    assert [f for f in report.findings if f.kind is Kind.CREDITED_NOT_PAID] == []


def test_no_saved_card_refuses_enabling_and_settings_are_audited(world: World) -> None:
    customer = world.customer(card=None)
    with pytest.raises(ValidationError, match="no saved card"):
        world.enable(customer)
    assert AutoTopUpSetting.select().count() == 0
    with pytest.raises(ValidationError, match="not an active credit pack"):
        world.auto.configure(customer, enabled=False, threshold=10, pack_product_id="prod_no")
    with pytest.raises(ValidationError, match="threshold"):
        world.auto.configure(customer, enabled=False, threshold=-1, pack_product_id=None)
    # A card saved (e.g. by a top-up link) but not the default becomes the default.
    world.client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
    world.enable(customer)
    fresh = world.client.v1.customers.retrieve(customer)
    assert fresh.invoice_settings is not None
    assert fresh.invoice_settings.default_payment_method
    audit = AuditRecord.get(AuditRecord.action == "auto_topup.set")
    assert (audit.target, audit.outcome) == (customer, "ok")
    off = world.auto.turn_off(customer)
    assert (off.enabled, off.threshold) == (False, 600)


def test_finance_may_look_but_not_change(world: World, database: peewee.Database) -> None:
    customer = world.customer()
    OperatorService(database, world.authority).add("fin", Role.FINANCE)
    finance = AutoTopUpService(
        database, world.gateway, Authority(database, sign_in(database, "fin")), world.credits
    )
    assert finance.config(customer).enabled is False
    with pytest.raises(PermissionDenied):
        finance.configure(customer, enabled=False, threshold=5, pack_product_id=None)


@pytest.mark.postgres
def test_a_shared_postgresql_lets_the_listener_charge_and_credit(
    team: Team,  # noqa: F811 (the fixture imported above)
    sandbox: SandboxServer,
    stripe_client: stripe.StripeClient,
) -> None:
    """`db setup`'s grants and ledger guard: support sets auto top-up, the listener charges
    and credits it; a staff member cannot make a trigger or a purchase with psql."""
    sandbox.seed_demo()
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    demo = {e.id for e in stripe_client.v1.events.list({"limit": 100}).auto_paging_iter()}
    db, adm = _open_as(team, "adm")
    try:
        SyncService(db, gateway, adm).pull(SyncTarget.PRODUCTS)
        customer = (
            CustomerService(db, gateway, adm)
            .create(CustomerDraft(email="pg-auto@example.com"), None)
            .stripe_id
        )
        pm = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
        stripe_client.v1.customers.update(
            customer, {"invoice_settings": {"default_payment_method": pm.id}}
        )
        CreditService(db, gateway, adm, Settings()).grant(customer, 100, "start")
    finally:
        db.close()
    db, sup = _open_as(team, "sup")
    try:
        credits = CreditService(db, gateway, sup, Settings())
        pack = next(p for p in credits.credit_packs() if p[2] == 500)
        auto = AutoTopUpService(db, gateway, sup, credits)
        auto.configure(customer, enabled=True, threshold=300, pack_product_id=pack[0])
        assert auto.after_spend(customer).triggered == []  # support may not charge: denied
    finally:
        db.close()
    db, lst = _open_as(team, "lst")
    try:
        credits = CreditService(db, gateway, lst, Settings())
        report = AutoTopUpService(db, gateway, lst, credits).scan()
        assert len(report.charged) == 1, report
        pipeline = EventPipeline(db, gateway, [*AUTO_TOPUP_ROUTES, *CREDIT_ROUTES, *ROUTES])
        listed = stripe_client.v1.events.list({"limit": 100}).auto_paging_iter()
        for event in reversed([e.to_dict(for_json=True) for e in listed]):
            if event["id"] not in demo:
                pipeline.receive(event, Source.CATCH_UP)
        assert credits.balance(customer) == 600
    finally:
        db.close()
    conn = team.sql("sup")
    with conn.cursor() as cur, pytest.raises(psycopg2.Error):
        cur.execute(
            "INSERT INTO credit_entry (customer_id, amount, kind, source, topup_id, operator,"
            f" created_at) VALUES ('{customer}', 500, 'purchase', 'pi_x', 'atu_x', 'x', 0)"
        )
    conn.close()


def test_a_lost_answer_is_retried_with_the_same_key_and_charges_once(
    world: World, sandbox: SandboxServer
) -> None:
    customer = world.customer(balance=100)
    world.enable(customer, threshold=500)
    with DroppingProxy(sandbox.url) as proxy:
        lossy = StripeGateway(TEST_KEY, api_base=proxy.url, sandbox=True)
        auto = AutoTopUpService(world.db, lossy, world.authority, world.credits)
        proxy.drop("/v1/payment_intents", count=3)  # applied by Stripe, the answer lost
        first = auto.after_spend(customer)
    assert (first.triggered != [], first.charged, len(first.problems)) == (True, [], 1)
    trigger = AutoTopUpTrigger.get(AutoTopUpTrigger.customer_id == customer)
    assert (trigger.status, trigger.payment_intent_id) == (IN_FLIGHT, None)
    assert len(world.intents(customer)) == 1  # Stripe did charge
    again = world.auto.scan()  # the listener's next scan: the same request, the same key
    assert again.charged == [trigger.trigger_id]
    assert again.triggered == []
    assert len(world.intents(customer)) == 1
    world.deliver_new()
    assert world.credits.balance(customer) == 600
    assert world.purchases(customer) == 1


def test_a_lost_dispute_of_an_auto_topup_claws_back(world: World) -> None:
    customer = world.customer(card="pm_card_createDispute", balance=100)
    world.enable(customer, threshold=500)
    world.auto.after_spend(customer)
    world.deliver_new()
    assert world.credits.balance(customer) == 600
    [dispute] = world.client.v1.disputes.list({"limit": 10}).data
    world.client.v1.disputes.close(dispute.id)
    world.deliver_new()
    assert world.credits.balance(customer) == 100
    clawback = CreditEntry.get(CreditEntry.kind == "clawback")
    assert (clawback.source, clawback.amount) == (dispute.id, -500)


def test_the_listener_scans_periodically_and_stops(world: World) -> None:
    scanned = threading.Event()

    def scan() -> None:
        scanned.set()

    listener = ListenerService(
        world.pipeline, CatchUp(world.db, world.gateway, world.pipeline), None, None, [],
        scanners=[scan], scan_interval_s=3600,
    )  # fmt: skip
    listener.start(catch_up=False)
    try:
        assert scanned.wait(10)
    finally:
        listener.stop()
