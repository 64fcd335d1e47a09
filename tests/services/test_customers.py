"""Customers and the catalog in both directions, against the sandbox."""

from __future__ import annotations

import urllib.request
import uuid

import peewee
import pytest
import stripe

from services.audit import Authority
from services.catalog import CatalogService, ProductDraft
from services.customers import Address, CustomerDraft, CustomerService
from services.errors import NotFound, PermissionDenied, ValidationError
from services.models import AuditRecord, Customer, Price, Product
from services.operators import OperatorService, sign_in
from services.permissions import Role
from services.stripe_gateway import StripeGateway
from services.sync import SyncService, SyncTarget
from stripe_sandbox import SandboxServer
from tests.conftest import TEST_KEY


@pytest.fixture
def gateway(sandbox: SandboxServer) -> StripeGateway:
    return StripeGateway(TEST_KEY, api_base=sandbox.url, sandbox=True)


@pytest.fixture
def customers(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> CustomerService:
    return CustomerService(database, gateway, authority)


@pytest.fixture
def catalog(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> CatalogService:
    return CatalogService(database, gateway, authority)


def _as(database: peewee.Database, authority: Authority, role: Role) -> Authority:
    login = f"{role.value}-x"
    OperatorService(database, authority).add(login, role)
    return Authority(database, sign_in(database, login))


def _key() -> str:
    return f"test-{uuid.uuid4()}"


def test_create_goes_to_stripe_and_notes_stay_local(
    customers: CustomerService, stripe_client: stripe.StripeClient
) -> None:
    draft = CustomerDraft(
        email="ada@example.com",
        name="Ada Lovelace",
        phone="+44 20 7946 0000",
        address=Address(line1="12 St James's Sq", city="London", postal_code="SW1Y", country="gb"),
        metadata={"account_id": "acct-7"},
        notes="Pays by wire; call before charging",
        tags=("vip", "vip", " uk "),
    )
    made = customers.create(draft, _key())
    remote = stripe_client.v1.customers.retrieve(made.stripe_id)
    assert (remote.email, remote.name, remote.phone) == (draft.email, draft.name, draft.phone)
    assert remote.address is not None
    assert remote.address.country == "GB"
    assert remote.metadata is not None
    assert remote.metadata.to_dict() == {"account_id": "acct-7"}
    assert "wire" not in str(remote.to_dict())  # notes never reach Stripe
    assert made.notes == "Pays by wire; call before charging"
    assert made.tags == ("vip", "uk")
    (row,) = AuditRecord.select().where(AuditRecord.action == "customer.create")
    assert (row.target, row.outcome) == (made.stripe_id, "ok")
    assert row.idempotency_key.startswith("test-")
    assert row.stripe_request_id.startswith("req_")


def test_round_trip_create_pull_edit_push_pull(
    database: peewee.Database,
    customers: CustomerService,
    gateway: StripeGateway,
    authority: Authority,
    stripe_client: stripe.StripeClient,
) -> None:
    created = stripe_client.v1.customers.create({"email": "grace@example.com", "name": "Grace"})
    sync = SyncService(database, gateway, authority)
    sync.pull(SyncTarget.CUSTOMERS)
    before = customers.detail(created.id)
    draft = CustomerDraft(
        email="grace.hopper@navy.example", name="Grace Hopper", metadata={"rank": "rear admiral"},
        notes="local note",
    )  # fmt: skip
    customers.update(created.id, draft, _key())
    remote = stripe_client.v1.customers.retrieve(created.id)
    assert (remote.email, remote.name) == ("grace.hopper@navy.example", "Grace Hopper")

    summary = sync.pull(SyncTarget.CUSTOMERS)
    assert summary.changed == {"customers": 0}  # the push already stored what Stripe has
    after = customers.detail(created.id)
    assert after.notes == "local note"  # a pull never overwrites local fields
    assert Customer.get(Customer.stripe_id == created.id).raw == remote.to_dict(for_json=True)
    assert after.email != before.email


def test_metadata_keys_removed_locally_are_removed_in_stripe(
    customers: CustomerService, stripe_client: stripe.StripeClient
) -> None:
    made = customers.create(
        CustomerDraft(email="m@example.com", metadata={"a": "1", "b": "2"}), _key()
    )
    customers.update(
        made.stripe_id, CustomerDraft(email="m@example.com", metadata={"b": "3"}), _key()
    )
    remote = stripe_client.v1.customers.retrieve(made.stripe_id)
    assert remote.metadata is not None
    assert remote.metadata.to_dict() == {"b": "3"}


def test_a_retried_create_with_the_same_key_makes_one_customer(
    customers: CustomerService, stripe_client: stripe.StripeClient
) -> None:
    key = _key()
    draft = CustomerDraft(email="once@example.com", name="Only Once")
    first = customers.create(draft, key)
    second = customers.create(draft, key)  # the dialog's Save pressed again after a timeout
    assert first.stripe_id == second.stripe_id
    found = stripe_client.v1.customers.list({"email": "once@example.com"}).data
    assert len(found) == 1
    assert Customer.select().where(Customer.email == "once@example.com").count() == 1


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        (CustomerDraft(email=""), "required"),
        (CustomerDraft(email="not-an-email"), "valid email"),
        (CustomerDraft(email="a@b.co", phone="call me"), "phone"),
        (CustomerDraft(email="a@b.co", address=Address(line1="x")), "country"),
        (CustomerDraft(email="a@b.co", address=Address(country="USA")), "two-letter"),
        (CustomerDraft(email="a@b.co", metadata={"k" * 41: "v"}), "40 characters"),
        (CustomerDraft(email="a@b.co", name="n" * 300), "too long"),
    ],
)
def test_validation_errors_change_nothing(
    customers: CustomerService,
    stripe_client: stripe.StripeClient,
    draft: CustomerDraft,
    message: str,
) -> None:
    with pytest.raises(ValidationError, match=message):
        customers.create(draft, _key())
    assert stripe_client.v1.customers.list({"limit": 1}).data == []
    assert not Customer.select().exists()
    assert not AuditRecord.select().where(AuditRecord.action == "customer.create").exists()


def test_stripe_refusing_leaves_the_local_row_unchanged(
    customers: CustomerService, stripe_client: stripe.StripeClient
) -> None:
    made = customers.create(CustomerDraft(email="gone@example.com", name="Gone"), _key())
    stripe_client.v1.customers.delete(made.stripe_id)  # deleted in Stripe, not yet pulled
    with pytest.raises(NotFound):
        customers.update(made.stripe_id, CustomerDraft(email="new@example.com"), _key())
    assert customers.detail(made.stripe_id).email == "gone@example.com"
    row = AuditRecord.select().where(AuditRecord.action == "customer.update").get()
    assert row.outcome == "refused"
    assert row.stripe_request_id


def test_who_may_edit_customers_and_issue_portal_links(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    finance = CustomerService(database, gateway, _as(database, authority, Role.FINANCE))
    support = CustomerService(database, gateway, _as(database, authority, Role.SUPPORT))
    with pytest.raises(PermissionDenied, match="edit customer"):
        finance.create(CustomerDraft(email="f@example.com"), _key())
    made = support.create(CustomerDraft(email="s@example.com"), _key())
    with pytest.raises(PermissionDenied, match="issue portal link"):
        finance.portal_link(made.stripe_id, _key())
    assert support.portal_link(made.stripe_id, _key()).url


def test_portal_link_is_a_page_the_customer_can_open(
    customers: CustomerService,
) -> None:
    made = customers.create(CustomerDraft(email="p@example.com", name="Portal Pat"), _key())
    link = customers.portal_link(made.stripe_id, _key(), return_url="https://example.com/account")
    assert link.session_id.startswith("bps_")
    with urllib.request.urlopen(link.url, timeout=5) as page:  # the sandbox's own page
        assert page.status == 200
        assert "Portal Pat" in page.read().decode()
    row = AuditRecord.select().where(AuditRecord.action == "portal.create").get()
    assert (row.target, row.outcome) == (made.stripe_id, "ok")


def test_a_portal_link_for_an_unknown_customer_is_refused(customers: CustomerService) -> None:
    with pytest.raises(NotFound):
        customers.portal_link("cus_nobody", _key())


def test_credit_pack_products_round_trip(
    catalog: CatalogService, stripe_client: stripe.StripeClient
) -> None:
    pack = catalog.create(ProductDraft("250 credits", 2500, "usd", credits=250), _key())
    assert pack.credits == 250
    remote = stripe_client.v1.products.retrieve(pack.stripe_id)
    assert remote.metadata is not None
    assert remote.metadata.to_dict() == {"credits": "250"}
    old_price = pack.default_price
    assert old_price is not None
    assert (old_price.unit_amount, old_price.currency) == (2500, "usd")

    changed = catalog.update(
        pack.stripe_id, ProductDraft("250 credits", 2200, "usd", credits=300), _key()
    )
    assert changed.credits == 300
    assert changed.default_price is not None
    assert changed.default_price.unit_amount == 2200
    assert not stripe_client.v1.prices.retrieve(old_price.stripe_id).active
    assert Price.get(Price.stripe_id == old_price.stripe_id).active is False

    archived = catalog.set_active(pack.stripe_id, False, _key())
    assert not archived.active
    assert not stripe_client.v1.products.retrieve(pack.stripe_id).active


@pytest.mark.parametrize(
    ("draft", "message"),
    [
        (ProductDraft("", 100, "usd"), "required"),
        (ProductDraft("x", 0, "usd"), "more than zero"),
        (ProductDraft("x", 100, "dollars"), "three-letter"),
        (ProductDraft("x", 100, "usd", credits=0), "positive whole number"),
        (ProductDraft("x", 100, "usd", credits=-5), "positive whole number"),
    ],
)
def test_bad_products_are_refused_before_stripe(
    catalog: CatalogService, stripe_client: stripe.StripeClient, draft: ProductDraft, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        catalog.create(draft, _key())
    assert stripe_client.v1.products.list({"limit": 1}).data == []
    assert not Product.select().exists()


def test_only_admins_manage_the_catalog(
    database: peewee.Database, gateway: StripeGateway, authority: Authority
) -> None:
    for role in (Role.FINANCE, Role.SUPPORT):
        service = CatalogService(database, gateway, _as(database, authority, role))
        with pytest.raises(PermissionDenied, match="manage catalog"):
            service.create(ProductDraft("x", 100, "usd"), _key())


def test_pull_walks_more_than_250_customers(
    database: peewee.Database,
    gateway: StripeGateway,
    authority: Authority,
    stripe_client: stripe.StripeClient,
) -> None:
    for i in range(260):
        stripe_client.v1.customers.create({"email": f"bulk{i}@example.com"})
    summary = SyncService(database, gateway, authority).pull(SyncTarget.CUSTOMERS)
    assert summary.seen == {"customers": 260}
    assert Customer.select().count() == 260
