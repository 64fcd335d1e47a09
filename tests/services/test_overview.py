"""Overview figures against sums worked out by hand on one fixed data set (services/overview.py).

The data set (UTC unless a test says otherwise), seen on 2026-11-30 at 12:00:

- paid invoices: USD 100.00 (24th 01:00), 25.50 (24th 23:00), 50.00 (30th), 40.00 (20th, the
  previous 7 days), 99.99 (16th 23:00: before both periods, but the 17th in India); EUR 70.00
  (26th); JPY 1,200 (25th).
- top-ups: USD 10.00 issued 23rd paid 24th credited; 25.00 issued and paid 25th, later refunded;
  10.00 expired; 10.00 failed; 10.00 open; 50.00 pending (not paid); 10.00 issued and paid on the
  18th; EUR 9.00 issued and paid 25th.
- ledger: purchases 100 (24th), 250 (25th), 90 (25th), 100 (18th); clawback -250 (26th);
  grants 50 (27th), 20 (10th).
- open invoices: USD 30.00 no due date, 20.00 due tonight, 15.00 due 6 hours ago, 40.00 due
  30 days ago to the second, 25.00 due 45 days ago, 10.00 due 91 days ago; EUR 80.00 due 10 days
  ago; plus a USD draft and a USD void one that are not owed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import peewee
import pytest

from services.audit import Authority
from services.errors import ValidationError
from services.invoices import InvoiceFilter, InvoiceService
from services.migrations import MIGRATIONS, migrate
from services.mirror import upsert
from services.models import CreditEntry, Invoice, TopUp
from services.operators import OperatorService, sign_in
from services.overview import (
    Change,
    OverviewService,
    PeriodKind,
    parse_period,
    period_for,
)
from services.permissions import Role
from services.stripe_gateway import StripeGateway
from tests.conftest import TEST_KEY

TODAY = date(2026, 11, 30)
NOW = int(datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp())
DAY = 86_400
INDIA = timezone(timedelta(hours=5, minutes=30))


def at(day: int, hour: int = 0, month: int = 11) -> int:
    return int(datetime(2026, month, day, hour, tzinfo=UTC).timestamp())


def _invoice(n: int, status: str, currency: str, amount: int, *, paid_at: int | None = None,
             remaining: int = 0, due: int | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "id": f"in_{n}",
        "object": "invoice",
        "customer": "cus_a",
        "status": status,
        "currency": currency,
        "total": amount,
        "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0,
        "amount_remaining": remaining,
        "due_date": due,
        "created": at(1, month=10),
        "livemode": False,
        "status_transitions": {"paid_at": paid_at, "finalized_at": at(1, month=10)},
    }


def _topup(n: int, currency: str, amount: int, status: str, issued: int,
           paid: int | None = None, credited: int | None = None) -> None:  # fmt: skip
    TopUp.create(
        topup_id=f"tu_{n}", customer_id="cus_a", credits=amount // 10, amount=amount,
        currency=currency, status=status, checkout_session_id=f"cs_{n}", issued_by="test",
        issued_at=issued, expires_at=issued + DAY, paid_at=paid, credited_at=credited,
    )  # fmt: skip


def _entry(kind: str, amount: int, when: int, source: str | None, customer: str = "cus_a") -> None:
    CreditEntry.create(
        customer_id=customer, amount=amount, kind=kind, source=source, operator="test",
        created_at=when,
    )  # fmt: skip


def fill_fixed_data(database: peewee.Database) -> None:
    """The data set of this module's docstring (the UI tests draw it too)."""
    with database.atomic():
        upsert(
            Invoice,
            [
                _invoice(1, "paid", "usd", 10_000, paid_at=at(24, 1)),
                _invoice(2, "paid", "usd", 2_550, paid_at=at(24, 23)),
                _invoice(3, "paid", "usd", 5_000, paid_at=at(30, 11)),
                _invoice(4, "paid", "eur", 7_000, paid_at=at(26, 10)),
                _invoice(5, "paid", "usd", 4_000, paid_at=at(20, 8)),
                _invoice(6, "paid", "usd", 9_999, paid_at=at(16, 23)),
                _invoice(7, "paid", "jpy", 1_200, paid_at=at(25, 0)),
                _invoice(11, "open", "usd", 3_000, remaining=3_000),
                _invoice(12, "open", "usd", 2_000, remaining=2_000, due=at(30, 18)),
                _invoice(13, "open", "usd", 1_500, remaining=1_500, due=at(30, 6)),
                _invoice(14, "open", "usd", 4_000, remaining=4_000, due=NOW - 30 * DAY),
                _invoice(15, "open", "usd", 2_500, remaining=2_500, due=NOW - 45 * DAY),
                _invoice(16, "open", "usd", 1_000, remaining=1_000, due=NOW - 91 * DAY + 3600),
                _invoice(17, "open", "eur", 8_000, remaining=8_000, due=NOW - 10 * DAY),
                _invoice(18, "draft", "usd", 6_000, remaining=6_000),
                _invoice(19, "void", "usd", 7_000, remaining=7_000, due=NOW - 40 * DAY),
            ],
        )
        _topup(1, "usd", 1_000, "credited", at(23, 9), at(24, 10), at(24, 10))
        _topup(2, "usd", 2_500, "refunded", at(25, 9), at(25, 10), at(25, 10))
        _topup(3, "usd", 1_000, "expired", at(26, 9))
        _topup(4, "usd", 1_000, "failed", at(27, 9))
        _topup(5, "usd", 1_000, "open", at(28, 9))
        _topup(6, "usd", 5_000, "pending", at(28, 9))
        _topup(7, "eur", 900, "credited", at(25, 9), at(25, 10), at(25, 10))
        _topup(8, "usd", 1_000, "credited", at(18, 9), at(18, 10), at(18, 10))
        _entry("purchase", 100, at(24, 10), "tu_1")
        _entry("purchase", 250, at(25, 10), "tu_2", "cus_b")
        _entry("clawback", -250, at(26, 10), "re_1", "cus_b")
        _entry("grant", 50, at(27, 10), None)
        _entry("purchase", 90, at(25, 10), "tu_7", "cus_c")
        _entry("purchase", 100, at(18, 10), "tu_8", "cus_d")
        _entry("grant", 20, at(10, 10), None, "cus_d")


@pytest.fixture
def overview(database: peewee.Database, authority: Authority) -> OverviewService:
    fill_fixed_data(database)
    return OverviewService(database, authority, tz=UTC)


def test_usd_over_seven_days_matches_the_hand_sums(overview: OverviewService) -> None:
    o = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "usd", now=NOW)

    assert (o.period.first, o.period.last) == (date(2026, 11, 24), date(2026, 11, 30))
    assert (o.previous.first, o.previous.last) == (date(2026, 11, 17), date(2026, 11, 23))
    # Invoices: 100.00 + 25.50 + 50.00; before: 40.00 (the 16th is in neither period).
    assert o.invoices_paid == Change(17_550, 4_000)
    assert o.invoices_paid_count == Change(3, 1)
    # Top-ups paid: 10.00 (24th) + 25.00 (25th, refunded later: still paid); before 10.00.
    # The pending 50.00 has not been paid and is not revenue.
    assert o.topups_paid == Change(3_500, 1_000)
    assert o.topups_paid_count == Change(2, 1)
    assert o.revenue == Change(21_050, 5_000)
    assert o.revenue.percent == pytest.approx(321.0)
    by_day = {d.day.day: (d.invoices, d.topups) for d in o.revenue_by_day}
    assert len(by_day) == 7
    assert by_day == {24: (12_550, 1_000), 25: (0, 2_500), 26: (0, 0), 27: (0, 0),
                      28: (0, 0), 29: (0, 0), 30: (5_000, 0)}  # fmt: skip


def test_credits_are_counted_in_credits_whatever_the_currency(overview: OverviewService) -> None:
    o = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "usd", now=NOW)

    assert o.credits_sold == Change(440, 100)  # 100 + 250 + 90 (the EUR top-up's credits too)
    assert o.credits_granted == Change(50, 0)
    assert o.credits_clawed_back == Change(250, 0)
    # Every entry up to the end of each period: 100+250-250+50+90+100+20; before: 100+20.
    assert o.credits_outstanding == Change(360, 120)


def test_receivables_are_aged_by_days_overdue(overview: OverviewService) -> None:
    o = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "usd", now=NOW)

    assert [(b.label, b.count, b.amount) for b in o.receivables] == [
        ("Current", 2, 5_000),  # no due date; due tonight
        ("1–30 days", 2, 5_500),  # noqa: RUF001 (6 hours late counts as a day; exactly 30 days)
        ("31–60 days", 1, 2_500),  # noqa: RUF001
        ("61–90 days", 0, 0),  # noqa: RUF001
        ("90+ days", 1, 1_000),  # 90 days and 23 hours: the 91st day
    ]
    assert o.receivables_total == 14_000  # the draft and the void invoice are not owed
    assert o.overdue_total == 9_000


def test_topup_funnel_follows_the_links_issued_in_the_period(overview: OverviewService) -> None:
    o = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "usd", now=NOW)

    # Issued 24th-30th: the refunded, expired, failed, open and pending ones (the link paid on
    # the 24th was issued on the 23rd: the previous period's).
    assert vars(o.funnel) == {"issued": 5, "paid": 1, "credited": 1, "expired": 1, "failed": 1}
    assert vars(o.funnel_before) == {
        "issued": 2, "paid": 2, "credited": 2, "expired": 0, "failed": 0
    }  # fmt: skip


def test_each_currency_alone(overview: OverviewService) -> None:
    eur = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "eur", now=NOW)
    assert eur.invoices_paid == Change(7_000, 0)
    assert eur.topups_paid == Change(900, 0)
    assert eur.revenue == Change(7_900, 0)
    assert eur.revenue.percent is None  # nothing before: no percentage to show
    assert [b.amount for b in eur.receivables] == [0, 8_000, 0, 0, 0]
    assert vars(eur.funnel) == {"issued": 1, "paid": 1, "credited": 1, "expired": 0, "failed": 0}

    jpy = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "jpy", now=NOW)
    assert jpy.invoices_paid == Change(1_200, 0)
    assert jpy.revenue_by_day[1].invoices == 1_200  # the 25th, in yen (no minor unit)
    assert jpy.receivables_total == 0

    assert overview.currencies() == ("usd", "eur", "jpy")  # the most recently paid in first
    default = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), now=NOW)
    assert default.currency == "usd"


def test_days_are_the_viewers_calendar_days(database: peewee.Database, authority: Authority,
                                            overview: OverviewService) -> None:  # fmt: skip
    india = OverviewService(database, authority, tz=INDIA)
    o = india.overview(period_for(PeriodKind.DAYS_7, TODAY), "usd", now=NOW)

    # 25.50 paid at 23:00 UTC on the 24th is 04:30 on the 25th in India; 99.99 paid at 23:00
    # UTC on the 16th is the 17th there: in the previous period.
    assert o.revenue_by_day[0].invoices == 10_000
    assert o.revenue_by_day[1].invoices == 2_550
    assert o.invoices_paid == Change(17_550, 13_999)


def test_thirty_days_month_and_custom(overview: OverviewService) -> None:
    thirty = overview.overview(parse_period("30d", TODAY), "usd", now=NOW)
    assert (thirty.period.first, thirty.previous.last) == (date(2026, 11, 1), date(2026, 10, 31))
    assert thirty.invoices_paid == Change(4_000 + 17_550 + 9_999, 0)
    assert thirty.topups_paid == Change(4_500, 0)

    month = overview.overview(parse_period("month", TODAY), "usd", now=NOW)
    assert month.period.label == "November 2026 to date"
    assert month.invoices_paid == thirty.invoices_paid

    custom = overview.overview(parse_period("2026-11-20..2026-11-24", TODAY), "usd", now=NOW)
    assert custom.invoices_paid == Change(4_000 + 12_550, 9_999)  # before: 15th-19th
    assert [d.invoices for d in custom.revenue_by_day] == [4_000, 0, 0, 0, 12_550]


def test_period_arithmetic() -> None:
    march = parse_period("month", date(2027, 3, 31))
    assert (march.previous().first, march.previous().last) == (date(2027, 2, 1), date(2027, 2, 28))
    assert parse_period("90d", TODAY).days == 90
    assert parse_period("7d", TODAY).previous().days == 7
    for bad in ("8d", "2026-11-30..2026-11-01", "2026-02-30..2026-03-01", "last week"):
        with pytest.raises(ValidationError):
            parse_period(bad, TODAY)
    assert Change(50, 200).percent == -75.0


def test_an_empty_database_is_an_empty_overview(
    database: peewee.Database, authority: Authority
) -> None:
    o = OverviewService(database, authority, tz=UTC).overview(
        period_for(PeriodKind.DAYS_30, TODAY), now=NOW
    )
    assert o.is_empty
    assert o.currency == "usd"
    assert o.currencies == ()
    assert len(o.revenue_by_day) == 30
    assert o.to_json()["revenue"]["total"] == {  # type: ignore[index]
        "now": 0, "before": 0, "change_percent": None
    }  # fmt: skip


def test_the_json_carries_every_figure(overview: OverviewService) -> None:
    data = overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "usd", now=NOW).to_json()
    assert data["revenue"]["total"] == {  # type: ignore[index]
        "now": 21_050, "before": 5_000, "change_percent": 321.0
    }  # fmt: skip
    assert data["receivables"]["overdue"] == 9_000  # type: ignore[index]
    assert data["credits"]["outstanding"]["now"] == 360  # type: ignore[index]


def test_finance_may_look(database: peewee.Database, authority: Authority) -> None:
    OperatorService(database, authority).add("fin", Role.FINANCE, "Fin")
    finance = Authority(database, sign_in(database, "fin"))
    assert OverviewService(database, finance).overview(parse_period("7d", TODAY), now=NOW).is_empty


def test_the_migration_fills_in_paid_dates_of_invoices_already_mirrored(tmp_path: Any) -> None:
    from services.database import open_database

    db = open_database(f"sqlite:///{tmp_path / 'old.sqlite3'}", run_migrations=False)
    migrate(db, MIGRATIONS[:7])
    raw = '{"id":"in_old","status_transitions":{"paid_at":1764000000}}'
    db.execute_sql(
        "INSERT INTO invoice (stripe_id, livemode, created, raw, synced_at, customer_id, currency,"
        " total, amount_due, amount_paid, amount_remaining) VALUES"
        " ('in_old', 0, 1, ?, 1, 'cus_a', 'usd', 5, 5, 5, 0)",
        (raw,),
    )
    migrate(db)
    assert Invoice.get(Invoice.stripe_id == "in_old").paid_at == 1_764_000_000
    db.close()


def test_the_drill_down_lists_hold_the_invoices_a_figure_counts(
    database: peewee.Database, authority: Authority, overview: OverviewService
) -> None:
    # No request reaches Stripe: listing reads the mirror.
    invoices = InvoiceService(
        database, StripeGateway(TEST_KEY, api_base="http://127.0.0.1:9", sandbox=True), authority
    )

    def ids(**flt: Any) -> set[str]:
        return {r.stripe_id for r in invoices.invoices(InvoiceFilter(currency="usd", **flt))}

    # The bars of the 24th and of the receivables' buckets, as the panel asks for them.
    assert ids(paid_since=at(24), paid_until=at(25)) == {"in_1", "in_2"}
    late = [ids(days_overdue=(b.low, b.high)) for b in
            overview.overview(period_for(PeriodKind.DAYS_7, TODAY), "usd").receivables]  # fmt: skip
    # (aged against the real clock here, so only the shape is compared: every open USD invoice
    # is in exactly one bucket, and no draft or void one is in any)
    assert set().union(*late) == {"in_11", "in_12", "in_13", "in_14", "in_15", "in_16"}
    assert sum(len(x) for x in late) == 6
