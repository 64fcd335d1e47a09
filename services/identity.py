"""Who is running the app: the OS login on SQLite, the database login on a shared PostgreSQL.

On PostgreSQL the database itself authenticated the person (password, certificate, Kerberos…),
so renaming a local account cannot claim a colleague's role. `session_user` is used rather than
`current_user` so that `SET ROLE` cannot change it either.
"""

from __future__ import annotations

import getpass

import peewee

from services.models import scalar_sql


def current_login(db: peewee.Database) -> str:
    if isinstance(db, peewee.PostgresqlDatabase):
        return str(scalar_sql(db, "SELECT session_user"))
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def is_shared(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)
