"""Pulling from the sandbox into the mirror: complete, idempotent, cancellable, deletions marked."""

from __future__ import annotations

import threading

import peewee
import pytest
import stripe

from services.audit import Authority
from services.browse import BrowseService
from services.errors import AuthenticationFailed
from services.mirror import ROW_BUILDERS
from services.models import Customer, Invoice, Price, Product, Subscription
from services.operators import sign_in
from services.stripe_gateway import StripeGateway
from services.sync import SyncProgress, SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY
from tests.sandbox.raw_http import call


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
    assert seen[-1].kind == "subscriptions"  # the demo's, pulled last
    assert first.seen["subscriptions"] == Subscription.select().count() > 0
    packs = [
        p
        for p in BrowseService(
            database, Authority(database, sign_in(database, "test-admin"))
        ).products()
        if p.credits
    ]
    assert packs, "the demo seed has credit packs"

    second = sync.pull()
    assert second.changed == {
        "customers": 0, "invoices": 0, "products": 0, "prices": 0, "subscriptions": 0
    }  # fmt: skip
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


def test_pages_read_as_json_mirror_the_same_rows_as_typed_stripe_objects(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    sandbox.seed_demo()
    _service(database, sandbox).pull()
    listers = {
        Customer: stripe_client.v1.customers.list,
        Product: stripe_client.v1.products.list,
        Price: stripe_client.v1.prices.list,
        Invoice: stripe_client.v1.invoices.list,
    }
    for model, lister in listers.items():
        # What the sync wrote before it read JSON: typed objects turned back into dicts.
        typed = [o.to_dict(for_json=True) for o in lister({"limit": 100}).auto_paging_iter()]
        assert typed, model.__name__
        expected = {row["stripe_id"]: row for row in (ROW_BUILDERS[model](obj, 0) for obj in typed)}
        columns = [name for name in next(iter(expected.values())) if name != "synced_at"]
        stored = {
            row["stripe_id"]: row
            for row in model.select(*[model._meta.fields[c] for c in columns]).dicts()
        }
        assert stored.keys() == expected.keys(), model.__name__
        for sid, row in expected.items():
            assert {c: stored[sid][c] for c in columns} == {c: row[c] for c in columns}, sid


def test_an_error_on_the_second_page_surfaces_typed_and_keeps_the_first(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    _make_customers(stripe_client, 150)
    # The first list request only passes a harmless delay; the second (page 2) is refused.
    for fault in (
        "path_prefix=/v1/customers&method=GET&delay_ms=1&count=1",
        "path_prefix=/v1/customers&method=GET&status=401&count=1",
    ):
        status, _, _ = call(sandbox.url, "POST", "/_sandbox/faults", fault, key=None)
        assert status == 200
    sync = _service(database, sandbox)
    with pytest.raises(AuthenticationFailed):
        sync.pull(SyncTarget.CUSTOMERS)
    assert Customer.select().count() == 100
    assert not [t for t in threading.enumerate() if t.name.startswith("sync-prefetch")]
    assert sync.pull(SyncTarget.CUSTOMERS).seen == {"customers": 150}


def test_a_pull_cancelled_mid_way_stops_fetching(
    database: peewee.Database, sandbox: SandboxServer, stripe_client: stripe.StripeClient
) -> None:
    _make_customers(stripe_client, 600)
    # A harmless delay on every list request, used only to count them.
    _, _, counter = call(
        sandbox.url, "POST", "/_sandbox/faults",
        "path_prefix=/v1/customers&method=GET&delay_ms=1&count=100", key=None,
    )  # fmt: skip
    pages: list[SyncProgress] = []
    summary = _service(database, sandbox).pull(
        SyncTarget.CUSTOMERS, progress=pages.append, cancelled=lambda: len(pages) >= 2
    )
    assert summary.cancelled
    assert [p.done for p in pages] == [100, 200]
    assert Customer.select().count() == 200
    assert not [t for t in threading.enumerate() if t.name.startswith("sync-prefetch")]
    listed = call(sandbox.url, "GET", "/_sandbox/faults", key=None)[2]["data"]
    fetched = 100 - next(f["remaining"] for f in listed if f["id"] == counter["id"])
    # Pages 1-3 were needed to see the cancel; at most one more was in flight, none after.
    assert 3 <= fetched <= 4
