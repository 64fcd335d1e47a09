"""What every `list`/`show` command shares: `--json`, `--csv`, `--output FILE` and `--limit N`.

CSV goes through `services.export`, the writer the window uses, so the same rows give the same
file. A list cut short by `--limit` says so on stderr; stdout stays the result.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from services.context import AppContext
from services.errors import ValidationError
from services.export import Table

T = TypeVar("T")

DEFAULT_LIMIT = 200


def row_limit(text: str) -> int:
    """`--limit N`: a whole number, 0 meaning all rows."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (all) or a positive whole number")
    return value


def add_output_options(parser: argparse.ArgumentParser, *, limit: bool = False) -> None:
    """`--json | --csv`, `--output FILE`, and for lists `--limit N`."""
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="JSON on stdout")
    formats.add_argument(
        "--csv",
        action="store_true",
        help="CSV (finance, admins): money as decimal amounts with a currency column, "
        "times in ISO 8601 UTC",
    )
    parser.add_argument(
        "--output", metavar="FILE", type=Path, help="write the CSV to FILE (implies --csv)"
    )
    if limit:
        parser.add_argument(
            "--limit",
            type=row_limit,
            default=DEFAULT_LIMIT,
            metavar="N",
            help=f"show at most N rows (default {DEFAULT_LIMIT}; 0: all)",
        )


def wants_csv(args: argparse.Namespace) -> bool:
    if args.output is not None and args.json:
        raise ValidationError("--output writes CSV; use it with --csv, not --json.")
    return bool(args.csv or args.output is not None)


def limited(args: argparse.Namespace, rows: Sequence[T], noun: str) -> Sequence[T]:
    """The first `--limit` rows; says on stderr when that is not all of them."""
    limit: int = args.limit
    if limit and len(rows) > limit:
        print(
            f"admin-app: showing {limit:,} of {len(rows):,} {noun}; "
            "use --limit N to see more (--limit 0: all)",
            file=sys.stderr,
        )
        return rows[:limit]
    return rows


def write_csv(args: argparse.Namespace, ctx: AppContext, table: Table, rows: Sequence[Any]) -> int:
    """The CSV to `--output FILE` (saying where on stderr) or to stdout; exit code 0."""
    if args.output is not None:
        count = ctx.exports.to_file(args.output, table, rows)
        print(f"Wrote {count:,} rows to {args.output}.", file=sys.stderr)
    else:
        ctx.exports.to_stream(sys.stdout, table, rows)
    return 0
