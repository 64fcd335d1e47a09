"""`subscriptions …`: list, show, create, update, cancel, pause, resume.

JSON uses Stripe ids as `id`. Each change is one user action with one idempotency key: the
request journal's (re-used after a run whose outcome is unknown) or `--idempotency-key`. Before
a change, what it does in money is printed on stderr (the same words the window's confirmation
shows); stdout stays the result.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from admin_app import argtypes, output
from services.context import AppContext
from services.errors import ValidationError
from services.export import SUBSCRIPTIONS
from services.money import format_amount
from services.subscriptions import (
    COLLECTION_METHODS,
    PAUSE_BEHAVIORS,
    PRORATIONS,
    STATUSES,
    SubscriptionDetail,
    SubscriptionDraft,
    SubscriptionRow,
)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def _day(ts: int | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d") if ts else "—"


def row_json(r: SubscriptionRow) -> dict[str, Any]:
    data = r._asdict()
    data["id"] = data.pop("stripe_id")
    data["cancels_at"] = r.cancels_at
    data["prices"] = r.price_ids.split()
    del data["price_ids"]
    return data


def detail_json(d: SubscriptionDetail) -> dict[str, Any]:
    data = row_json(d.row)
    data["items"] = [
        {
            "id": i.item_id,
            "price": i.price_id,
            "product": i.product_id,
            "product_name": i.product_name,
            "quantity": i.quantity,
            "unit_amount": i.unit_amount,
            "amount": i.amount,
            "currency": i.currency,
            "interval": i.interval,
            "credits": i.credits,
            "current_period_start": i.current_period_start,
            "current_period_end": i.current_period_end,
        }
        for i in d.items
    ]
    data["next_invoice"] = (
        {
            "total": d.upcoming.total,
            "amount_due": d.upcoming.amount_due,
            "currency": d.upcoming.currency,
            "next_payment_attempt": d.upcoming.next_payment_attempt,
            "lines": [
                {"description": li.description, "amount": li.amount, "proration": li.proration}
                for li in d.upcoming.lines
            ],
        }
        if d.upcoming
        else None
    )
    data["invoices"] = [
        {"id": i.stripe_id, "number": i.number or None, "status": i.status, "total": i.total,
         "amount_paid": i.amount_paid, "currency": i.currency, "created": i.created}
        for i in d.invoices
    ]  # fmt: skip
    data["history"] = [{"at": h.at, "who": h.who, "what": h.text} for h in d.history]
    return data


def _line(r: SubscriptionRow) -> str:
    amount = format_amount(r.amount, r.currency) if r.currency else "—"
    marker = f"  cancels {_day(r.cancels_at)}" if r.cancels_at else ""
    paused = f"  collection paused ({r.pause_collection})" if r.pause_collection else ""
    return (
        f"{r.stripe_id}  {r.status:<18}  {amount:>12} / {r.interval or '—':<9}  "
        f"MRR {format_amount(r.mrr, r.currency) if r.currency else '—':>10}  "
        f"renews {_day(r.current_period_end)}  {r.customer_name or r.customer_id}  "
        f"{r.plan}{marker}{paused}"
    )


def subscriptions_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    rows = ctx.subscriptions.subscriptions(
        status=args.status, customer_id=args.customer, price_id=args.price, limit=None
    )
    rows = list(output.limited(args, rows, "subscriptions"))
    if csv:
        return output.write_csv(args, ctx, SUBSCRIPTIONS, rows)
    if args.json:
        _print_json([row_json(r) for r in rows])
        return 0
    for r in rows:
        print(_line(r))
    return 0


def subscriptions_show(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    d = ctx.subscriptions.detail(args.id)
    if d.note:
        print(f"admin-app: {d.note}", file=sys.stderr)
    if csv:
        return output.write_csv(args, ctx, SUBSCRIPTIONS, [d.row])
    if args.json:
        _print_json(detail_json(d))
        return 0
    r = d.row
    print(_line(r))
    print(f"  customer: {r.customer_name or '—'} ({r.customer_id}); {r.collection_method}")
    if r.trial_end:
        print(f"  trial ends {_day(r.trial_end)}")
    for i in d.items:
        credits = f"  credit plan: {i.credits:,} credits each paid period" if i.credits else ""
        print(
            f"  item {i.item_id}: {i.quantity} x {i.product_name} ({i.price_id}) "
            f"{format_amount(i.amount, i.currency)} / {i.interval}, period "
            f"{_day(i.current_period_start)} – {_day(i.current_period_end)}{credits}"  # noqa: RUF001
        )
    if d.upcoming is not None:
        u = d.upcoming
        print(f"  next invoice: {format_amount(u.amount_due, u.currency)} "
              f"on {_day(u.next_payment_attempt)}")  # fmt: skip
        for li in u.lines:
            tag = " (proration)" if li.proration else ""
            print(f"    {format_amount(li.amount, u.currency):>12}  {li.description}{tag}")
    else:
        print(f"  next invoice: {d.upcoming_note}")
    for inv in d.invoices:
        print(f"  invoice {inv.stripe_id} {inv.number or '(draft)'} {inv.status} "
              f"{format_amount(inv.total, inv.currency)} {_day(inv.created)}")  # fmt: skip
    for h in d.history:
        print(f"  {datetime.fromtimestamp(h.at):%Y-%m-%d %H:%M}  {h.who}: {h.text}")
    return 0


def _tell(text: str) -> None:
    print(f"admin-app: {text}", file=sys.stderr)


def _done(args: argparse.Namespace, row: SubscriptionRow, what: str) -> int:
    if args.json:
        _print_json(row_json(row))
    else:
        print(f"{row.stripe_id} {what} (status: {row.status}).")
    return 0


def subscriptions_create(args: argparse.Namespace, ctx: AppContext) -> int:
    draft = SubscriptionDraft(
        customer_id=ctx.customers.resolve(args.customer),
        price_id=args.price,
        quantity=args.quantity,
        trial_days=args.trial_days,
        collection_method=args.collection_method,
        days_until_due=args.days_until_due,
    )
    _tell(ctx.subscriptions.preview_create(draft).text)
    row = ctx.subscriptions.create(draft, args.idempotency_key)
    return _done(args, row, "created")


def subscriptions_update(args: argparse.Namespace, ctx: AppContext) -> int:
    if (args.price is None) == (args.quantity is None):
        raise ValidationError("Give either --price PRICE or --quantity N.")
    preview = ctx.subscriptions.preview_change(
        args.id, price_id=args.price, quantity=args.quantity, proration=args.proration
    )
    _tell(preview.text)
    row = ctx.subscriptions.update(
        args.id, price_id=args.price, quantity=args.quantity, proration=args.proration,
        # No proration date: Stripe prorates as of the request, so a re-run with the same key
        # (after a lost answer) sends the very same parameters and is replayed, never repeated.
        idempotency_key=args.idempotency_key,
    )  # fmt: skip
    return _done(args, row, "changed")


def subscriptions_cancel(args: argparse.Namespace, ctx: AppContext) -> int:
    if args.undo:
        row = ctx.subscriptions.undo_cancel(args.id, args.idempotency_key)
        return _done(args, row, "no longer cancels")
    _tell(ctx.subscriptions.preview_cancel(args.id, at_period_end=args.at_period_end).text)
    row = ctx.subscriptions.cancel(
        args.id, at_period_end=args.at_period_end, idempotency_key=args.idempotency_key
    )
    return _done(args, row, "cancels at the period end" if args.at_period_end else "canceled")


def subscriptions_pause(args: argparse.Namespace, ctx: AppContext) -> int:
    _tell(ctx.subscriptions.preview_pause(args.id, args.behavior).text)
    row = ctx.subscriptions.pause(args.id, args.behavior, args.idempotency_key)
    return _done(args, row, "collection paused")


def subscriptions_resume(args: argparse.Namespace, ctx: AppContext) -> int:
    _tell(ctx.subscriptions.preview_resume(args.id).text)
    row = ctx.subscriptions.resume(args.id, args.idempotency_key)
    return _done(args, row, "resumed")


def subscriptions_advance_clock(args: argparse.Namespace, ctx: AppContext) -> int:
    def step(done: int, total: int) -> None:
        print(f"clock: {done // 86_400} of {total // 86_400} days", file=sys.stderr)

    row = ctx.subscriptions.advance_clock(args.id, args.days, on_step=step)
    return _done(args, row, f"is {row.status} after {args.days} days")


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    subs = commands.add_parser("subscriptions", help="list, show and change subscriptions")
    sub = subs.add_subparsers(dest="subscriptions_command", metavar="ACTION", required=True,
                              parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("list", help="subscriptions in the local mirror, newest first")
    p.add_argument("--status", choices=STATUSES)
    p.add_argument("--customer", metavar="ID", help="a customer id (cus_…)")
    p.add_argument("--price", metavar="PRICE", help="only those with this price (price_…)")
    output.add_output_options(p, limit=True)
    p.set_defaults(handler=subscriptions_list)

    p = sub.add_parser("show", help="one subscription: items, next invoice, invoices, history")
    p.add_argument("id", metavar="ID", help="Stripe subscription id (sub_…)")
    output.add_output_options(p)
    p.set_defaults(handler=subscriptions_show, needs_stripe=True)

    p = sub.add_parser("create", help="subscribe a customer to a recurring price (admins)")
    p.add_argument("--customer", required=True, metavar="ID",
                   help="a customer id, or an email exactly one customer has")  # fmt: skip
    p.add_argument("--price", required=True, metavar="PRICE", help="a recurring price")
    p.add_argument("--quantity", type=argtypes.positive, default=1, metavar="N")
    p.add_argument("--trial-days", type=int, default=0, metavar="N", help="a free trial first")
    p.add_argument("--collection-method", choices=COLLECTION_METHODS,
                   default="charge_automatically",
                   help="charge the saved card (default), or email invoices to pay")  # fmt: skip
    p.add_argument("--days-until-due", type=argtypes.positive, default=30, metavar="N",
                   help="with send_invoice")  # fmt: skip
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=subscriptions_create, needs_stripe=True)

    p = sub.add_parser("update", help="change the price or quantity, with prorations (admins)")
    p.add_argument("id", metavar="ID")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--price", metavar="PRICE")
    what.add_argument("--quantity", type=argtypes.positive, metavar="N")
    p.add_argument("--proration", choices=list(PRORATIONS), default="create",
                   help="create: next invoice (default); always: invoiced now; none")  # fmt: skip
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=subscriptions_update, needs_stripe=True)

    p = sub.add_parser("cancel", help="cancel now or at the period end (admins)")
    p.add_argument("id", metavar="ID")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--at-period-end", action="store_true",
                      help="keep it until the period ends (can be undone until then)")  # fmt: skip
    when.add_argument("--undo", action="store_true", help="withdraw a pending cancellation")
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=subscriptions_cancel, needs_stripe=True)

    p = sub.add_parser("pause", help="pause collection (admins)")
    p.add_argument("id", metavar="ID")
    p.add_argument("--behavior", choices=PAUSE_BEHAVIORS, default="void",
                   help="renewal invoices while paused (default: void)")  # fmt: skip
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=subscriptions_pause, needs_stripe=True)

    p = sub.add_parser("advance-clock", help="test mode, sandbox: move its test clock (admins)")
    p.add_argument("id", metavar="ID")
    p.add_argument("--days", type=argtypes.positive, required=True, metavar="N")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=subscriptions_advance_clock, needs_stripe=True)

    p = sub.add_parser("resume", help="resume collection, or a paused subscription (admins)")
    p.add_argument("id", metavar="ID")
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=subscriptions_resume, needs_stripe=True)
