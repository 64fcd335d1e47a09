"""`POST /v1/payment_intents` and confirm/cancel, through stripe-python, as Stripe documents
charging a saved card off-session."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer


def _customer_with_card(
    client: stripe.StripeClient, token: str = "pm_card_visa"
) -> tuple[str, str]:
    customer = client.v1.customers.create({"email": "saved@example.com"})
    pm = client.v1.payment_methods.attach(token, {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return customer.id, pm.id


def _types(client: stripe.StripeClient) -> list[str]:
    return [e.type for e in reversed(client.v1.events.list({"limit": 100}).data)]


def _off_session(customer: str, pm: str, **extra: object) -> dict[str, object]:
    return {
        "amount": 1000,
        "currency": "usd",
        "customer": customer,
        "payment_method": pm,
        "off_session": True,
        "confirm": True,
        "metadata": {"auto_topup_id": "atu_1"},
        **extra,
    }


def test_off_session_charge_succeeds_with_a_charge_and_events(
    stripe_client: stripe.StripeClient,
) -> None:
    customer, pm = _customer_with_card(stripe_client)
    before = len(_types(stripe_client))
    intent = stripe_client.v1.payment_intents.create(
        _off_session(customer, pm),  # type: ignore[arg-type]
        {"idempotency_key": "k-ok"},
    )
    assert intent.status == "succeeded"
    assert intent.amount_received == 1000
    assert intent.payment_method == pm
    assert intent.metadata["auto_topup_id"] == "atu_1"
    charge = stripe_client.v1.charges.retrieve(str(intent.latest_charge))
    assert charge.status == "succeeded"
    assert charge.payment_intent == intent.id
    assert _types(stripe_client)[before:] == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
    ]
    again = stripe_client.v1.payment_intents.create(
        _off_session(customer, pm),  # type: ignore[arg-type]
        {"idempotency_key": "k-ok"},
    )
    assert again.id == intent.id  # the same key replays: one charge
    assert len(stripe_client.v1.payment_intents.list({"customer": customer}).data) == 1
    refund = stripe_client.v1.refunds.create({"payment_intent": intent.id, "amount": 400})
    assert refund.charge == charge.id
    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


@pytest.mark.parametrize(
    ("token", "code", "decline_code"),
    [
        ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
        ("pm_card_chargeCustomerFail", "card_declined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
        ("pm_card_authenticationRequired", "authentication_required", "authentication_required"),
        ("pm_card_threeDSecure2Required", "authentication_required", "authentication_required"),
    ],
)
def test_off_session_failure_is_a_402_with_the_intent(
    stripe_client: stripe.StripeClient, token: str, code: str, decline_code: str
) -> None:
    customer, pm = _customer_with_card(stripe_client, token)
    with pytest.raises(stripe.CardError) as caught:
        stripe_client.v1.payment_intents.create(_off_session(customer, pm))  # type: ignore[arg-type]
    error = caught.value.error
    assert error is not None
    assert error.code == code
    assert error.decline_code == decline_code
    assert error.payment_intent is not None
    intent = stripe_client.v1.payment_intents.retrieve(error.payment_intent.id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error is not None
    assert intent.last_payment_error.code == code
    assert intent.amount_received == 0
    assert _types(stripe_client)[-1] == "payment_intent.payment_failed"
    failed = stripe_client.v1.events.list({"type": "payment_intent.payment_failed"}).data[0]
    assert failed.data.object["id"] == intent.id


def test_saved_setup_card_skips_authentication_off_session(
    stripe_client: stripe.StripeClient,
) -> None:
    customer, pm = _customer_with_card(stripe_client, "pm_card_authenticationRequiredOnSetup")
    intent = stripe_client.v1.payment_intents.create(_off_session(customer, pm))  # type: ignore[arg-type]
    assert intent.status == "succeeded"


def test_on_session_3ds_card_requires_action_then_cancel(
    stripe_client: stripe.StripeClient,
) -> None:
    customer, pm = _customer_with_card(stripe_client, "pm_card_threeDSecure2Required")
    intent = stripe_client.v1.payment_intents.create(
        {"amount": 800, "currency": "usd", "customer": customer, "payment_method": pm,
         "confirm": True}
    )  # fmt: skip
    assert intent.status == "requires_action"
    assert intent.next_action is not None
    canceled = stripe_client.v1.payment_intents.cancel(
        intent.id, {"cancellation_reason": "abandoned"}
    )
    assert canceled.status == "canceled"
    assert canceled.cancellation_reason == "abandoned"
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.cancel(intent.id)
    assert caught.value.code == "payment_intent_unexpected_state"


def test_create_then_confirm_and_status_rules(stripe_client: stripe.StripeClient) -> None:
    customer, pm = _customer_with_card(stripe_client)
    intent = stripe_client.v1.payment_intents.create(
        {"amount": 2000, "currency": "usd", "customer": customer}
    )
    assert intent.status == "requires_payment_method"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.payment_intents.confirm(intent.id)
    assert missing.value.code == "payment_intent_unexpected_state"
    confirmed = stripe_client.v1.payment_intents.confirm(
        intent.id, {"payment_method": pm, "off_session": True}
    )
    assert confirmed.status == "succeeded"
    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.payment_intents.confirm(intent.id)
    assert again.value.code == "payment_intent_unexpected_state"
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.payment_intents.cancel(intent.id)


def test_declined_intent_can_be_confirmed_again_with_another_card(
    stripe_client: stripe.StripeClient,
) -> None:
    customer, bad = _customer_with_card(stripe_client, "pm_card_chargeDeclined")
    with pytest.raises(stripe.CardError) as caught:
        stripe_client.v1.payment_intents.create(_off_session(customer, bad))  # type: ignore[arg-type]
    assert caught.value.error is not None
    assert caught.value.error.payment_intent is not None
    intent_id = caught.value.error.payment_intent.id
    good = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer})
    confirmed = stripe_client.v1.payment_intents.confirm(
        intent_id, {"payment_method": good.id, "off_session": True}
    )
    assert confirmed.status == "succeeded"


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"amount": 1000, "currency": "usd", "off_session": True}, "off_session"),
        ({"amount": 1000, "currency": "usd", "confirm": True}, "payment_method"),
        ({"amount": 10, "currency": "usd"}, "amount"),
        ({"amount": 1000, "currency": "usd", "customer": "cus_nobody"}, "customer"),
        ({"amount": 1000, "currency": "usd", "transfer_group": "x"}, "transfer_group"),
    ],
)
def test_refuses_what_stripe_refuses(
    stripe_client: stripe.StripeClient, params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.create(params)  # type: ignore[arg-type]
    assert caught.value.param == param
    assert stripe_client.v1.payment_intents.list().data == []


def test_card_of_another_customer_is_refused(stripe_client: stripe.StripeClient) -> None:
    _other, pm = _customer_with_card(stripe_client)
    mine = stripe_client.v1.customers.create({"email": "me@example.com"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        stripe_client.v1.payment_intents.create(_off_session(mine.id, pm))  # type: ignore[arg-type]
    assert caught.value.param == "payment_method"


def test_setup_future_usage_saves_the_card_to_the_customer(
    stripe_client: stripe.StripeClient,
) -> None:
    customer = stripe_client.v1.customers.create({"email": "new@example.com"})
    intent = stripe_client.v1.payment_intents.create(
        {"amount": 700, "currency": "usd", "customer": customer.id,
         "payment_method": "pm_card_visa", "confirm": True,
         "setup_future_usage": "off_session"}
    )  # fmt: skip
    assert intent.status == "succeeded"
    saved = stripe_client.v1.customers.payment_methods.list(customer.id).data
    assert [p.id for p in saved] == [intent.payment_method]


def test_checkout_with_setup_future_usage_saves_the_card(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    from tests.sandbox.raw_http import call

    customer = stripe_client.v1.customers.create({"email": "checkout@example.com"})
    session = stripe_client.v1.checkout.sessions.create(
        {
            "customer": customer.id,
            "mode": "payment",
            "line_items": [
                {"price_data": {"currency": "usd", "unit_amount": 900,
                                "product_data": {"name": "Credits"}}, "quantity": 1}
            ],
            "success_url": "https://example.com/ok",
            "payment_intent_data": {"setup_future_usage": "off_session"},
        }
    )  # fmt: skip
    status, _, _answer = call(
        sandbox.url, "POST", f"/_sandbox/checkout/sessions/{session.id}/pay",
        "card=4242424242424242", key=None,
    )  # fmt: skip
    assert status == 200
    saved = stripe_client.v1.customers.payment_methods.list(customer.id).data
    assert len(saved) == 1
    # The saved card can be made the default and charged off-session later.
    stripe_client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": saved[0].id}}
    )
    later = stripe_client.v1.payment_intents.create(_off_session(customer.id, saved[0].id))  # type: ignore[arg-type]
    assert later.status == "succeeded"
