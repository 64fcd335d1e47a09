"""v2 thin events: /v2/core/events in Stripe's v2 shape, and thin delivery through `listen`."""

from __future__ import annotations

import json
import re

import pytest
import stripe

from stripe_sandbox import SandboxServer
from stripe_sandbox.listen import signing_secret
from tests.sandbox.raw_http import call, fetch
from tests.sandbox.test_events_webhooks import _Receiver
from tests.sandbox.test_listen import KEY, _args, _Running, _wait_for

ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _dispute(client: stripe.StripeClient, sandbox: SandboxServer) -> stripe.Dispute:
    customer = client.v1.customers.create({"email": "thin@example.com"})
    session = client.v1.checkout.sessions.create(
        {
            "customer": customer.id,
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 1200,
                        "product_data": {"name": "Credits"},
                    },
                    "quantity": 1,
                }
            ],
        }
    )
    status, _, _ = fetch(
        f"{sandbox.url}/_sandbox/checkout/{session.id}", "POST", {"card": "4000000000000259"}
    )
    assert status == 200
    return client.v1.disputes.list().data[0]


def test_dispute_records_a_thin_event_in_v2_shape(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    dispute = _dispute(stripe_client, sandbox)
    snapshot = stripe_client.v1.events.list({"type": "charge.dispute.created"}).data[0]
    [thin] = stripe_client.v2.core.events.list({"object_id": dispute.id}).data
    assert isinstance(thin, stripe.events.V1ChargeDisputeCreatedEvent)
    assert thin.id.startswith("evt_test_")
    assert thin.object == "v2.core.event"
    assert thin.type == "v1.charge.dispute.created"
    assert ISO_MILLIS.match(thin.created)
    assert thin.livemode is False
    assert thin.context is None
    assert thin.reason is None
    assert thin.snapshot_event == snapshot.id
    assert thin.related_object.id == dispute.id
    assert thin.related_object.type == "dispute"
    assert thin.related_object.url == f"/v1/disputes/{dispute.id}"
    got = stripe_client.v2.core.events.retrieve(thin.id)
    assert got.id == thin.id
    related = got.fetch_related_object()
    assert isinstance(related, stripe.Dispute)
    assert related.id == dispute.id


def test_list_filters_pages_and_errors(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    first = _dispute(stripe_client, sandbox)
    second = _dispute(stripe_client, sandbox)
    everything = stripe_client.v2.core.events.list()
    assert [e.related_object.id for e in everything.data] == [second.id, first.id]
    assert stripe_client.v2.core.events.list({"object_id": "du_other"}).data == []
    assert stripe_client.v2.core.events.list({"types": ["v1.customer.created"]}).data == []
    page = stripe_client.v2.core.events.list({"limit": 1})
    assert page.next_page_url is not None
    walked = [e.id for e in page.auto_paging_iter()]
    assert walked == [e.id for e in everything.data]
    later = stripe_client.v2.core.events.list({"created": {"gt": everything.data[1].created}})
    assert all(e.created > everything.data[1].created for e in later.data)

    status, _, body = call(sandbox.url, "GET", "/v2/core/events/evt_test_nope")
    assert status == 404
    assert set(body["error"]) == {"type", "code", "message"}
    assert body["error"]["code"] == "not_found"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v2.core.events.retrieve("evt_test_nope")
    status, _, body = call(sandbox.url, "GET", "/v2/core/events?bogus=1")
    assert status == 400
    assert body["error"]["param"] == "bogus"
    status, _, body = call(sandbox.url, "GET", "/v2/core/events?created[gt]=yesterday")
    assert (status, body["error"]["param"]) == (400, "created[gt]")
    status, _, body = call(sandbox.url, "GET", "/v2/core/events?limit=101")
    assert (status, body["error"]["param"]) == (400, "limit")
    status, _, body = call(sandbox.url, "GET", "/v2/core/events", key=None)
    assert status == 401
    assert "request_log_url" not in body["error"]


def test_listen_forwards_the_thin_payload_parse_event_notification_accepts(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    receiver = _Receiver()
    thin_receiver = _Receiver()
    running = _Running(
        _args(
            sandbox,
            "--forward-to",
            receiver.url,
            "--events",
            "charge.dispute.created",
            "--thin-events",
            "v1.charge.dispute.created",
            "--forward-thin-to",
            thin_receiver.url,
        )
    )
    try:
        dispute = _dispute(stripe_client, sandbox)
        _wait_for(lambda: len(thin_receiver.received) == 1 and len(receiver.received) == 1)
    finally:
        assert running.close() == 0
        receiver.close()
        thin_receiver.close()
    body, signature = thin_receiver.received[0]
    payload = json.loads(body)
    assert set(payload) == {"id", "object", "type", "created", "livemode", "related_object"}
    secret = signing_secret(KEY)
    note = stripe_client.parse_event_notification(body, signature, secret)
    assert isinstance(note, stripe.events.V1ChargeDisputeCreatedEventNotification)
    assert note.related_object.id == dispute.id
    assert note.fetch_related_object().id == dispute.id
    assert note.fetch_event().snapshot_event is not None
    with pytest.raises(stripe.SignatureVerificationError):
        stripe_client.parse_event_notification(body, signature, "whsec_wrong")
    # The snapshot endpoint got the snapshot event, which parse_event_notification refuses.
    snapshot_body, snapshot_signature = receiver.received[0]
    assert stripe.Webhook.construct_event(snapshot_body.decode(), snapshot_signature, secret)
    with pytest.raises(ValueError, match="construct_event"):
        stripe_client.parse_event_notification(snapshot_body, snapshot_signature, secret)
