"""Pulling from the sandbox into the mirror: complete, idempotent, cancellable, deletions marked."""

from __future__ import annotations

import peewee
import stripe

from services.audit import Authority
from services.browse import BrowseService
from services.models import Customer, Price, Product
from services.operators import sign_in
from services.stripe_gateway import StripeGateway
from services.sync import SyncProgress, SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY


def _service(database: peewee.Database, sandbox: SandboxServer) -> SyncService:
    gateway = StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)
    return SyncService(database, gateway, Authority(database, sign_in(database, "test-admin")))


def _make_customers(client: stripe.StripeClient, n: int) -> list[str]:
    return [
        client.v1.customers.create({"email": f"c{i}@example.com", "name": f"Customer {i}"}).id
        for i in range(n)
    ]


def test_pull_mirrors_everything_and_a_second_pull_writes_nothing(
    database: peewee.Database, sandbox: SandboxServer
) -> None:
    counts = sandbox.seed_demo()
    sync = _service(database, sandbox)
    seen: list[SyncProgress] = []
    first = sync.pull(progress=seen.append)
    assert not first.cancelled
    assert first.seen["customers"] == Customer.select().count() == counts["customers"]
    assert first.seen["products"] == Product.select().count() > 0
    assert first.seen["prices"] == Price.select().count() > 0
    assert seen
    assert seen[-1].kind == "prices"
    packs = [
        p
        for p in BrowseService(
            database, Authority(database, sign_in(database, "test-admin"))
        ).products()
        if p.credits
    ]
    assert packs, "the demo seed has credit packs"

    second = sync.pull()
    assert second.changed == {"customers": 0, "invoices": 0, "products": 0, "prices": 0}
    assert "0 changed" in second.line()


def test_pull_pages_through_more_than_one_page(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    ids = _make_customers(stripe_client, 130)
    pages: list[SyncProgress] = []
    summary = _service(database, sandbox).pull(SyncTarget.CUSTOMERS, progress=pages.append)
    assert summary.seen == {"customers": 130}
    assert [p.done for p in pages] == [100, 130]
    assert {c.stripe_id for c in Customer.select()} == set(ids)


def test_customers_deleted_in_stripe_are_marked_not_kept(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    keep, gone = _make_customers(stripe_client, 2)
    sync = _service(database, sandbox)
    sync.pull(SyncTarget.CUSTOMERS)
    stripe_client.v1.customers.delete(gone)
    summary = sync.pull(SyncTarget.CUSTOMERS)
    assert summary.marked_deleted == 1
    assert [
        r.stripe_id
        for r in BrowseService(
            database, Authority(database, sign_in(database, "test-admin"))
        ).customers()
    ] == [keep]
    assert Customer.get(Customer.stripe_id == gone).deleted


def test_a_cancelled_pull_keeps_finished_pages(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    _make_customers(stripe_client, 150)
    pages: list[SyncProgress] = []

    summary = _service(database, sandbox).pull(
        SyncTarget.CUSTOMERS, progress=pages.append, cancelled=lambda: len(pages) >= 1
    )
    assert summary.cancelled
    assert summary.line().startswith("Cancelled")
    assert Customer.select().count() == 100
    assert not Customer.select().where(Customer.deleted == True).exists()  # noqa: E712
