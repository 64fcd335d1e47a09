"""The command-line commands besides the GUI: each returns an exit code, prints results on stdout.

Every command goes through the same services as the window, with the same permission checks and
audit records; `admin_app.cli` maps their errors to exit codes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from admin_app import output
from admin_app.journal_commands import announce_reuse
from admin_app.paths import AppPaths
from admin_app.wiring import Options, Runtime, build_runtime
from services.audit import AuditFilter, AuditRow
from services.context import AppContext
from services.errors import ValidationError
from services.export import AUDIT
from services.operators import OperatorInfo, parse_role

Handler = Callable[[argparse.Namespace, AppContext], int]


@contextmanager
def signed_in(args: argparse.Namespace, paths: AppPaths) -> Iterator[Runtime]:
    """Open the database and sign in; start the sandbox only for commands that call Stripe."""
    need_stripe = bool(getattr(args, "needs_stripe", False))
    runtime = build_runtime(
        Options(db=args.db, api_base=args.api_base, sandbox=args.sandbox, need_stripe=need_stripe),
        paths,
    )
    try:
        ctx = runtime.require_context()
        # Said on stderr, so a script's stdout stays the command's result.
        ctx.journal.on_reuse = announce_reuse
        yield runtime
    finally:
        runtime.close()


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _operator_json(op: OperatorInfo) -> dict[str, Any]:
    data = asdict(op)
    data["role"] = op.role.value
    return data


# ---- whoami / operators
def whoami(args: argparse.Namespace, ctx: AppContext) -> int:
    actor = ctx.actor
    if args.json:
        _print_json(
            {
                "login": actor.login,
                "display_name": actor.display_name,
                "role": actor.role.value,
                "mode": ctx.mode.value,
            }
        )
    else:
        print(f"{actor.display_name} ({actor.login}), role {actor.role.value}; {ctx.mode.label}")
    return 0


def operators_list(args: argparse.Namespace, ctx: AppContext) -> int:
    ops = ctx.operators.all()
    if args.json:
        _print_json([_operator_json(op) for op in ops])
        return 0
    _table(
        ("LOGIN", "NAME", "ROLE", "ACTIVE"),
        [(o.login, o.display_name, o.role.value, "yes" if o.active else "no") for o in ops],
    )
    return 0


def operators_add(args: argparse.Namespace, ctx: AppContext) -> int:
    op = ctx.operators.add(args.login, parse_role(args.role), args.name)
    print(f"Added {op.login} as {op.role.value}.")
    return 0


def operators_set_role(args: argparse.Namespace, ctx: AppContext) -> int:
    op = ctx.operators.set_role(args.login, parse_role(args.role))
    print(f"{op.login} is now {op.role.value}.")
    return 0


def operators_deactivate(args: argparse.Namespace, ctx: AppContext) -> int:
    op = ctx.operators.deactivate(args.login)
    print(f"Deactivated {op.login}.")
    return 0


def operators_reactivate(args: argparse.Namespace, ctx: AppContext) -> int:
    op = ctx.operators.reactivate(args.login)
    print(f"Reactivated {op.login}.")
    return 0


# ---- audit
def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _audit_filter(args: argparse.Namespace) -> AuditFilter:
    since = getattr(args, "since", None)
    return AuditFilter(
        operator=getattr(args, "operator", None),
        action=getattr(args, "action", None),
        target=getattr(args, "target", None),
        since_ms=int(datetime.combine(since, time(), UTC).timestamp() * 1000) if since else None,
    )


def _audit_json(row: AuditRow) -> dict[str, Any]:
    data = row._asdict()
    data["time_utc"] = datetime.fromtimestamp(row.at / 1000, UTC).isoformat(timespec="seconds")
    return data


def audit_list(args: argparse.Namespace, ctx: AppContext) -> int:
    csv = output.wants_csv(args)
    rows = output.limited(args, ctx.audit.records(_audit_filter(args)), "audit records")
    if csv:
        return output.write_csv(args, ctx, AUDIT, rows)
    if args.json:
        _print_json([_audit_json(r) for r in rows])
        return 0
    _table(
        ("TIME (UTC)", "OPERATOR", "ACTION", "TARGET", "OUTCOME"),
        [
            (
                datetime.fromtimestamp(r.at / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                r.operator,
                r.action,
                r.target,
                r.outcome,
            )
            for r in rows
        ],
    )
    return 0


def audit_export(args: argparse.Namespace, ctx: AppContext) -> int:
    path = Path(args.file)
    if path.suffix.lower() != ".csv":
        raise ValidationError(f"The export file must end in .csv, not {path.name!r}.")
    count = ctx.audit.export_csv(path, _audit_filter(args))
    print(f"Wrote {count} audit records to {path}.", file=sys.stderr)
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Register these commands on `commands` (the CLI's subparsers)."""
    who = commands.add_parser("whoami", help="who you are signed in as, and your role")
    who.add_argument("--json", action="store_true")
    who.set_defaults(handler=whoami)

    ops = commands.add_parser("operators", help="list and manage the staff who use the app")
    ops_cmds = ops.add_subparsers(
        dest="operators_command", metavar="ACTION", required=True, parser_class=parser_class
    )
    p = ops_cmds.add_parser("list", help="every operator and their role")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=operators_list)
    p = ops_cmds.add_parser("add", help="add a staff member (admins)")
    p.add_argument("login", help="OS login (SQLite) or database login (PostgreSQL)")
    p.add_argument("--role", required=True, help="finance, support or admin")
    p.add_argument("--name", help="display name")
    p.set_defaults(handler=operators_add)
    p = ops_cmds.add_parser("set-role", help="change an operator's role (admins)")
    p.add_argument("login")
    p.add_argument("role", help="finance, support or admin")
    p.set_defaults(handler=operators_set_role)
    p = ops_cmds.add_parser("deactivate", help="stop an operator from using the app (admins)")
    p.add_argument("login")
    p.set_defaults(handler=operators_deactivate)
    p = ops_cmds.add_parser("reactivate", help="let a deactivated operator back in (admins)")
    p.add_argument("login")
    p.set_defaults(handler=operators_reactivate)

    audit = commands.add_parser("audit", help="read or export the audit log (finance, admins)")
    audit_cmds = audit.add_subparsers(
        dest="audit_command", metavar="ACTION", required=True, parser_class=parser_class
    )
    for name, handler, helptext in (
        ("list", audit_list, "audit records, newest first"),
        ("export", audit_export, "write audit records to a CSV file"),
    ):
        p = audit_cmds.add_parser(name, help=helptext)
        if name == "export":
            p.add_argument("file", metavar="FILE.csv")
        p.add_argument("--operator", metavar="LOGIN")
        p.add_argument("--action", metavar="A", help="exact action, or a prefix ending in '.'")
        p.add_argument("--target", metavar="ID", help="customer, invoice or top-up id (substring)")
        p.add_argument("--since", metavar="DATE", type=parse_day, help="YYYY-MM-DD (UTC)")
        if name == "list":
            output.add_output_options(p, limit=True)
        p.set_defaults(handler=handler)
