"""Wire protocol: auth, errors, parameter validation, idempotency, headers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call


def test_unknown_param_names_it(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.create({"emial": "x@example.com"})  # type: ignore[typeddict-unknown-key]
    assert excinfo.value.http_status == 400
    assert excinfo.value.param == "emial"
    assert excinfo.value.code == "parameter_unknown"
    assert "Received unknown parameter: emial" in str(excinfo.value.user_message)


def test_unknown_nested_param(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.customers.create({"address": {"bogus": "1"}})  # type: ignore[typeddict-unknown-key]
    assert excinfo.value.param == "address[bogus]"


def test_missing_required_param(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.prices.create({"unit_amount": 100, "product": "prod_x"})  # type: ignore[typeddict-item]
    assert excinfo.value.code == "parameter_missing"
    assert excinfo.value.param == "currency"


def test_invalid_integer(sandbox: SandboxServer) -> None:
    status, _, body = call(
        sandbox.url, "POST", "/v1/prices", "currency=usd&unit_amount=lots&product=prod_x"
    )
    assert status == 400
    assert body["error"]["code"] == "parameter_invalid_integer"
    assert body["error"]["param"] == "unit_amount"


def test_validation_error_changes_nothing(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.customers.create({"email": "a@example.com", "bogus": 1})  # type: ignore[typeddict-unknown-key]
    assert stripe_client.v1.customers.list().data == []


@pytest.mark.parametrize("key", ["sk_test_", "pk_test_abc", "nonsense"])
def test_bad_key(sandbox: SandboxServer, key: str) -> None:
    client = stripe.StripeClient(key, base_addresses={"api": sandbox.url})
    with pytest.raises(stripe.AuthenticationError) as excinfo:
        client.v1.customers.list()
    assert "Invalid API Key provided" in str(excinfo.value.user_message)


def test_missing_key(sandbox: SandboxServer) -> None:
    status, _, body = call(sandbox.url, "GET", "/v1/customers", key=None)
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"


def test_live_key_refused(sandbox: SandboxServer) -> None:
    client = stripe.StripeClient(
        "sk_live_" + "0123456789abcdef", base_addresses={"api": sandbox.url}
    )
    with pytest.raises(stripe.AuthenticationError) as excinfo:
        client.v1.customers.list()
    message = str(excinfo.value.user_message)
    assert "test-mode" in message
    assert "0123456789ab" not in message


def test_restricted_test_key_accepted(sandbox: SandboxServer) -> None:
    client = stripe.StripeClient("rk_test_restricted", base_addresses={"api": sandbox.url})
    assert client.v1.customers.list().data == []


def test_unrecognized_url(sandbox: SandboxServer) -> None:
    status, headers, body = call(sandbox.url, "GET", "/v1/unicorns")
    assert status == 404
    assert body["error"]["type"] == "invalid_request_error"
    assert "Unrecognized request URL" in body["error"]["message"]
    assert headers["Request-Id"].startswith("req_")


def test_headers_on_every_response(sandbox: SandboxServer) -> None:
    status, headers, _ = call(sandbox.url, "GET", "/v1/customers")
    assert status == 200
    assert headers["Request-Id"].startswith("req_")
    assert headers["Stripe-Version"] == stripe.api_version


def test_idempotent_replay(stripe_client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "create-ada-1"}
    first = stripe_client.v1.customers.create({"email": "ada@example.com"}, options)
    second = stripe_client.v1.customers.create({"email": "ada@example.com"}, options)
    assert second.id == first.id
    assert second.last_response is not None
    assert second.last_response.headers["Idempotent-Replayed"] == "true"
    assert len(stripe_client.v1.customers.list().data) == 1
    assert len(stripe_client.v1.events.list({"type": "customer.created"}).data) == 1


def test_idempotency_mismatch(stripe_client: stripe.StripeClient) -> None:
    options: stripe.RequestOptions = {"idempotency_key": "same-key"}
    stripe_client.v1.customers.create({"email": "a@example.com"}, options)
    with pytest.raises(stripe.IdempotencyError):
        stripe_client.v1.customers.create({"email": "b@example.com"}, options)


def test_idempotency_keys_are_scoped_per_api_key(sandbox: SandboxServer) -> None:
    body = "email=a%40example.com"
    headers = {"Idempotency-Key": "shared"}
    _, _, one = call(sandbox.url, "POST", "/v1/customers", body, headers, key="sk_test_one")
    _, _, two = call(sandbox.url, "POST", "/v1/customers", body, headers, key="sk_test_two")
    assert one["id"] != two["id"]


def test_sandbox_routes_need_no_key(sandbox: SandboxServer) -> None:
    status, _, body = call(sandbox.url, "POST", "/_sandbox/seed-demo", key=None)
    assert status == 200
    assert body["created"]["customers"] == 63
    status, _, body = call(sandbox.url, "POST", "/_sandbox/reset", key=None)
    assert status == 200
    _, _, listed = call(sandbox.url, "GET", "/v1/customers")
    assert listed["data"] == []


def test_non_loopback_host_refused() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(host="0.0.0.0")
    with pytest.raises(ValueError, match="loopback"):
        SandboxServer(host="192.168.1.10")


def _refused(call: Callable[[], object], param: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        call()
    assert info.value.http_status == 400
    assert info.value.param == param


def test_enum_values_outside_stripes_list_are_refused(stripe_client: stripe.StripeClient) -> None:
    """stripe-python types enums as `Literal[...]|str`; the API itself refuses other values."""
    customer = stripe_client.v1.customers.create({"email": "enum@example.com"})
    pack = {"price_data": {"currency": "usd", "unit_amount": 100, "product_data": {"name": "a"}},
            "quantity": 1}  # fmt: skip
    _refused(
        lambda: stripe_client.v1.invoices.create(
            {"customer": customer.id, "collection_method": "cash"}
        ),
        "collection_method",
    )
    _refused(
        lambda: stripe_client.v1.refunds.create({"charge": "ch_any", "reason": "because"}),
        "reason",
    )
    _refused(
        lambda: stripe_client.v1.checkout.sessions.create(
            {"mode": "payment", "locale": "xx-YY", "line_items": [pack]}
        ),
        "locale",
    )
    _refused(lambda: stripe_client.v1.invoices.list({"status": "bogus"}), "status")
    _refused(
        lambda: stripe_client.v1.payment_methods.create(
            {"type": "card", "card": {"token": "tok_visa"}, "allow_redisplay": "sometimes"}
        ),
        "allow_redisplay",
    )
    assert stripe_client.v1.invoices.list({"status": "open"}).data == []
    assert stripe_client.v1.invoices.list({"customer": customer.id}).data == []  # nothing made


def test_an_empty_required_string_is_refused(stripe_client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        stripe_client.v1.products.create({"name": ""})
    assert (info.value.http_status, info.value.param) == (400, "name")
    assert info.value.code == "parameter_invalid_empty"
    assert stripe_client.v1.products.list().data == []  # nothing was made
    # An optional string may still be emptied, as Stripe allows.
    customer = stripe_client.v1.customers.create({"email": "e@example.com", "name": "N"})
    assert stripe_client.v1.customers.update(customer.id, {"name": ""}).name in ("", None)


def test_subscriptions_are_read_as_stripe_reads_them(sandbox: SandboxServer) -> None:
    """No subscriptions are made yet: the list is empty and any id is resource_missing."""
    client = stripe.StripeClient("sk_test_subs", base_addresses={"api": sandbox.url})
    assert client.v1.subscriptions.list({"status": "all"}).data == []
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client.v1.subscriptions.retrieve("sub_1Pgc6rB7WZ01zgkWNy0Cn5nw")
    assert caught.value.code == "resource_missing"
    assert caught.value.http_status == 404
