"""`admin-app pricing`: the team's credit price and custom top-up limits (admins change them)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from services.context import AppContext
from services.errors import ValidationError
from services.money import major_units_text
from services.pricing import parse_pricing


def pricing_show(args: argparse.Namespace, ctx: AppContext) -> int:
    current = ctx.pricing.current()
    if args.json:
        print(json.dumps(asdict(current), indent=2, sort_keys=True))
    else:
        print(current.describe())
    return 0


def pricing_set(args: argparse.Namespace, ctx: AppContext) -> int:
    if not args.reason.strip():
        raise ValidationError("--reason must say why, for the audit log.")
    now = ctx.pricing.current()
    wanted = parse_pricing(
        args.price if args.price is not None else major_units_text(now.unit_amount, now.currency),
        args.currency or now.currency,
        str(args.min if args.min is not None else now.minimum),
        str(args.max if args.max is not None else now.maximum),
    )
    print(ctx.pricing.set(wanted, args.reason).describe())
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    pricing = commands.add_parser(
        "pricing", help="the team's price per credit and custom top-up limits"
    )
    sub = pricing.add_subparsers(dest="pricing_command", metavar="ACTION", required=True,
                                 parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("show", help="the prices in force")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=pricing_show)
    p = sub.add_parser("set", help="change them (admins; audited)")
    p.add_argument("--price", metavar="AMOUNT", help="per credit, in major units, e.g. 0.10")
    p.add_argument("--currency", metavar="CODE", help="e.g. usd")
    p.add_argument("--min", type=int, metavar="N", help="smallest custom top-up, in credits")
    p.add_argument("--max", type=int, metavar="N", help="largest custom top-up, in credits")
    p.add_argument("--reason", required=True, help="why, for the audit log")
    p.set_defaults(handler=pricing_set)
