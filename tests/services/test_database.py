"""The local database on both engines: migrations, the mirror upsert, the browse queries."""

from __future__ import annotations

import peewee
import pytest

from services import migrations
from services.audit import Authority
from services.browse import BrowseService
from services.database import open_database
from services.errors import DatabaseError, ValidationError
from services.mirror import parse_credits, upsert
from services.models import CreditEntry, Customer, Price, Product


def _customer(cid: str, name: str, created: int, **extra: object) -> dict[str, object]:
    return {
        "id": cid,
        "object": "customer",
        "name": name,
        "email": f"{name.lower()}@example.com",
        "created": created,
        "livemode": False,
        "balance": 0,
        "currency": None,
        "metadata": {},
        **extra,
    }


def test_fresh_database_is_migrated_to_latest(database: peewee.Database) -> None:
    assert migrations.current_version(database) == migrations.latest_version()
    assert Customer.select().count() == 0


def test_reopening_applies_nothing(db_url: str) -> None:
    open_database(db_url).close()
    db = open_database(db_url, run_migrations=False)
    try:
        assert migrations.migrate(db) == []
    finally:
        db.close()


def test_a_newer_database_is_refused(database: peewee.Database, db_url: str) -> None:
    database.execute_sql(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (999, 'future', 0)"
    )
    with pytest.raises(DatabaseError, match="newer than this Billing Admin"):
        open_database(db_url)


def test_a_failing_migration_changes_nothing(database: peewee.Database) -> None:
    def broken(db: peewee.Database) -> None:
        db.execute_sql("CREATE TABLE half_done (x INTEGER)")
        raise peewee.IntegrityError("boom")

    latest = migrations.latest_version()
    steps = [*migrations.MIGRATIONS, migrations.Migration(latest + 1, "broken", broken)]
    with pytest.raises(DatabaseError, match=f"version {latest + 1}"):
        migrations.migrate(database, steps)
    assert migrations.current_version(database) == latest
    assert not database.table_exists("half_done")


def test_upsert_writes_only_what_changed(database: peewee.Database) -> None:
    objs = [_customer("cus_1", "Ada", 100), _customer("cus_2", "Grace", 200)]
    with database.atomic():
        assert upsert(Customer, objs, now=1) == 2
    with database.atomic():
        assert upsert(Customer, objs, now=2) == 0
    assert {c.synced_at for c in Customer.select()} == {1}

    changed = [objs[0], {**objs[1], "email": "grace@navy.example"}]
    with database.atomic():
        assert upsert(Customer, changed, now=3) == 1
    grace = Customer.get(Customer.stripe_id == "cus_2")
    assert (grace.email, grace.synced_at) == ("grace@navy.example", 3)
    assert grace.raw["email"] == "grace@navy.example"


def test_upsert_with_a_repeated_id_keeps_the_last_copy(database: peewee.Database) -> None:
    objs = [_customer("cus_1", "Old", 1), _customer("cus_1", "New", 1)]
    with database.atomic():
        upsert(Customer, objs)
    assert [c.name for c in Customer.select()] == ["New"]


def test_browse_lists_newest_first_without_deleted(
    database: peewee.Database, authority: Authority
) -> None:
    with database.atomic():
        upsert(
            Customer,
            [
                _customer("cus_old", "Old", 100),
                _customer("cus_new", "New", 300),
                _customer("cus_gone", "Gone", 200, deleted=True),
            ],
        )
    rows = BrowseService(database, authority).customers()
    assert [r.stripe_id for r in rows] == ["cus_new", "cus_old"]
    assert rows[0].email == "new@example.com"
    assert len(BrowseService(database, authority).customers(include_deleted=True)) == 3


def test_products_carry_prices_and_credit_packs(
    database: peewee.Database, authority: Authority
) -> None:
    product = {
        "id": "prod_1",
        "name": "500 credits",
        "active": True,
        "created": 5,
        "metadata": {"credits": "500"},
        "default_price": "price_1",
    }
    price = {
        "id": "price_1",
        "product": "prod_1",
        "currency": "usd",
        "unit_amount": 4500,
        "active": True,
        "created": 6,
        "lookup_key": "credits_500",
    }
    with database.atomic():
        upsert(Product, [product])
        upsert(Price, [price])
    (row,) = BrowseService(database, authority).products()
    assert row.credits == 500
    assert row.default_price is not None
    assert (row.default_price.unit_amount, row.default_price.lookup_key) == (4500, "credits_500")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("500", 500),
        (" 12 ", 12),
        ("0", None),
        ("-5", None),
        ("1.5", None),
        ("x", None),
        (None, None),
    ],
)
def test_parse_credits_accepts_only_positive_integers(value: object, expected: int | None) -> None:
    assert parse_credits(value) == expected


def test_credit_balances_sum_the_ledger(database: peewee.Database, authority: Authority) -> None:
    with database.atomic():
        upsert(Customer, [_customer("cus_1", "Ada", 1)])
        for amount, kind in ((500, "purchase"), (-200, "clawback"), (50, "grant")):
            CreditEntry.create(
                customer_id="cus_1", amount=amount, kind=kind, operator="t", created_at=10
            )
    (row,) = BrowseService(database, authority).credit_balances()
    assert (row.customer_name, row.balance, row.entries) == ("Ada", 350, 3)


@pytest.mark.parametrize(
    "url",
    ["mysql://x/y", "sqlite:///", "postgresql://127.0.0.1:5432", "nonsense", "sqlite:///:memory:"],
)
def test_unusable_urls_get_a_clear_message(url: str) -> None:
    with pytest.raises(ValidationError):
        open_database(url)


def test_an_unreachable_postgres_is_a_database_error() -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    with pytest.raises(DatabaseError, match="Cannot open the database"):
        open_database("postgresql://nobody:secretpw@127.0.0.1:9/none")


def test_database_errors_never_show_the_password() -> None:
    with pytest.raises(DatabaseError) as info:
        open_database("postgresql://nobody:secretpw@127.0.0.1:9/none")
    assert "secretpw" not in str(info.value)


def test_migration_12_adds_the_subscription_columns_to_an_old_database(db_url: str) -> None:
    """A version-8 database with a subscription row: migrating keeps the row, adds the columns
    (empty until the next sync) and marks its stored copy stale so the sync rewrites it."""
    from services.models import Subscription

    db = open_database(db_url, run_migrations=False)
    try:
        migrations.migrate(db, [m for m in migrations.MIGRATIONS if m.version <= 8])
        db.execute_sql(
            "INSERT INTO subscription (stripe_id, livemode, created, raw, synced_at, customer_id,"
            " status, current_period_end, cancel_at_period_end) VALUES"
            " ('sub_old', false, 1, '{\"id\":\"sub_old\"}', 1, 'cus_1', 'active', 5, false)"
        )
        assert migrations.migrate(db) == [m.version for m in migrations.MIGRATIONS if m.version > 8]
        row = Subscription.get(Subscription.stripe_id == "sub_old")
        assert (row.status, row.current_period_end, row.raw) == ("active", 5, {})
        assert (row.amount, row.mrr, row.items, row.price_ids) == (0, 0, [], "")
    finally:
        db.close()
