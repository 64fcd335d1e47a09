"""The Customers panel's listing as columns: the same customers, fields and order as the rows."""

from __future__ import annotations

import peewee

from services.audit import Authority
from services.browse import BrowseService
from services.models import Customer
from tests.helpers.known_rows import T0, seed


def test_columns_hold_the_same_customers_in_the_same_order(
    database: peewee.Database, authority: Authority
) -> None:
    seed(database)
    Customer.insert(
        stripe_id="cus_meta", created=T0 - 300, raw={}, synced_at=T0, name=None, email=None,
        metadata={"account_id": "acct-1"}, balance=-5,
    ).execute()  # fmt: skip
    Customer.insert(
        stripe_id="cus_gone", created=T0 - 400, raw={}, synced_at=T0, name="Gone", deleted=True
    ).execute()
    browse = BrowseService(database, authority)
    for include_deleted in (False, True):
        rows = browse.customers(include_deleted=include_deleted)
        columns = browse.customer_columns(include_deleted=include_deleted)
        assert [columns.row(i) for i in range(len(columns))] == rows
    columns = browse.customer_columns()
    assert "cus_gone" not in columns.column(0)
    meta = columns.index_of("cus_meta")
    assert columns.fields(meta) == ["cus_meta", "", "", ""]
    assert '"account_id":"acct-1"' in columns.metadata_text[meta]
    assert columns.balance[meta] == -5


def test_a_separator_inside_a_field_cannot_shift_the_others() -> None:
    from services.browse import FIELD_SEPARATOR, CustomerColumns, CustomerRow

    odd = CustomerRow("cus_1", f"A{FIELD_SEPARATOR}B", "a@x.io", "", "usd", 0, 1, False, "{}")
    columns = CustomerColumns.from_rows([odd])
    assert columns.row(0) == odd._replace(name="A\ufffdB")
    assert columns.index_of("cus_1") == 0
