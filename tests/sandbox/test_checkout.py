"""Checkout Sessions (mode=payment): creation rules, the hosted page, test cards, bank debits
that settle later, expiry, and the events each flow records, in Stripe's order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call, fetch
from tests.sandbox.test_events_webhooks import _Receiver

MakeSession = Callable[..., stripe.checkout.Session]


@pytest.fixture
def customer(stripe_client: stripe.StripeClient) -> stripe.Customer:
    return stripe_client.v1.customers.create({"name": "Ada Lovelace", "email": "ada@example.com"})


@pytest.fixture
def price(stripe_client: stripe.StripeClient) -> stripe.Price:
    return stripe_client.v1.prices.create(
        {"currency": "usd", "unit_amount": 4500, "product_data": {"name": "500 credits"}}
    )


@pytest.fixture
def make_session(
    stripe_client: stripe.StripeClient, customer: stripe.Customer, price: stripe.Price
) -> MakeSession:
    def make(**overrides: Any) -> stripe.checkout.Session:
        params: dict[str, Any] = {
            "customer": customer.id,
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "success_url": "https://example.com/ok?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://example.com/cancel",
            "metadata": {"credits": "1000"},
        }
        params.update(overrides)
        return stripe_client.v1.checkout.sessions.create(params)  # type: ignore[arg-type]

    return make


def _event_types(client: stripe.StripeClient, since: str | None = None) -> list[str]:
    """Event types oldest first, only those newer than event `since` if given."""
    newest_first = list(client.v1.events.list({"limit": 100}).auto_paging_iter())
    ids = [e.id for e in newest_first]
    newer = newest_first[: ids.index(since)] if since else newest_first
    return [e.type for e in reversed(newer)]


def _last_event_id(client: stripe.StripeClient) -> str:
    return client.v1.events.list({"limit": 1}).data[0].id


def _pay(session: stripe.checkout.Session, **form: str) -> tuple[int, dict[str, Any]]:
    url = session.url
    assert url is not None
    base = url.split("/_sandbox/")[0]
    body = "&".join(f"{k}={v}" for k, v in form.items())
    status, _, answer = call(
        base, "POST", f"/_sandbox/checkout/sessions/{session.id}/pay", body, key=None
    )
    return status, answer


def test_created_session_shape(
    stripe_client: stripe.StripeClient,
    sandbox: SandboxServer,
    make_session: MakeSession,
    customer: stripe.Customer,
) -> None:
    session = make_session(client_reference_id="order-7")
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.mode == "payment"
    assert session.amount_subtotal == session.amount_total == 9000
    assert session.currency == "usd"
    assert session.customer == customer.id
    assert session.client_reference_id == "order-7"
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"credits": "1000"}
    assert session.payment_intent is None
    assert session.url == f"{sandbox.url}/_sandbox/checkout/{session.id}"
    assert session.payment_method_types == ["card", "us_bank_account"]
    assert session.expires_at - session.created == 24 * 3600
    assert session.success_url == "https://example.com/ok?session={CHECKOUT_SESSION_ID}"
    # Creating a session records no event, as on Stripe.
    assert _event_types(stripe_client)[-1] == "price.created"


def test_retrieve_list_and_line_items(
    stripe_client: stripe.StripeClient, make_session: MakeSession, customer: stripe.Customer
) -> None:
    first = make_session()
    second = make_session(
        customer=None,
        customer_email="guest@example.com",
        line_items=[
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": 1000 + i,
                    "product_data": {"name": f"Pack {i}"},
                },
                "quantity": 1,
            }
            for i in range(5)
        ],
    )
    assert stripe_client.v1.checkout.sessions.retrieve(first.id).id == first.id
    mine = stripe_client.v1.checkout.sessions.list({"customer": customer.id})
    assert [s.id for s in mine.data] == [first.id]
    everything = stripe_client.v1.checkout.sessions.list({"status": "open"})
    assert [s.id for s in everything.data] == [second.id, first.id]
    assert stripe_client.v1.checkout.sessions.list({"status": "complete"}).data == []

    page = stripe_client.v1.checkout.sessions.line_items.list(second.id, {"limit": 2})
    assert [li.description for li in page.data] == ["Pack 0", "Pack 1"]
    assert page.has_more is True
    walked = list(page.auto_paging_iter())
    assert [li.amount_total for li in walked] == [1000, 1001, 1002, 1003, 1004]
    item = walked[0]
    assert item.object == "item"
    assert item.price is not None
    assert item.price.unit_amount == 1000
    assert item.quantity == 1

    expanded = stripe_client.v1.checkout.sessions.retrieve(first.id, {"expand": ["line_items"]})
    assert expanded.line_items is not None
    assert [li.quantity for li in expanded.line_items.data] == [2]
    assert expanded.line_items.data[0].description == "500 credits"


def test_card_payment_on_the_hosted_page(
    stripe_client: stripe.StripeClient, make_session: MakeSession, customer: stripe.Customer
) -> None:
    session = make_session()
    assert session.url is not None
    status, headers, page = fetch(session.url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "500 credits" in page
    assert "90.00 USD" in page
    assert "ada@example.com" in page
    assert "href='https://example.com/cancel'" in page
    assert "bank debit" in page
    before = _last_event_id(stripe_client)

    status, headers, _ = fetch(session.url, "POST", {"card": "4242 4242 4242 4242"})
    assert status == 303
    assert headers["Location"] == f"https://example.com/ok?session={session.id}"

    paid = stripe_client.v1.checkout.sessions.retrieve(
        session.id, {"expand": ["payment_intent.latest_charge"]}
    )
    assert paid.status == "complete"
    assert paid.payment_status == "paid"
    assert paid.url is None
    assert paid.customer_details is not None
    assert paid.customer_details.email == "ada@example.com"
    intent = paid.payment_intent
    assert isinstance(intent, stripe.PaymentIntent)
    assert intent.status == "succeeded"
    assert intent.amount == intent.amount_received == 9000
    assert intent.customer == customer.id
    charge = intent.latest_charge
    assert isinstance(charge, stripe.Charge)
    assert charge.status == "succeeded"
    assert charge.paid is True
    assert charge.payment_method_details is not None
    assert charge.payment_method_details.card is not None
    assert charge.payment_method_details.card.last4 == "4242"
    assert _event_types(stripe_client, before) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = stripe_client.v1.events.list({"type": "checkout.session.completed"}).data[0]
    assert completed.data.object["payment_status"] == "paid"
    assert completed.request is not None
    assert completed.request.id is None

    status, _, page = fetch(f"{session.url}")
    assert status == 200
    assert "Payment complete" in page


def test_declined_card_keeps_the_session_open(
    stripe_client: stripe.StripeClient, make_session: MakeSession
) -> None:
    session = make_session()
    before = _last_event_id(stripe_client)
    status, answer = _pay(session, card="4000000000000002")
    assert status == 402
    error = answer["error"]
    assert error["type"] == "card_error"
    assert error["code"] == "card_declined"
    assert error["decline_code"] == "generic_decline"
    assert error["message"] == "Your card was declined."
    assert error["payment_intent"]["status"] == "requires_payment_method"

    reloaded = stripe_client.v1.checkout.sessions.retrieve(session.id)
    assert reloaded.status == "open"
    assert reloaded.url == session.url
    assert isinstance(reloaded.payment_intent, str)
    intent = stripe_client.v1.payment_intents.retrieve(reloaded.payment_intent)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.code == "card_declined"
    assert intent.last_payment_error.decline_code == "generic_decline"
    assert intent.last_payment_error.type == "card_error"
    failed_charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    assert failed_charge.status == "failed"
    assert failed_charge.failure_code == "card_declined"
    assert failed_charge.outcome is not None
    assert failed_charge.outcome.reason == "generic_decline"

    # The page shows the decline, then a good card succeeds on the same PaymentIntent.
    assert session.url is not None
    status, _, page = fetch(session.url, "POST", {"card": "4000000000009995"})
    assert status == 402
    assert "Your card has insufficient funds." in page
    status, _ = _pay(session, card="4242424242424242")
    assert status == 200
    assert _event_types(stripe_client, before) == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
        "charge.failed",
        "payment_intent.payment_failed",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    final = stripe_client.v1.payment_intents.retrieve(reloaded.payment_intent)
    assert final.status == "succeeded"
    assert final.last_payment_error is None
    charges = stripe_client.v1.charges.list({"payment_intent": final.id}).data
    assert [c.status for c in charges] == ["succeeded", "failed", "failed"]


def test_invalid_card_number_records_nothing(
    stripe_client: stripe.StripeClient, make_session: MakeSession
) -> None:
    session = make_session()
    before = _last_event_id(stripe_client)
    status, answer = _pay(session, card="1234")
    assert status == 402
    assert answer["error"]["code"] == "incorrect_number"
    assert _event_types(stripe_client, before) == []
    status, answer = _pay(session, card="4111111111111111")
    assert status == 402
    assert answer["error"]["decline_code"] == "test_mode_live_card"


def test_guest_needs_an_email_and_can_become_a_customer(
    stripe_client: stripe.StripeClient, make_session: MakeSession
) -> None:
    session = make_session(customer=None, customer_creation="always")
    status, answer = _pay(session, card="4242424242424242")
    assert status == 400
    assert answer["error"]["param"] == "email"
    status, answer = _pay(session, card="4242424242424242", email="new%40example.com", name="Neo")
    assert status == 200
    assert answer["customer_details"]["email"] == "new@example.com"
    created = stripe_client.v1.customers.retrieve(answer["customer"])
    assert created.email == "new@example.com"
    assert created.name == "Neo"
    assert stripe_client.v1.payment_intents.retrieve(answer["payment_intent"]).customer == (
        created.id
    )


def test_setup_future_usage_attaches_the_card(
    stripe_client: stripe.StripeClient, make_session: MakeSession, customer: stripe.Customer
) -> None:
    session = make_session(
        payment_intent_data={"setup_future_usage": "off_session", "metadata": {"k": "v"}}
    )
    status, answer = _pay(session, card="5555555555554444")
    assert status == 200
    intent = stripe_client.v1.payment_intents.retrieve(answer["payment_intent"])
    assert intent.metadata.to_dict() == {"k": "v"}
    assert intent.setup_future_usage == "off_session"
    attached = stripe_client.v1.events.list({"type": "payment_method.attached"}).data
    assert len(attached) == 1
    assert attached[0].data.object["customer"] == customer.id
    assert attached[0].data.object["card"]["brand"] == "mastercard"


def test_bank_debit_settles_later(
    stripe_client: stripe.StripeClient, make_session: MakeSession
) -> None:
    good = make_session()
    before = _last_event_id(stripe_client)
    assert good.url is not None
    status, _headers, _ = fetch(good.url, "POST", {"method": "bank_debit"})
    assert status == 303
    pending = stripe_client.v1.checkout.sessions.retrieve(good.id)
    assert pending.status == "complete"
    assert pending.payment_status == "unpaid"
    intent = stripe_client.v1.payment_intents.retrieve(str(pending.payment_intent))
    assert intent.status == "processing"
    status, _, answer = call(
        good.url.split("/_sandbox/")[0],
        "POST",
        f"/_sandbox/checkout/sessions/{good.id}/settle",
        "outcome=succeeded",
        key=None,
    )
    assert status == 200
    assert answer["payment_status"] == "paid"
    assert _event_types(stripe_client, before) == [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.async_payment_succeeded",
    ]

    bad = make_session()
    before = _last_event_id(stripe_client)
    status, answer = _pay(bad, method="bank_debit")
    assert status == 200
    assert answer["payment_status"] == "unpaid"
    base = good.url.split("/_sandbox/")[0]
    status, _, answer = call(
        base, "POST", f"/_sandbox/checkout/sessions/{bad.id}/settle", "outcome=failed", key=None
    )
    assert status == 200
    assert answer["status"] == "complete"
    assert answer["payment_status"] == "unpaid"
    assert _event_types(stripe_client, before) == [
        "payment_intent.created",
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
        "charge.failed",
        "payment_intent.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    failed = stripe_client.v1.payment_intents.retrieve(answer["payment_intent"])
    assert failed.status == "requires_payment_method"
    assert failed.last_payment_error is not None

    # Nothing left to settle; bad outcome values are refused.
    status, _, answer = call(
        base, "POST", f"/_sandbox/checkout/sessions/{bad.id}/settle", "outcome=failed", key=None
    )
    assert status == 400
    status, _, answer = call(
        base, "POST", f"/_sandbox/checkout/sessions/{bad.id}/settle", "outcome=maybe", key=None
    )
    assert status == 400
    assert answer["error"]["param"] == "outcome"


def test_expire_endpoint(stripe_client: stripe.StripeClient, make_session: MakeSession) -> None:
    session = make_session()
    _pay(session, card="4000000000000002")
    before = _last_event_id(stripe_client)
    expired = stripe_client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    assert expired.url is None
    assert _event_types(stripe_client, before) == [
        "payment_intent.canceled",
        "checkout.session.expired",
    ]
    intent = stripe_client.v1.payment_intents.retrieve(str(expired.payment_intent))
    assert intent.status == "canceled"
    assert intent.cancellation_reason == "abandoned"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.checkout.sessions.expire(session.id)
    assert excinfo.value.http_status == 400
    status, _answer = _pay(session, card="4242424242424242")
    assert status == 400
    assert session.url is not None
    status, _, page = fetch(session.url)
    assert status == 200
    assert "expired" in page


def test_clock_advance_expires_sessions(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, make_session: MakeSession
) -> None:
    now = call(sandbox.url, "GET", "/_sandbox/clock", key=None)[2]["now"]
    short = make_session(expires_at=now + 1800)
    long = make_session()
    status, _, clock = call(
        sandbox.url, "POST", "/_sandbox/clock/advance", "seconds=1801", key=None
    )
    assert status == 200
    assert clock["offset_seconds"] == 1801
    assert stripe_client.v1.checkout.sessions.retrieve(short.id).status == "expired"
    assert stripe_client.v1.checkout.sessions.retrieve(long.id).status == "open"
    expired = stripe_client.v1.events.list({"type": "checkout.session.expired"}).data
    assert [e.data.object["id"] for e in expired] == [short.id]
    assert expired[0].created >= now + 1800
    # New objects are stamped with the advanced clock.
    later = stripe_client.v1.customers.create({"name": "Later"})
    assert later.created >= now + 1801
    status, _, _ = call(sandbox.url, "POST", "/_sandbox/clock/advance", "seconds=-5", key=None)
    assert status == 400


def test_expiry_is_checked_on_access(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, make_session: MakeSession
) -> None:
    now = call(sandbox.url, "GET", "/_sandbox/clock", key=None)[2]["now"]
    session = make_session(expires_at=now + 1800)
    assert session.url is not None
    call(sandbox.url, "POST", "/_sandbox/clock/advance", "seconds=3600", key=None)
    # The hosted page is the first to notice.
    _status, _, page = fetch(session.url)
    assert "expired" in page
    assert stripe_client.v1.checkout.sessions.retrieve(session.id).status == "expired"


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"customer": "cus_missing0000000"}, "customer"),
        ({"mode": "subscription"}, "mode"),
        ({"line_items": []}, "line_items"),
        ({"line_items": [{"price": "price_missing"}]}, "line_items[0][quantity]"),
        ({"line_items": [{"price": "price_missing", "quantity": 1}]}, "line_items[0][price]"),
        ({"line_items": [{"quantity": 1}]}, "line_items[0]"),
        (
            {
                "line_items": [
                    {
                        "price_data": {
                            "currency": "usd",
                            "unit_amount": 10,
                            "product_data": {"name": "x"},
                        },
                        "quantity": 1,
                    }
                ]
            },
            "line_items",
        ),
        ({"expires_at": 1}, "expires_at"),
        ({"discounts": [{"coupon": "c"}]}, "discounts"),
        ({"customer_email": "a@example.com"}, "customer_email"),
        ({"success_url": "nope"}, "success_url"),
        ({"allowed_payment_method_types": ["ideal"]}, "allowed_payment_method_types"),
        (
            {"payment_intent_data": {"capture_method": "manual"}},
            "payment_intent_data[capture_method]",
        ),
        ({"client_reference_id": "x" * 201}, "client_reference_id"),
    ],
)
def test_create_errors(
    stripe_client: stripe.StripeClient,
    make_session: MakeSession,
    overrides: dict[str, Any],
    param: str,
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        make_session(**overrides)
    assert excinfo.value.http_status == 400
    assert excinfo.value.param == param
    assert stripe_client.v1.checkout.sessions.list().data == []


def test_price_rules(
    stripe_client: stripe.StripeClient, make_session: MakeSession, price: stripe.Price
) -> None:
    recurring = stripe_client.v1.prices.create(
        {
            "currency": "usd",
            "unit_amount": 500,
            "product": str(price.product),
            "recurring": {"interval": "month"},
        }
    )
    with pytest.raises(stripe.InvalidRequestError, match="recurring price"):
        make_session(line_items=[{"price": recurring.id, "quantity": 1}])
    stripe_client.v1.prices.update(recurring.id, {"active": False})
    with pytest.raises(stripe.InvalidRequestError, match="inactive"):
        make_session(line_items=[{"price": recurring.id, "quantity": 1}])
    eur = stripe_client.v1.prices.create(
        {"currency": "eur", "unit_amount": 500, "product": str(price.product)}
    )
    with pytest.raises(stripe.InvalidRequestError, match="same currency"):
        make_session(
            line_items=[{"price": price.id, "quantity": 1}, {"price": eur.id, "quantity": 1}]
        )
    euro_session = make_session(line_items=[{"price": eur.id, "quantity": 1}])
    assert euro_session.payment_method_types == ["card"]
    with pytest.raises(stripe.InvalidRequestError, match="us_bank_account for USD"):
        make_session(
            line_items=[{"price": eur.id, "quantity": 1}],
            allowed_payment_method_types=["us_bank_account"],
        )
    cards_only = make_session(excluded_payment_method_types=["us_bank_account"])
    assert cards_only.payment_method_types == ["card"]
    assert cards_only.url is not None
    assert "bank debit" not in fetch(cards_only.url)[2]
    status, _answer = _pay(cards_only, method="bank_debit")
    assert status == 400
    filtered = make_session(allowed_payment_method_types=["card", "ideal"])
    assert filtered.payment_method_types == ["card"]
    assert filtered.allowed_payment_method_types == ["card", "ideal"]


def test_page_without_success_url_and_unknown_session(
    sandbox: SandboxServer, make_session: MakeSession
) -> None:
    session = make_session(success_url=None, cancel_url=None)
    assert session.url is not None
    status, _, page = fetch(session.url)
    assert "Cancel" not in page
    status, _, page = fetch(session.url, "POST", {"card": "4242424242424242"})
    assert status == 200
    assert "Payment complete" in page
    status, _, _ = fetch(f"{sandbox.url}/_sandbox/checkout/cs_test_nope")
    assert status == 404
    status, _ = _pay(session, card="4242424242424242")
    assert status == 400
    status, _, _ = call(
        sandbox.url, "POST", "/_sandbox/checkout/sessions/cs_test_nope/pay", "card=4242", key=None
    )
    assert status == 404


def test_completed_event_is_delivered_signed(
    stripe_client: stripe.StripeClient, make_session: MakeSession
) -> None:
    receiver = _Receiver()
    try:
        endpoint = stripe_client.v1.webhook_endpoints.create(
            {"url": receiver.url, "enabled_events": ["checkout.session.completed"]}
        )
        session = make_session()
        _pay(session, card="4242424242424242")
        assert receiver.got_one.wait(timeout=10)
    finally:
        receiver.close()
    payload, signature = receiver.received[0]
    assert endpoint.secret is not None
    event = stripe.Webhook.construct_event(payload.decode(), signature, endpoint.secret)
    assert event.type == "checkout.session.completed"
    assert event.data.object["id"] == session.id
    assert event.data.object["metadata"].to_dict() == {"credits": "1000"}
