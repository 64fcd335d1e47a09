"""Fault injection: injected statuses change nothing and are not remembered under the
idempotency key; delays; method and prefix matching; listing and clearing."""

from __future__ import annotations

import time

import pytest
import stripe

from stripe_sandbox import SandboxServer
from tests.sandbox.raw_http import call


def _fault(sandbox: SandboxServer, body: str) -> dict[str, object]:
    status, _, fault = call(sandbox.url, "POST", "/_sandbox/faults", body, key=None)
    assert status == 200, fault
    return dict(fault)


def _client(sandbox: SandboxServer, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_faults", base_addresses={"api": sandbox.url}, max_network_retries=retries
    )


def test_rate_limit_then_success_with_the_same_idempotency_key(sandbox: SandboxServer) -> None:
    client = _client(sandbox)
    fault = _fault(sandbox, "path_prefix=/v1/customers&method=POST&status=429&count=2")
    assert fault["remaining"] == 2
    options: stripe.RequestOptions = {"idempotency_key": "create-once"}
    for _ in range(2):
        with pytest.raises(stripe.RateLimitError) as excinfo:
            client.v1.customers.create({"email": "a@example.com"}, options)
        assert excinfo.value.http_status == 429
        assert excinfo.value.error is not None
        assert excinfo.value.error.code == "rate_limit"
        assert excinfo.value.request_id is not None
    # Nothing happened, and the key was not used up by the failures.
    assert client.v1.customers.list().data == []
    assert client.v1.events.list().data == []
    created = client.v1.customers.create({"email": "a@example.com"}, options)
    assert created.last_response is not None
    assert "Idempotent-Replayed" not in created.last_response.headers
    again = client.v1.customers.create({"email": "a@example.com"}, options)
    assert again.id == created.id
    assert len(client.v1.customers.list().data) == 1
    assert call(sandbox.url, "GET", "/_sandbox/faults", key=None)[2]["data"] == []


def test_server_error_is_retried_by_stripe_python(sandbox: SandboxServer) -> None:
    _fault(sandbox, "path_prefix=/v1/products&status=500&count=1")
    # stripe-python retries a 500 (with the idempotency key it adds to POSTs).
    product = _client(sandbox, retries=2).v1.products.create({"name": "Retried"})
    assert product.name == "Retried"
    assert len(_client(sandbox).v1.products.list().data) == 1

    _fault(sandbox, "path_prefix=/v1/products&status=503&count=1&message=Down+for+a+bit")
    with pytest.raises(stripe.APIError) as excinfo:
        _client(sandbox).v1.products.list()
    assert excinfo.value.http_status == 503
    assert "Down for a bit" in str(excinfo.value.user_message)


def test_should_retry_header(sandbox: SandboxServer) -> None:
    _fault(sandbox, "path_prefix=/v1/products&status=500&count=1&should_retry=false")
    status, headers, body = call(sandbox.url, "GET", "/v1/products")
    assert status == 500
    assert headers["Stripe-Should-Retry"] == "false"
    assert body["error"]["type"] == "api_error"
    # stripe-python honours the header: no retry, even with retries enabled.
    _fault(sandbox, "path_prefix=/v1/products&status=500&count=2&should_retry=false")
    with pytest.raises(stripe.APIError):
        _client(sandbox, retries=2).v1.products.list()
    listed = call(sandbox.url, "GET", "/_sandbox/faults", key=None)[2]["data"]
    assert [f["remaining"] for f in listed] == [1]


def test_method_and_prefix_matching(sandbox: SandboxServer) -> None:
    client = _client(sandbox)
    _fault(sandbox, "path_prefix=/v1/customers/&method=DELETE&status=404&code=resource_missing")
    customer = client.v1.customers.create({"name": "Kept"})
    assert client.v1.customers.retrieve(customer.id).name == "Kept"
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        client.v1.customers.delete(customer.id)
    assert excinfo.value.code == "resource_missing"
    assert client.v1.customers.retrieve(customer.id).name == "Kept"
    assert client.v1.customers.delete(customer.id).deleted is True


def test_card_error_status(sandbox: SandboxServer) -> None:
    _fault(sandbox, "path_prefix=/v1/invoices&status=402&code=card_declined")
    with pytest.raises(stripe.CardError) as excinfo:
        _client(sandbox).v1.invoices.list()
    assert excinfo.value.code == "card_declined"


def test_delay(sandbox: SandboxServer) -> None:
    client = _client(sandbox)
    _fault(sandbox, "path_prefix=/v1/customers&method=GET&delay_ms=300")
    started = time.monotonic()
    assert client.v1.customers.list().data == []
    assert time.monotonic() - started >= 0.3
    # Used up: the next request is not delayed (and the delay alone changes no answer).
    assert call(sandbox.url, "GET", "/_sandbox/faults", key=None)[2]["data"] == []


def test_list_clear_and_validation(sandbox: SandboxServer) -> None:
    first = _fault(sandbox, "path_prefix=/v1/prices&status=500&count=3")
    _fault(sandbox, "path_prefix=/v1/products&delay_ms=10")
    status, _, listed = call(sandbox.url, "GET", "/_sandbox/faults", key=None)
    assert status == 200
    assert [f["path_prefix"] for f in listed["data"]] == ["/v1/prices", "/v1/products"]
    status, _, removed = call(sandbox.url, "DELETE", f"/_sandbox/faults/{first['id']}", key=None)
    assert removed["deleted"] == 1
    status, _, _ = call(sandbox.url, "DELETE", f"/_sandbox/faults/{first['id']}", key=None)
    assert status == 404
    status, _, cleared = call(sandbox.url, "DELETE", "/_sandbox/faults", key=None)
    assert cleared["deleted"] == 1
    assert call(sandbox.url, "GET", "/_sandbox/faults", key=None)[2]["data"] == []
    for bad in (
        "status=500",
        "path_prefix=v1&status=500",
        "path_prefix=/v1/x",
        "path_prefix=/v1/x&status=200",
        "path_prefix=/v1/x&status=500&count=0",
        "path_prefix=/v1/x&status=abc",
        "path_prefix=/v1/x&status=500&method=PUT",
        "path_prefix=/v1/x&delay_ms=999999",
    ):
        status, _, body = call(sandbox.url, "POST", "/_sandbox/faults", bad, key=None)
        assert status == 400, bad
        assert body["error"]["type"] == "invalid_request_error"


def test_reset_clears_faults_and_sandbox_routes_are_exempt(sandbox: SandboxServer) -> None:
    _fault(sandbox, "path_prefix=/&status=500&count=5")
    status, _, _ = call(sandbox.url, "GET", "/_sandbox/faults", key=None)
    assert status == 200
    sandbox.reset()
    assert _client(sandbox).v1.customers.list().data == []
