"""Identity is the real uid: LOGNAME, USER, USERNAME change nothing. Denials are one line."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from services.audit import AuditLog, AuditRow, Authority
from services.database import open_database
from services.operators import OperatorService, sign_in
from services.permissions import Role
from tests.e2e.test_cli import _env

ME = pwd.getpwuid(os.getuid()).pw_name
BOSS = "boss-admin"
# The LOGNAME=root, unless the tests run as root (then any other login will do).
STRANGER = "root" if ME != "root" else "nobody"


def _run_as(
    tmp_path: Path, claimed: str | None, db_url: str, *args: str
) -> subprocess.CompletedProcess[str]:
    env = _env(tmp_path)
    if claimed is not None:
        # Everything getpass.getuser() and friends would believe.
        env.update(LOGNAME=claimed, USER=claimed, LNAME=claimed, USERNAME=claimed)
    return subprocess.run(
        [sys.executable, "-m", "admin_app", "--db", db_url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _database(tmp_path: Path, *, me: Role | None) -> str:
    """A database whose admin is BOSS; ME is an operator with role `me` (None: not at all)."""
    url = f"sqlite:///{tmp_path / 'team.sqlite3'}"
    db = open_database(url)
    try:
        boss = Authority(db, sign_in(db, BOSS))
        if me is not None:
            OperatorService(db, boss).add(ME, me)
    finally:
        db.close()
    return url


def _audit(tmp_path: Path, url: str) -> list[dict[str, str]]:
    listed = _run_as(tmp_path, None, url, "audit", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, str]] = json.loads(listed.stdout)
    return rows


@pytest.mark.parametrize("claimed", [BOSS, STRANGER])
def test_a_finance_clerk_claiming_another_login_stays_a_denied_finance_clerk(
    tmp_path: Path, claimed: str
) -> None:
    url = _database(tmp_path, me=Role.FINANCE)

    who = _run_as(tmp_path, claimed, url, "whoami", "--json")
    assert who.returncode == 0, who.stderr
    assert (json.loads(who.stdout)["login"], json.loads(who.stdout)["role"]) == (ME, "finance")

    grant = _run_as(tmp_path, claimed, url, "credits", "grant", "--customer", "cus_x",
                    "--credits", "777", "--reason", "free money")  # fmt: skip
    assert grant.returncode == 3
    assert "'grant credits' is needed" in grant.stderr
    promote = _run_as(tmp_path, claimed, url, "operators", "set-role", ME, "admin")
    assert promote.returncode == 3

    rows = _audit(tmp_path, url)
    denied = [r for r in rows if r["outcome"] == "denied"]
    assert [(r["action"], r["operator"], r["role"]) for r in denied] == [
        ("operator.set_role", ME, "finance"),
        ("credits.grant", ME, "finance"),
    ]
    assert {r["operator"] for r in rows} == {ME, BOSS}  # BOSS only for setting the team up
    assert [r["action"] for r in rows if r["operator"] == BOSS] == [
        "operator.add",
        "operator.bootstrap",
    ]


def test_someone_who_is_not_an_operator_cannot_become_one_by_claiming_an_admins_login(
    tmp_path: Path,
) -> None:
    url = _database(tmp_path, me=None)
    who = _run_as(tmp_path, BOSS, url, "whoami")
    assert who.returncode == 3
    assert f"You ({ME}) are not a Billing Admin operator yet" in who.stderr
    add = _run_as(tmp_path, BOSS, url, "operators", "add", ME, "--role", "admin")
    assert add.returncode == 3
    rows = _audit_as_boss(url)
    assert [r.action for r in rows] == ["operator.bootstrap"]


def _audit_as_boss(url: str) -> list[AuditRow]:
    """Read the audit log directly: the person running the test is not an operator here."""
    db = open_database(url)
    try:
        boss = Authority(db, sign_in(db, BOSS))
        return list(AuditLog(db, boss).records())
    finally:
        db.close()


@pytest.mark.parametrize(
    ("me", "args", "message"),
    [
        (None, ["whoami"], f"You ({ME}) are not a Billing Admin operator yet"),
        (None, ["credits", "grant", "--customer", "cus_x", "--credits", "5", "--reason", "r"],
         "not a Billing Admin operator yet"),
        (None, ["--screenshot", "shots"], "not a Billing Admin operator yet"),
        (Role.FINANCE, ["credits", "grant", "--customer", "cus_x", "--credits", "5",
                        "--reason", "r"], "Permission denied: 'grant credits' is needed"),
        (Role.FINANCE, ["operators", "add", "x", "--role", "admin"],
         "Permission denied: 'manage operators' is needed"),
        (Role.SUPPORT, ["audit", "list"], "Permission denied: 'view audit log' is needed"),
    ],
)  # fmt: skip
def test_a_denial_is_exactly_one_stderr_line(
    tmp_path: Path, me: Role | None, args: list[str], message: str
) -> None:
    url = _database(tmp_path, me=me)
    args = [str(tmp_path / a) if a == "shots" else a for a in args]
    denied = _run_as(tmp_path, None, url, *args)
    assert denied.returncode == 3
    assert denied.stdout == ""
    lines = denied.stderr.splitlines()
    assert len(lines) == 1, denied.stderr
    assert lines[0].startswith("admin-app: ")
    assert message in lines[0]
