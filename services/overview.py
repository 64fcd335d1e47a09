"""The Overview: revenue, credits, receivables and the top-up funnel for a period and currency.

Figures come from the local mirror (invoices) and the app's own records (top-ups, credit ledger),
so they are as current as the last sync and the events received. Money is summed per currency,
never across currencies; credits are counted in credits.

Days are calendar days in the viewer's time zone (`tz`; the machine's local zone by default), as
the rest of the app shows dates. The database sums by quarter-hour and Python folds quarter-hours
into days: every time zone in use today is a whole number of quarter-hours from UTC, so no
payment lands in the wrong day, and no timestamp is turned into a date in SQL (SQLite and
PostgreSQL disagree on how).
"""

from __future__ import annotations

import bisect
import enum
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as clock

import peewee

from services.audit import Authority
from services.errors import ValidationError
from services.models import CreditEntry, Invoice, TopUp, tuples
from services.permissions import Permission
from services.subscriptions import SubscriptionFigures, subscription_figures
from services.topup_status import TopUpStatus

SLOT = 900  # seconds: the quarter-hour the database sums by
DAY = 86_400


class PeriodKind(enum.Enum):
    DAYS_7 = "7d"
    DAYS_30 = "30d"
    DAYS_90 = "90d"
    MONTH = "month"
    CUSTOM = "custom"


PERIOD_CHOICES = (PeriodKind.DAYS_7, PeriodKind.DAYS_30, PeriodKind.DAYS_90, PeriodKind.MONTH)
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")
MAX_DAYS = 366 * 2


@dataclass(frozen=True)
class Period:
    """Whole calendar days, `first` to `last` inclusive."""

    first: date
    last: date
    kind: PeriodKind

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def label(self) -> str:
        if self.kind is PeriodKind.MONTH:
            return f"{self.first:%B %Y} to date"
        if self.kind is PeriodKind.CUSTOM:
            return f"{self.first:%Y-%m-%d} to {self.last:%Y-%m-%d}"
        return f"Last {self.days} days"

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.days)]

    def previous(self) -> Period:
        """The period compared against: the month before for month-to-date (the same days of
        it), else the same number of days just before."""
        if self.kind is PeriodKind.MONTH:
            first = (self.first - timedelta(days=1)).replace(day=1)
            last = min(first + timedelta(days=self.days - 1), self.first - timedelta(days=1))
            return Period(first, last, PeriodKind.CUSTOM)
        last = self.first - timedelta(days=1)
        return Period(last - timedelta(days=self.days - 1), last, PeriodKind.CUSTOM)


def period_for(kind: PeriodKind, today: date, first: date | None = None,
               last: date | None = None) -> Period:  # fmt: skip
    """The period of `kind` ending today (a custom one from `first` to `last`).

    Raises:
        ValidationError: a custom period with no days, ending after today, or over two years.
    """
    if kind is PeriodKind.CUSTOM:
        if first is None or last is None:
            raise ValidationError("A custom period needs a first and a last day.")
        if last < first:
            raise ValidationError(f"The period ends ({last}) before it starts ({first}).")
        if (last - first).days + 1 > MAX_DAYS:
            raise ValidationError(f"A period is at most {MAX_DAYS} days.")
        return Period(first, last, kind)
    if kind is PeriodKind.MONTH:
        return Period(today.replace(day=1), today, kind)
    days = int(kind.value.removesuffix("d"))
    return Period(today - timedelta(days=days - 1), today, kind)


def parse_period(text: str, today: date) -> Period:
    """`7d`, `30d`, `90d`, `month`, or `YYYY-MM-DD..YYYY-MM-DD` (both days included).

    Raises:
        ValidationError: anything else.
    """
    text = text.strip().lower()
    for kind in PERIOD_CHOICES:
        if text == kind.value:
            return period_for(kind, today)
    found = _RANGE.match(text)
    if found:
        try:
            first, last = (date.fromisoformat(found.group(i)) for i in (1, 2))
        except ValueError as exc:
            raise ValidationError(f"Not a date in {text!r}: {exc}.") from None
        return period_for(PeriodKind.CUSTOM, today, first, last)
    raise ValidationError(
        f"Unknown period {text!r}: use 7d, 30d, 90d, month, or 2026-11-01..2026-11-30."
    )


@dataclass(frozen=True)
class Change:
    """A figure for the period and the same figure for the period before."""

    now: int
    before: int

    @property
    def percent(self) -> float | None:
        """Change in percent; None when there was nothing before to compare with."""
        if self.before == 0:
            return None
        return (self.now - self.before) * 100.0 / abs(self.before)


@dataclass(frozen=True)
class DayRevenue:
    day: date
    invoices: int  # minor units
    topups: int


@dataclass(frozen=True)
class AgeBucket:
    label: str  # "Current", "1-30 days", …
    low: int  # days overdue, inclusive; 0 is "not yet due"
    high: int | None  # inclusive; None: no upper end
    count: int
    amount: int  # minor units still owed


AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("Current", 0, 0),
    ("1–30 days", 1, 30),  # noqa: RUF001 (the dash finance reads)
    ("31–60 days", 31, 60),  # noqa: RUF001 (the dash finance reads)
    ("61–90 days", 61, 90),  # noqa: RUF001 (the dash finance reads)
    ("90+ days", 91, None),
)


@dataclass(frozen=True)
class Funnel:
    """Top-up links issued in the period (in the currency), and how far they got."""

    issued: int
    paid: int
    credited: int
    expired: int
    failed: int


@dataclass(frozen=True)
class Overview:
    period: Period
    previous: Period
    currency: str
    currencies: tuple[str, ...]  # every currency the mirror and top-ups know, for the selector
    as_of: int  # seconds: when the receivables were aged
    revenue_by_day: tuple[DayRevenue, ...]
    invoices_paid: Change  # minor units
    invoices_paid_count: Change
    topups_paid: Change  # minor units
    topups_paid_count: Change
    credits_sold: Change  # credits
    credits_granted: Change
    credits_clawed_back: Change  # a positive number of credits taken back
    credits_outstanding: Change  # every balance added up, at the end of each period
    receivables: tuple[AgeBucket, ...]  # open invoices as of `as_of` (no history to compare)
    funnel: Funnel
    funnel_before: Funnel
    subscriptions: SubscriptionFigures | None = None  # MRR, active, churn (services.subscriptions)

    @property
    def revenue(self) -> Change:
        return Change(
            self.invoices_paid.now + self.topups_paid.now,
            self.invoices_paid.before + self.topups_paid.before,
        )

    @property
    def receivables_total(self) -> int:
        return sum(b.amount for b in self.receivables)

    @property
    def overdue_total(self) -> int:
        return sum(b.amount for b in self.receivables if b.low > 0)

    @property
    def is_empty(self) -> bool:
        """Nothing happened in the period and nothing is owed: the page says so."""
        return not (
            self.revenue.now
            or self.credits_sold.now
            or self.credits_granted.now
            or self.credits_clawed_back.now
            or self.funnel.issued
            or any(b.count for b in self.receivables)
        )

    def to_json(self) -> dict[str, object]:
        """Plain JSON for `admin-app overview --json` (amounts in minor units)."""

        def change(c: Change) -> dict[str, object]:
            pct = c.percent
            return {"now": c.now, "before": c.before,
                    "change_percent": None if pct is None else round(pct, 1)}  # fmt: skip

        return {
            "period": {
                "first": self.period.first.isoformat(),
                "last": self.period.last.isoformat(),
                "label": self.period.label,
            },
            "previous": {
                "first": self.previous.first.isoformat(),
                "last": self.previous.last.isoformat(),
            },
            "currency": self.currency,
            "currencies": list(self.currencies),
            "revenue": {
                "total": change(self.revenue),
                "invoices_paid": change(self.invoices_paid),
                "invoices_paid_count": change(self.invoices_paid_count),
                "topups_paid": change(self.topups_paid),
                "topups_paid_count": change(self.topups_paid_count),
                "by_day": [
                    {"day": d.day.isoformat(), "invoices": d.invoices, "topups": d.topups}
                    for d in self.revenue_by_day
                ],
            },
            "credits": {
                "sold": change(self.credits_sold),
                "granted": change(self.credits_granted),
                "clawed_back": change(self.credits_clawed_back),
                "outstanding": change(self.credits_outstanding),
            },
            "receivables": {
                "as_of": self.as_of,
                "total": self.receivables_total,
                "overdue": self.overdue_total,
                "buckets": [
                    {"label": b.label, "count": b.count, "amount": b.amount}
                    for b in self.receivables
                ],
            },
            "topup_funnel": {
                "now": vars(self.funnel).copy(),
                "before": vars(self.funnel_before).copy(),
            },
            "subscriptions": self.subscriptions.to_json() if self.subscriptions else None,
        }


def day_start(day: date, tz: tzinfo | None) -> int:
    """Seconds at the start of `day` in `tz` (None: this machine's local time zone)."""
    return int(datetime.combine(day, clock(), tzinfo=tz).timestamp())


def _day_of(ts: int, tz: tzinfo | None) -> date:
    return datetime.fromtimestamp(ts, tz).date()


class OverviewService:
    """Figures for the Overview panel and `admin-app overview` (read-only)."""

    def __init__(self, db: peewee.Database, authority: Authority, tz: tzinfo | None = None) -> None:
        self._db = db
        self._authority = authority
        self._tz = tz

    def today(self, now: float | None = None) -> date:
        return _day_of(int(time.time() if now is None else now), self._tz)

    def currencies(self) -> tuple[str, ...]:
        """Currencies with invoices or top-ups, the most recently paid in first (the selector's
        choices; the first is the default)."""
        # A loose index scan: one index probe per currency, not a pass over 200,000 invoices.
        distinct = (
            "WITH RECURSIVE c(code) AS ("
            " SELECT MIN(currency) FROM invoice"
            " UNION ALL SELECT (SELECT MIN(currency) FROM invoice WHERE currency > c.code)"
            " FROM c WHERE c.code IS NOT NULL"
            ") SELECT code FROM c WHERE code IS NOT NULL"
        )
        latest: dict[str, int] = {}
        for (code,) in self._db.execute_sql(distinct).fetchall():  # type: ignore[no-untyped-call]
            paid = Invoice.select(peewee.fn.MAX(Invoice.paid_at)).where(Invoice.currency == code)
            latest[str(code).lower()] = int(paid.scalar() or 0)
        query = TopUp.select(TopUp.currency, peewee.fn.MAX(TopUp.paid_at)).group_by(TopUp.currency)
        for code, paid_at in tuples(query):
            key = str(code or "").lower()
            if key:
                latest[key] = max(latest.get(key, 0), int(paid_at or 0))
        return tuple(sorted(latest, key=lambda c: (-latest[c], c)))

    def overview(self, period: Period, currency: str | None = None,
                 now: float | None = None) -> Overview:  # fmt: skip
        """Every figure of the Overview for `period` in `currency` (the most used one if None).

        Raises:
            PermissionDenied: the operator may not browse.
        """
        self._authority.require(Permission.BROWSE, "overview.show")
        stamp = int(time.time() if now is None else now)
        currencies = self.currencies()
        code = (currency or (currencies[0] if currencies else "usd")).lower()
        previous = period.previous()
        # Boundaries of every day of both periods, plus the end: a quarter-hour's day is found
        # by bisection (the previous period may be shorter than this one: month to date).
        days = previous.each_day() + [d for d in period.each_day() if d > previous.last]
        bounds = [day_start(d, self._tz) for d in days]
        end = day_start(period.last + timedelta(days=1), self._tz)
        start_prev = bounds[0]
        start = day_start(period.first, self._tz)

        inv = self._sum_by_day(Invoice, Invoice.paid_at, Invoice.amount_paid, code, start_prev, end)
        top = self._sum_by_day(TopUp, TopUp.paid_at, TopUp.amount, code, start_prev, end)
        inv_days, inv_n = self._fold(inv, bounds, days)
        top_days, top_n = self._fold(top, bounds, days)

        def split(per_day: dict[date, int]) -> Change:
            return Change(
                sum(v for d, v in per_day.items() if d >= period.first),
                sum(v for d, v in per_day.items() if previous.first <= d <= previous.last),
            )

        by_day = tuple(
            DayRevenue(d, inv_days.get(d, 0), top_days.get(d, 0)) for d in period.each_day()
        )
        prev_end = day_start(previous.last + timedelta(days=1), self._tz)
        credits_now = self._credit_kinds(start, end)
        credits_before = self._credit_kinds(start_prev, prev_end)
        return Overview(
            period=period,
            previous=previous,
            currency=code,
            currencies=currencies,
            as_of=stamp,
            revenue_by_day=by_day,
            invoices_paid=split(inv_days),
            invoices_paid_count=split(inv_n),
            topups_paid=split(top_days),
            topups_paid_count=split(top_n),
            credits_sold=Change(credits_now["purchase"], credits_before["purchase"]),
            credits_granted=Change(credits_now["grant"], credits_before["grant"]),
            credits_clawed_back=Change(-credits_now["clawback"], -credits_before["clawback"]),
            credits_outstanding=Change(self._balance_before(end), self._balance_before(prev_end)),
            receivables=self._receivables(code, stamp),
            funnel=self._funnel(code, start, end),
            funnel_before=self._funnel(code, start_prev, prev_end),
            subscriptions=subscription_figures(code, start, end, start_prev, prev_end),
        )

    def customers_with(self, kind: str, period: Period) -> frozenset[str]:
        """Customers with a ledger entry of `kind` (purchase, grant, clawback) in `period`."""
        self._authority.require(Permission.BROWSE, "overview.show")
        start = day_start(period.first, self._tz)
        end = day_start(period.last + timedelta(days=1), self._tz)
        query = (
            CreditEntry.select(CreditEntry.customer_id)
            .where(
                (CreditEntry.kind == kind)
                & (CreditEntry.created_at >= start)
                & (CreditEntry.created_at < end)
            )
            .distinct()
        )
        return frozenset(str(t[0]) for t in tuples(query))

    # ---- the queries (each one statement, over an index)
    def _sum_by_day(self, model: type[peewee.Model], at: peewee.Field, amount: peewee.Field,
                    currency: str, start: int, end: int) -> list[tuple[int, int, int]]:  # fmt: skip
        slot = (at / SLOT).alias("slot")
        query = (
            model.select(slot, peewee.fn.SUM(amount), peewee.fn.COUNT(model.id))  # type: ignore[attr-defined]
            .where((model.currency == currency) & (at >= start) & (at < end))  # type: ignore[attr-defined]
            .group_by(at / SLOT)
        )
        return [(int(s), int(total or 0), int(n)) for s, total, n in tuples(query)]

    @staticmethod
    def _fold(slots: Iterable[tuple[int, int, int]], bounds: list[int],
              days: list[date]) -> tuple[dict[date, int], dict[date, int]]:  # fmt: skip
        amounts: dict[date, int] = {}
        counts: dict[date, int] = {}
        for slot, total, n in slots:
            i = bisect.bisect_right(bounds, slot * SLOT) - 1
            if i < 0:
                continue
            day = days[i]
            amounts[day] = amounts.get(day, 0) + total
            counts[day] = counts.get(day, 0) + n
        return amounts, counts

    def _credit_kinds(self, start: int, end: int) -> dict[str, int]:
        query = (
            CreditEntry.select(CreditEntry.kind, peewee.fn.SUM(CreditEntry.amount))
            .where((CreditEntry.created_at >= start) & (CreditEntry.created_at < end))
            .group_by(CreditEntry.kind)
        )
        found = {"purchase": 0, "grant": 0, "clawback": 0}
        for kind, total in tuples(query):
            found[str(kind)] = int(total or 0)
        return found

    def _balance_before(self, end: int) -> int:
        query = CreditEntry.select(peewee.fn.SUM(CreditEntry.amount)).where(
            CreditEntry.created_at < end
        )
        return int(query.scalar() or 0)

    def _receivables(self, currency: str, now: int) -> tuple[AgeBucket, ...]:
        # Bucketed in SQL on the covering index: days_overdue(due) <= high <=> due >= now -
        # high days (a started day counts as one), so each bucket is a range of due dates.
        due = Invoice.due_date
        cases = [(due.is_null() | (due >= now), 0)]
        for i, (_label, _low, high) in enumerate(AGE_BUCKETS[1:], start=1):
            if high is not None:
                cases.append((due >= now - high * DAY, i))
        bucket = peewee.Case(None, cases, len(AGE_BUCKETS) - 1)
        query = (
            Invoice.select(
                bucket, peewee.fn.COUNT(Invoice.id), peewee.fn.SUM(Invoice.amount_remaining)
            )
            .where((Invoice.status == "open") & (Invoice.currency == currency))
            .group_by(bucket)
        )
        counts = [0] * len(AGE_BUCKETS)
        amounts = [0] * len(AGE_BUCKETS)
        for i, n, total in tuples(query):
            counts[int(i)] = int(n)
            amounts[int(i)] = int(total or 0)
        return tuple(
            AgeBucket(label, low, high, counts[i], amounts[i])
            for i, (label, low, high) in enumerate(AGE_BUCKETS)
        )

    def _funnel(self, currency: str, start: int, end: int) -> Funnel:
        one = peewee.Value(1)
        query = TopUp.select(
            peewee.fn.COUNT(TopUp.id),
            peewee.fn.COUNT(TopUp.paid_at),
            peewee.fn.COUNT(TopUp.credited_at),
            peewee.fn.SUM(peewee.Case(TopUp.status, ((TopUpStatus.EXPIRED.value, one),), 0)),
            peewee.fn.SUM(peewee.Case(TopUp.status, ((TopUpStatus.FAILED.value, one),), 0)),
        ).where((TopUp.currency == currency) & (TopUp.issued_at >= start) & (TopUp.issued_at < end))
        row = next(tuples(query))
        return Funnel(*(int(v or 0) for v in row))


def days_overdue(due_date: int | None, now: int) -> int:
    """Whole days past the due date, a started day counting as one; 0 when not yet due (or no
    due date: an invoice charged automatically)."""
    if due_date is None or int(due_date) >= now:
        return 0
    return -(-(now - int(due_date)) // DAY)


def _bucket(days: int) -> int:
    for i, (_label, low, high) in enumerate(AGE_BUCKETS):
        if days >= low and (high is None or days <= high):
            return i
    return len(AGE_BUCKETS) - 1
