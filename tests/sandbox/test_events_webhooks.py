"""Events recorded for every write, and signed webhook delivery to a loopback receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe

from stripe_sandbox import SandboxServer


def test_events_recorded_and_filtered(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"email": "a@example.com"})
    stripe_client.v1.customers.update(customer.id, {"email": "b@example.com"})
    stripe_client.v1.customers.delete(customer.id)
    stripe_client.v1.products.create({"name": "P"})

    types = [e.type for e in stripe_client.v1.events.list().data]
    assert types == ["product.created", "customer.deleted", "customer.updated", "customer.created"]

    updated = stripe_client.v1.events.list({"type": "customer.updated"}).data[0]
    assert updated.data.previous_attributes.to_dict() == {"email": "a@example.com"}
    assert updated.data.object["email"] == "b@example.com"
    assert updated.api_version == stripe.api_version
    assert updated.request is not None
    assert updated.request.id is not None
    assert updated.request.id.startswith("req_")
    assert updated.id.startswith("evt_")

    wildcard = stripe_client.v1.events.list({"type": "customer.*"}).data
    assert len(wildcard) == 3
    several = stripe_client.v1.events.list({"types": ["customer.created", "product.created"]})
    assert {e.type for e in several.data} == {"customer.created", "product.created"}
    assert stripe_client.v1.events.retrieve(updated.id).type == "customer.updated"


def test_no_event_for_a_no_op_update(stripe_client: stripe.StripeClient) -> None:
    customer = stripe_client.v1.customers.create({"name": "Same"})
    stripe_client.v1.customers.update(customer.id, {"name": "Same"})
    assert [e.type for e in stripe_client.v1.events.list().data] == ["customer.created"]


class _Receiver:
    """A loopback HTTP server that records webhook POSTs; fails the first `fail_first`."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[bytes, str]] = []
        self.got_one = threading.Event()
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(500)
                else:
                    receiver.received.append((body, self.headers["Stripe-Signature"]))
                    receiver.got_one.set()
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.close()


def test_signed_delivery(stripe_client: stripe.StripeClient, receiver: _Receiver) -> None:
    endpoint = stripe_client.v1.webhook_endpoints.create(
        {"url": receiver.url, "enabled_events": ["customer.created"]}
    )
    assert endpoint.secret is not None
    assert endpoint.secret.startswith("whsec_")
    assert stripe_client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict().get("secret") is None

    stripe_client.v1.products.create({"name": "Not subscribed"})
    customer = stripe_client.v1.customers.create({"email": "hook@example.com"})
    assert receiver.got_one.wait(timeout=10)
    payload, signature = receiver.received[0]
    event = stripe.Webhook.construct_event(payload.decode(), signature, endpoint.secret)
    assert event.type == "customer.created"
    assert event.data.object["id"] == customer.id
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload.decode(), signature, "whsec_wrong")
    assert len(receiver.received) == 1


def test_failed_delivery_is_retried_and_logged(
    stripe_client: stripe.StripeClient, sandbox: SandboxServer
) -> None:
    receiver = _Receiver(fail_first=1)
    try:
        stripe_client.v1.webhook_endpoints.create({"url": receiver.url, "enabled_events": ["*"]})
        created = stripe_client.v1.customers.create({"name": "Retry me"})
        assert receiver.got_one.wait(timeout=10)
        # The receiver has its event; the sandbox logs the attempt once it has read the answer,
        # a moment later on its own thread: wait for that, not a fixed time.
        deadline = time.monotonic() + 10
        attempts: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            attempts = [d for d in sandbox.deliveries() if d["event_type"] == "customer.created"]
            if any(d["succeeded"] for d in attempts):
                break
            time.sleep(0.02)
    finally:
        receiver.close()
    assert [(d["attempt"], d["succeeded"]) for d in attempts] == [(1, False), (2, True)]
    assert attempts[0]["status"] == 500
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        event = stripe_client.v1.events.list({"type": "customer.created"}).data[0]
        if event.pending_webhooks == 0:
            break
        time.sleep(0.05)
    assert event.data.object["id"] == created.id
    assert event.pending_webhooks == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/",
        "ftp://127.0.0.1/",
    ],
)
def test_non_loopback_endpoint_refused(stripe_client: stripe.StripeClient, url: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as excinfo:
        stripe_client.v1.webhook_endpoints.create({"url": url, "enabled_events": ["*"]})
    assert excinfo.value.param == "url"
    assert stripe_client.v1.webhook_endpoints.list().data == []


def test_endpoint_update_list_delete(stripe_client: stripe.StripeClient) -> None:
    endpoint = stripe_client.v1.webhook_endpoints.create(
        {"url": "http://localhost:9/hook", "enabled_events": ["*"], "description": "local"}
    )
    updated = stripe_client.v1.webhook_endpoints.update(
        endpoint.id, {"disabled": True, "enabled_events": ["price.created"]}
    )
    assert updated.status == "disabled"
    assert updated.enabled_events == ["price.created"]
    assert [e.id for e in stripe_client.v1.webhook_endpoints.list().data] == [endpoint.id]
    assert stripe_client.v1.webhook_endpoints.delete(endpoint.id).deleted is True
    assert stripe_client.v1.webhook_endpoints.list().data == []
