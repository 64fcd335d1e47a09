"""Files only their owner can change, and the single-seat rule of a SQLite database.

A SQLite file is the whole database: whoever can write it (or the folder that holds it and its
-wal/-shm files) can make themself admin, delete audit rows or insert a purchase with the
`sqlite3` shell, whatever the app's roles say. So on SQLite the app is single-seat: it creates its
folders 0700 and its database 0600 whatever the umask, and refuses to open a database that other
users or groups could write. Roles for several people need PostgreSQL, where the server enforces
them.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from services.errors import ConfigurationError

FOLDER_MODE = 0o700
FILE_MODE = 0o600
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
#: SQLite's companions of a database file, created next to it.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
_POSIX = os.name == "posix"


def make_private_dir(folder: Path) -> None:
    """Create `folder` (and missing parents) readable and writable by this user only.

    Existing folders are left as they are: the single-seat check judges them.
    """
    missing: list[Path] = []
    current = folder
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=FOLDER_MODE)
        except FileExistsError:  # made by someone else meanwhile: judged like any other
            continue
        if _POSIX:
            os.chmod(path, FOLDER_MODE)  # mkdir's mode is filtered by the umask


def create_private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (then it is left as it is)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        if _POSIX:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def check_single_seat(database: Path) -> None:
    """Refuse a SQLite database that someone other than this OS user could change.

    Raises:
        ConfigurationError: the file, a companion (-wal, -shm, -journal) or its folder is
            writable by the group or others, or the file belongs to another user.
    """
    if not _POSIX:
        return  # Windows: the profile folder's ACL keeps other users out (README)
    me = os.getuid()
    for path in [database.parent, database, *(Path(f"{database}{s}") for s in SQLITE_COMPANIONS)]:
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigurationError(f"Cannot check the database file {path}: {exc}") from None
        if info.st_mode & _OTHERS_WRITE:
            raise ConfigurationError(
                f"{path} is writable by other users or groups (mode "
                f"{stat.filemode(info.st_mode)}), so anyone there could rewrite roles and the "
                f"audit log. A SQLite database is single-seat: run `chmod go-w {path}`, or use a "
                "shared PostgreSQL database for several people (README: Threat model)."
            )
        if path != database.parent and info.st_uid != me:
            raise ConfigurationError(
                f"{path} belongs to another OS user (uid {info.st_uid}). A SQLite database is "
                "single-seat: each person needs their own, or a shared PostgreSQL database "
                "(README: Threat model)."
            )
