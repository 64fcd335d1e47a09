"""Who is running the app: the kernel's record of the process on SQLite (the access token on
Windows), the database's `session_user` on PostgreSQL; never the environment, which anyone sets.

The Windows branch runs here against a stand-in for advapi32 (ctypes' `WinDLL` exists only on
Windows): it checks what the code asks of the DLL and what it makes of the answer, not Windows.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import sys
from pathlib import Path
from typing import Any

import peewee
import pytest

from services import identity
from services.database import open_database

CLAIMS = ("LOGNAME", "USER", "LNAME", "USERNAME")


@pytest.fixture
def claimed(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every environment variable `getpass.getuser()` trusts, set to someone else."""
    for var in CLAIMS:
        monkeypatch.setenv(var, "root-by-claim")
    return "root-by-claim"


def test_on_sqlite_the_login_is_the_real_uids_not_the_environments(
    tmp_path: Path, claimed: str
) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'id.sqlite3'}")
    try:
        real = pwd.getpwuid(os.getuid()).pw_name
        assert identity.current_login(db) == real != claimed
        assert identity.os_login() == real
        assert identity.is_shared(db) is False  # one person's file, not a team database
    finally:
        db.close()


def test_a_uid_with_no_passwd_entry_is_named_by_number_not_by_the_environment(
    monkeypatch: pytest.MonkeyPatch, claimed: str
) -> None:
    def no_entry(uid: int) -> Any:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    assert identity.os_login() == f"uid-{os.getuid()}"


class _PostgresStandIn(peewee.PostgresqlDatabase):
    """Answers SQL like a PostgreSQL session whose authenticated login is `login` while
    `SET ROLE` has made `current_user` someone else; records what it was asked."""

    def __init__(self, login: str) -> None:
        super().__init__("billing")
        self.answers = {"SELECT session_user": login, "SELECT current_user": "postgres"}
        self.asked: list[str] = []

    def execute_sql(self, sql: str, params: Any = None, commit: Any = None) -> Any:
        self.asked.append(sql)
        answer = self.answers.get(sql.strip())
        if answer is None:
            raise AssertionError(f"unexpected SQL: {sql}")

        class Cursor:
            def fetchone(self) -> tuple[str]:
                return (answer,)

        return Cursor()


def test_on_postgres_the_login_is_who_the_database_authenticated(claimed: str) -> None:
    # The real server is checked in test_permissions (with the DSN); mutant runs are SQLite
    # only, so this stand-in keeps the rule checked there: session_user, not current_user or
    # the OS account.
    db = _PostgresStandIn("wei")
    assert identity.current_login(db) == "wei"
    assert db.asked == ["SELECT session_user"]
    assert identity.is_shared(db) is True


class _Advapi32:
    """A stand-in for advapi32.dll's GetUserNameW: fills the caller's buffer with `name` if
    the size it is told fits, as the real one does (the size counts the terminating NUL)."""

    def __init__(self, name: str | None) -> None:
        self.name = name
        self.told_size: int | None = None

    def GetUserNameW(self, buffer: Any, size: Any) -> int:
        self.told_size = size._obj.value
        if self.name is None or len(self.name) + 1 > self.told_size:
            return 0
        buffer.value = self.name
        return 1


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch, claimed: str) -> dict[str, Any]:
    loaded: dict[str, Any] = {}

    def win_dll(name: str, use_last_error: bool = False) -> _Advapi32:
        loaded["name"], loaded["use_last_error"] = name, use_last_error
        return loaded["dll"]  # type: ignore[no-any-return]

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "WinDLL", win_dll, raising=False)

    def no_passwd(uid: int) -> Any:
        raise AssertionError("the passwd database was read on Windows")

    monkeypatch.setattr(pwd, "getpwuid", no_passwd)
    return loaded


def test_on_windows_the_login_comes_from_the_process_token(windows: dict[str, Any]) -> None:
    windows["dll"] = dll = _Advapi32("wei.nwosu")
    assert identity.os_login() == "wei.nwosu"
    assert windows["name"] == "advapi32"
    assert dll.told_size == 257  # UNLEN + 1: any Windows user name fits
    assert identity.os_login() != os.environ["USERNAME"]


def test_on_windows_a_failed_lookup_is_unknown_not_the_environment(
    windows: dict[str, Any],
) -> None:
    windows["dll"] = _Advapi32(None)
    assert identity.os_login() == "unknown"
