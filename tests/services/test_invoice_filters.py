"""Every field of `InvoiceFilter` against the demo's mirrored invoices: each filter returns
exactly the rows that a plain Python test over all of them picks."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from services.invoices import InvoiceFilter, InvoiceListRow, PaymentMethodInfo
from services.models import Invoice
from services.sync import SyncService, SyncTarget
from tests.services.test_invoices import World
from tests.services.test_invoices import world as world

DAY = 86_400


@pytest.fixture
def mirrored(world: World) -> list[InvoiceListRow]:
    world.sandbox.seed_demo()
    sync = SyncService(world.db, world.gateway, world.authority)
    sync.pull(SyncTarget.CUSTOMERS)
    sync.pull(SyncTarget.INVOICES)
    rows = world.invoices.invoices(InvoiceFilter(limit=None))
    assert len(rows) > 20
    return rows


def _ids(rows: list[InvoiceListRow]) -> set[str]:
    return {r.stripe_id for r in rows}


def test_each_filter_returns_exactly_the_rows_it_names(
    world: World, mirrored: list[InvoiceListRow]
) -> None:
    some = mirrored[len(mirrored) // 2]
    created = sorted({r.created for r in mirrored})
    middle = created[len(created) // 2]
    paid_at = {i.stripe_id: i.paid_at for i in Invoice.select()}
    paid = sorted(p for p in paid_at.values() if p)
    cases: list[tuple[InvoiceFilter, Callable[[InvoiceListRow], bool]]] = [
        (InvoiceFilter(status="paid"), lambda r: r.status == "paid"),
        (InvoiceFilter(customer=f"  {some.customer_id} "), lambda r: r.customer_id
         == some.customer_id),
        (InvoiceFilter(since=middle), lambda r: r.created >= middle),
        (InvoiceFilter(until=middle), lambda r: r.created < middle),
        (InvoiceFilter(min_total=5000), lambda r: r.total >= 5000),
        (InvoiceFilter(max_total=5000), lambda r: r.total <= 5000),
        (InvoiceFilter(currency="USD"), lambda r: r.currency == "usd"),
        (InvoiceFilter(paid_since=paid[len(paid) // 2]),
         lambda r: (paid_at[r.stripe_id] or 0) >= paid[len(paid) // 2]),
        (InvoiceFilter(paid_until=paid[len(paid) // 2]),
         lambda r: 0 < (paid_at[r.stripe_id] or 0) < paid[len(paid) // 2]),
        (InvoiceFilter(ids=(some.stripe_id,)), lambda r: r.stripe_id == some.stripe_id),
    ]  # fmt: skip
    for flt, wanted in cases:
        expected = {r.stripe_id for r in mirrored if wanted(r)}
        assert _ids(world.invoices.invoices(flt)) == expected, flt
        assert expected, flt  # each case picks something ...
        assert expected != _ids(mirrored) or flt.currency, flt  # ... and leaves something out


def test_days_overdue_ranges_count_a_started_day_as_one(
    world: World, mirrored: list[InvoiceListRow]
) -> None:
    now = int(time.time())
    open_ids = [r.stripe_id for r in mirrored if r.status == "open"]
    assert len(open_ids) >= 4
    due = {open_ids[0]: None, open_ids[1]: now + DAY, open_ids[2]: now - DAY // 2,
           open_ids[3]: now - 10 * DAY - DAY // 2}  # fmt: skip
    for other in open_ids[4:]:
        due[other] = now + 30 * DAY
    for invoice_id, when in due.items():
        Invoice.update(due_date=when).where(Invoice.stripe_id == invoice_id).execute()
    not_due = {i for i, d in due.items() if d is None or d >= now}

    def overdue(low: int, high: int | None) -> set[str]:
        return _ids(world.invoices.invoices(InvoiceFilter(days_overdue=(low, high))))

    assert overdue(0, 0) == not_due
    assert overdue(0, 1) == not_due | {open_ids[2]}
    assert overdue(1, 1) == {open_ids[2]}
    assert overdue(2, None) == {open_ids[3]}
    assert overdue(11, 11) == {open_ids[3]}
    assert overdue(12, None) == set()
    assert _ids(world.invoices.invoices(InvoiceFilter(status="overdue"))) == {
        open_ids[2], open_ids[3],
    }  # fmt: skip


def test_a_card_is_labelled_with_its_brand_and_expiry_when_known() -> None:
    assert PaymentMethodInfo("pm_1", "visa", "4242", 3, 2031).label() == (
        "Visa •••• 4242 (expires 03/2031)"
    )
    assert PaymentMethodInfo("pm_2", "", "0005").label() == "Card •••• 0005"
