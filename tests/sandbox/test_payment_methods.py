"""PaymentMethods: test tokens, attach/detach, a customer's default, the attach_card route."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call


@pytest.fixture
def customer(stripe_client: stripe.StripeClient) -> stripe.Customer:
    return stripe_client.v1.customers.create({"name": "Ada Lovelace", "email": "ada@example.com"})


def test_create_from_a_test_token(stripe_client: stripe.StripeClient) -> None:
    pm = stripe_client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"token": "tok_mastercard"},
            "billing_details": {"name": "Ada", "email": "ada@example.com"},
            "metadata": {"k": "v"},
        }
    )
    assert pm.id.startswith("pm_")
    assert pm.object == "payment_method"
    assert pm.type == "card"
    assert pm.customer is None
    assert pm.card is not None
    assert pm.card.brand == "mastercard"
    assert pm.card.last4 == "4444"
    assert pm.card.exp_month == 12
    assert pm.billing_details.name == "Ada"
    assert pm.metadata is not None
    assert pm.metadata.to_dict() == {"k": "v"}
    assert stripe_client.v1.payment_methods.retrieve(pm.id).id == pm.id
    # Creating a PaymentMethod records no event, as on Stripe.
    assert stripe_client.v1.events.list().data == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"type": "card", "card": {"number": "4242424242424242", "exp_month": 1}}, "card[number]"),
        ({"type": "card", "card": {"token": "tok_unicorn"}}, "card[token]"),
        ({"type": "card"}, "card[token]"),
        ({"type": "sepa_debit"}, "type"),
    ],
)
def test_create_errors(
    stripe_client: stripe.StripeClient, params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_methods.create(params)  # type: ignore[arg-type]
    assert excinfo.value.http_status == 400
    assert excinfo.value.param == param


def test_attach_list_default_detach(
    stripe_client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    visa = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    assert visa.id.startswith("pm_")
    assert visa.id != "pm_card_visa"
    assert visa.customer == customer.id
    amex = stripe_client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_amex"}})
    stripe_client.v1.payment_methods.attach(amex.id, {"customer": customer.id})
    # Attaching again to the same customer changes nothing.
    stripe_client.v1.payment_methods.attach(amex.id, {"customer": customer.id})

    listed = stripe_client.v1.customers.payment_methods.list(customer.id)
    assert [p.id for p in listed.data] == [amex.id, visa.id]
    assert listed.url == f"/v1/customers/{customer.id}/payment_methods"
    assert [
        p.id for p in stripe_client.v1.payment_methods.list({"customer": customer.id}).data
    ] == [
        amex.id,
        visa.id,
    ]
    assert (
        stripe_client.v1.customers.payment_methods.list(customer.id, {"type": "sepa_debit"}).data
        == []
    )

    updated = stripe_client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": visa.id}}
    )
    assert updated.invoice_settings is not None
    assert updated.invoice_settings.default_payment_method == visa.id
    expanded = stripe_client.v1.customers.retrieve(
        customer.id, {"expand": ["invoice_settings.default_payment_method"]}
    )
    assert expanded.invoice_settings is not None
    assert isinstance(expanded.invoice_settings.default_payment_method, stripe.PaymentMethod)

    detached = stripe_client.v1.payment_methods.detach(visa.id)
    assert detached.customer is None
    after = stripe_client.v1.customers.retrieve(customer.id)
    assert after.invoice_settings is not None
    assert after.invoice_settings.default_payment_method is None
    types = [e.type for e in stripe_client.v1.events.list({"limit": 100}).data][::-1]
    assert types == [
        "customer.created",
        "payment_method.attached",
        "payment_method.attached",
        "customer.updated",
        "payment_method.detached",
        "customer.updated",
    ]
    detached_event = stripe_client.v1.events.list({"type": "payment_method.detached"}).data[0]
    assert detached_event.data.previous_attributes is not None
    assert detached_event.data.previous_attributes["customer"] == customer.id
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_methods.detach(visa.id)
    assert excinfo.value.http_status == 400


def test_attach_errors(stripe_client: stripe.StripeClient, customer: stripe.Customer) -> None:
    other = stripe_client.v1.customers.create({"name": "Other"})
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    with pytest.raises(stripe.InvalidRequestError, match="already been attached"):
        stripe_client.v1.payment_methods.attach(pm.id, {"customer": other.id})
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_methods.attach(pm.id, {"customer": "cus_missing00000"})
    assert excinfo.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.payment_methods.attach("pm_missing", {"customer": customer.id})
    assert excinfo.value.http_status == 404
    with pytest.raises(stripe.InvalidRequestError, match="must be attached to the customer"):
        stripe_client.v1.customers.update(
            other.id, {"invoice_settings": {"default_payment_method": pm.id}}
        )
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.update(
            other.id, {"invoice_settings": {"default_payment_method": "pm_nope"}}
        )
    assert excinfo.value.code == "resource_missing"


def test_customer_created_with_a_payment_method(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create(
        {
            "email": "new@example.com",
            "payment_method": "pm_card_visa",
        }
    )
    methods = stripe_client.v1.customers.payment_methods.list(customer.id).data
    assert len(methods) == 1
    assert methods[0].card is not None
    assert methods[0].card.last4 == "4242"
    types = [e.type for e in stripe_client.v1.events.list().data][::-1]
    assert types == ["customer.created", "payment_method.attached"]


def test_update_payment_method(
    stripe_client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    pm = stripe_client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    updated = stripe_client.v1.payment_methods.update(
        pm.id, {"billing_details": {"name": "A. Lovelace"}, "metadata": {"k": "v"}}
    )
    assert updated.billing_details.name == "A. Lovelace"
    event = stripe_client.v1.events.list({"type": "payment_method.updated"}).data[0]
    assert event.data.previous_attributes is not None
    assert event.data.previous_attributes["billing_details"]["name"] is None


def test_attach_card_route(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer
) -> None:
    status, _, pm = call(
        sandbox.url,
        "POST",
        f"/_sandbox/customers/{customer.id}/attach_card",
        "card=4000+0000+0000+9995",
        key=None,
    )
    assert status == 200
    assert pm["customer"] == customer.id
    assert pm["card"]["last4"] == "9995"
    assert pm["billing_details"]["email"] == "ada@example.com"
    reloaded = stripe_client.v1.customers.retrieve(customer.id)
    assert reloaded.invoice_settings is not None
    assert reloaded.invoice_settings.default_payment_method == pm["id"]
    types = [e.type for e in stripe_client.v1.events.list().data][::-1]
    assert types == ["customer.created", "payment_method.attached", "customer.updated"]

    status, _, body = call(
        sandbox.url, "POST", f"/_sandbox/customers/{customer.id}/attach_card", "card=1234", key=None
    )
    assert status == 400
    assert body["error"]["code"] == "incorrect_number"
    status, _, _ = call(
        sandbox.url,
        "POST",
        "/_sandbox/customers/cus_nope/attach_card",
        "card=4242424242424242",
        key=None,
    )
    assert status == 404
