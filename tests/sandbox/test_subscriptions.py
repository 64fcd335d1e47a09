"""Subscriptions on test clocks, through stripe-python: every state transition, renewals
that invoice and charge with test cards, retries, cancellations, and the events of each step
in the order the sandbox records them."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call

DAY = 86_400
HOUR = 3_600
JAN_1 = 1_767_225_600  # 2026-01-01T00:00:00Z
FEB_1 = JAN_1 + 31 * DAY
MAR_1 = FEB_1 + 28 * DAY
VISA = "4242424242424242"
# Stripe writes "1 (times sign) Pro (at $10.00 / month)".
TIMES = "\u00d7"
DECLINES_AFTER_ATTACH = "4000000000000341"
# Types the lifecycle assertions look at (payment intents and charges are left out).
BILLING_TYPES = (
    "customer.subscription.",
    "invoice.",
    "invoice_payment.",
    "invoiceitem.",
    "test_helpers.test_clock.",
)


class Billing:
    """A client, a test clock at Jan 1 2026 and one customer on it."""

    def __init__(self, sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.client = stripe.StripeClient(
            "sk_test_subscriptions", base_addresses={"api": sandbox.url}, max_network_retries=0
        )
        self.clock = self.client.v1.test_helpers.test_clocks.create(
            {"frozen_time": JAN_1, "name": "lifecycle"}
        )
        self.customer = self.client.v1.customers.create(
            {"email": "ada@example.com", "name": "Ada", "test_clock": self.clock.id}
        )
        self.seen = 0

    def card(self, number: str, customer: str | None = None) -> str:
        """Attach a test card and make it the customer's default payment method."""
        status, _, pm = call(
            self.sandbox.url,
            "POST",
            f"/_sandbox/customers/{customer or self.customer.id}/attach_card",
            f"card={number}",
            key=None,
        )
        assert status == 200, pm
        return str(pm["id"])

    def price(self, amount: int, interval: str = "month", count: int = 1, **extra: Any) -> str:
        price = self.client.v1.prices.create(
            {
                "currency": "usd",
                "unit_amount": amount,
                "recurring": {"interval": interval, "interval_count": count},
                "product_data": {"name": extra.pop("name", "Pro")},
                **extra,
            }
        )
        return price.id

    def advance(self, to: int) -> stripe.test_helpers.TestClock:
        answer = self.client.v1.test_helpers.test_clocks.advance(self.clock.id, {"frozen_time": to})
        assert answer.status == "advancing"
        assert answer.status_details.advancing is not None
        assert answer.status_details.advancing.target_frozen_time == to
        clock = self.client.v1.test_helpers.test_clocks.retrieve(self.clock.id)
        assert (clock.status, clock.frozen_time) == ("ready", to)
        return clock

    def new_events(self) -> list[stripe.Event]:
        """Events recorded since the last call, oldest first."""
        everything = list(self.client.v1.events.list({"limit": 100}).auto_paging_iter())
        everything.reverse()
        fresh = everything[self.seen :]
        self.seen = len(everything)
        return fresh

    def new_types(self) -> list[str]:
        return [e.type for e in self.new_events() if e.type.startswith(BILLING_TYPES)]

    def sub(self, sub_id: str) -> stripe.Subscription:
        return self.client.v1.subscriptions.retrieve(sub_id)

    def invoice(self, invoice_id: object) -> stripe.Invoice:
        assert isinstance(invoice_id, str)
        return self.client.v1.invoices.retrieve(invoice_id)


@pytest.fixture
def billing(sandbox: SandboxServer) -> Billing:
    return Billing(sandbox)


def _period(sub: stripe.Subscription) -> tuple[int, int]:
    item = sub["items"].data[0]
    return item.current_period_start, item.current_period_end


def test_trial_renewals_failure_recovery_and_cancel_at_period_end(billing: Billing) -> None:
    """trial → active → renewal paid → renewal failed → past_due → paid → cancel at period
    end → canceled, with the events of each step in order."""
    billing.card(VISA)
    price = billing.price(1000)
    billing.new_events()
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": price}], "trial_period_days": 7}
    )
    trial_end = JAN_1 + 7 * DAY
    assert (sub.status, sub.trial_start, sub.trial_end) == ("trialing", JAN_1, trial_end)
    assert _period(sub) == (JAN_1, trial_end)
    assert sub.test_clock == billing.clock.id
    assert sub.billing_cycle_anchor == trial_end
    first = billing.invoice(sub.latest_invoice)
    assert (first.status, first.total, first.billing_reason) == ("paid", 0, "subscription_create")
    assert first.lines.data[0].description == "Trial period for Pro"
    assert billing.new_types() == [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]

    # The trial ends: active at once, its invoice finalized and charged an hour later.
    billing.advance(trial_end + 2 * HOUR)
    sub = billing.sub(sub.id)
    assert sub.status == "active"
    feb_8 = trial_end + 31 * DAY
    assert _period(sub) == (trial_end, feb_8)
    assert sub.billing_cycle_anchor == trial_end
    renewal = billing.invoice(sub.latest_invoice)
    assert (renewal.status, renewal.amount_paid, renewal.billing_reason) == (
        "paid",
        1000,
        "subscription_cycle",
    )
    assert renewal.parent is not None
    assert renewal.parent.subscription_details is not None
    assert renewal.parent.subscription_details.subscription == sub.id
    assert renewal.status_transitions.finalized_at == trial_end + HOUR
    line = renewal.lines.data[0]
    assert line.description == f"1 {TIMES} Pro (at $10.00 / month)"
    assert (line.period.start, line.period.end) == (trial_end, feb_8)
    assert line.parent is not None
    assert line.parent.subscription_item_details is not None
    assert line.parent.subscription_item_details.subscription_item == sub["items"].data[0].id
    assert billing.new_types() == [
        "test_helpers.test_clock.advancing",
        "customer.subscription.trial_will_end",
        "invoice.created",
        "customer.subscription.updated",
        "invoice.finalized",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "test_helpers.test_clock.ready",
    ]

    # A renewal paid.
    billing.advance(feb_8 + 2 * HOUR)
    sub = billing.sub(sub.id)
    mar_8 = feb_8 + 28 * DAY
    assert (sub.status, _period(sub)) == ("active", (feb_8, mar_8))
    assert billing.invoice(sub.latest_invoice).status == "paid"
    assert billing.new_types() == [
        "test_helpers.test_clock.advancing",
        "invoice.created",
        "customer.subscription.updated",
        "invoice.finalized",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "test_helpers.test_clock.ready",
    ]

    # A renewal whose card declines: past_due, the invoice stays open with a retry planned.
    billing.card(DECLINES_AFTER_ATTACH)
    billing.new_events()
    billing.advance(mar_8 + 2 * HOUR)
    sub = billing.sub(sub.id)
    assert sub.status == "past_due"
    failed = billing.invoice(sub.latest_invoice)
    assert (failed.status, failed.attempt_count, failed.amount_remaining) == ("open", 1, 1000)
    assert failed.next_payment_attempt == mar_8 + HOUR + 3 * DAY
    assert billing.new_types() == [
        "test_helpers.test_clock.advancing",
        "invoice.created",
        "customer.subscription.updated",
        "invoice.finalized",
        "invoice.payment_failed",
        "customer.subscription.updated",
        "test_helpers.test_clock.ready",
    ]
    events = [e for e in billing.client.v1.events.list({"limit": 3}).data]
    assert events[1].type == "customer.subscription.updated"
    assert events[1].data.previous_attributes is not None
    assert events[1].data.previous_attributes.to_dict() == {"status": "active"}

    # A good card again: the retry three days later pays and the subscription is active.
    billing.card(VISA)
    billing.new_events()
    billing.advance(mar_8 + 4 * DAY)
    sub = billing.sub(sub.id)
    assert sub.status == "active"
    paid = billing.invoice(failed.id)
    assert (paid.status, paid.attempt_count, paid.next_payment_attempt) == ("paid", 2, None)
    assert billing.new_types() == [
        "test_helpers.test_clock.advancing",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "customer.subscription.updated",
        "test_helpers.test_clock.ready",
    ]

    # Cancel at period end: scheduled, then canceled when the period ends, no new invoice.
    sub = billing.client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    apr_8 = mar_8 + 31 * DAY
    assert (sub.status, sub.cancel_at_period_end, sub.cancel_at) == ("active", True, apr_8)
    assert sub.canceled_at == mar_8 + 4 * DAY
    assert billing.new_types() == ["customer.subscription.updated"]
    billing.advance(apr_8 + HOUR)
    sub = billing.sub(sub.id)
    assert (sub.status, sub.ended_at) == ("canceled", apr_8)
    assert sub.cancellation_details is not None
    assert sub.cancellation_details.reason == "cancellation_requested"
    assert sub.latest_invoice == failed.id
    assert billing.new_types() == [
        "test_helpers.test_clock.advancing",
        "customer.subscription.deleted",
        "test_helpers.test_clock.ready",
    ]
    listed = billing.client.v1.invoices.list({"subscription": sub.id, "limit": 100})
    assert len(listed.data) == 4  # trial, first paid period, February, March


@pytest.mark.parametrize(("setting", "final"), [("cancel", "canceled"), ("unpaid", "unpaid")])
def test_every_retry_failing_ends_per_setting(
    billing: Billing, sandbox: SandboxServer, setting: str, final: str
) -> None:
    status, _, body = call(
        sandbox.url,
        "POST",
        "/_sandbox/billing_settings",
        f"after_failed_payments={setting}",
        key=None,
    )
    assert (status, body["after_failed_payments"]) == (200, setting)
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(500)}]}
    )
    assert sub.status == "active"
    billing.card(DECLINES_AFTER_ATTACH)
    billing.advance(FEB_1 + 2 * HOUR)
    sub = billing.sub(sub.id)
    invoice = billing.invoice(sub.latest_invoice)
    assert (sub.status, invoice.attempt_count) == ("past_due", 1)
    # Retries 3, 5 and 7 days after the first attempt, all declined.
    attempts = []
    for days in (3, 5, 7):
        billing.advance(FEB_1 + HOUR + days * DAY)
        invoice = billing.invoice(invoice.id)
        attempts.append((invoice.attempt_count, invoice.next_payment_attempt))
    assert attempts == [
        (2, FEB_1 + HOUR + 5 * DAY),
        (3, FEB_1 + HOUR + 7 * DAY),
        (4, None),
    ]
    sub = billing.sub(sub.id)
    assert sub.status == final
    assert invoice.status == "open"
    if final == "canceled":
        assert sub.cancellation_details is not None
        assert sub.cancellation_details.reason == "payment_failed"
        return
    # Unpaid: the next renewal's invoice stays a draft, and paying the open one reactivates.
    billing.advance(MAR_1 + 2 * HOUR)
    sub = billing.sub(sub.id)
    draft = billing.invoice(sub.latest_invoice)
    assert (draft.status, draft.auto_advance) == ("draft", False)
    billing.card(VISA)
    billing.client.v1.invoices.pay(invoice.id)
    assert billing.sub(sub.id).status == "active"


def test_default_incomplete_then_paid_and_incomplete_expired(billing: Billing) -> None:
    price = billing.price(2000)
    sub = billing.client.v1.subscriptions.create(
        {
            "customer": billing.customer.id,
            "items": [{"price": price}],
            "payment_behavior": "default_incomplete",
        }
    )
    assert sub.status == "incomplete"
    invoice = billing.invoice(sub.latest_invoice)
    assert (invoice.status, invoice.attempt_count) == ("open", 0)
    pm = billing.card(VISA)
    billing.client.v1.invoices.pay(invoice.id, {"payment_method": pm})
    assert billing.sub(sub.id).status == "active"

    other = billing.client.v1.subscriptions.create(
        {
            "customer": billing.customer.id,
            "items": [{"price": billing.price(700, name="Other")}],
            "payment_behavior": "default_incomplete",
        }
    )
    billing.new_events()
    billing.advance(JAN_1 + 23 * HOUR)
    other = billing.sub(other.id)
    assert (other.status, other.ended_at) == ("incomplete_expired", JAN_1 + 23 * HOUR)
    assert billing.invoice(other.latest_invoice).status == "void"
    assert billing.new_types() == [
        "test_helpers.test_clock.advancing",
        "invoice.voided",
        "customer.subscription.updated",
        "test_helpers.test_clock.ready",
    ]
    # Ended subscriptions are left out of the default list.
    listed = billing.client.v1.subscriptions.list({"customer": billing.customer.id})
    assert [s.id for s in listed.data] == [sub.id]
    ended = billing.client.v1.subscriptions.list({"status": "ended"})
    assert [s.id for s in ended.data] == [other.id]


def test_allow_incomplete_decline_leaves_incomplete(billing: Billing) -> None:
    billing.card(DECLINES_AFTER_ATTACH)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(900)}]}
    )
    assert sub.status == "incomplete"
    invoice = billing.invoice(sub.latest_invoice)
    assert (invoice.status, invoice.attempt_count, invoice.next_payment_attempt) == (
        "open",
        1,
        None,
    )


def test_error_if_incomplete_decline_creates_nothing(billing: Billing) -> None:
    billing.card(DECLINES_AFTER_ATTACH)
    price = billing.price(900)
    billing.new_events()
    with pytest.raises(stripe.CardError) as caught:
        billing.client.v1.subscriptions.create(
            {
                "customer": billing.customer.id,
                "items": [{"price": price}],
                "payment_behavior": "error_if_incomplete",
            }
        )
    assert caught.value.http_status == 402
    assert caught.value.code == "card_declined"
    assert billing.client.v1.subscriptions.list({"status": "all"}).data == []
    assert billing.new_events() == []


def test_send_invoice_goes_past_due_after_the_due_date(billing: Billing) -> None:
    sub = billing.client.v1.subscriptions.create(
        {
            "customer": billing.customer.id,
            "items": [{"price": billing.price(4000)}],
            "collection_method": "send_invoice",
            "days_until_due": 14,
        }
    )
    assert (sub.status, sub.days_until_due) == ("active", 14)
    first = billing.invoice(sub.latest_invoice)
    assert (first.status, first.due_date, first.collection_method) == (
        "open",
        JAN_1 + 14 * DAY,
        "send_invoice",
    )
    billing.new_events()
    billing.advance(JAN_1 + 15 * DAY)
    assert billing.sub(sub.id).status == "past_due"
    assert billing.new_types() == [
        "test_helpers.test_clock.advancing",
        "invoice.overdue",
        "customer.subscription.updated",
        "test_helpers.test_clock.ready",
    ]
    billing.client.v1.invoices.pay(first.id, {"paid_out_of_band": True})
    assert billing.sub(sub.id).status == "active"


def test_pause_collection_voids_renewals_until_resumed(billing: Billing) -> None:
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(1500)}]}
    )
    sub = billing.client.v1.subscriptions.update(sub.id, {"pause_collection": {"behavior": "void"}})
    assert sub.pause_collection is not None
    assert sub.pause_collection.behavior == "void"
    billing.advance(FEB_1 + 2 * HOUR)
    sub = billing.sub(sub.id)
    assert sub.status == "active"
    assert billing.invoice(sub.latest_invoice).status == "void"
    sub = billing.client.v1.subscriptions.update(sub.id, {"pause_collection": ""})
    assert sub.pause_collection is None
    billing.advance(MAR_1 + 2 * HOUR)
    assert billing.invoice(billing.sub(sub.id).latest_invoice).status == "paid"


def test_trial_without_payment_method_pauses_then_resume_charges(billing: Billing) -> None:
    sub = billing.client.v1.subscriptions.create(
        {
            "customer": billing.customer.id,
            "items": [{"price": billing.price(1200)}],
            "trial_period_days": 2,
            "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        }
    )
    assert sub.status == "trialing"
    # A trial shorter than three days announces its end at once.
    types = billing.new_types()
    assert types[-1] == "customer.subscription.trial_will_end"
    billing.advance(JAN_1 + 3 * DAY)
    sub = billing.sub(sub.id)
    assert sub.status == "paused"
    with pytest.raises(stripe.InvalidRequestError):
        billing.client.v1.subscriptions.resume(
            billing.sub(sub.id).id, {"proration_behavior": "bogus"}
        )
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.resume(sub.id)
    assert sub.status == "active"
    assert _period(sub) == (JAN_1 + 3 * DAY, JAN_1 + 3 * DAY + 31 * DAY)
    invoice = billing.invoice(sub.latest_invoice)
    assert (invoice.status, invoice.amount_paid) == ("paid", 1200)


def test_cancel_now_with_proration_credit_and_final_invoice(billing: Billing) -> None:
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(3100)}]}
    )
    billing.advance(JAN_1 + 10 * DAY)
    billing.new_events()
    sub = billing.client.v1.subscriptions.cancel(
        sub.id,
        {
            "prorate": True,
            "invoice_now": True,
            "cancellation_details": {"feedback": "too_expensive"},
        },
    )
    assert (sub.status, sub.canceled_at, sub.ended_at) == (
        "canceled",
        JAN_1 + 10 * DAY,
        JAN_1 + 10 * DAY,
    )
    assert sub.cancellation_details is not None
    assert sub.cancellation_details.feedback == "too_expensive"
    # 21 of 31 days unused of 31.00: a credit of 21.00, on the customer's balance.
    final = billing.invoice(sub.latest_invoice)
    assert (final.total, final.amount_due, final.status) == (-2100, 0, "paid")
    assert final.lines.data[0].description == f"Unused time on 1 {TIMES} Pro after 11 Jan 2026"
    customer = billing.client.v1.customers.retrieve(billing.customer.id)
    assert customer.balance == -2100
    assert billing.new_types()[:2] == ["invoiceitem.created", "customer.subscription.deleted"]
    with pytest.raises(stripe.InvalidRequestError):
        billing.client.v1.subscriptions.cancel(sub.id)


def test_customer_lists_and_search(billing: Billing) -> None:
    billing.card(VISA)
    price = billing.price(1000)
    sub = billing.client.v1.subscriptions.create(
        {
            "customer": billing.customer.id,
            "items": [{"price": price, "quantity": 2}],
            "metadata": {"plan": "pro"},
        }
    )
    trial = billing.client.v1.subscriptions.create(
        {
            "customer": billing.customer.id,
            "items": [{"price": billing.price(10, name="Tiny")}],
            "trial_period_days": 30,
        }
    )
    customer = billing.client.v1.customers.retrieve(
        billing.customer.id, {"expand": ["subscriptions"]}
    )
    assert customer.subscriptions is not None
    assert {s.id for s in customer.subscriptions.data} == {sub.id, trial.id}
    assert [s.id for s in billing.client.v1.subscriptions.list({"price": price}).data] == [sub.id]
    assert [s.id for s in billing.client.v1.subscriptions.list({"status": "trialing"}).data] == [
        trial.id
    ]
    found = billing.client.v1.subscriptions.search(
        {"query": "status:'active' AND metadata['plan']:'pro'"}
    )
    assert [s.id for s in found.data] == [sub.id]
    expanded = billing.client.v1.subscriptions.retrieve(
        sub.id, {"expand": ["customer", "latest_invoice", "items.data.price.product"]}
    )
    assert expanded.customer.id == billing.customer.id
    assert expanded.latest_invoice.amount_paid == 2000
    assert expanded["items"].data[0].price.product.name == "Pro"
    assert expanded["items"].data[0].plan.amount == 1000


def test_subscription_without_a_clock_renews_on_the_sandbox_clock(sandbox: SandboxServer) -> None:
    client = stripe.StripeClient("sk_test_wall", base_addresses={"api": sandbox.url})
    customer = client.v1.customers.create({"email": "wall@example.com"})
    status, _, _ = call(
        sandbox.url,
        "POST",
        f"/_sandbox/customers/{customer.id}/attach_card",
        f"card={VISA}",
        key=None,
    )
    assert status == 200
    price = client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 300,
            "recurring": {"interval": "day"},
            "product": client.v1.products.create({"name": "Daily"}).id,
        }
    )
    sub = client.v1.subscriptions.create({"customer": customer.id, "items": [{"price": price.id}]})
    assert sub.test_clock is None
    status, _, _ = call(
        sandbox.url, "POST", "/_sandbox/clock/advance", f"seconds={DAY + 2 * HOUR}", key=None
    )
    assert status == 200
    invoices = client.v1.invoices.list({"subscription": sub.id}).data
    assert [(i.billing_reason, i.status) for i in invoices] == [
        ("subscription_cycle", "paid"),
        ("subscription_create", "paid"),
    ]


def test_idempotent_create_replays(billing: Billing) -> None:
    billing.card(VISA)
    price = billing.price(1000)
    params: stripe.params.SubscriptionCreateParams = {
        "customer": billing.customer.id,
        "items": [{"price": price}],
    }
    first = billing.client.v1.subscriptions.create(params, {"idempotency_key": "sub-once"})
    again = billing.client.v1.subscriptions.create(params, {"idempotency_key": "sub-once"})
    assert first.id == again.id
    assert len(billing.client.v1.subscriptions.list().data) == 1


def test_demo_has_subscriptions_in_every_state_on_a_clock(sandbox: SandboxServer) -> None:
    sandbox.seed_demo()
    client = stripe.StripeClient("sk_test_demo", base_addresses={"api": sandbox.url})
    subs = list(client.v1.subscriptions.list({"status": "all", "limit": 100}).auto_paging_iter())
    assert sorted(s.status for s in subs) == [
        "active",
        "active",
        "active",
        "active",
        "canceled",
        "incomplete",
        "past_due",
        "paused",
        "trialing",
    ]
    (clock,) = client.v1.test_helpers.test_clocks.list().data
    assert (clock.name, clock.status) == ("Demo clock", "ready")
    assert {s.test_clock for s in subs} == {clock.id}
    assert sum(1 for s in subs if s.cancel_at_period_end) == 1
    (credit_plan,) = client.v1.prices.list({"lookup_keys": ["plan_credit_plan"]}).data
    product = client.v1.products.retrieve(str(credit_plan.product))
    assert product.metadata["credits"] == "1000"
    assert credit_plan.recurring is not None
    paid = client.v1.invoices.list({"status": "paid", "limit": 100}).data
    credit_sub = next(s for s in subs if s["items"].data[0].price.id == credit_plan.id)
    renewals = [
        i
        for i in paid
        if i.parent is not None
        and i.parent.subscription_details is not None
        and i.parent.subscription_details.subscription == credit_sub.id
    ]
    assert sorted(i.billing_reason for i in renewals) == [
        "subscription_create",
        "subscription_cycle",
        "subscription_cycle",
    ]
