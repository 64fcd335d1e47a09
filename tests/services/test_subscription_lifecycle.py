"""Subscriptions through the app against the sandbox on a test clock: every state change, the
money previews, and credit plans that credit each paid period exactly once.

Events are fetched from the sandbox's event list and handed to the app's pipeline, as the
catch-up does; the clock is advanced with stripe-python's test helpers.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import peewee
import pytest
import stripe

from services.audit import Authority
from services.credits import CREDIT_ROUTES
from services.errors import PaymentDeclined, ValidationError
from services.events import ROUTES, EventPipeline, Source
from services.models import AuditRecord, CreditEntry, Invoice, Subscription
from services.stripe_gateway import StripeGateway
from services.subscriptions import SubscriptionDraft, SubscriptionService, subscription_figures
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY

START = 1_790_000_000  # 2026-09-21 12:53 UTC, the clock's first frozen time
HOUR = 3600
DAY = 86_400
CREDITS = 100


class World:
    def __init__(
        self, db: peewee.Database, sandbox: SandboxServer, authority: Authority,
        client: stripe.StripeClient,
    ) -> None:  # fmt: skip
        self.db = db
        self.client = client
        self.gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
        self.authority = authority
        self.pipeline = EventPipeline(db, self.gateway, [*CREDIT_ROUTES, *ROUTES])
        self.subs = SubscriptionService(db, self.gateway, authority)
        self.sync = SyncService(db, self.gateway, authority)
        self.delivered: set[str] = set()
        self.clock = client.v1.test_helpers.test_clocks.create({"frozen_time": START})
        self.now = START

    def customer(self, card: str = "pm_card_visa") -> str:
        customer = self.client.v1.customers.create(
            {"test_clock": self.clock.id, "payment_method": card, "email": "plan@example.com",
             "name": "Plan Customer"}
        )  # fmt: skip
        self.set_card(customer.id, card)
        self.sync.pull(SyncTarget.CUSTOMERS)
        return customer.id

    def set_card(self, customer_id: str, card: str) -> None:
        pm = self.client.v1.payment_methods.attach(card, {"customer": customer_id})
        self.client.v1.customers.update(
            customer_id, {"invoice_settings": {"default_payment_method": pm.id}}
        )

    def plan(self, amount: int = 1000, credits: int | None = CREDITS) -> str:
        metadata = {"credits": str(credits)} if credits else {}
        product = self.client.v1.products.create({"name": "Credit plan", "metadata": metadata})
        price = self.client.v1.prices.create(
            {"product": product.id, "unit_amount": amount, "currency": "usd",
             "recurring": {"interval": "month"}}
        )  # fmt: skip
        self.sync.pull(SyncTarget.PRODUCTS)
        return price.id

    def advance(self, to: int) -> None:
        assert to > self.now
        self.client.v1.test_helpers.test_clocks.advance(self.clock.id, {"frozen_time": to})
        self.now = to

    def events(self) -> list[dict[str, Any]]:
        """Every event the sandbox has, oldest first."""
        listed = self.client.v1.events.list({"limit": 100}).auto_paging_iter()
        return [e.to_dict(for_json=True) for e in listed][::-1]

    def deliver(self) -> None:
        """Hand the events not delivered yet to the pipeline, in order."""
        for event in self.events():
            if event["id"] not in self.delivered:
                self.delivered.add(event["id"])
                self.pipeline.receive(event, Source.CATCH_UP)

    def row(self, sub_id: str) -> Subscription:
        return Subscription.get(Subscription.stripe_id == sub_id)

    def period_end(self, sub_id: str) -> int:
        sub = self.client.v1.subscriptions.retrieve(sub_id)
        return int(sub["items"].data[0].current_period_end)

    def credits(self, customer_id: str) -> list[tuple[str, int, str]]:
        query = (
            CreditEntry.select(CreditEntry.kind, CreditEntry.amount, CreditEntry.source)
            .where(CreditEntry.customer_id == customer_id)
            .order_by(CreditEntry.id)
        )
        return [(e.kind, e.amount, e.source) for e in query]


@pytest.fixture
def world(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> World:  # fmt: skip
    return World(database, sandbox, authority, stripe_client)


def test_trial_renewals_a_failed_payment_and_a_cancellation_flow_into_the_mirror(
    world: World,
) -> None:
    customer = world.customer()
    price = world.plan()
    preview = world.subs.preview_create(SubscriptionDraft(customer, price, trial_days=7))
    assert preview.text.startswith("No charge now: a free trial of 7 days")
    assert preview.due_now == 0
    created = world.subs.create(SubscriptionDraft(customer, price, trial_days=7), "k-create")
    assert (created.status, created.mrr, created.trial_end) == ("trialing", 0, START + 7 * DAY)
    sub_id = created.stripe_id
    # The same key again replays Stripe's first answer: still one subscription.
    again = world.subs.create(SubscriptionDraft(customer, price, trial_days=7), "k-create")
    assert again.stripe_id == sub_id
    assert len(world.client.v1.subscriptions.list({"customer": customer}).data) == 1
    world.deliver()
    assert world.credits(customer) == []  # the trial's $0 invoice bought nothing

    # Trial over: the first paid period.
    world.advance(START + 7 * DAY + HOUR)
    world.deliver()
    row = world.row(sub_id)
    assert (row.status, row.mrr) == ("active", 1000)
    assert [c[:2] for c in world.credits(customer)] == [("purchase", CREDITS)]

    # A renewal, paid.
    world.advance(world.period_end(sub_id) + 2 * HOUR)
    world.deliver()
    assert world.row(sub_id).status == "active"
    assert len(world.credits(customer)) == 2

    # The card starts failing: the next renewal is not paid, credits nothing, past due.
    world.set_card(customer, "pm_card_chargeCustomerFail")
    world.advance(world.period_end(sub_id) + 2 * HOUR)
    world.deliver()
    row = world.row(sub_id)
    assert row.status == "past_due"
    assert row.mrr == 1000  # still counted: Stripe is retrying
    failed = Invoice.select().where(Invoice.status == "open").get()
    assert len(world.credits(customer)) == 2
    assert not any(c[2] == failed.stripe_id for c in world.credits(customer))

    # A working card; the retry (3 days later) pays it: active again, and credited once.
    world.set_card(customer, "pm_card_visa")
    world.advance(world.now + 3 * DAY + HOUR)
    world.deliver()
    assert world.row(sub_id).status == "active"
    assert [c[2] for c in world.credits(customer)][-1] == failed.stripe_id

    # Cancel at the period end, undo, and cancel again.
    end = world.period_end(sub_id)
    text = world.subs.preview_cancel(sub_id, at_period_end=True).text
    assert "not charged again" in text
    row_now = world.subs.cancel(sub_id, at_period_end=True)
    assert (row_now.cancel_at_period_end, row_now.cancels_at) == (True, end)
    assert world.subs.undo_cancel(sub_id).cancels_at is None
    world.subs.cancel(sub_id, at_period_end=True)
    world.advance(end + HOUR)
    world.deliver()  # customer.subscription.deleted: re-read, kept as canceled
    row = world.row(sub_id)
    assert (row.status, row.mrr, row.ended_at) == ("canceled", 0, end)
    figures = subscription_figures("usd", end - DAY, end + DAY, end - 2 * DAY, end - DAY)
    assert (figures.churned, figures.active) == (1, 0)
    actions = [
        a.action
        for a in AuditRecord.select()
        .where(AuditRecord.action.startswith("subscription.") & (AuditRecord.outcome == "ok"))
        .order_by(AuditRecord.id)
    ]
    assert actions == [
        "subscription.create", "subscription.create", "subscription.cancel_at_period_end",
        "subscription.undo_cancel", "subscription.cancel_at_period_end",
    ]  # fmt: skip
    history = world.subs.detail(sub_id).history
    texts = [h.text for h in history]
    assert "Created in Stripe" in texts
    assert any("Payment FAILED" in t for t in texts)
    assert "Canceled (ended)" in texts


def test_a_credit_plan_credits_each_paid_period_once_in_any_order(
    world: World, database: peewee.Database
) -> None:
    customer = world.customer()
    price = world.plan()
    sub_id = world.subs.create(SubscriptionDraft(customer, price)).stripe_id
    for _ in range(12):
        world.advance(world.period_end(sub_id) + 2 * HOUR)
    paid = [
        i for i in world.client.v1.invoices.list({"subscription": sub_id, "limit": 100}).data
        if i.status == "paid"
    ]  # fmt: skip
    assert len(paid) == 13  # the first period and 12 renewals
    # The customer is refunded one renewal: those credits come back out.
    refunded = paid[3]
    payment = world.client.v1.invoice_payments.list({"invoice": refunded.id}).data[0]
    intent = payment.payment.payment_intent
    world.client.v1.refunds.create({"payment_intent": str(intent)})

    # Every event three times, shuffled: a refund may come before its payment's events.
    events = world.events() * 3
    random.Random(18).shuffle(events)
    for event in events:
        world.pipeline.receive(event, Source.CATCH_UP)

    entries = world.credits(customer)
    purchases = [e for e in entries if e[0] == "purchase"]
    assert sorted(e[2] for e in purchases) == sorted(i.id for i in paid)  # once per invoice
    assert {e[1] for e in purchases} == {CREDITS}
    assert [e[:2] for e in entries if e[0] == "clawback"] == [("clawback", -CREDITS)]
    assert sum(e[1] for e in entries) == 12 * CREDITS
    # Replaying everything again changes nothing.
    for event in world.events():
        world.pipeline.receive(event, Source.CATCH_UP)
    assert len(world.credits(customer)) == len(entries)
    assert world.row(sub_id).status == "active"


def test_an_upgrade_is_charged_what_the_preview_said(world: World) -> None:
    customer = world.customer()
    small, big = world.plan(1000), world.plan(3000, credits=500)
    sub_id = world.subs.create(SubscriptionDraft(customer, small)).stripe_id
    world.advance(START + 10 * DAY)
    world.deliver()
    preview = world.subs.preview_change(sub_id, price_id=big, proration="always")
    assert preview.due_now > 0
    assert preview.text.startswith("The customer is charged $")
    assert preview.text.endswith("now for the upgrade.")
    changed = world.subs.update(
        sub_id, price_id=big, proration="always", proration_date=preview.proration_date
    )
    assert changed.amount == 3000
    world.deliver()
    latest = world.client.v1.invoices.list({"subscription": sub_id, "limit": 1}).data[0]
    assert latest.billing_reason == "subscription_update"
    assert latest.amount_paid == preview.due_now  # to the cent
    # The proration invoice is no period bought: only the first invoice credited.
    assert [c[:2] for c in world.credits(customer)] == [("purchase", CREDITS)]

    quantity = world.subs.preview_change(sub_id, quantity=2, proration="none")
    assert quantity.text.startswith("No proration")
    assert world.subs.update(sub_id, quantity=2, proration="none").amount == 6000


def test_pause_and_resume_collection(world: World) -> None:
    customer = world.customer()
    sub_id = world.subs.create(SubscriptionDraft(customer, world.plan())).stripe_id
    assert "voided" in world.subs.preview_pause(sub_id).text
    assert world.subs.pause(sub_id).pause_collection == "void"
    world.advance(world.period_end(sub_id) + 2 * HOUR)
    world.deliver()
    statuses = [i.status for i in world.client.v1.invoices.list({"subscription": sub_id}).data]
    assert statuses[0] == "void"  # the renewal while paused: nothing to pay
    assert len(world.credits(customer)) == 1  # and nothing credited for it
    resumed = world.subs.resume(sub_id)
    assert (resumed.pause_collection, resumed.status) == ("", "active")


def test_a_declined_first_payment_creates_nothing(world: World) -> None:
    customer = world.customer("pm_card_chargeCustomerFail")
    price = world.plan()
    with pytest.raises(PaymentDeclined):
        world.subs.create(SubscriptionDraft(customer, price))
    assert world.client.v1.subscriptions.list({"customer": customer, "status": "all"}).data == []
    refused = AuditRecord.get(AuditRecord.action == "subscription.create")
    assert refused.outcome == "refused"


def test_sync_pulls_every_subscription_and_a_second_pull_writes_nothing(world: World) -> None:
    customer = world.customer()
    price = world.plan()
    kept = world.subs.create(SubscriptionDraft(customer, price)).stripe_id
    ended = world.client.v1.subscriptions.create(
        {"customer": customer, "items": [{"price": price}]}
    ).id
    world.client.v1.subscriptions.cancel(ended)
    Subscription.delete().execute()  # as if nothing had been mirrored yet
    first = world.sync.pull(SyncTarget.SUBSCRIPTIONS)
    assert first.seen == {"subscriptions": 2}  # the canceled one too (status=all)
    statuses = {s.stripe_id: s.status for s in Subscription.select()}
    assert statuses == {kept: "active", ended: "canceled"}
    assert world.sync.pull(SyncTarget.SUBSCRIPTIONS).changed == {"subscriptions": 0}


def test_a_database_from_before_migration_12_is_filled_by_the_next_sync(
    world: World, database: peewee.Database
) -> None:
    customer = world.customer()
    sub_id = world.subs.create(SubscriptionDraft(customer, world.plan())).stripe_id
    # What migration 12 leaves behind: old rows with an emptied copy and no new columns.
    Subscription.update(raw={}, amount=0, mrr=0, items=[], price_ids="").execute()
    assert world.sync.pull(SyncTarget.SUBSCRIPTIONS).changed == {"subscriptions": 1}
    row = world.row(sub_id)
    assert (row.amount, row.mrr, row.price_ids.split()) == (1000, 1000, [row.items[0]["price"]])


def test_advancing_the_clock_a_year_renews_it_twelve_times(world: World) -> None:
    customer = world.customer()
    sub_id = world.subs.create(SubscriptionDraft(customer, world.plan())).stripe_id
    steps: list[tuple[int, int]] = []
    row = world.subs.advance_clock(sub_id, 370, on_step=lambda d, t: steps.append((d, t)),
                                   poll_s=0.01)  # fmt: skip
    assert steps[-1] == (370 * DAY, 370 * DAY)
    assert all(b[0] - a[0] <= 28 * DAY for a, b in itertools.pairwise(steps))
    assert row.status == "active"
    world.deliver()
    purchases = [c for c in world.credits(customer) if c[0] == "purchase"]
    assert len(purchases) == 13  # the first period and 12 renewals, each once
    audit = AuditRecord.get(AuditRecord.action == "subscription.advance_clock")
    assert (audit.outcome, audit.params["days"]) == ("ok", 370)


def test_no_clock_in_live_mode_and_none_without_one(
    world: World, database: peewee.Database, authority: Authority
) -> None:
    live = SubscriptionService(database, StripeGateway("sk_live_" + "x" * 24), authority)
    with pytest.raises(ValidationError, match="only with a test key"):
        live.advance_clock("sub_x", 30)
    plain = world.client.v1.customers.create({"email": "noclock@example.com",
                                              "payment_method": "pm_card_visa"})  # fmt: skip
    pm = world.client.v1.customers.payment_methods.list(plain.id).data[0].id
    world.client.v1.customers.update(plain.id, {"invoice_settings": {"default_payment_method": pm}})
    sub = world.client.v1.subscriptions.create(
        {"customer": plain.id, "items": [{"price": world.plan()}]}
    )
    with pytest.raises(ValidationError, match="not on a test clock"):
        world.subs.advance_clock(sub.id, 30)
    failed = AuditRecord.get(AuditRecord.action == "subscription.advance_clock")
    assert failed.outcome == "failed"
