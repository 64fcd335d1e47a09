"""`journal …`: the Stripe requests whose outcome nobody knows yet, and resolving one by hand.

A request whose answer was lost stays *unconfirmed* (`pending` or `unknown`). Running the same
command again is the normal resolution: within 24 hours it re-uses the first run's idempotency
key, Stripe replays its answer, and the entry ends `succeeded` or `failed`. `journal forget`
(admins, audited, a reason required) is for an entry nobody should re-run.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from admin_app import argtypes
from services.context import AppContext
from services.journal import JournalEntry


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def entry_json(e: JournalEntry) -> dict[str, Any]:
    data = asdict(e)
    data["created_utc"] = datetime.fromtimestamp(e.created_at, UTC).isoformat(timespec="seconds")
    data["replayable"] = e.replayable()
    return data


def reuse_notice(entry: JournalEntry) -> str:
    """The stderr line a command prints when it takes an unconfirmed run's key."""
    at = datetime.fromtimestamp(entry.created_at).strftime("%H:%M")
    return (
        f"admin-app: re-using the key of the unconfirmed run at {at} ({entry.action} by "
        f"{entry.operator}, journal #{entry.id}, key {entry.idempotency_key}): if that run went "
        "through, Stripe replays its answer instead of doing it twice."
    )


def announce_reuse(entry: JournalEntry) -> None:
    print(reuse_notice(entry), file=sys.stderr, flush=True)


def journal_list(args: argparse.Namespace, ctx: AppContext) -> int:
    entries = ctx.journal.entries(include_resolved=args.all)
    if args.json:
        print(json.dumps([entry_json(e) for e in entries], indent=2, sort_keys=True))
        return 0
    if not entries:
        print("No unconfirmed Stripe requests." if not args.all else "The journal is empty.")
        return 0
    for e in entries:
        found = f"  found in Stripe: {e.found_object_id}" if e.found_object_id else ""
        obj = f"  {e.object_id}" if e.object_id else ""
        stale = "" if e.replayable() or not e.unconfirmed else "  (older than 24 h: key expired)"
        print(
            f"#{e.id:<5} {_when(e.created_at)}  {e.outcome:<9}  {e.operator:<12}  {e.action:<24}"
            f"  {e.summary}  key {e.idempotency_key}{obj}{found}{stale}"
        )
    return 0


def journal_forget(args: argparse.Namespace, ctx: AppContext) -> int:
    entry = ctx.journal.forget(args.id, args.reason)
    print(f"Journal entry #{entry.id} ({entry.action}) is forgotten; its key will not be re-used.")
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    journal = commands.add_parser(
        "journal", help="Stripe requests with no known outcome (and resolving them)"
    )
    journal.add_argument("--all", action="store_true", help="every entry, not only unconfirmed")
    journal.add_argument("--json", action="store_true")
    journal.set_defaults(handler=journal_list)
    sub = journal.add_subparsers(
        dest="journal_command", metavar="ACTION", parser_class=parser_class
    )
    p = sub.add_parser("list", help="unconfirmed requests, newest first (the default)")
    p.add_argument("--all", action="store_true", help="every entry, not only unconfirmed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=journal_list)
    p = sub.add_parser(
        "forget", help="resolve an unconfirmed entry by hand: its key is not re-used (admins)"
    )
    p.add_argument("id", type=argtypes.positive, metavar="ID", help="the entry's number (#ID)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="what you checked, and why")
    p.set_defaults(handler=journal_forget)
