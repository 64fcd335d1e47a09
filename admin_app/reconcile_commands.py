"""`admin-app reconcile`: do the local books match Stripe? Exit 0 if they do, 6 if not."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, time
from typing import Any

from admin_app.commands import parse_day
from services import export
from services.context import AppContext
from services.errors import ValidationError
from services.permissions import Permission
from services.reconcile import FINDINGS_TABLE, ReconcileReport

EXIT_FINDINGS = 6


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _print(report: ReconcileReport, as_json: bool, as_csv: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2, sort_keys=True))
        return
    if as_csv:
        sys.stdout.write(export.to_text(FINDINGS_TABLE, report.findings))
        return
    since = datetime.fromtimestamp(report.since, UTC).strftime("%Y-%m-%d")
    checked = ", ".join(f"{n:,} {what}" for what, n in report.checked.items())
    print(f"Since {since}: {report.line()} ({checked}; {report.seconds:.1f} s)")
    for f in report.findings:
        print(f"  [{f.severity.value}] {f.kind.value}: {f.summary}")
        print(f"      fix: {f.fix or 'a person decides'}")


def reconcile(args: argparse.Namespace, ctx: AppContext) -> int:
    clawing = args.claw_back is not None
    if args.repair and clawing:
        raise ValidationError("Use --repair or --claw-back, not both.")
    if args.repair or clawing:
        if not (args.reason or "").strip():
            raise ValidationError("--repair and --claw-back need --reason, for the audit log.")
        # Said before anything is read, not only when there turns out to be something to do.
        ctx.authority.require(Permission.REPAIR_BOOKS, "reconcile.repair")
    if clawing:
        if not args.claw_back.strip():
            raise ValidationError("--claw-back needs the finding's source, e.g. tu_… .")
        credits = ctx.reconcile.claw_back_unpaid(args.claw_back, args.reason)
        print(f"Took back {credits:,} credits added for {args.claw_back}.")
        return 0
    since = int(datetime.combine(args.since, time(), UTC).timestamp()) if args.since else None
    report = ctx.reconcile.run(since, progress=_progress)
    if args.repair and report.findings:
        done = ctx.reconcile.repair(report, args.reason)
        _progress(
            f"repaired {len(done.repaired)}, left for a person {len(done.skipped)}, "
            f"failed {len(done.failed)}"
        )
        for line in done.failed:
            _progress(f"  failed: {line}")
        report = ctx.reconcile.run(since, progress=_progress)
    _print(report, args.json, args.csv)
    return 0 if report.matches else EXIT_FINDINGS


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    p = commands.add_parser(
        "reconcile",
        help="compare credits, top-ups, invoices and events with Stripe (exit 6 if they differ)",
    )
    p.add_argument("--since", metavar="DATE", type=parse_day,
                   help="YYYY-MM-DD (UTC); default: the last 30 days")  # fmt: skip
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true")
    shape.add_argument("--csv", action="store_true", help="the findings as CSV")
    p.add_argument("--repair", action="store_true",
                   help="fix what can be fixed safely, then compare again (admins)")  # fmt: skip
    p.add_argument("--claw-back", metavar="SOURCE",
                   help="take back credits added with no payment (a 'credited, not paid' "
                        "finding's source; admins)")  # fmt: skip
    p.add_argument("--reason", help="why, for the audit log (with --repair or --claw-back)")
    p.set_defaults(handler=reconcile, needs_stripe=True)
