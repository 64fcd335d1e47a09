"""PaymentIntents, Charges and Refunds made by Checkout payments."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call


def _paid_intent(
    client: stripe.StripeClient,
    sandbox: SandboxServer,
    amount: int = 5000,
    card: str = "4242424242424242",
) -> stripe.PaymentIntent:
    customer = client.v1.customers.create({"email": "payer@example.com"})
    session = client.v1.checkout.sessions.create(
        {
            "customer": customer.id,
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": amount,
                        "product_data": {"name": "Credits"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://example.com/ok",
        }
    )
    status, _, answer = call(
        sandbox.url,
        "POST",
        f"/_sandbox/checkout/sessions/{session.id}/pay",
        f"card={card}",
        key=None,
    )
    assert status in (200, 402), answer
    intent_id = (
        answer["payment_intent"] if status == 200 else answer["error"]["payment_intent"]["id"]
    )
    return client.v1.payment_intents.retrieve(intent_id)


def test_intents_and_charges_retrieve_and_list(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    first = _paid_intent(stripe_client, sandbox)
    second = _paid_intent(stripe_client, sandbox, amount=700)
    assert first.id.startswith("pi_")
    assert first.client_secret is not None
    assert first.client_secret.startswith(f"{first.id}_secret_")
    assert first.capture_method == "automatic_async"
    assert first.payment_method_types == ["card", "us_bank_account"]
    assert isinstance(first.payment_method, str)
    assert first.payment_method.startswith("pm_")
    listed = stripe_client.v1.payment_intents.list()
    assert [p.id for p in listed.data] == [second.id, first.id]
    mine = stripe_client.v1.payment_intents.list({"customer": str(first.customer)})
    assert [p.id for p in mine.data] == [first.id]
    charge = stripe_client.v1.charges.retrieve(str(first.latest_charge))
    assert charge.amount == 5000
    assert charge.captured is True
    assert charge.amount_captured == 5000
    assert charge.payment_intent == first.id
    assert charge.billing_details.email == "payer@example.com"
    assert charge.outcome is not None
    assert charge.outcome.seller_message == "Payment complete."
    assert charge.receipt_url is not None
    assert [
        c.id for c in stripe_client.v1.charges.list({"customer": str(first.customer)}).data
    ] == [charge.id]
    expanded = stripe_client.v1.payment_intents.retrieve(
        first.id, {"expand": ["latest_charge", "customer"]}
    )
    assert isinstance(expanded.latest_charge, stripe.Charge)
    assert isinstance(expanded.customer, stripe.Customer)
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_intents.retrieve("pi_missing")
    assert excinfo.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.charges.retrieve("ch_missing")
    assert excinfo.value.http_status == 404


def test_full_refund(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent = _paid_intent(stripe_client, sandbox)
    last = stripe_client.v1.events.list({"limit": 1}).data[0].id
    refund = stripe_client.v1.refunds.create(
        {"payment_intent": intent.id, "reason": "requested_by_customer", "metadata": {"t": "1"}}
    )
    assert refund.id.startswith("re_")
    assert refund.amount == 5000
    assert refund.status == "succeeded"
    assert refund.charge == intent.latest_charge
    assert refund.payment_intent == intent.id
    assert refund.reason == "requested_by_customer"
    newer = stripe_client.v1.events.list({"ending_before": last}).data
    assert [e.type for e in reversed(newer)] == ["refund.created", "charge.refunded"]
    refunded_event = newer[0]
    assert refunded_event.data.previous_attributes is not None
    assert refunded_event.data.previous_attributes.to_dict() == {
        "amount_refunded": 0,
        "refunded": False,
    }
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge), {"expand": ["refunds"]})
    assert charge.refunded is True
    assert charge.amount_refunded == 5000
    assert charge.refunds is not None
    assert [r.id for r in charge.refunds.data] == [refund.id]
    # A PaymentIntent keeps its status after a refund.
    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create({"charge": str(intent.latest_charge)})
    assert excinfo.value.code == "charge_already_refunded"
    assert stripe_client.v1.refunds.retrieve(refund.id).amount == 5000


def test_partial_refunds(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent = _paid_intent(stripe_client, sandbox)
    charge_id = str(intent.latest_charge)
    first = stripe_client.v1.refunds.create({"charge": charge_id, "amount": 1500})
    assert stripe_client.v1.charges.retrieve(charge_id).refunded is False
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create({"charge": charge_id, "amount": 4000})
    assert excinfo.value.code == "amount_too_large"
    assert excinfo.value.param == "amount"
    rest = stripe_client.v1.refunds.create({"payment_intent": intent.id})
    assert rest.amount == 3500
    charge = stripe_client.v1.charges.retrieve(charge_id)
    assert charge.refunded is True
    assert charge.amount_refunded == 5000
    listed = stripe_client.v1.refunds.list({"charge": charge_id})
    assert [r.id for r in listed.data] == [rest.id, first.id]
    assert [r.id for r in stripe_client.v1.refunds.list({"payment_intent": intent.id}).data] == [
        rest.id,
        first.id,
    ]


def test_refund_errors(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    declined = _paid_intent(stripe_client, sandbox, card="4000000000000002")
    assert declined.status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create({"payment_intent": declined.id})
    assert excinfo.value.param == "payment_intent"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create({"charge": str(declined.latest_charge)})
    assert excinfo.value.param == "charge"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create({})
    assert excinfo.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.create({"charge": "ch_missing"})
    assert excinfo.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.refunds.retrieve("re_missing")
    assert excinfo.value.http_status == 404
    assert stripe_client.v1.refunds.list().data == []
    assert stripe_client.v1.events.list({"type": "refund.created"}).data == []


def test_refund_is_idempotent(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    intent = _paid_intent(stripe_client, sandbox)
    options: stripe.RequestOptions = {"idempotency_key": "refund-once"}
    first = stripe_client.v1.refunds.create({"payment_intent": intent.id, "amount": 100}, options)
    again = stripe_client.v1.refunds.create({"payment_intent": intent.id, "amount": 100}, options)
    assert again.id == first.id
    assert len(stripe_client.v1.refunds.list().data) == 1
    assert stripe_client.v1.charges.retrieve(str(intent.latest_charge)).amount_refunded == 100
