"""Disputes from Stripe's dispute test card: Checkout and invoice payments, evidence, close."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call, fetch

DISPUTE_CARD = "4000000000000259"


def _checkout(client: stripe.StripeClient, amount: int = 2500) -> stripe.checkout.Session:
    customer = client.v1.customers.create({"email": "fraud@example.com"})
    return client.v1.checkout.sessions.create(
        {
            "customer": customer.id,
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": amount,
                        "product_data": {"name": "100 credits"},
                    },
                    "quantity": 1,
                }
            ],
            "success_url": "https://example.com/ok",
        }
    )


def _disputed_topup(
    client: stripe.StripeClient, sandbox: SandboxServer, amount: int = 2500
) -> stripe.Dispute:
    """A Checkout top-up paid on the hosted page with the dispute card."""
    session = _checkout(client, amount)
    status, _, _ = fetch(
        f"{sandbox.url}/_sandbox/checkout/{session.id}",
        "POST",
        {"card": DISPUTE_CARD, "method": "card"},
    )
    assert status == 303
    paid = client.v1.checkout.sessions.retrieve(session.id)
    assert paid.payment_status == "paid"
    disputes = client.v1.disputes.list({"payment_intent": str(paid.payment_intent)})
    assert len(disputes.data) == 1
    return disputes.data[0]


def _types(client: stripe.StripeClient) -> list[str]:
    return [e.type for e in reversed(client.v1.events.list({"limit": 100}).data)]


def test_checkout_topup_with_dispute_card_is_disputed_as_fraudulent(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    dispute = _disputed_topup(stripe_client, sandbox, 2500)
    assert dispute.id.startswith("du_")
    assert dispute.status == "needs_response"
    assert dispute.reason == "fraudulent"
    assert dispute.amount == 2500
    assert dispute.currency == "usd"
    assert dispute.is_charge_refundable is False
    assert dispute.evidence.uncategorized_text is None
    assert dispute.evidence_details.has_evidence is False
    assert dispute.evidence_details.submission_count == 0
    assert dispute.evidence_details.due_by is not None
    assert dispute.evidence_details.due_by % 86_400 == 86_399
    assert dispute.payment_method_details is not None
    assert dispute.payment_method_details.type == "card"
    assert dispute.payment_method_details.card is not None
    assert dispute.payment_method_details.card.case_type == "chargeback"
    [withdrawal] = dispute.balance_transactions
    assert withdrawal.amount == -2500
    assert withdrawal.fee == 1500
    assert withdrawal.net == -4000
    assert withdrawal.type == "adjustment"
    charge = stripe_client.v1.charges.retrieve(str(dispute.charge))
    assert charge.disputed is True
    assert charge.status == "succeeded"
    assert charge.payment_intent == dispute.payment_intent
    # The dispute comes after the payment flow, as Stripe opens it afterwards.
    assert _types(stripe_client)[-4:] == [
        "payment_intent.succeeded",
        "checkout.session.completed",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]
    created = stripe_client.v1.events.list({"type": "charge.dispute.created"}).data[0]
    assert created.data.object["id"] == dispute.id
    assert created.data.object["balance_transactions"] == []
    assert created.request is not None
    assert created.request.id is None


def test_other_cards_open_no_dispute(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    session = _checkout(stripe_client)
    status, _, _ = call(
        sandbox.url,
        "POST",
        f"/_sandbox/checkout/sessions/{session.id}/pay",
        "card=4242424242424242",
        key=None,
    )
    assert status == 200
    assert stripe_client.v1.disputes.list().data == []


def test_invoice_paid_with_pm_card_create_dispute_is_disputed(
    stripe_client: stripe.StripeClient,
) -> None:
    customer = stripe_client.v1.customers.create({"email": "a@example.com"})
    invoice = stripe_client.v1.invoices.create({"customer": customer.id})
    stripe_client.v1.invoice_items.create(
        {"customer": customer.id, "invoice": str(invoice.id), "amount": 990, "currency": "usd"}
    )
    paid = stripe_client.v1.invoices.pay(
        str(invoice.id), {"payment_method": "pm_card_createDispute"}
    )
    assert paid.status == "paid"
    [dispute] = stripe_client.v1.disputes.list().data
    assert dispute.amount == 990
    assert _types(stripe_client)[-3:] == [
        "invoice.payment_succeeded",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
    ]


def test_list_filters_and_retrieve(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    first = _disputed_topup(stripe_client, sandbox, 1000)
    second = _disputed_topup(stripe_client, sandbox, 2000)
    assert [d.id for d in stripe_client.v1.disputes.list().data] == [second.id, first.id]
    assert [d.id for d in stripe_client.v1.disputes.list({"charge": str(first.charge)}).data] == [
        first.id
    ]
    page = stripe_client.v1.disputes.list({"limit": 1})
    assert page.has_more is True
    rest = stripe_client.v1.disputes.list({"limit": 1, "starting_after": page.data[0].id})
    assert [d.id for d in rest.data] == [first.id]
    assert stripe_client.v1.disputes.list({"created": {"lt": first.created}}).data == []
    got = stripe_client.v1.disputes.retrieve(first.id, {"expand": ["charge"]})
    assert isinstance(got.charge, stripe.Charge)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.disputes.retrieve("du_nope")
    assert missing.value.http_status == 404


def test_winning_evidence_wins(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    dispute = _disputed_topup(stripe_client, sandbox)
    won = stripe_client.v1.disputes.update(
        dispute.id,
        {"evidence": {"uncategorized_text": "winning_evidence"}, "metadata": {"case": "7"}},
    )
    assert won.status == "won"
    assert won.metadata.to_dict() == {"case": "7"}
    assert won.evidence_details.submission_count == 1
    assert won.evidence_details.has_evidence is True
    assert [t.amount for t in won.balance_transactions] == [-2500, 2500]
    assert _types(stripe_client)[-3:] == [
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    updated = stripe_client.v1.events.list({"type": "charge.dispute.updated"}).data[0]
    assert updated.data.object["status"] == "under_review"
    assert updated.data.previous_attributes is not None
    assert updated.data.previous_attributes["status"] == "needs_response"
    with pytest.raises(stripe.InvalidRequestError) as closed:
        stripe_client.v1.disputes.update(dispute.id, {"evidence": {"product_description": "x"}})
    assert closed.value.param == "evidence"


def test_losing_evidence_loses(stripe_client: stripe.StripeClient, sandbox: SandboxServer) -> None:
    dispute = _disputed_topup(stripe_client, sandbox)
    lost = stripe_client.v1.disputes.update(
        dispute.id, {"evidence": {"uncategorized_text": "losing_evidence"}}
    )
    assert lost.status == "lost"
    assert len(lost.balance_transactions) == 1
    assert _types(stripe_client)[-2:] == ["charge.dispute.updated", "charge.dispute.closed"]


def test_staged_evidence_waits_and_other_evidence_goes_under_review(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    dispute = _disputed_topup(stripe_client, sandbox)
    staged = stripe_client.v1.disputes.update(
        dispute.id,
        {"evidence": {"uncategorized_text": "winning_evidence"}, "submit": False},
    )
    assert staged.status == "needs_response"
    assert staged.evidence_details.has_evidence is True
    assert staged.evidence_details.submission_count == 0
    review = stripe_client.v1.disputes.update(
        dispute.id, {"evidence": {"uncategorized_text": "The customer used the credits."}}
    )
    assert review.status == "under_review"
    assert review.evidence_details.submission_method == "manual"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.close(dispute.id)


def test_close_accepts_the_dispute(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    dispute = _disputed_topup(stripe_client, sandbox)
    closed = stripe_client.v1.disputes.close(dispute.id)
    assert closed.status == "lost"
    assert _types(stripe_client)[-1] == "charge.dispute.closed"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.disputes.close(dispute.id)


def test_disputed_charge_cannot_be_refunded(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    dispute = _disputed_topup(stripe_client, sandbox)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.refunds.create({"charge": str(dispute.charge)})
    assert refused.value.code == "charge_disputed"


def test_bad_evidence_is_refused_naming_the_param(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    dispute = _disputed_topup(stripe_client, sandbox)
    cases = [
        ({"evidence": {"receipt": "file_nope"}}, "evidence[receipt]"),
        ({"evidence": {"uncategorized_text": "x" * 150_001}}, "evidence"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as bad:
            stripe_client.v1.disputes.update(dispute.id, params)  # type: ignore[arg-type]
        assert bad.value.param == param
    status, _, body = call(sandbox.url, "POST", f"/v1/disputes/{dispute.id}", "evidence[bogus]=1")
    assert status == 400
    assert body["error"]["param"] == "evidence[bogus]"
    assert stripe_client.v1.disputes.retrieve(dispute.id).status == "needs_response"


def test_webhook_endpoint_receives_dispute_events(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    # Delivered like every other event: the endpoint's enabled_events filter applies.
    stripe_client.v1.webhook_endpoints.create(
        {"url": "http://127.0.0.1:9/hook", "enabled_events": ["charge.dispute.created"]}
    )
    dispute = _disputed_topup(stripe_client, sandbox)
    created = stripe_client.v1.events.list({"type": "charge.dispute.created"}).data[0]
    assert created.data.object["id"] == dispute.id
    assert created.pending_webhooks == 1
    withdrawn = stripe_client.v1.events.list({"type": "charge.dispute.funds_withdrawn"}).data[0]
    assert withdrawn.pending_webhooks == 0
