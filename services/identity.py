"""Who is running the app: the OS login on SQLite, the database login on a shared PostgreSQL.

On PostgreSQL the database itself authenticated the person (password, certificate, Kerberos…),
so renaming a local account cannot claim a colleague's role. `session_user` is used rather than
`current_user` so that `SET ROLE` cannot change it either.

On SQLite the login comes from the process's real uid (the access token on Windows), never from
`LOGNAME`/`USER`/`USERNAME`: anyone can set those, and the standard library's `getuser()` reads them
first.
"""

from __future__ import annotations

import os
import sys

import peewee

from services.models import scalar_sql


def current_login(db: peewee.Database) -> str:
    if isinstance(db, peewee.PostgresqlDatabase):
        return str(scalar_sql(db, "SELECT session_user"))
    return os_login()


def os_login() -> str:
    """The account this process runs as, from the kernel's record of it; "unknown" if none."""
    if sys.platform == "win32":
        return _windows_login()
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no passwd entry (some containers): still not the environment
        return f"uid-{os.getuid()}"


def _windows_login() -> str:  # pragma: no cover - Windows only
    """GetUserNameW reads the process token, not %USERNAME%."""
    import ctypes

    size = ctypes.c_ulong(257)
    buffer = ctypes.create_unicode_buffer(size.value)
    advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
    if not advapi32.GetUserNameW(buffer, ctypes.byref(size)):
        return "unknown"
    return str(buffer.value)


def is_shared(db: peewee.Database) -> bool:
    return isinstance(db, peewee.PostgresqlDatabase)
