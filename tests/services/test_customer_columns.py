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
    assert "cus_gone" not in columns.stripe_id
    meta = columns.stripe_id.index("cus_meta")
    assert (columns.name[meta], columns.email[meta], columns.phone[meta]) == ("", "", "")
    assert '"account_id":"acct-1"' in columns.metadata_text[meta]
    assert columns.balance[meta] == -5
