"""`admin-app db setup`: make a shared PostgreSQL enforce the roles (run once by its owner)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from admin_app.paths import AppPaths
from admin_app.wiring import DB_ENV_VAR
from services.database import open_database
from services.errors import ValidationError
from services.pg_security import setup
from services.settings import SettingsStore, validate_database_url


def db_setup(args: argparse.Namespace, paths: AppPaths) -> int:
    url = (
        args.db
        or os.environ.get(DB_ENV_VAR, "").strip()
        or SettingsStore(paths.settings_file).load().database_url
    )
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise ValidationError(
            "db setup needs the shared PostgreSQL: --db postgresql://OWNER@HOST:5432/DBNAME "
            "(a SQLite database belongs to one person; see README, Threat model)."
        )
    database = open_database(validate_database_url(url))
    try:
        for line in setup(database, admin=args.admin, listeners=args.listener or []):
            print(line)
    finally:
        database.close()
    return 0


def add_parsers(commands: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    db = commands.add_parser("db", help="the shared PostgreSQL (its owner)")
    sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True,
                            parser_class=parser_class)  # fmt: skip
    p = sub.add_parser(
        "setup",
        help="create the schema, group roles, grants and guards (run as the database owner)",
    )
    p.add_argument("--admin", required=True, metavar="LOGIN", help="the first admin's login")
    p.add_argument(
        "--listener", action="append", metavar="LOGIN",
        help="a login that runs `admin-app listen` (may be given more than once)",
    )  # fmt: skip
    p.set_defaults(db_handler=db_setup)
