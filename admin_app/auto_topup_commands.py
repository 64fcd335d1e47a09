"""`admin-app credits auto-topup show|set|off` and `admin-app credits attention`."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from admin_app import argtypes
from services.auto_topup import AttentionRow, AutoTopUpConfig, TriggerRow
from services.context import AppContext
from services.money import format_amount


def _non_negative(text: str) -> int:
    try:
        value = int(text.replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _when(seconds: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else "-"


def _config_json(config: AutoTopUpConfig, triggers: list[TriggerRow]) -> dict[str, Any]:
    return {
        "customer": config.customer_id,
        "auto_topup": config.enabled,
        "threshold": config.threshold,
        "pack": config.pack_product_id,
        "failure_limit": config.failure_limit,
        "failures": config.failures,
        "needs_attention": config.attention or None,
        "in_flight": config.in_flight or None,
        "updated_by": config.updated_by or None,
        "updated_at": config.updated_at,
        "recent": [t._asdict() for t in triggers],
    }


def _describe(ctx: AppContext, config: AutoTopUpConfig) -> str:
    packs = {p[0]: p for p in ctx.credits.credit_packs()}
    pack = packs.get(config.pack_product_id or "")
    what = (
        f"{pack[1]} ({pack[2]:,} credits, {format_amount(pack[3], pack[4])})"
        if pack
        else (config.pack_product_id or "no pack chosen")
    )
    state = "on" if config.enabled else "off"
    return (
        f"{config.customer_id}: auto top-up {state}; below {config.threshold:,} credits buy "
        f"{what}; off after {config.failure_limit} failures in a row "
        f"({config.failures} so far)"
    )


def show(args: argparse.Namespace, ctx: AppContext) -> int:
    config = ctx.auto_topup.config(args.customer)
    triggers = ctx.auto_topup.triggers(args.customer, limit=10)
    if args.json:
        print(json.dumps(_config_json(config, triggers), indent=2, sort_keys=True))
        return 0
    print(_describe(ctx, config))
    if config.attention:
        print(f"Needs attention: {config.attention}")
    if config.in_flight:
        print(f"In flight: {config.in_flight}")
    for t in triggers:
        print(
            f"  {_when(t.created_at)}  {t.trigger_id}  {t.status:<9} {t.credits:>8,} credits  "
            f"{format_amount(t.amount, t.currency):>10}  {t.payment_intent_id or '-'}  "
            f"{t.failure}"
        )
    return 0


def set_(args: argparse.Namespace, ctx: AppContext) -> int:
    current = ctx.auto_topup.config(args.customer)
    config = ctx.auto_topup.configure(
        args.customer,
        enabled=not args.disabled,
        threshold=current.threshold if args.threshold is None else args.threshold,
        pack_product_id=args.pack or current.pack_product_id,
        failure_limit=args.failure_limit or current.failure_limit,
        idempotency_key=args.idempotency_key,
    )
    print(_describe(ctx, config))
    return 0


def off(args: argparse.Namespace, ctx: AppContext) -> int:
    print(_describe(ctx, ctx.auto_topup.turn_off(args.customer)))
    return 0


def attention(args: argparse.Namespace, ctx: AppContext) -> int:
    rows: list[AttentionRow] = ctx.auto_topup.attention()
    if args.json:
        print(json.dumps([r._asdict() for r in rows], indent=2, sort_keys=True))
        return 0
    if not rows:
        print("No customer needs attention.")
        return 0
    for r in rows:
        state = "on" if r.enabled else "OFF"
        print(
            f"{r.customer_id}  {r.customer_name:<24}  {_when(r.at)}  "
            f"{r.failures}/{r.failure_limit} failures, auto top-up {state}  {r.reason}"
        )
    return 0


def add_parsers(credits_sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Under `credits`: `auto-topup show|set|off` and `attention`."""
    auto = credits_sub.add_parser(
        "auto-topup", help="a customer's low-balance threshold and automatic top-up"
    )
    sub = auto.add_subparsers(dest="auto_topup_command", metavar="ACTION", required=True,
                              parser_class=parser_class)  # fmt: skip
    p = sub.add_parser("show", help="the settings, any failure, and the latest automatic top-ups")
    p.add_argument("--customer", required=True, metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=show)
    p = sub.add_parser(
        "set",
        help="set the threshold and pack and turn auto top-up on (support, admins; audited)",
    )
    p.add_argument("--customer", required=True, metavar="ID")
    p.add_argument("--threshold", type=_non_negative, metavar="CREDITS")
    p.add_argument("--pack", metavar="PRODUCT_ID", help="the credit pack to buy")
    p.add_argument("--failure-limit", type=argtypes.positive, metavar="N",
                   help="turn auto top-up off after N failures in a row (default 3)")  # fmt: skip
    p.add_argument("--disabled", action="store_true",
                   help="keep auto top-up off (save the threshold and pack only)")  # fmt: skip
    argtypes.add_idempotency_key(p)
    p.set_defaults(handler=set_, needs_stripe=True)
    p = sub.add_parser("off", help="stop automatic top-ups for a customer (audited)")
    p.add_argument("--customer", required=True, metavar="ID")
    p.set_defaults(handler=off)
    p = credits_sub.add_parser(
        "attention", help="customers whose automatic top-up failed, with the decline"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=attention)
