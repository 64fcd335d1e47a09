"""`invoices …`: list, show, create, finalize, charge, void, mark uncollectible, send.

JSON uses Stripe ids as `id`. Each invocation is one user action with one idempotency key: the
request journal's (re-used after a run whose outcome is unknown) or `--idempotency-key`. A
declined charge exits 4 with the reason on stderr; Stripe unreachable exits 5 (run the same
command again: a charge that did go through is reported as already paid, never repeated).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from admin_app import argtypes, output
from services.context import AppContext
from services.errors import ValidationError
from services.export import INVOICES
from services.invoices import (
    OVERDUE,
    STATUSES,
    DraftLine,
    InvoiceDetail,
    InvoiceDraft,
    InvoiceFilter,
    InvoiceListRow,
    InvoiceService,
    totals,
)
from services.money import format_amount
from services.validation import currency


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def _day(ts: int | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d") if ts else "—"


def row_json(r: InvoiceListRow) -> dict[str, Any]:
    data = r._asdict()
    data["id"] = data.pop("stripe_id")
    data["number"] = r.number or None
    return data


def detail_json(d: InvoiceDetail) -> dict[str, Any]:
    return {
        "id": d.stripe_id,
        "number": d.number or None,
        "customer": d.customer_id,
        "customer_name": d.customer_name,
        "status": d.status,
        "overdue": d.overdue,
        "collection_method": d.collection_method,
        "currency": d.currency,
        "total": d.total,
        "amount_due": d.amount_due,
        "amount_paid": d.amount_paid,
        "amount_remaining": d.amount_remaining,
        "created": d.created,
        "due_date": d.due_date,
        "hosted_invoice_url": d.hosted_invoice_url or None,
        "invoice_pdf": d.invoice_pdf or None,
        "lines": [
            {
                "description": li.description,
                "quantity": li.quantity,
                "amount": li.amount,
                "currency": li.currency,
                "price": li.price_id or None,
            }
            for li in d.lines
        ],
        "payments": [
            {
                "id": p.payment_id,
                "status": p.status,
                "amount_requested": p.amount_requested,
                "amount_paid": p.amount_paid,
                "currency": p.currency,
                "created": p.created,
                "paid_at": p.paid_at,
                "payment_intent": p.payment_intent_id or None,
            }
            for p in d.payments
        ]
        if d.payments_known
        else None,
        "history": [{"at": h.at, "who": h.who, "what": h.text} for h in d.history],
    }


def invoices_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    flt = InvoiceFilter(status=args.status, customer=args.customer, limit=None)
    rows = output.limited(args, ctx.invoices.invoices(flt), "invoices")
    if csv:
        return output.write_csv(args, ctx, INVOICES, rows)
    if args.json:
        _print_json([row_json(r) for r in rows])
        return 0
    for r in rows:
        status = "overdue" if r.overdue else r.status
        print(
            f"{r.stripe_id}  {r.number or '(draft)':<14}  {status:<13}  "
            f"{format_amount(r.total, r.currency):>12}  due {_day(r.due_date)}  "
            f"{r.customer_name or r.customer_id}"
        )
    for t in totals(rows):  # of the invoices shown
        print(t.describe())
    return 0


def _print_detail(d: InvoiceDetail) -> None:
    def money(amount: int) -> str:
        return format_amount(amount, d.currency)

    status = "open, overdue" if d.overdue else d.status
    print(f"{d.number or '(draft)'}  {d.stripe_id}  {status}")
    print(f"  customer: {d.customer_name or '—'} ({d.customer_id})")
    print(f"  total {money(d.total)}, paid {money(d.amount_paid)}, "
          f"remaining {money(d.amount_remaining)}; created {_day(d.created)}, "
          f"due {_day(d.due_date)}")  # fmt: skip
    for li in d.lines:
        print(f"  line: {li.quantity} x {li.description}  {money(li.amount)}")
    if d.more_lines:
        print(f"  … and {d.more_lines} more lines")
    if not d.payments_known:
        print("  payments: unknown (Stripe not reachable)")
    for p in d.payments:
        print(f"  payment {p.payment_id}: {p.status}, {money(p.amount_paid)} paid")
    if d.hosted_invoice_url:
        print(f"  invoice page: {d.hosted_invoice_url}")
    if d.invoice_pdf:
        print(f"  PDF: {d.invoice_pdf}")
    for h in d.history:
        print(f"  {datetime.fromtimestamp(h.at):%Y-%m-%d %H:%M}  {h.who}: {h.text}")


def invoices_show(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    d = ctx.invoices.detail(args.id)
    if d.note:
        print(f"admin-app: {d.note}", file=sys.stderr)
    if csv:
        output.write_csv(args, ctx, INVOICES, [d])
    elif args.json:
        _print_json(detail_json(d))
    else:
        _print_detail(d)
    return 0


def invoices_create(args: argparse.Namespace, ctx: AppContext) -> int:
    if args.price:
        if args.amount is not None or args.currency or args.description:
            raise ValidationError("Give either --price, or --amount, --currency and --description.")
        line = DraftLine(price_id=args.price, quantity=args.quantity)
    else:
        if args.amount is None or not args.currency or not args.description:
            raise ValidationError(
                "A custom line needs --amount CENTS, --currency C and --description D "
                "(or give --price PRICE_ID)."
            )
        line = DraftLine(
            description=args.description, amount=args.amount, currency=currency(args.currency)
        )
    draft = InvoiceDraft(
        customer_id=ctx.customers.resolve(args.customer),
        lines=(line,),
        memo=args.memo or "",
        send_invoice=args.send_invoice,
        days_until_due=args.days_until_due,
    )
    d = ctx.invoices.create_draft(draft, args.idempotency_key)
    if args.json:
        _print_json(detail_json(d))
    else:
        print(f"Created draft {d.stripe_id} for {format_amount(d.total, d.currency)}.")
    return 0


def _transition(
    pick: Callable[[InvoiceService], Callable[[str, str | None], InvoiceDetail]], done: str
) -> Callable[[argparse.Namespace, AppContext], int]:
    def handler(args: argparse.Namespace, ctx: AppContext) -> int:
        d = pick(ctx.invoices)(args.id, args.idempotency_key)
        if args.json:
            _print_json(detail_json(d))
        else:
            print(f"{d.number or d.stripe_id} {done} (status: {d.status}).")
        return 0

    return handler


def invoices_charge(args: argparse.Namespace, ctx: AppContext) -> int:
    result = ctx.invoices.charge(args.id, args.idempotency_key)
    if args.json:
        _print_json({"id": result.invoice_id, "outcome": result.outcome.value,
                     "amount": result.amount, "currency": result.currency,
                     "message": result.message})  # fmt: skip
    else:
        print(result.message)
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    inv = commands.add_parser("invoices", help="list, show, create and charge invoices")
    sub = inv.add_subparsers(dest="invoices_command", metavar="ACTION", required=True,
                             parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("list", help="invoices in the local mirror, newest first, with totals")
    p.add_argument("--status", choices=[*STATUSES, OVERDUE])
    p.add_argument("--customer", metavar="ID", help="a customer id (or part of a name/email)")
    output.add_output_options(p, limit=True)
    p.set_defaults(handler=invoices_list)

    p = sub.add_parser("show", help="one invoice: lines, payments, history (read from Stripe)")
    p.add_argument("id", metavar="ID", help="Stripe invoice id (in_…)")
    output.add_output_options(p)
    p.set_defaults(handler=invoices_show, needs_stripe=True)

    p = sub.add_parser("create", help="create a draft invoice in Stripe (admins)")
    p.add_argument(
        "--customer",
        required=True,
        metavar="ID",
        help="a customer id, or an email exactly one customer has",
    )
    p.add_argument("--price", metavar="PRICE_ID", help="a catalog price")
    p.add_argument("--quantity", type=argtypes.positive, default=1, help="with --price")
    p.add_argument("--amount", type=argtypes.cents, metavar="CENTS", help="a custom line's amount")
    p.add_argument("--currency", metavar="C")
    p.add_argument("--description", metavar="D", help="a custom line's description")
    p.add_argument("--memo", metavar="TEXT", help="a note on the invoice for the customer")
    p.add_argument(
        "--send-invoice",
        action="store_true",
        help="the customer pays by link (email) instead of the saved card being charged",
    )
    p.add_argument("--days-until-due", type=argtypes.positive, default=30, metavar="N")
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=invoices_create, needs_stripe=True)

    actions: list[tuple[str, str, Callable[[argparse.Namespace, AppContext], int]]] = [
        ("finalize", "finalize a draft: numbered and payable (admins)",
         _transition(lambda s: s.finalize, "finalized")),
        ("void", "void an open or uncollectible invoice (admins)",
         _transition(lambda s: s.void, "voided")),
        ("uncollectible", "mark an open invoice uncollectible (admins)",
         _transition(lambda s: s.mark_uncollectible, "marked uncollectible")),
        ("send", "have Stripe email an open invoice to the customer (admins)",
         _transition(lambda s: s.send, "sent")),
        ("charge", "charge the customer's default payment method (admins)", invoices_charge),
    ]  # fmt: skip
    for name, text, handler in actions:
        p = sub.add_parser(name, help=text)
        p.add_argument("id", metavar="ID", help="Stripe invoice id (in_…)")
        p.add_argument("--json", action="store_true")
        argtypes.add_idempotency_key(p)
        p.set_defaults(handler=handler, needs_stripe=True)
