"""No action holds the database while it waits for Stripe (issue 19).

On SQLite a transaction takes the write lock when it begins, so an action that called Stripe
inside one would lock out every other writer for the length of a network call — the webhook
listener included, which then fails with "database is locked". Each action here is held in
Stripe by the sandbox's fault injection (a delay) while the listener stores an event; the
listener's connection waits only briefly for a lock, so any lock held across the call fails it.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import peewee
import pytest
import stripe

from services.audit import Authority
from services.catalog import CatalogService, ProductDraft
from services.credits import CREDIT_ROUTES, CreditService
from services.customers import CustomerDraft, CustomerService
from services.events import ROUTES, EventPipeline, Result, Source
from services.invoices import DraftLine, InvoiceDraft, InvoiceService
from services.models import AuditRecord, WebhookEvent
from services.settings import Settings
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY

DEADLINE_S = 20
DELAY_MS = 3000  # how long Stripe "takes": far longer than the listener's lock wait below
LISTENER_LOCK_WAIT_MS = 200


def _faults(sandbox: SandboxServer) -> list[Any]:
    with urllib.request.urlopen(sandbox.url + "/_sandbox/faults", timeout=10) as response:
        return list(json.loads(response.read())["data"])


def _slow(sandbox: SandboxServer, path_prefix: str, method: str = "POST") -> None:
    form = f"path_prefix={path_prefix}&method={method}&delay_ms={DELAY_MS}&count=1".encode()
    request = urllib.request.Request(sandbox.url + "/_sandbox/faults", data=form, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


class Services:
    def __init__(
        self, db: peewee.Database, sandbox: SandboxServer, authority: Authority,
        client: stripe.StripeClient,
    ) -> None:  # fmt: skip
        self.db = db
        self.sandbox = sandbox
        self.client = client
        self.gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
        self.authority = authority
        self.credits = CreditService(db, self.gateway, authority, Settings())
        self.customers = CustomerService(db, self.gateway, authority)
        self.invoices = InvoiceService(db, self.gateway, authority)
        self.catalog = CatalogService(db, self.gateway, authority)
        self.pipeline = EventPipeline(db, self.gateway, [*CREDIT_ROUTES, *ROUTES])

    def customer(self) -> str:
        draft = CustomerDraft(email=f"slow-{uuid.uuid4().hex[:6]}@example.com", name="Slow")
        return self.customers.create(draft, f"k-{uuid.uuid4()}").stripe_id

    def listener_stores_an_event(self) -> Result:
        """What the webhook listener does for each delivery, on its own thread and connection,
        waiting at most LISTENER_LOCK_WAIT_MS for a lock."""
        out: list[Result | BaseException] = []

        def listen() -> None:
            try:
                self.db.execute_sql(f"PRAGMA busy_timeout = {LISTENER_LOCK_WAIT_MS}")
                event = {
                    "id": f"evt_{uuid.uuid4().hex[:20]}", "object": "event",
                    "type": "customer.tax_id.created", "created": int(time.time()),
                    "livemode": False, "data": {"object": {"id": "txi_1", "object": "tax_id"}},
                }  # fmt: skip
                out.append(self.pipeline.receive(event, Source.RECEIVER))
            except BaseException as exc:
                out.append(exc)
            finally:
                self.db.close()

        thread = threading.Thread(target=listen)
        thread.start()
        thread.join(DEADLINE_S)
        (result,) = out
        if isinstance(result, BaseException):
            raise result
        return result


@pytest.fixture
def services(
    database: peewee.Database, sandbox: SandboxServer, authority: Authority,
    stripe_client: stripe.StripeClient,
) -> Services:  # fmt: skip
    if not isinstance(database, peewee.SqliteDatabase):
        pytest.skip("PostgreSQL locks rows, not the database: only SQLite can lock out a writer")
    sandbox.seed_demo()
    s = Services(database, sandbox, authority, stripe_client)
    SyncService(database, s.gateway, authority).pull(SyncTarget.PRODUCTS)
    return s


def _while_stripe_is_slow(
    services: Services, path_prefix: str, action: Callable[[], Any], audit_action: str
) -> Any:
    """Run `action` with its Stripe call held open; meanwhile the listener must commit."""
    _slow(services.sandbox, path_prefix)
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(action())
        except BaseException as exc:
            out.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + DEADLINE_S
    while _faults(services.sandbox):  # taken: the request is in Stripe now, being held
        assert time.monotonic() < deadline, "the action never reached Stripe"
        time.sleep(0.02)
    before = WebhookEvent.select().count()
    assert services.listener_stores_an_event() is Result.IGNORED
    assert WebhookEvent.select().count() == before + 1
    assert worker.is_alive(), "the listener was not tested while Stripe was held"
    worker.join(DEADLINE_S)
    (result,) = out
    if isinstance(result, BaseException):
        raise result
    last = AuditRecord.select().order_by(AuditRecord.id.desc()).get()
    assert (last.action, last.outcome) == (audit_action, "ok")
    return result


def test_issuing_a_top_up_link(services: Services) -> None:
    customer = services.customer()
    _while_stripe_is_slow(
        services, "/v1/checkout/sessions",
        lambda: services.credits.issue_topup(customer, f"k-{uuid.uuid4()}", credits=100),
        "topup.issue",
    )  # fmt: skip


def test_expiring_a_top_up_link(services: Services) -> None:
    customer = services.customer()
    link = services.credits.issue_topup(customer, f"k-{uuid.uuid4()}", credits=100)
    session = link.topup.checkout_session_id
    _while_stripe_is_slow(
        services, f"/v1/checkout/sessions/{session}/expire",
        lambda: services.credits.expire_topup(link.topup.topup_id), "topup.expire",
    )  # fmt: skip


def test_creating_a_customer_and_editing_it(services: Services) -> None:
    draft = CustomerDraft(email="held@example.com", name="Held")
    stripe_id = _while_stripe_is_slow(
        services, "/v1/customers", lambda: services.customers.create(draft), "customer.create"
    ).stripe_id
    renamed = CustomerDraft(email="held@example.com", name="Held Again")
    _while_stripe_is_slow(
        services, f"/v1/customers/{stripe_id}",
        lambda: services.customers.update(stripe_id, renamed), "customer.update",
    )  # fmt: skip


def test_creating_finalizing_sending_and_voiding_an_invoice(services: Services) -> None:
    line = DraftLine(description="Consulting", amount=2500, currency="usd")
    draft = InvoiceDraft(services.customer(), (line,), send_invoice=True)
    invoice = _while_stripe_is_slow(
        services, "/v1/invoices", lambda: services.invoices.create_draft(draft), "invoice.create"
    ).stripe_id
    for verb, action, audit in (
        ("finalize", services.invoices.finalize, "invoice.finalize"),
        ("send", services.invoices.send, "invoice.send"),
        ("void", services.invoices.void, "invoice.void"),
    ):
        _while_stripe_is_slow(
            services, f"/v1/invoices/{invoice}/{verb}", lambda a=action: a(invoice), audit
        )


def test_adding_and_changing_a_product(services: Services) -> None:
    draft = ProductDraft(name="Held pack", amount=900, currency="usd", credits=90)
    product = _while_stripe_is_slow(
        services, "/v1/products", lambda: services.catalog.create(draft), "product.create"
    )
    cheaper = ProductDraft(name="Held pack", amount=800, currency="usd", credits=90)
    _while_stripe_is_slow(
        services, "/v1/prices", lambda: services.catalog.update(product.stripe_id, cheaper),
        "product.update",
    )  # fmt: skip
