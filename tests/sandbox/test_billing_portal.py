"""Billing portal sessions: creation, errors, and the hosted page the sandbox serves."""

from __future__ import annotations

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import fetch


@pytest.fixture
def customer(stripe_client: stripe.StripeClient) -> stripe.Customer:
    return stripe_client.v1.customers.create({"name": "Ada <Lovelace>", "email": "ada@example.com"})


def test_session_url_is_a_local_page(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer
) -> None:
    session = stripe_client.v1.billing_portal.sessions.create(
        {"customer": customer.id, "return_url": "https://example.com/account?a=1&b=2"}
    )
    assert session.object == "billing_portal.session"
    assert session.id.startswith("bps_")
    assert session.customer == customer.id
    assert session.return_url == "https://example.com/account?a=1&b=2"
    assert session.url == f"{sandbox.url}/_sandbox/portal/{session.id}"
    assert session.configuration.startswith("bpc_")
    assert session.flow is None

    status, headers, page = fetch(session.url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "Ada &lt;Lovelace&gt;" in page
    assert "ada@example.com" in page
    assert "href='https://example.com/account?a=1&amp;b=2'>Return</a>" in page

    event = stripe_client.v1.events.list({"type": "billing_portal.session.created"}).data[0]
    assert event.data.object["id"] == session.id


def test_without_return_url_there_is_no_return_link(
    stripe_client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    session = stripe_client.v1.billing_portal.sessions.create({"customer": customer.id})
    assert session.return_url is None
    status, _, page = fetch(session.url)
    assert status == 200
    assert "Return</a>" not in page


def test_payment_method_update_flow(
    stripe_client: stripe.StripeClient, customer: stripe.Customer
) -> None:
    session = stripe_client.v1.billing_portal.sessions.create(
        {
            "customer": customer.id,
            "flow_data": {
                "type": "payment_method_update",
                "after_completion": {
                    "type": "redirect",
                    "redirect": {"return_url": "https://example.com/done"},
                },
            },
        }
    )
    assert session.flow is not None
    assert session.flow.type == "payment_method_update"
    assert session.flow.after_completion.type == "redirect"
    assert session.flow.after_completion.redirect is not None
    assert session.flow.after_completion.redirect.return_url == "https://example.com/done"


def test_unknown_customer(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.billing_portal.sessions.create({"customer": "cus_missing0000000"})
    assert excinfo.value.http_status == 400
    assert excinfo.value.code == "resource_missing"
    assert excinfo.value.param == "customer"
    assert "No such customer: 'cus_missing0000000'" in str(excinfo.value.user_message)


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({}, "customer", "parameter_missing"),
        ({"configuration": "bpc_nope"}, "configuration", "resource_missing"),
        ({"return_url": "not a url"}, "return_url", "url_invalid"),
        (
            {
                "flow_data": {
                    "type": "subscription_cancel",
                    "subscription_cancel": {"subscription": "sub_1"},
                }
            },
            "flow_data[subscription_cancel][subscription]",
            "resource_missing",
        ),
    ],
)
def test_bad_requests(
    stripe_client: stripe.StripeClient,
    customer: stripe.Customer,
    params: dict[str, object],
    param: str,
    code: str,
) -> None:
    if param != "customer":
        params = {"customer": customer.id, **params}
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.billing_portal.sessions.create(params)  # type: ignore[arg-type]
    assert excinfo.value.http_status == 400
    assert excinfo.value.param == param
    assert excinfo.value.code == code
    assert stripe_client.v1.events.list({"type": "billing_portal.session.created"}).data == []


def test_unknown_session_and_deleted_customer_pages(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer, customer: stripe.Customer
) -> None:
    status, _, _ = fetch(f"{sandbox.url}/_sandbox/portal/bps_nope")
    assert status == 404
    session = stripe_client.v1.billing_portal.sessions.create({"customer": customer.id})
    stripe_client.v1.customers.delete(customer.id)
    status, _, page = fetch(session.url)
    assert status == 410
    assert "no longer exists" in page
