"""`sync`, `customers …`, `products …` and `portal-link`: the catalog from the command line.

JSON output uses Stripe ids as `id`. Each invocation is one user action with one idempotency
key, chosen by the request journal (or `--idempotency-key`), so re-running a command after a
lost answer replays Stripe's first answer instead of creating a duplicate.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from typing import Any

from admin_app import argtypes, auto_topup_commands, credit_commands, output
from services import lots
from services.browse import ProductRow
from services.catalog import ProductDraft
from services.context import AppContext
from services.customers import CustomerDetail, CustomerDraft
from services.errors import ValidationError
from services.export import CREDIT_BALANCES, CREDIT_LEDGER, CUSTOMERS, PRODUCTS, TOPUPS
from services.money import format_amount
from services.sync import SyncProgress, SyncTarget
from services.topup_status import STATUS_VALUES
from services.validation import currency, parse_metadata_lines


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def customer_json(d: CustomerDetail) -> dict[str, Any]:
    return {
        "id": d.stripe_id,
        "name": d.name,
        "email": d.email,
        "phone": d.phone,
        "address": asdict(d.address),
        "currency": d.currency or None,
        "balance": d.balance,
        "created": d.created,
        "deleted": d.deleted,
        "metadata": d.metadata,
        "notes": d.notes,
        "tags": list(d.tags),
        "credit_balance": d.credit_balance,
        "invoices": [i.stripe_id for i in d.invoices],
    }


def product_json(p: ProductRow) -> dict[str, Any]:
    price = p.default_price
    return {
        "id": p.stripe_id,
        "name": p.name,
        "active": p.active,
        "credits": p.credits,
        "price": price.stripe_id if price else None,
        "amount": price.unit_amount if price else None,
        "currency": price.currency if price else None,
        "prices": [pr._asdict() | {"id": pr.stripe_id} for pr in p.prices],
    }


def sync(args: argparse.Namespace, ctx: AppContext) -> int:
    def progress(p: SyncProgress) -> None:
        total = f" of ~{p.estimate:,}" if p.estimate else ""
        print(f"{p.kind}: {p.done:,}{total}", file=sys.stderr, flush=True)

    summary = ctx.sync.pull(SyncTarget(args.what), progress=progress)
    print(summary.line())
    return 0


def customers_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    found = output.limited(args, ctx.browse.find_customers(args.search or ""), "customers")
    if csv:
        return output.write_csv(args, ctx, CUSTOMERS, found)
    if args.json:
        _print_json([customer_json(ctx.customers.detail(c.stripe_id)) for c in found])
        return 0
    for c in found:
        print(f"{c.stripe_id}  {c.name or '(no name)':<28}  {c.email}")
    return 0


def customers_show(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    d = ctx.customers.detail(args.id)
    if csv:
        return output.write_csv(args, ctx, CUSTOMERS, [d])
    if args.json:
        _print_json(customer_json(d))
        return 0
    print(f"{d.name or '(no name)'} <{d.email}>  {d.stripe_id}")
    print(f"  phone: {d.phone or '—'}   address: {d.address.one_line() or '—'}")
    print(f"  Stripe balance: {format_amount(d.balance, d.currency or 'usd')}   "
          f"credits: {d.credit_balance:,}   invoices: {len(d.invoices)}")  # fmt: skip
    if d.metadata:
        print("  metadata: " + ", ".join(f"{k}={v}" for k, v in sorted(d.metadata.items())))
    return 0


def customers_add(args: argparse.Namespace, ctx: AppContext) -> int:
    draft = CustomerDraft(
        email=args.email,
        name=args.name or "",
        phone=args.phone or "",
        metadata=parse_metadata_lines("\n".join(args.metadata or [])),
    )
    d = ctx.customers.create(draft, args.idempotency_key)
    if args.json:
        _print_json(customer_json(d))
    else:
        print(f"Created {d.stripe_id} ({d.email}).")
    return 0


def customers_edit(args: argparse.Namespace, ctx: AppContext) -> int:
    changes: dict[str, Any] = {
        name: getattr(args, name)
        for name in ("email", "name", "phone", "notes")
        if getattr(args, name) is not None
    }
    current = ctx.customers.detail(args.id)
    if args.metadata:
        added = parse_metadata_lines("\n".join(args.metadata))
        changes["metadata"] = {**current.metadata, **added}
    if not changes:
        raise ValidationError(
            "Nothing to change: give --email, --name, --phone, --notes or --metadata."
        )
    draft = replace(current.as_draft(), **changes)
    d = ctx.customers.update(args.id, draft, args.idempotency_key)
    print(f"Updated {d.stripe_id}.")
    return 0


def products_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    rows = output.limited(args, ctx.browse.products(), "products")
    if csv:
        return output.write_csv(args, ctx, PRODUCTS, rows)
    if args.json:
        _print_json([product_json(p) for p in rows])
        return 0
    for p in rows:
        price = p.default_price
        amount = format_amount(price.unit_amount, price.currency) if price else "no price"
        credits = f"{p.credits:,} credits" if p.credits else ""
        status = "" if p.active else " (archived)"
        print(f"{p.stripe_id}  {p.name + status:<32}  {amount:>12}  {credits}")
    return 0


def products_add(args: argparse.Namespace, ctx: AppContext) -> int:
    code = currency(args.currency)
    draft = ProductDraft(
        name=args.name,
        amount=args.amount,  # already in minor units (cents)
        currency=code,
        description=args.description or "",
        credits=args.credits,
    )
    row = ctx.catalog.create(draft, args.idempotency_key)
    if args.json:
        _print_json(product_json(row))
    else:
        print(f"Created {row.stripe_id} ({row.name}).")
    return 0


def portal_link(args: argparse.Namespace, ctx: AppContext) -> int:
    link = ctx.customers.portal_link(args.customer, args.idempotency_key, args.return_url)
    print(link.url)
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    p = commands.add_parser("sync", help="pull customers, products and prices from Stripe")
    p.add_argument("what", nargs="?", default="all", choices=[t.value for t in SyncTarget])
    p.set_defaults(handler=sync, needs_stripe=True)

    cust = commands.add_parser("customers", help="find, show, add and edit customers")
    sub = cust.add_subparsers(dest="customers_command", metavar="ACTION", required=True,
                              parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("list", help="customers in the local mirror, newest first")
    p.add_argument("--search", metavar="TEXT", help="name, email or Stripe id contains TEXT")
    output.add_output_options(p, limit=True)
    p.set_defaults(handler=customers_list)
    p = sub.add_parser("show", help="one customer's details")
    p.add_argument("id", metavar="ID", help="Stripe customer id (cus_…)")
    output.add_output_options(p)
    p.set_defaults(handler=customers_show)
    p = sub.add_parser("add", help="create a customer in Stripe (support, admins)")
    p.add_argument("--email", required=True)
    p.add_argument("--name")
    p.add_argument("--phone")
    p.add_argument("--metadata", action="append", metavar="KEY=VALUE")
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=customers_add, needs_stripe=True)
    p = sub.add_parser("edit", help="change a customer in Stripe (support, admins)")
    p.add_argument("id", metavar="ID")
    p.add_argument("--email")
    p.add_argument("--name")
    p.add_argument("--phone")
    p.add_argument("--notes", help="local only, never sent to Stripe")
    p.add_argument("--metadata", action="append", metavar="KEY=VALUE")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=customers_edit, needs_stripe=True)

    prod = commands.add_parser("products", help="list and add products (credit packs too)")
    sub = prod.add_subparsers(dest="products_command", metavar="ACTION", required=True,
                              parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("list", help="products and their prices from the local mirror")
    output.add_output_options(p, limit=True)
    p.set_defaults(handler=products_list)
    p = sub.add_parser("add", help="create a product with a one-time price (admins)")
    p.add_argument("--name", required=True)
    p.add_argument("--amount", required=True, type=argtypes.cents, metavar="CENTS")
    p.add_argument("--currency", required=True, metavar="C")
    p.add_argument(
        "--credits", type=argtypes.positive, metavar="N", help="make it a credit pack of N"
    )
    p.add_argument("--description")
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=products_add, needs_stripe=True)

    p = commands.add_parser("portal-link", help="create a Customer Portal link (support, admins)")
    p.add_argument("--customer", required=True, metavar="ID")
    p.add_argument("--return-url", metavar="URL")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=portal_link, needs_stripe=True)


# ---- top-ups and credits -----------------------------------------------------------------


def _topup_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.topup_id,
        "customer": row.customer_id,
        "credits": row.credits,
        "amount": row.amount,
        "currency": row.currency,
        "status": row.status,
        "url": row.url or None,
        "checkout_session": row.checkout_session_id,
        "issued_by": row.issued_by,
        "issued_at": row.issued_at,
        "expires_at": row.expires_at,
        "paid_at": row.paid_at,
        "flagged": row.flagged or None,
    }


def topup_create(args: argparse.Namespace, ctx: AppContext) -> int:
    link = ctx.credits.issue_topup(
        args.customer, args.idempotency_key, pack_product_id=args.pack, credits=args.credits,
        save_card=args.save_card,
    )  # fmt: skip
    if args.json:
        _print_json(_topup_json(link.topup))
    else:
        print(link.topup.url)
    return 0


def topups_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    found = ctx.credits.topups(status=args.status, customer_id=args.customer, limit=None)
    rows = output.limited(args, found, "top-ups")
    if csv:
        return output.write_csv(args, ctx, TOPUPS, rows)
    if args.json:
        _print_json([_topup_json(r) for r in rows])
        return 0
    for r in rows:
        amount = format_amount(r.amount, r.currency)
        print(f"{r.topup_id}  {r.customer_id}  {r.credits:>8,}  {amount:>10}  {r.status}")
    return 0


def topups_expire(args: argparse.Namespace, ctx: AppContext) -> int:
    row = ctx.credits.expire_topup(args.id, args.idempotency_key)
    print(f"{row.topup_id} is {row.status}.")
    return 0


def credits_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    rows = output.limited(args, ctx.browse.credit_balances(), "customers with credits")
    if csv:
        return output.write_csv(args, ctx, CREDIT_BALANCES, rows)
    if args.json:
        _print_json([r._asdict() for r in rows])
        return 0
    for r in rows:
        pending = f"  ({r.pending:,} pending)" if r.pending else ""
        print(
            f"{r.customer_id}  {r.customer_name or r.email:<28}  {r.balance:>10,} credits  "
            f"paid {r.paid:,} · promotional {r.promotional:,}{pending}"
        )
    return 0


def credits_show(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    entries = ctx.credits.ledger(args.customer)
    b = ctx.credits.balances(args.customer)
    if csv:
        return output.write_csv(args, ctx, CREDIT_LEDGER, entries)
    if args.json:
        _print_json({"customer": args.customer, "balance": b.available,
                     "balances": asdict(b),
                     "entries": [e._asdict() for e in entries]})  # fmt: skip
        return 0
    for line in credit_commands.balance_lines(b):
        print(line)
    for e in entries:
        print(f"  {e.amount:+10,}  {e.kind:<10} {e.source or '':<26} {e.operator} {e.reason}")
    return 0


def credits_grant(args: argparse.Namespace, ctx: AppContext) -> int:
    expires = lots.parse_expiry_date(args.expires) if args.expires else None
    ctx.credits.grant(args.customer, args.credits, args.reason, expires_at=expires)
    until = f", expiring at the end of {args.expires} (UTC)" if args.expires else ""
    print(f"Granted {args.credits:,} credits to {args.customer}{until}.")
    return 0


def add_credit_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    topup = commands.add_parser("topup", help="issue a paid credit top-up link (support, admins)")
    sub = topup.add_subparsers(dest="topup_command", metavar="ACTION", required=True,
                               parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("create", help="create a Checkout link; prints its URL")
    p.add_argument("--customer", required=True, metavar="ID")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--pack", metavar="PRODUCT_ID", help="a credit pack from the catalog")
    what.add_argument(
        "--credits", type=argtypes.positive, metavar="N", help="a custom number of credits"
    )
    p.add_argument(
        "--save-card",
        action="store_true",
        help="keep the card the customer pays with, for automatic top-ups",
    )
    p.add_argument("--json", action="store_true")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=topup_create, needs_stripe=True)

    topups = commands.add_parser("topups", help="the issued top-up links")
    sub = topups.add_subparsers(dest="topups_command", metavar="ACTION", required=True,
                                parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("list", help="top-up links, newest first")
    p.add_argument(
        "--status",
        choices=STATUS_VALUES,
    )
    p.add_argument("--customer", metavar="ID")
    output.add_output_options(p, limit=True)
    p.set_defaults(handler=topups_list)
    p = sub.add_parser("expire", help="expire an open link in Stripe (support, admins)")
    p.add_argument("id", metavar="TOPUP_ID")
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=topups_expire, needs_stripe=True)

    credits = commands.add_parser("credits", help="credit balances and grants")
    sub = credits.add_subparsers(dest="credits_command", metavar="ACTION", required=True,
                                 parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("list", help="every customer's credit balance, latest change first")
    output.add_output_options(p, limit=True)
    p.set_defaults(handler=credits_list)
    p = sub.add_parser("show", help="a customer's balance and ledger")
    p.add_argument("--customer", required=True, metavar="ID")
    output.add_output_options(p)
    p.set_defaults(handler=credits_show)
    p = sub.add_parser("grant", help="free credits with a reason (admins; audited)")
    p.add_argument("--customer", required=True, metavar="ID")
    p.add_argument("--credits", required=True, type=argtypes.positive, metavar="N")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.add_argument("--expires", metavar="YYYY-MM-DD", help="what is left expires after that day")
    p.set_defaults(handler=credits_grant)
    auto_topup_commands.add_parsers(sub, parser_class)
    credit_commands.add_parsers(sub)
