"""Test clocks: create, read, advance, delete, Stripe's limits, and the shapes of clocks,
subscriptions and subscription items against Stripe's published fixtures."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.test_subscriptions import DAY, JAN_1, VISA, Billing

# Top-level keys of `subscription`, `subscription_item` and `test_helpers.test_clock` in
# fixtures3.json (github.com/stripe/openapi).
FIXTURE_KEYS: dict[str, frozenset[str]] = {
    "subscription": frozenset(
        [
            "application",
            "application_fee_percent",
            "automatic_tax",
            "billing_cycle_anchor",
            "billing_cycle_anchor_config",
            "billing_mode",
            "billing_schedules",
            "billing_thresholds",
            "cancel_at",
            "cancel_at_period_end",
            "canceled_at",
            "cancellation_details",
            "collection_method",
            "created",
            "currency",
            "customer",
            "customer_account",
            "days_until_due",
            "default_payment_method",
            "default_source",
            "default_tax_rates",
            "description",
            "discounts",
            "ended_at",
            "id",
            "invoice_settings",
            "items",
            "latest_invoice",
            "livemode",
            "managed_payments",
            "metadata",
            "next_pending_invoice_item_invoice",
            "object",
            "on_behalf_of",
            "pause_collection",
            "payment_settings",
            "pending_invoice_item_interval",
            "pending_setup_intent",
            "pending_update",
            "schedule",
            "start_date",
            "status",
            "test_clock",
            "transfer_data",
            "trial_end",
            "trial_settings",
            "trial_start",
        ]
    ),
    "subscription_item": frozenset(
        [
            "billing_thresholds",
            "created",
            "current_period_end",
            "current_period_start",
            "discounts",
            "id",
            "metadata",
            "object",
            "plan",
            "price",
            "quantity",
            "subscription",
            "tax_rates",
        ]
    ),
    "test_helpers.test_clock": frozenset(
        [
            "created",
            "deletes_after",
            "frozen_time",
            "id",
            "livemode",
            "name",
            "object",
            "status",
            "status_details",
        ]
    ),
}
# Fields of the pinned stripe-python 16.1.0 types that the fixture lacks.
NEWER_THAN_FIXTURE: dict[str, frozenset[str]] = {
    "subscription": frozenset({"presentment_details", "status_details"}),
    "subscription_item": frozenset({"billed_until", "current_trial"}),
}
CLASSES = {
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "test_helpers.test_clock": stripe.test_helpers.TestClock,
}


@pytest.fixture
def billing(sandbox: SandboxServer) -> Billing:
    return Billing(sandbox)


def test_shapes_match_the_fixtures_and_pinned_types(billing: Billing) -> None:
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(1000)}]}
    )
    sent = {
        "subscription": set(sub.to_dict()),
        "subscription_item": set(sub["items"].data[0].to_dict()),
        "test_helpers.test_clock": set(billing.clock.to_dict()),
    }
    for kind, keys in FIXTURE_KEYS.items():
        expected = keys | NEWER_THAN_FIXTURE.get(kind, frozenset())
        assert sorted(sent[kind] - expected) == [], kind
        assert sorted(expected - sent[kind]) == [], kind
        annotations: dict[str, object] = {}
        for klass in reversed(CLASSES[kind].__mro__):
            annotations.update(getattr(klass, "__annotations__", {}))
        assert NEWER_THAN_FIXTURE.get(kind, frozenset()) <= set(annotations)
    # Since API 2025-03-31 the period is on the items only.
    assert "current_period_end" not in sent["subscription"]
    assert sub["items"].url == f"/v1/subscription_items?subscription={sub.id}"


def test_create_read_list_and_customers_live_at_the_clock(billing: Billing) -> None:
    clocks = billing.client.v1.test_helpers.test_clocks
    clock = billing.clock
    assert (clock.status, clock.frozen_time, clock.name) == ("ready", JAN_1, "lifecycle")
    assert clock.deletes_after == clock.created + 30 * DAY
    assert billing.customer.test_clock == clock.id
    assert billing.customer.created == JAN_1
    other = clocks.create({"frozen_time": JAN_1 + DAY})
    assert [c.id for c in clocks.list().data] == [other.id, clock.id]
    assert clocks.retrieve(clock.id).id == clock.id
    listed = billing.client.v1.customers.list({"test_clock": clock.id})
    assert [c.id for c in listed.data] == [billing.customer.id]
    expanded = billing.client.v1.customers.retrieve(
        billing.customer.id,
        {
            "expand": [
                "test_clock",
            ]
        },
    )
    assert expanded.test_clock.frozen_time == JAN_1
    # No subscriptions: any distance forward.
    assert billing.advance(JAN_1 + 400 * DAY).frozen_time == JAN_1 + 400 * DAY
    types = [e.type for e in billing.client.v1.events.list({"limit": 3}).data]
    assert types == [
        "test_helpers.test_clock.ready",
        "test_helpers.test_clock.advancing",
        "test_helpers.test_clock.created",
    ]


def test_refusals(billing: Billing) -> None:
    clocks = billing.client.v1.test_helpers.test_clocks
    with pytest.raises(stripe.InvalidRequestError) as caught:
        clocks.advance(billing.clock.id, {"frozen_time": JAN_1})
    assert caught.value.param == "frozen_time"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        clocks.create({})
    assert caught.value.param == "frozen_time"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        clocks.retrieve("clock_nope")
    assert missing.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as caught:
        billing.client.v1.customers.create({"test_clock": "clock_nope"})
    assert (caught.value.param, caught.value.code) == ("test_clock", "resource_missing")
    # Three customers per clock.
    for n in range(2):
        billing.client.v1.customers.create(
            {"email": f"c{n}@example.com", "test_clock": billing.clock.id}
        )
    with pytest.raises(stripe.InvalidRequestError) as caught:
        billing.client.v1.customers.create({"test_clock": billing.clock.id})
    assert caught.value.param == "test_clock"
    # Three subscriptions per customer on a clock.
    billing.card(VISA)
    for n in range(3):
        billing.client.v1.subscriptions.create(
            {
                "customer": billing.customer.id,
                "items": [{"price": billing.price(100, name=f"P{n}")}],
            }
        )
    with pytest.raises(stripe.InvalidRequestError):
        billing.client.v1.subscriptions.create(
            {"customer": billing.customer.id, "items": [{"price": billing.price(100)}]}
        )
    # At most two intervals of the shortest subscription interval (here a month) at once.
    with pytest.raises(stripe.InvalidRequestError) as caught:
        clocks.advance(billing.clock.id, {"frozen_time": JAN_1 + 60 * DAY})
    assert caught.value.param == "frozen_time"
    assert clocks.retrieve(billing.clock.id).frozen_time == JAN_1
    billing.advance(JAN_1 + 59 * DAY)


def test_delete_removes_customers_and_subscriptions(billing: Billing) -> None:
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(1000)}]}
    )
    billing.new_events()
    deleted = billing.client.v1.test_helpers.test_clocks.delete(billing.clock.id)
    assert deleted.deleted is True
    assert billing.new_types() == [
        "customer.subscription.deleted",
        "test_helpers.test_clock.deleted",
    ]
    assert billing.client.v1.customers.retrieve(billing.customer.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        billing.client.v1.subscriptions.retrieve(sub.id)
    assert billing.client.v1.test_helpers.test_clocks.list().data == []


def test_deleting_a_customer_cancels_its_subscriptions(billing: Billing) -> None:
    billing.card(VISA)
    sub = billing.client.v1.subscriptions.create(
        {"customer": billing.customer.id, "items": [{"price": billing.price(1000)}]}
    )
    billing.new_events()
    billing.client.v1.customers.delete(billing.customer.id)
    assert billing.new_types() == [
        "customer.subscription.deleted",
    ]
    ended = billing.client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", JAN_1)
