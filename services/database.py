"""Opening the local database: SQLite on this machine (single-seat), or a shared PostgreSQL.

peewee gives each thread its own connection, so worker threads and the GUI thread never share one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import peewee

from services.errors import DatabaseDenied, DatabaseError, ValidationError
from services.migrations import migrate
from services.models import ALL_MODELS
from services.private_files import check_single_seat, create_private_file, make_private_dir
from services.redaction import redact

log = logging.getLogger(__name__)

# WAL lets the GUI read while a worker writes; busy_timeout waits out short write locks.
_SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    "synchronous": "normal",
    "busy_timeout": 5000,
}


class ImmediateSqliteDatabase(peewee.SqliteDatabase):
    """SQLite whose transactions take the write lock when they begin (BEGIN IMMEDIATE).

    A deferred transaction that reads and then writes fails with "database is locked" as soon
    as another connection (the webhook receiver, a second app) committed in between: its WAL
    snapshot is stale and SQLite cannot upgrade it. Taking the lock up front makes writers queue
    (busy_timeout) instead of failing.
    """

    def atomic(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("lock_type", "IMMEDIATE")
        return super().atomic(*args, **kwargs)


class GuardedPostgresqlDatabase(peewee.PostgresqlDatabase):
    """PostgreSQL whose refusals are one line a person can act on.

    A shared database set up by `admin-app db setup` refuses what a login's role may not do
    (SQLSTATE 42501, from a GRANT or one of its guards); that becomes `DatabaseDenied` (exit 3),
    not a driver traceback.
    """

    def execute_sql(self, sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_sql(sql, params, *args, **kwargs)  # type: ignore[no-untyped-call]
        except peewee.DatabaseError as exc:
            orig = getattr(exc, "orig", None) or exc.__cause__ or exc
            if getattr(orig, "pgcode", None) == "42501":
                detail = str(getattr(getattr(orig, "diag", None), "message_primary", "") or orig)
                raise DatabaseDenied(
                    f"Your database login may not do that ({detail.strip()}) — ask an admin."
                ) from None
            raise


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def open_database(url: str, *, run_migrations: bool = True) -> peewee.Database:
    """Open the database at `url`, bind the models to it and bring its schema up to date.

    Args:
        url: ``sqlite:///absolute/path.sqlite3`` or ``postgresql://user@host:port/dbname``
            (query parameters such as ``?options=-csearch_path%3Dx`` go to the driver).
        run_migrations: apply pending forward migrations (off only for diagnostics).

    Raises:
        ValidationError: the URL is not one Billing Admin understands.
        DatabaseError: the database cannot be opened or is newer than this app.
    """
    db = _database_for_url(url)
    try:
        db.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        raise DatabaseError(
            f"Cannot open the database {redact(url)}: {redact(str(exc)).strip()}"
        ) from None
    except peewee.DatabaseError as exc:  # e.g. "file is not a database", from the first pragma
        raise ValidationError(
            f"Cannot use {redact(url)} as the database: {redact(str(exc)).strip()}"
        ) from None
    db.bind(ALL_MODELS, bind_refs=False, bind_backrefs=False)
    if run_migrations:
        migrate(db)
    return db


def _database_for_url(url: str) -> peewee.Database:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ValidationError(
                "A sqlite:/// URL needs a file path, e.g. sqlite:////home/me/b.db"
            )
        # Keep the file on disk: each thread gets its own connection, which :memory: cannot share.
        if path in ("/:memory:", ":memory:"):
            raise ValidationError("An in-memory SQLite database cannot be shared between threads.")
        if "\x00" in path:
            raise ValidationError("The database path contains a null byte (%00).")
        # sqlite:////abs/path gives "//abs/path", which POSIX may treat as special: one slash.
        file = Path("/" + path.lstrip("/") if path.startswith("//") else path)
        _refuse_non_sqlite(file)
        try:
            make_private_dir(file.parent)
            create_private_file(file)  # 0600 before SQLite makes it (its -wal/-shm copy the mode)
        except OSError as exc:
            raise DatabaseError(f"Cannot create the database {file}: {exc}") from None
        check_single_seat(file)
        return ImmediateSqliteDatabase(str(file), pragmas=_SQLITE_PRAGMAS, timeout=10)
    if parts.scheme in ("postgresql", "postgres"):
        if not parts.path.strip("/"):
            raise ValidationError("A postgresql:// URL needs a database name, e.g. …:5432/billing")
        options: dict[str, Any] = dict(parse_qsl(parts.query))
        if parts.username:
            options["user"] = unquote(parts.username)
        if parts.password:
            options["password"] = unquote(parts.password)
        if parts.hostname:
            options["host"] = parts.hostname
        try:
            port = parts.port
        except ValueError:
            raise ValidationError(
                f"The port in {redact(url)!r} must be a number from 1 to 65535."
            ) from None
        if port:
            options["port"] = port
        options.setdefault("connect_timeout", 5)
        options.setdefault("application_name", "billing-admin")
        return GuardedPostgresqlDatabase(unquote(parts.path.strip("/")), **options)
    raise ValidationError(
        f"Unsupported database URL {redact(url)!r}: use sqlite:///PATH or postgresql://HOST/DB."
    )


_SQLITE_HEADER = b"SQLite format 3\x00"


def _refuse_non_sqlite(file: Path) -> None:
    """Refuse an existing, non-empty file that is not SQLite, before SQLite writes to it."""
    try:
        with file.open("rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    except IsADirectoryError:
        raise ValidationError(f"{file} is a folder, not a SQLite database file.") from None
    except OSError as exc:
        raise DatabaseError(f"Cannot read {file}: {exc.strerror or exc}") from None
    if head and head != _SQLITE_HEADER:
        raise ValidationError(f"{file} is not a SQLite database (a different kind of file).")
