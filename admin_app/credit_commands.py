"""`credits consume|overdraft|purchase-expiry|expire|lots`: spending and the lots behind a balance.

`credits consume` exits 2 when the customer has too few credits (nothing is spent then), and
returns the first spend again when run twice with the same `--key`.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from typing import Any

from admin_app import argtypes
from services.context import AppContext
from services.lots import Balances


def _when(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))


def balance_lines(b: Balances) -> list[str]:
    """What `credits show` prints above the ledger."""
    lines = [
        f"{b.customer_id}: {b.available:,} credits available "
        f"(paid {b.paid:,}, promotional {b.promotional:,})"
    ]
    if b.overdraft or b.overdraft_limit:
        lines.append(f"  overdraft: {b.overdraft:,} used of {b.overdraft_limit:,} allowed")
    if b.pending:
        lines.append(f"  pending: {b.pending:,} credits in unpaid top-up links (not spendable)")
    if b.next_expiry_at is not None:
        lines.append(
            f"  next expiry: {b.next_expiry_credits:,} credits at {_when(b.next_expiry_at)}"
        )
    else:
        lines.append("  next expiry: nothing expires")
    return lines


def credits_consume(args: argparse.Namespace, ctx: AppContext) -> int:
    spend = ctx.credits.consume(args.customer, args.credits, args.key, args.reference or "")
    if args.json:
        print(json.dumps(asdict(spend), indent=2, sort_keys=True))
        return 0
    again = " (already spent with this key: the first spend)" if spend.replayed else ""
    print(
        f"Spent {spend.credits:,} credits of {spend.customer_id} (entry {spend.entry_id}){again}; "
        f"{spend.available:,} available."
    )
    return 0


def credits_overdraft(args: argparse.Namespace, ctx: AppContext) -> int:
    b = ctx.credits.lot_service.set_overdraft(args.customer, args.limit, args.reason)
    print(f"{b.customer_id} may now spend down to {-b.overdraft_limit:,} credits.")
    return 0


def credits_purchase_expiry(args: argparse.Namespace, ctx: AppContext) -> int:
    service = ctx.credits.lot_service
    if args.months is None:
        from services.lots import purchase_expiry_months

        months = purchase_expiry_months()
    else:
        months = service.set_purchase_expiry_months(args.months, args.reason)
    print(
        f"Purchased credits expire {months} months after purchase."
        if months
        else "Purchased credits never expire."
    )
    return 0


def credits_expire(args: argparse.Namespace, ctx: AppContext) -> int:
    count = ctx.credits.lot_service.expire_due()
    print(f"{count} lot(s) expired.")
    return 0


def credits_lots(args: argparse.Namespace, ctx: AppContext) -> int:
    found = ctx.credits.lot_service.lots(args.customer)
    if args.json:
        print(json.dumps([asdict(lot) for lot in found], indent=2, sort_keys=True))
        return 0
    for lot in found:
        expires = _when(lot.expires_at) if lot.expires_at else "never"
        print(
            f"lot {lot.id:>6}  {lot.kind:<12} {lot.remaining:>10,} of {lot.amount:>10,} left  "
            f"expires {expires:<22} {lot.source}"
        )
    return 0


def add_parsers(sub: Any) -> None:
    """The subcommands under `credits` (sub: its subparsers)."""
    p = sub.add_parser("consume", help="spend credits, once per --key (admins); exit 2 if too few")
    p.add_argument("--customer", required=True, metavar="ID")
    p.add_argument("--credits", required=True, type=argtypes.positive, metavar="N")
    p.add_argument("--key", required=True, metavar="K", help="idempotency key of this spend")
    p.add_argument("--reference", metavar="TEXT", help="what the credits paid for")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=credits_consume)
    p = sub.add_parser("overdraft", help="let a customer spend below zero (admins; audited)")
    p.add_argument("--customer", required=True, metavar="ID")
    p.add_argument("--limit", required=True, type=int, metavar="N", help="credits; 0: none")
    p.add_argument("--reason", required=True, metavar="TEXT")
    p.set_defaults(handler=credits_overdraft)
    p = sub.add_parser(
        "purchase-expiry", help="show or set when purchased credits expire (admins set it)"
    )
    p.add_argument("--months", type=int, metavar="N", help="after N months; 0: never")
    p.add_argument("--reason", metavar="TEXT")
    p.set_defaults(handler=credits_purchase_expiry)
    p = sub.add_parser("expire", help="write expiry entries for lots past their expiry now")
    p.set_defaults(handler=credits_expire)
    p = sub.add_parser("lots", help="a customer's lots: what is left of each")
    p.add_argument("--customer", required=True, metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=credits_lots)
