"""`admin-app overview`: the Overview panel's figures, for a period and a currency."""

from __future__ import annotations

import argparse
import json
from typing import Any

from services.context import AppContext
from services.money import format_amount
from services.overview import Change, Overview, parse_period


def _change(c: Change) -> str:
    pct = c.percent
    if pct is None:
        return "(nothing before)" if c.now else ""
    return f"({pct:+.1f}% vs {c.before:,})" if c.before else ""


def _money_change(c: Change, currency: str) -> str:
    pct = c.percent
    before = format_amount(c.before, currency)
    if pct is None:
        return "(nothing before)" if c.now else ""
    return f"({pct:+.1f}% vs {before})"


def render(o: Overview) -> list[str]:
    """The figures as lines of text, the panel's order."""
    cur = o.currency

    def money(amount: int) -> str:
        return format_amount(amount, cur)

    lines = [
        f"Overview — {o.period.label} ({o.period.first} to {o.period.last}), {cur.upper()}; "
        f"compared with {o.previous.first} to {o.previous.last}",
        "",
        "Revenue",
        f"  total           {money(o.revenue.now):>14}  {_money_change(o.revenue, cur)}",
        f"  invoices paid   {money(o.invoices_paid.now):>14}  "
        f"{o.invoices_paid_count.now:,} invoices {_money_change(o.invoices_paid, cur)}",
        f"  top-ups paid    {money(o.topups_paid.now):>14}  "
        f"{o.topups_paid_count.now:,} top-ups {_money_change(o.topups_paid, cur)}",
        "",
        "Credits (all currencies)",
        f"  sold            {o.credits_sold.now:>14,}  {_change(o.credits_sold)}",
        f"  granted         {o.credits_granted.now:>14,}  {_change(o.credits_granted)}",
        f"  clawed back     {o.credits_clawed_back.now:>14,}  {_change(o.credits_clawed_back)}",
        f"  outstanding     {o.credits_outstanding.now:>14,}  {_change(o.credits_outstanding)}",
        "",
        f"Receivables (open invoices, as of now): {money(o.receivables_total)}, "
        f"overdue {money(o.overdue_total)}",
    ]
    lines += [
        f"  {b.label:<14}  {money(b.amount):>14}  {b.count:,} invoices" for b in o.receivables
    ]
    f, fb = o.funnel, o.funnel_before
    lines += [
        "",
        "Top-up links issued in the period",
        f"  issued {f.issued:,} → paid {f.paid:,} → credited {f.credited:,}; "
        f"expired {f.expired:,}, failed {f.failed:,}",
        f"  before: issued {fb.issued:,} → paid {fb.paid:,} → credited {fb.credited:,}; "
        f"expired {fb.expired:,}, failed {fb.failed:,}",
    ]
    s = o.subscriptions
    if s is not None:
        lines += [
            "",
            "Subscriptions (before: estimated from today's amounts)",
            f"  MRR             {money(s.mrr):>14}  before {money(s.mrr_before)}",
            f"  active {s.active:,} (before {s.active_before:,}), trialing {s.trialing:,}, "
            f"new {s.new:,} (before {s.new_before:,}), canceled {s.churned:,} "
            f"(before {s.churned_before:,})",
        ]
    if o.is_empty:
        lines += ["", "Nothing was paid, credited or issued in this period, and nothing is owed."]
    return lines


def overview(args: argparse.Namespace, ctx: AppContext) -> int:
    period = parse_period(args.period, ctx.overview.today())
    found = ctx.overview.overview(period, args.currency)
    if args.json:
        print(json.dumps(found.to_json(), indent=2, sort_keys=True))
    else:
        print("\n".join(render(found)))
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "overview", help="revenue, credits, receivables and the top-up funnel for a period"
    )
    p.add_argument(
        "--period",
        default="30d",
        metavar="P",
        help="7d, 30d (default), 90d, month (to date) or FIRST..LAST, e.g. 2026-11-01..2026-11-30",
    )
    p.add_argument("--currency", metavar="CODE", help="e.g. usd (default: the most used one)")
    p.add_argument("--json", action="store_true", help="every figure as JSON, in minor units")
    p.set_defaults(handler=overview)
