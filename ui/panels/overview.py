"""Overview: the first panel, like the Stripe Dashboard's home, for a period and a currency.

Four sections — revenue by day, credits, receivables by age, the top-up funnel — each with its
figures (and the change against the previous period) above its chart. Charts are QtCharts
(README: *Overview*): hovering a bar shows its values, clicking it opens the list behind it.
The figures are computed by `services.overview` on a worker thread; the panel only draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from PySide6.QtCharts import (
    QBarCategoryAxis,
    QBarSeries,
    QBarSet,
    QChart,
    QChartView,
    QStackedBarSeries,
    QValueAxis,
)
from PySide6.QtCore import QDate, QMargins, Qt, Signal
from PySide6.QtGui import QColor, QCursor, QFont, QPainter
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from services.context import AppContext
from services.errors import AppError
from services.invoices import InvoiceFilter
from services.money import decimals
from services.overview import (
    PERIOD_CHOICES,
    AgeBucket,
    Change,
    Overview,
    Period,
    PeriodKind,
    day_start,
    period_for,
)
from ui.formatting import format_amount
from ui.panels.base import EmptyState
from ui.tasks import TaskRunner

INVOICES_COLOUR = QColor("#635bff")
TOPUPS_COLOUR = QColor("#00a3c4")
BEFORE_COLOUR = QColor("#c3c7d1")
WARN_COLOUR = QColor("#d97706")
LATE_COLOUR = QColor("#b3261e")
_UP = "#1b7a34"
_DOWN = "#b3261e"
_PERIOD_TEXT = {
    PeriodKind.DAYS_7: "Last 7 days",
    PeriodKind.DAYS_30: "Last 30 days",
    PeriodKind.DAYS_90: "Last 90 days",
    PeriodKind.MONTH: "This month",
    PeriodKind.CUSTOM: "Custom…",
}
_SHORT_AGE = {"Current": "not due", "90+ days": "90+"}
_ALIGN_BOTTOM = Qt.AlignmentFlag.AlignBottom
_ALIGN_LEFT = Qt.AlignmentFlag.AlignLeft


@dataclass(frozen=True)
class DrillDown:
    """A list to open behind a bar: which panel, what it shows, and how to narrow it."""

    panel: str
    label: str
    predicate: Callable[[Any], bool] | None = None  # over the panel's rows
    invoice_filter: InvoiceFilter | None = None  # for the Invoices panel (filtered in SQL)


def _major(amount: int, currency: str) -> float:
    return float(amount) / float(10 ** decimals(currency))


def _nice_max(value: float) -> float:
    """A round axis maximum a little above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _invoices(n: int, what: str = "") -> str:
    return f"{n:,} {what}invoice{'' if n == 1 else 's'}"


def subscriptions_line(o: Overview, money: Callable[[int], str]) -> str:
    """MRR, active, new and churned subscriptions in the currency, with the change in MRR."""
    f = o.subscriptions
    if f is None or not (f.active or f.trialing or f.churned or f.mrr_before):
        return f"Subscriptions ({o.currency.upper()}): none"
    words, _colour = change_text(Change(f.mrr, f.mrr_before), money)
    return (
        f"Subscriptions ({o.currency.upper()}): MRR {money(f.mrr)} ({words or 'no change'}) · "
        f"{f.active:,} active · {f.trialing:,} trialing · {f.new:,} new · "
        f"{f.churned:,} canceled in the period"
    )


def change_text(c: Change, fmt: Callable[[int], str]) -> tuple[str, str]:
    """The change line under a figure, and its colour ("" for neutral)."""
    pct = c.percent
    if pct is None:
        return ("new this period" if c.now else "nothing in either period"), ""
    arrow = "▲" if c.now > c.before else "▼" if c.now < c.before else "="
    colour = _UP if c.now > c.before else _DOWN if c.now < c.before else ""
    return f"{arrow} {abs(pct):.1f}% vs {fmt(c.before)}", colour


class Figure(QFrame):
    """One number with its caption and its change against the previous period."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("figure")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 12, 0)
        layout.setSpacing(0)
        self.caption = QLabel(caption)
        self.caption.setStyleSheet("color: #5f6368;")
        self.value = QLabel("—")
        self.value.setStyleSheet("font-size: 17px; font-weight: 600;")
        self.change = QLabel()
        self.change.setStyleSheet("color: #5f6368;")
        for label in (self.caption, self.value, self.change):
            layout.addWidget(label)

    def show_value(self, text: str, change: tuple[str, str] = ("", ""), tip: str = "") -> None:
        self.value.setText(text)
        words, colour = change
        self.change.setText(words)
        self.change.setStyleSheet(f"color: {colour or '#5f6368'};")
        self.setToolTip(tip)


def _chart(title: str) -> tuple[QChart, QChartView]:
    chart = QChart()
    chart.setTitle("")
    chart.setMargins(QMargins(0, 0, 0, 0))
    chart.setBackgroundRoundness(0)
    chart.legend().setAlignment(Qt.AlignmentFlag.AlignTop)
    chart.setAnimationOptions(QChart.AnimationOption.NoAnimation)
    view = QChartView(chart)
    view.setRenderHint(QPainter.RenderHint.Antialiasing)
    view.setMinimumHeight(190)
    view.setAccessibleName(title)
    return chart, view


class Section(QFrame):
    """A titled block: figures in a row, then the chart (or a note when it has nothing)."""

    def __init__(self, title: str, captions: Sequence[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("overviewSection")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        heading = QLabel(title)
        heading.setStyleSheet("font-size: 14px; font-weight: 600;")
        self.subtitle = QLabel()
        self.subtitle.setStyleSheet("color: #5f6368;")
        top = QHBoxLayout()
        top.addWidget(heading)
        top.addWidget(self.subtitle)
        top.addStretch(1)
        layout.addLayout(top)
        row = QHBoxLayout()
        self.figures = [Figure(c) for c in captions]
        for figure in self.figures:
            row.addWidget(figure)
        row.addStretch(1)
        layout.addLayout(row)
        self.chart, self.view = _chart(title)
        self.note = QLabel()
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #5f6368;")
        self.body = QStackedWidget()
        self.body.addWidget(self.view)
        self.body.addWidget(self.note)
        layout.addWidget(self.body, 1)

    def show_chart(self, has_data: bool, note: str) -> None:
        self.note.setText(note)
        self.body.setCurrentWidget(self.view if has_data else self.note)

    def reset_chart(self) -> None:
        self.chart.removeAllSeries()
        for axis in self.chart.axes():
            self.chart.removeAxis(axis)


class OverviewPanel(QWidget):
    """The Overview (Ctrl+0). Same signals as a list panel, so the window treats it alike."""

    title = "Overview"
    #: Emitted when computing failed with an expected error, with its message.
    load_failed = Signal(str)
    #: Never emitted here (the Overview changes nothing); kept for the window's wiring.
    changed_elsewhere = Signal()
    #: Never emitted here; kept for the window's wiring.
    open_requested = Signal(str, object)
    #: Emitted with a DrillDown when a bar is clicked: the window opens that list, narrowed.
    drill_requested = Signal(object)
    #: Emitted on the GUI thread once figures and charts show a new result.
    overview_shown = Signal(object)

    def __init__(self, ctx: AppContext, tasks: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ctx = ctx
        self._tasks = tasks
        self._loading = False
        self._reload_pending = False
        self._currency: str | None = None
        self.current: Overview | None = None
        self._keep: list[QBarSet] = []  # the bar sets whose signals are connected

        heading = QLabel(self.title)
        heading.setObjectName("panelTitle")
        self.status_label = QLabel("Loading…")
        self.status_label.setObjectName("countLabel")
        self.period_combo = QComboBox()
        for kind in (*PERIOD_CHOICES, PeriodKind.CUSTOM):
            self.period_combo.addItem(_PERIOD_TEXT[kind], kind)
        self.period_combo.setCurrentIndex(1)  # 30 days, like the Dashboard
        self.period_combo.currentIndexChanged.connect(self._on_period_combo_changed)
        today = QDate.currentDate()
        self.first_edit = QDateEdit(today.addDays(-29))
        self.last_edit = QDateEdit(today)
        for edit in (self.first_edit, self.last_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setMaximumDate(today)
            edit.setVisible(False)
            edit.dateChanged.connect(lambda _d: self.refresh())
        self.first_edit.setToolTip("First day of the period")
        self.last_edit.setToolTip("Last day of the period (included)")
        self.currency_combo = QComboBox()
        self.currency_combo.setToolTip("Money is shown in one currency at a time, never added up")
        self.currency_combo.setMinimumWidth(80)
        self.currency_combo.currentIndexChanged.connect(self._on_currency_combo_changed)
        header = QHBoxLayout()
        header.addWidget(heading)
        header.addSpacing(12)
        header.addWidget(self.status_label)
        header.addStretch(1)
        header.addWidget(QLabel("Period:"))
        for widget in (self.period_combo, self.first_edit, self.last_edit):
            header.addWidget(widget)
        header.addSpacing(8)
        header.addWidget(QLabel("Currency:"))
        header.addWidget(self.currency_combo)

        self.revenue = Section("Revenue", ("Total", "Invoices paid", "Top-ups paid"))
        self.credits = Section("Credits", ("Sold", "Granted", "Clawed back", "Outstanding"))
        self.receivables = Section("Receivables", ("Open", "Overdue", "90+ days"))
        self.funnel = Section("Top-up links", ("Issued", "Paid", "Credited"))
        grid = QGridLayout()
        grid.setSpacing(10)
        grid.addWidget(self.revenue, 0, 0, 1, 2)
        grid.addWidget(self.credits, 1, 0)
        grid.addWidget(self.receivables, 1, 1)
        grid.addWidget(self.funnel, 2, 0, 1, 2)
        grid.setRowStretch(0, 5)
        grid.setRowStretch(1, 4)
        grid.setRowStretch(2, 3)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        self.charts = QWidget()
        self.charts.setLayout(grid)
        self.empty = EmptyState()
        self.retry = self.empty.action
        self.stack = QStackedWidget()
        self.stack.addWidget(self.charts)
        self.stack.addWidget(self.empty)
        self.empty.show_message("Loading…", "")
        self.stack.setCurrentWidget(self.empty)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addLayout(header)
        # Subscriptions in one line (services.subscriptions.SubscriptionFigures).
        self.subscriptions_label = QLabel()
        self.subscriptions_label.setObjectName("subscriptionsLine")
        self.subscriptions_label.setToolTip(
            "MRR: active and past-due subscriptions, normalised to a month. The previous "
            "period's figures are estimated from today's amounts (the mirror keeps no history)."
        )
        layout.addWidget(self.subscriptions_label)
        layout.addWidget(self.stack, 1)
        self.funnel.view.setMinimumHeight(150)

    # ---- public (what the window calls on every panel)
    def refresh(self) -> None:
        """Compute the figures for the chosen period and currency in the background."""
        if self._loading:
            self._reload_pending = True
            return
        try:
            period = self.period()
        except AppError as exc:
            self.status_label.setText(str(exc))
            return
        self._loading = True
        self._reload_pending = False
        currency = self._currency
        self.status_label.setText("Updating…" if self.current is not None else "Loading…")
        self._tasks.run(
            self,
            lambda: self._ctx.overview.overview(period, currency),
            self._on_overview_ok,
            self._on_overview_err,
        )

    def period(self) -> Period:
        kind = self.period_combo.currentData()
        today = self._ctx.overview.today()
        if kind is PeriodKind.CUSTOM:
            first = self.first_edit.date().toPython()
            last = self.last_edit.date().toPython()
            assert isinstance(first, date)
            assert isinstance(last, date)
            return period_for(kind, today, first, last)
        assert isinstance(kind, PeriodKind)
        return period_for(kind, today)

    def focus_search(self) -> None:
        self.period_combo.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def reveal(self, _key: object) -> None:
        self.refresh()

    def clear_filters(self) -> None:
        pass

    # ---- slots
    def _on_period_combo_changed(self, _index: int) -> None:
        custom = self.period_combo.currentData() is PeriodKind.CUSTOM
        for edit in (self.first_edit, self.last_edit):
            edit.setVisible(custom)
        self.refresh()

    def _on_currency_combo_changed(self, _index: int) -> None:
        code = self.currency_combo.currentData()
        if isinstance(code, str) and code != self._currency:
            self._currency = code
            self.refresh()

    def _on_overview_ok(self, found: Overview) -> None:
        self._loading = False
        if self._reload_pending:
            self.refresh()
            return
        self.show_overview(found)

    def _on_overview_err(self, exc: BaseException) -> None:
        self._loading = False
        if not isinstance(exc, AppError):
            raise exc
        self.status_label.setText("")
        self.empty.show_message("Could not compute the overview", str(exc))
        self.stack.setCurrentWidget(self.empty)
        self.load_failed.emit(str(exc))

    # ---- drawing
    def show_overview(self, o: Overview) -> None:
        """Put `o` on screen: figures, charts, and the currency choices."""
        self.current = o
        self._currency = o.currency
        self._fill_currencies(o)
        cur = o.currency

        def money(amount: int) -> str:
            return format_amount(amount, cur)

        self.status_label.setText(
            f"{o.period.first:%d %b %Y} – {o.period.last:%d %b %Y} · {cur.upper()} · compared "  # noqa: RUF001
            f"with {o.previous.first:%d %b} – {o.previous.last:%d %b %Y}"  # noqa: RUF001
        )
        self.subscriptions_label.setText(subscriptions_line(o, money))
        if o.is_empty:
            self.empty.show_message(
                f"Nothing happened in {cur.upper()} — {o.period.label.lower()}",
                f"No invoice or top-up was paid in {cur.upper()}, no credits were sold, granted "
                "or clawed back, no top-up link was issued, and no invoice is open. Pick a "
                "longer period or another currency above, or sync from Stripe (Ctrl+R) if "
                "you expected something here.",
            )
            self.stack.setCurrentWidget(self.empty)
            self.overview_shown.emit(o)
            return
        self.stack.setCurrentWidget(self.charts)
        self._keep.clear()
        self._draw_revenue(o, money)
        self._draw_credits(o)
        self._draw_receivables(o, money)
        self._draw_funnel(o)
        self.overview_shown.emit(o)

    def _fill_currencies(self, o: Overview) -> None:
        codes = list(o.currencies) or [o.currency]
        if o.currency not in codes:
            codes.append(o.currency)
        have = [self.currency_combo.itemData(i) for i in range(self.currency_combo.count())]
        self.currency_combo.blockSignals(True)
        try:
            if have != codes:
                self.currency_combo.clear()
                for code in codes:
                    self.currency_combo.addItem(code.upper(), code)
            self.currency_combo.setCurrentIndex(codes.index(o.currency))
        finally:
            self.currency_combo.blockSignals(False)

    def _connect(self, bar_set: QBarSet, tip: Callable[[int], str],
                 drill: Callable[[int], DrillDown | None]) -> None:  # fmt: skip
        def hovered(inside: bool, index: int) -> None:
            if inside:
                QToolTip.showText(QCursor.pos(), tip(index))
            else:
                QToolTip.hideText()

        def clicked(index: int) -> None:
            target = drill(index)
            if target is not None:
                self.drill_requested.emit(target)

        bar_set.hovered.connect(hovered)
        bar_set.clicked.connect(clicked)
        self._keep.append(bar_set)

    def _bar_set(self, name: str, colour: QColor, values: Sequence[float]) -> QBarSet:
        bar_set = QBarSet(name)
        bar_set.setColor(colour)
        bar_set.setBorderColor(colour)
        bar_set.append([float(v) for v in values])
        return bar_set

    def _axes(self, section: Section, series: Any, categories: list[str], top: float,
              *, horizontal: bool = False, label_format: str = "%.0f") -> None:  # fmt: skip
        chart = section.chart
        chart.addSeries(series)
        cats = QBarCategoryAxis()
        cats.append(categories)
        values = QValueAxis()
        values.setLabelFormat(label_format)
        high = _nice_max(top)
        if label_format == "%.0f" and high <= 5:
            # Whole-number labels on a short axis: one tick per unit, never "0, 0, 1, 1".
            high = float(max(1, math.ceil(top)))
            values.setRange(0, high)
            values.setTickCount(int(high) + 1)
        else:
            values.setRange(0, high)
            values.applyNiceNumbers()
        small = QFont()
        small.setPointSize(8)
        for axis in (cats, values):
            axis.setLabelsFont(small)
            axis.setGridLineVisible(axis is values)
        chart.addAxis(cats, _ALIGN_LEFT if horizontal else _ALIGN_BOTTOM)
        chart.addAxis(values, _ALIGN_BOTTOM if horizontal else _ALIGN_LEFT)
        series.attachAxis(cats)
        series.attachAxis(values)

    def _draw_revenue(self, o: Overview, money: Callable[[int], str]) -> None:
        s = self.revenue
        s.figures[0].show_value(money(o.revenue.now), change_text(o.revenue, money))
        s.figures[1].show_value(
            money(o.invoices_paid.now),
            change_text(o.invoices_paid, money),
            f"{o.invoices_paid_count.now:,} invoices paid "
            f"(before: {o.invoices_paid_count.before:,})",
        )
        s.figures[2].show_value(
            money(o.topups_paid.now),
            change_text(o.topups_paid, money),
            f"{o.topups_paid_count.now:,} top-ups paid (before: {o.topups_paid_count.before:,})",
        )
        s.subtitle.setText("by the day it was paid · click a bar for the payments")
        s.reset_chart()
        days = o.revenue_by_day
        cur = o.currency
        every = max(1, math.ceil(len(days) / 31))
        # The day of the month (a label wider than its bar is cut short); category labels must
        # be unique, so the days not labelled get distinct invisible ones.
        labels = [
            str(d.day.day) if i % every == 0 else "\u200b" * (i + 1) for i, d in enumerate(days)
        ]
        inv = self._bar_set(
            "Invoices paid", INVOICES_COLOUR, [_major(d.invoices, cur) for d in days]
        )
        top = self._bar_set("Top-ups paid", TOPUPS_COLOUR, [_major(d.topups, cur) for d in days])
        series = QStackedBarSeries()
        series.setBarWidth(0.8)
        series.append(inv)
        series.append(top)
        peak = max((_major(d.invoices + d.topups, cur) for d in days), default=0.0)
        self._axes(s, series, labels, peak)
        first, last = days[0].day, days[-1].day
        s.chart.axes(Qt.Orientation.Horizontal)[0].setTitleText(
            f"{first:%B %Y}" if (first.year, first.month) == (last.year, last.month)
            else f"{first:%d %b %Y} – {last:%d %b %Y}"  # noqa: RUF001
        )  # fmt: skip

        def tip(index: int) -> str:
            d = days[index]
            return (
                f"{d.day:%a %d %b %Y}\nInvoices paid: {money(d.invoices)}\n"
                f"Top-ups paid: {money(d.topups)}\nTotal: {money(d.invoices + d.topups)}\n"
                "Click to list them"
            )

        def day_bounds(index: int) -> tuple[int, int]:
            day = days[index].day
            return day_start(day, None), day_start(day + timedelta(days=1), None)

        def invoices_of(index: int) -> DrillDown:
            since, until = day_bounds(index)
            return DrillDown(
                "invoices",
                f"Invoices paid on {days[index].day:%d %b %Y} in {cur.upper()}",
                invoice_filter=InvoiceFilter(currency=cur, paid_since=since, paid_until=until),
            )

        def topups_of(index: int) -> DrillDown:
            since, until = day_bounds(index)
            return DrillDown(
                "topups",
                f"Top-ups paid on {days[index].day:%d %b %Y} in {cur.upper()}",
                predicate=lambda r: r.currency == cur and since <= (r.paid_at or 0) < until,
            )

        self._connect(inv, tip, invoices_of)
        self._connect(top, tip, topups_of)
        s.show_chart(bool(o.revenue.now), f"Nothing was paid in {cur.upper()} in this period.")

    def _draw_credits(self, o: Overview) -> None:
        s = self.credits

        def n(value: int) -> str:
            return f"{value:,}"

        s.figures[0].show_value(n(o.credits_sold.now), change_text(o.credits_sold, n))
        s.figures[1].show_value(n(o.credits_granted.now), change_text(o.credits_granted, n))
        s.figures[2].show_value(n(o.credits_clawed_back.now), change_text(o.credits_clawed_back, n))
        s.figures[3].show_value(
            n(o.credits_outstanding.now),
            change_text(o.credits_outstanding, n),
            "Every customer's credit balance added up, at the end of each period",
        )
        s.subtitle.setText("in credits, every currency · this period vs the one before")
        s.reset_chart()
        kinds = (("Sold", o.credits_sold, "purchase"), ("Granted", o.credits_granted, "grant"),
                 ("Clawed back", o.credits_clawed_back, "clawback"))  # fmt: skip
        now = self._bar_set("This period", INVOICES_COLOUR, [c.now for _, c, _k in kinds])
        before = self._bar_set("Previous period", BEFORE_COLOUR, [c.before for _, c, _k in kinds])
        series = QBarSeries()
        series.append(now)
        series.append(before)
        peak = max(max(c.now, c.before) for _, c, _k in kinds)
        self._axes(s, series, [k for k, _c, _k in kinds], peak)

        def tip(index: int) -> str:
            name, c, _kind = kinds[index]
            return f"{name}: {c.now:,} credits (previous period: {c.before:,})\nClick for who"

        def drill(index: int) -> None:
            name, _c, kind = kinds[index]
            period = o.period

            def opened(customers: frozenset[str]) -> None:
                self.drill_requested.emit(
                    DrillDown(
                        "credits",
                        f"Customers with credits {name.lower()} · {period.label.lower()}",
                        predicate=lambda r: r.customer_id in customers,
                    )
                )

            self._tasks.run(
                self,
                lambda: self._ctx.overview.customers_with(kind, period),
                opened,
                self._on_overview_err,
            )
            return None

        self._connect(now, tip, drill)
        self._connect(before, tip, drill)
        moved = any(c.now or c.before for _, c, _k in kinds)
        s.show_chart(moved, "No credits were sold, granted or clawed back in either period.")

    def _draw_receivables(self, o: Overview, money: Callable[[int], str]) -> None:
        s = self.receivables
        buckets = o.receivables
        open_count = sum(b.count for b in buckets)
        late = sum(b.count for b in buckets if b.low > 0)
        s.figures[0].show_value(money(o.receivables_total), (_invoices(open_count, "open "), ""))
        s.figures[1].show_value(money(o.overdue_total), (_invoices(late), _DOWN if late else ""))
        s.figures[2].show_value(money(buckets[-1].amount), (_invoices(buckets[-1].count), ""))
        s.subtitle.setText("still owed today, by days overdue")
        s.reset_chart()
        cur = o.currency
        bars = self._bar_set(
            "Still owed", INVOICES_COLOUR, [_major(b.amount, cur) for b in buckets]
        )
        series = QBarSeries()
        series.append(bars)
        series.setBarWidth(0.6)
        peak = max((_major(b.amount, cur) for b in buckets), default=0.0)
        self._axes(
            s,
            series,
            [_SHORT_AGE.get(b.label, b.label.removesuffix(" days")) for b in buckets],
            peak,
        )
        s.chart.axes(Qt.Orientation.Horizontal)[0].setTitleText("days overdue")
        chart_legend = s.chart.legend()
        chart_legend.setVisible(False)

        def tip(index: int) -> str:
            b: AgeBucket = buckets[index]
            when = "not yet due" if b.low == 0 else f"{b.label} overdue"
            return f"{b.count:,} open invoices {when}: {money(b.amount)}\nClick to list them"

        def drill(index: int) -> DrillDown:
            b = buckets[index]
            when = "not yet due" if b.low == 0 else f"{b.label} overdue"
            return DrillDown(
                "invoices",
                f"Open invoices in {cur.upper()}, {when}",
                invoice_filter=InvoiceFilter(currency=cur, days_overdue=(b.low, b.high)),
            )

        self._connect(bars, tip, drill)
        s.show_chart(bool(open_count), f"No open invoices in {cur.upper()}: nothing is owed.")

    def _draw_funnel(self, o: Overview) -> None:
        s = self.funnel
        f, fb = o.funnel, o.funnel_before

        def n(value: int) -> str:
            return f"{value:,}"

        def rate(part: int, whole: int) -> str:
            return f" ({part * 100 / whole:.0f}%)" if whole else ""

        s.figures[0].show_value(n(f.issued), change_text(Change(f.issued, fb.issued), n))
        s.figures[1].show_value(
            n(f.paid) + rate(f.paid, f.issued), change_text(Change(f.paid, fb.paid), n)
        )
        s.figures[2].show_value(
            n(f.credited) + rate(f.credited, f.issued),
            change_text(Change(f.credited, fb.credited), n),
        )
        s.subtitle.setText(
            f"issued in the period, in {o.currency.upper()} · expired {f.expired:,}, "
            f"failed {f.failed:,}"
        )
        s.reset_chart()
        stages = (("Issued", f.issued, None), ("Paid", f.paid, "paid"),
                  ("Credited", f.credited, "credited"), ("Expired", f.expired, "expired"),
                  ("Failed", f.failed, "failed"))  # fmt: skip
        # Left to right in the order links go through them, then where the others ended.
        shown = list(stages)
        bars = self._bar_set("Links", TOPUPS_COLOUR, [v for _, v, _s in shown])
        series = QBarSeries()
        series.append(bars)
        series.setBarWidth(0.5)
        self._axes(s, series, [name for name, _v, _s in shown], max(f.issued, 1))
        s.chart.legend().setVisible(False)
        cur = o.currency
        start = day_start(o.period.first, None)
        end = day_start(o.period.last + timedelta(days=1), None)

        def tip(index: int) -> str:
            name, value, _stage = shown[index]
            return f"{name}: {value:,} of {f.issued:,} links issued{rate(value, f.issued)}"

        def matches(stage: str | None, row: Any) -> bool:
            if stage == "paid":
                return row.paid_at is not None
            if stage == "credited":
                return row.status in ("credited", "refunded", "disputed")
            return stage is None or row.status == stage

        def drill(index: int) -> DrillDown:
            name, _v, stage = shown[index]
            return DrillDown(
                "topups",
                f"Top-up links issued {o.period.label.lower()} in {cur.upper()}: {name.lower()}",
                predicate=lambda r: r.currency == cur and start <= r.issued_at < end
                and matches(stage, r),
            )  # fmt: skip

        self._connect(bars, tip, drill)
        s.show_chart(bool(f.issued), f"No top-up link in {cur.upper()} was issued in this period.")
