"""Every event type Stripe documents, with Stripe's own payloads, through the real receiver.

The payloads are Stripe's published fixtures (tests/fixtures/stripe_openapi), wrapped in events
of each of the 275 types stripe-python's `Event.type` names — written by Stripe, not by our
sandbox, which the app re-reads objects from (and which knows none of these ids). Plus the
shapes fixtures do not cover: an upcoming invoice (no id), deleted objects, v2 thin events.

What must hold: no signed event is answered 500 (nothing here is transient: the sandbox is up),
none is stored `failed` or `rejected`, the mirror never gains a customer row that is not a
customer, and delivering the whole corpus again — or replaying every stored event — leaves the
same database.
"""

from __future__ import annotations

import http.client
import inspect
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peewee
import pytest
import stripe

from services.audit import Authority
from services.credits import CREDIT_ROUTES
from services.events import ROUTES, EventPipeline
from services.models import (
    CreditEntry,
    Customer,
    Invoice,
    Price,
    Product,
    Subscription,
    TopUp,
    WebhookEvent,
)
from services.stripe_gateway import StripeGateway
from services.webhook_receiver import WEBHOOK_PATH, WebhookReceiver
from stripe_sandbox import SandboxServer
from stripe_sandbox.webhooks import sign
from tests.conftest import TEST_KEY

FIXTURES = Path(__file__).parents[1] / "fixtures" / "stripe_openapi" / "fixtures3.json"
SECRET = "whsec_corpus_secret"

#: Event-type prefixes whose object is not named like the prefix.
_KIND = {
    "customer.subscription": "subscription",
    "customer.source": "card",
    "customer.tax_id": "tax_id",
    "customer.discount": "discount",
    "charge.dispute": "dispute",
    "charge.refund": "refund",
    "invoice.upcoming": "invoice",
    "account.external_account": "external_account",
    "account.application": "application",
    "issuing_authorization": "issuing.authorization",
    "issuing_card": "issuing.card",
    "issuing_cardholder": "issuing.cardholder",
    "issuing_dispute": "issuing.dispute",
    "issuing_personalization_design": "issuing.personalization_design",
    "issuing_token": "issuing.token",
    "issuing_transaction": "issuing.transaction",
    "person": "person",
    "application_fee.refund": "fee_refund",
    "sigma.scheduled_query_run": "scheduled_query_run",
    "source.transaction": "source_transaction",
}


def documented_types() -> list[str]:
    """The event types stripe-python 16.1.0 documents (`Event.type`)."""
    source = inspect.getsource(stripe.Event)
    start = source.index("type: Literal[")
    return re.findall(r'"([a-z0-9_.]+)"', source[start : source.index("]", start)])


def _payload(event_type: str, resources: dict[str, Any]) -> dict[str, Any]:
    prefix = event_type.rsplit(".", 1)[0]
    kind = _KIND.get(event_type, _KIND.get(prefix, prefix))
    if kind not in resources and kind.replace("_", ".", 1) in resources:
        kind = kind.replace("_", ".", 1)
    deleted = resources.get(f"deleted_{kind}") if event_type.endswith(".deleted") else None
    obj = dict(deleted or resources.get(kind) or {"id": f"{kind}_corpus", "object": kind})
    if event_type == "invoice.upcoming":
        obj.pop("id", None)  # Stripe's preview of the next invoice has none
    return obj


def corpus() -> list[dict[str, Any]]:
    resources = json.loads(FIXTURES.read_text())["resources"]
    now = int(time.time())
    events = [
        {
            "id": f"evt_corpus_{n:03d}",
            "object": "event",
            "api_version": stripe.api_version,
            "created": now - 1000 + n,
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": _payload(event_type, resources)},
            "request": {"id": None, "idempotency_key": None},
        }
        for n, event_type in enumerate(documented_types())
    ]
    events.append(
        {
            "id": "evt_corpus_thin",
            "object": "v2.core.event",
            "type": "v1.billing.meter.error_report_triggered",
            "created": "2026-11-30T12:00:00.123Z",
            "livemode": False,
            "context": None,
            "reason": None,
            "related_object": {
                "id": "mtr_corpus",
                "type": "billing.meter",
                "url": "/v1/billing/meters/mtr_corpus",
            },
        }
    )
    return events


def _post(port: int, event: dict[str, Any]) -> int:
    body = json.dumps(event)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(
            "POST", WEBHOOK_PATH, body=body.encode(),
            headers={"Stripe-Signature": sign(body, SECRET, int(time.time())),
                     "Content-Type": "application/json"},
        )  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Everything an event can change, in a stable order."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for model in (Customer, Product, Price, Invoice, Subscription, CreditEntry, TopUp):
        fields = [f for f in model._meta.sorted_fields if f.name not in ("id", "synced_at")]
        tables[model.__name__] = sorted(
            tuple(str(getattr(row, f.name)) for f in fields) for row in model.select()
        )
    tables["events"] = sorted(
        (e.evt_id, e.type, e.status, e.last_error or "", e.flagged or "")
        for e in WebhookEvent.select()
    )
    return tables


@pytest.fixture
def pipeline(database: peewee.Database, sandbox: SandboxServer) -> EventPipeline:
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True, max_network_retries=0)
    return EventPipeline(database, gateway, [*CREDIT_ROUTES, *ROUTES])


@pytest.fixture
def receiver(pipeline: EventPipeline) -> Iterator[WebhookReceiver]:
    rx = WebhookReceiver(pipeline, lambda: [SECRET], port=0)
    rx.start()
    yield rx
    rx.stop()


def test_the_corpus_covers_every_documented_type() -> None:
    types = documented_types()
    assert len(types) == 275
    assert {
        "invoice_payment.paid", "charge.dispute.closed", "customer.tax_id.created",
        "invoice.upcoming", "product.deleted", "payment_intent.succeeded",
    } <= set(types)  # fmt: skip
    resources = json.loads(FIXTURES.read_text())["resources"]
    made_up = [t for t in types if str(_payload(t, resources).get("id", "")).endswith("_corpus")]
    # Types whose object has no published fixture get a minimal {id, object}; there are few.
    assert len(made_up) <= 10, made_up  # apps.install.*, three_d_secure.authentication.*


def test_stripes_own_payloads_settle_and_a_second_delivery_changes_nothing(
    receiver: WebhookReceiver, pipeline: EventPipeline, authority: Authority
) -> None:
    events = corpus()
    answers = {e["id"]: _post(receiver.port, e) for e in events}
    assert {k: v for k, v in answers.items() if v != 200} == {}
    stored = {e.evt_id: e for e in WebhookEvent.select()}
    assert len(stored) == len(events)
    unsettled = {k: (e.type, e.status, e.last_error) for k, e in stored.items()
                 if e.status not in ("applied", "ignored")}  # fmt: skip
    assert unsettled == {}
    # The mirror never gains a row of the wrong kind (a card_, txi_, di_… as a customer).
    assert all(c.stripe_id.startswith("cus_") for c in Customer.select())
    assert all(p.stripe_id.startswith("prod_") for p in Product.select())
    assert all(i.stripe_id.startswith("in_") for i in Invoice.select())
    assert not CreditEntry.select().exists()  # nothing here paid for anything of ours
    first = snapshot()

    answers = {e["id"]: _post(receiver.port, e) for e in events}
    assert set(answers.values()) == {200}
    assert snapshot() == first

    # An admin replaying every stored event settles each the same way again.
    for event in events:
        pipeline.replay(event["id"], authority)
    assert snapshot() == first
